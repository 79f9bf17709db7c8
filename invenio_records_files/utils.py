# SPDX-License-Identifier: MIT
"""Implementation of various utility functions (the 4.x path).

:func:`sorted_files_from_bucket` lives in :mod:`.store.keys`, the download
view in :mod:`.rest.ui`.
"""

from invenio_records_files.rest.ui import file_download_ui, record_file_factory
from invenio_records_files.store.keys import sorted_files_from_bucket

__all__ = ("file_download_ui", "record_file_factory", "sorted_files_from_bucket")
