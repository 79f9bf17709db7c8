# SPDX-License-Identifier: MIT
"""API for manipulating files associated to a record (the 4.x path).

:class:`Record` owns a bucket; its :attr:`~FilesMixin.files` is a
:class:`FilesIterator` of :class:`FileObject` items. They live in
:mod:`invenio_records_files.records` and are importable from here, as in
version 4. Nothing here commits.
"""

from invenio_files_rest.errors import InvalidOperationError
from invenio_files_rest.models import ObjectVersion

from invenio_records_files.records.files import FileObject, FilesIterator
from invenio_records_files.records.record import FilesMixin, Record
from invenio_records_files.store.keys import sorted_files_from_bucket

__all__ = (
    "FileObject",
    "FilesIterator",
    "FilesMixin",
    "InvalidOperationError",
    "ObjectVersion",
    "Record",
    "sorted_files_from_bucket",
)
