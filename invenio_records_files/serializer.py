# SPDX-License-Identifier: MIT
"""Serializers of the record files endpoints (the 4.x path).

They live in :mod:`invenio_records_files.rest.serializer`.
"""

from invenio_records_files.rest.serializer import *  # noqa: F403
from invenio_records_files.rest.serializer import __all__  # noqa: F401
