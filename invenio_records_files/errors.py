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

from invenio_files_rest.errors import InvalidOperationError, StorageError


class KeyExistsError(InvalidOperationError):
    """A file with this key already exists in the record's bucket.

    .. versionadded:: 2.0.0
    """

    code = 409

    def __init__(self, key: str, **kwargs) -> None:
        """Initialize with the ``key`` at fault."""
        self.key = key
        super().__init__(description=f"File {key!r} already exists.", **kwargs)


class ChecksumMismatchError(StorageError):
    """The stored bytes do not match the checksum the client sent.

    Raised for an upload whose ``Content-MD5`` header differs from the MD5
    of the bytes received; nothing of the upload is kept.

    .. versionadded:: 2.0.0
    """

    code = 400

    def __init__(self, expected: str, actual: str, **kwargs) -> None:
        """Initialize with the ``expected`` and the ``actual`` checksum."""
        self.expected = expected
        self.actual = actual
        super().__init__(
            description=(
                f"Checksum mismatch: the client sent {expected!r}, "
                f"the received bytes have {actual!r}."
            ),
            **kwargs,
        )
