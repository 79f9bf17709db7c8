# SPDX-License-Identifier: MIT
"""Errors raised by Invenio-Records-Files.

Besides the exception below, the API raises exceptions users already catch:
``KeyError`` for a missing file, Invenio-Files-REST's
:class:`~invenio_files_rest.errors.InvalidOperationError` (and its
:class:`~invenio_files_rest.errors.BucketLockedError` and
:class:`~invenio_files_rest.errors.InvalidKeyError` subclasses) for writes the
bucket refuses, ``TypeError`` for a value that is not a stream, and
Invenio-Records' :class:`~invenio_records.errors.MissingModelError`.
"""

from invenio_files_rest.errors import InvalidOperationError


class KeyExistsError(InvalidOperationError):
    """A file with this key already exists in the record's bucket.

    .. versionadded:: 2.0.0
    """

    code = 409

    def __init__(self, key: str, **kwargs) -> None:
        """Initialize with the ``key`` at fault."""
        self.key = key
        super().__init__(description=f"File {key!r} already exists.", **kwargs)
