# SPDX-License-Identifier: MIT
"""Database models (the 4.x path; they live in :mod:`.store.models`).

Invenio-DB loads this module through the ``invenio_db.models`` entry point.
"""

from invenio_records_files.store.models import FileCRC32, FileEntry, RecordsBuckets

__all__ = ("FileCRC32", "FileEntry", "RecordsBuckets")
