# SPDX-License-Identifier: MIT
"""Errors raised by Invenio-Records-Files.

One class per condition. Each carries the key or id at fault and, where it
reaches the REST endpoints, the HTTP status it answers with (they are
Invenio-REST exceptions: the endpoints need not catch them). Each also
subclasses the exception version 4 raised in the same situation, so that
existing ``except`` clauses keep working:

================================ ===================================== ======
Error                            Also an instance of                   Status
================================ ===================================== ======
:class:`KeyExistsError`          ``InvalidOperationError``,            409
                                 ``AssertionError``
:class:`MissingFileError`        ``KeyError``                          404
:class:`InvalidFileKeyError`     ``InvalidKeyError`` (Files-REST)      400
:class:`LockedBucketError`       ``BucketLockedError`` (Files-REST)    403
:class:`DeletedBucketError`      ``InvalidOperationError``             403
:class:`NoBucketError`           ``TypeError``                         404
:class:`FilesExistError`         ``RuntimeError``                      409
:class:`RecordGoneError`         ``MissingModelError``                 410
:class:`ChecksumMismatchError`   ``StorageError`` (Files-REST)         400
:class:`RecordValidationError`   ``ValueError``                        400
:class:`UnknownFileEntryError`   ``ValueError``                        400
:class:`InvalidArgumentError`    ``ValueError``                        400
:class:`UploadGoneError`         ``MultipartException`` (Files-REST)   404
:class:`UploadCompletedError`    ``MultipartAlreadyCompleted``         409
:class:`TooManyFilesError`       ``InvalidOperationError``             400
:class:`PermissionDeniedError`   --                                    401/403
:class:`RecordFilesRESTError`    --                                    any
:class:`ZipMemberError`          --                                    4xx
:class:`ArchiveRangeError`       --                                    416
:class:`UnknownEndpointError`    ``KeyError``, ``ValueError``          --
================================ ===================================== ======
"""

from invenio_files_rest.errors import (
    BucketLockedError,
    InvalidKeyError,
    InvalidOperationError,
    MultipartAlreadyCompleted,
    MultipartException,
    StorageError,
)
from invenio_records.errors import MissingModelError
from invenio_rest.errors import RESTException


class RecordFilesError(RESTException):
    """Base class of the errors of Invenio-Records-Files.

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, description: str | None = None, **kwargs) -> None:
        """Initialize with a ``description`` of what went wrong."""
        super().__init__(description=description, **kwargs)


class KeyExistsError(InvalidOperationError, AssertionError):
    """A file with this key already exists in the record's bucket.

    Raised by ``rename()`` onto an existing key (version 4 raised
    ``AssertionError``) and by ``copy_from()``.

    .. versionadded:: 5.0.0
    """

    code = 409

    def __init__(self, key: str, **kwargs) -> None:
        """Initialize with the ``key`` at fault."""
        self.key = key
        super().__init__(description=f"File {key!r} already exists.", **kwargs)


class MissingFileError(RecordFilesError, KeyError):
    """The record has no file with this key (any more), over REST.

    The Python API raises a plain ``KeyError``, as mappings do.

    .. versionadded:: 5.0.0
    """

    code = 404

    def __init__(self, key: str, **kwargs) -> None:
        """Initialize with the ``key`` at fault."""
        self.key = key
        super().__init__(description=f"File {key!r} does not exist.", **kwargs)
        self.args = (key,)


class InvalidFileKeyError(InvalidKeyError):
    """A file key (or tag) that cannot be stored or served.

    Empty, too long, or with control characters.

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, key, reason: str, **kwargs) -> None:
        """Initialize with the ``key`` at fault and the ``reason``."""
        self.key = key
        super().__init__(description=reason, **kwargs)


class LockedBucketError(BucketLockedError):
    """The record's bucket is locked: its files cannot change.

    .. versionadded:: 5.0.0
    """

    def __init__(self, bucket_id, **kwargs) -> None:
        """Initialize with the id of the locked bucket."""
        self.bucket_id = bucket_id
        super().__init__(**kwargs)


class DeletedBucketError(InvalidOperationError):
    """The record's bucket is deleted: its files cannot change.

    .. versionadded:: 5.0.0
    """

    code = 403

    def __init__(self, bucket_id, **kwargs) -> None:
        """Initialize with the id of the deleted bucket."""
        self.bucket_id = bucket_id
        super().__init__(description="Bucket is deleted.", **kwargs)


class NoBucketError(RecordFilesError, TypeError):
    """The record has no bucket, hence no files.

    .. versionadded:: 5.0.0
    """

    code = 404

    def __init__(self, record_id, **kwargs) -> None:
        """Initialize with the id of the record."""
        self.record_id = record_id
        super().__init__(description="The record has no files.", **kwargs)


class FilesExistError(RecordFilesError, RuntimeError):
    """The record already has files: they cannot be replaced all at once.

    .. versionadded:: 5.0.0
    """

    code = 409

    def __init__(self, record_id, **kwargs) -> None:
        """Initialize with the id of the record."""
        self.record_id = record_id
        super().__init__(
            description="Cannot replace the files of a record that has files.",
            **kwargs,
        )


class RecordGoneError(RecordFilesError, MissingModelError):
    """The record was deleted (possibly while the request ran).

    .. versionadded:: 5.0.0
    """

    code = 410

    def __init__(self, record_id, **kwargs) -> None:
        """Initialize with the id of the record."""
        self.record_id = record_id
        super().__init__(description="The record has been deleted.", **kwargs)


class ChecksumMismatchError(StorageError):
    """The stored bytes do not match the checksum the client sent.

    Raised for an upload whose ``Content-MD5`` header differs from the MD5
    of the bytes received; nothing of the upload is kept.

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, expected: str, actual: str, key: str | None = None, **kwargs):
        """Initialize with the ``expected`` and the ``actual`` checksum."""
        self.expected = expected
        self.actual = actual
        self.key = key
        super().__init__(
            description=(
                f"Checksum mismatch: the client sent {expected!r}, "
                f"the received bytes have {actual!r}."
            ),
            **kwargs,
        )


class RecordValidationError(RecordFilesError, ValueError):
    """The record fails its JSON schema after a change of its files.

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, record_id, message: str, **kwargs) -> None:
        """Initialize with the id of the record and the validation message."""
        self.record_id = record_id
        self.message = message
        super().__init__(
            description=f"The record does not validate: {message}", **kwargs
        )


class UnknownFileEntryError(RecordFilesError, ValueError):
    """``_files`` given to ``Record.create()`` names a file its bucket lacks.

    Checked when the record's files are first read, when the record is
    committed (``record.commit()``) and when the session commits, so that
    the bucket may be linked after ``create()`` (invenio-deposit links the
    snapshot it published). Version 4 stored such entries as they were.

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, record_id, key, **kwargs) -> None:
        """Initialize with the id of the record and the ``key`` at fault."""
        self.record_id = record_id
        self.key = key
        super().__init__(
            description=(
                f"File {key!r} of _files is not in the bucket of record {record_id}."
            ),
            **kwargs,
        )


class InvalidArgumentError(RecordFilesError, ValueError):
    """A query argument of a request is malformed (``?versionId=x``).

    Every endpoint of a record's files answers a bad ``versionId`` or
    ``uploadId`` with this ``400`` (Invenio-Files-REST answered ``422``
    "Validation error." on downloads).

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, name: str, **kwargs) -> None:
        """Initialize with the ``argument`` at fault."""
        self.argument = name
        super().__init__(description=f"Invalid {name}.", **kwargs)


class UploadGoneError(MultipartException):
    """The multipart upload does not exist (any more): completed or aborted.

    .. versionadded:: 5.0.0
    """

    code = 404

    def __init__(self, upload_id, **kwargs) -> None:
        """Initialize with the id of the upload."""
        self.upload_id = upload_id
        super().__init__(description="uploadId does not exists.", **kwargs)


class UploadCompletedError(MultipartAlreadyCompleted):
    """The multipart upload is completed (or being completed) already.

    .. versionadded:: 5.0.0
    """

    code = 409

    def __init__(self, upload_id, **kwargs) -> None:
        """Initialize with the id of the upload."""
        self.upload_id = upload_id
        super().__init__(**kwargs)


class TooManyFilesError(InvalidOperationError):
    """The record holds ``RECORDS_FILES_MAX_FILES`` files: no new key fits.

    Raised when adding a file under a new key (REST upload, completion of a
    multipart upload, ``record.files[key] = stream``, the ``files`` setter)
    would take the record past the limit; nothing is written. A new version
    of a file the record holds is always allowed.

    .. versionadded:: 5.0.0
    """

    code = 400

    def __init__(self, limit: int, keys=(), **kwargs) -> None:
        """Initialize with the ``limit`` and the new ``keys`` refused."""
        self.limit = limit
        self.keys = tuple(keys)
        super().__init__(
            description=f"A record may hold at most {limit} files.", **kwargs
        )


class PermissionDeniedError(RecordFilesError):
    """The current user may not read (or change) the files of this record.

    Answers ``401`` to an anonymous user and ``403`` to an authenticated
    one, as Invenio-Files-REST and Invenio-Records-REST do. The message
    names neither the record's files nor the record.

    .. versionadded:: 5.0.0
    """

    def __init__(
        self, record_id, action: str, authenticated: bool = False, **kwargs
    ) -> None:
        """Initialize with the record's id, the ``action`` and who asked."""
        self.record_id = record_id
        self.action = action
        self.authenticated = authenticated
        self.code = 403 if authenticated else 401
        super().__init__(
            description="You do not have a permission for this action."
            if authenticated
            else "You must be logged in for this action.",
            **kwargs,
        )


class RecordFilesRESTError(RecordFilesError):
    """JSON error of the record files endpoints, with its HTTP status.

    For conditions of the request itself (an unknown PID, a bad query
    argument) that no more specific class names.

    .. versionadded:: 5.0.0
    """

    def __init__(self, code: int, description: str) -> None:
        """Initialize with an HTTP status ``code`` and a message."""
        self.code = code
        super().__init__(description=description)


class ZipMemberError(RecordFilesError):
    """A zip file or member that cannot be listed or extracted.

    .. versionadded:: 5.0.0
    """

    def __init__(self, code: int, description: str) -> None:
        """Initialize with an HTTP status ``code`` and a message."""
        self.code = code
        super().__init__(description=description)


class ArchiveRangeError(RecordFilesError):
    """The requested range is outside the archive (416).

    .. versionadded:: 5.0.0
    """

    code = 416

    def __init__(self, length: int) -> None:
        """Initialize with the archive's ``length``."""
        self.length = length
        super().__init__(description=f"The archive has {length} bytes.")

    def get_headers(self, environ=None, scope=None):
        """Add ``Content-Range: bytes */<length>``."""
        return [
            *super().get_headers(environ, scope),
            ("Content-Range", f"bytes */{self.length}"),
        ]


class UnknownEndpointError(KeyError, ValueError):
    """An endpoint prefix of ``RECORDS_FILES_REST_ENDPOINTS`` is not defined.

    A ``KeyError`` (as version 4 raised) and a ``ValueError``.

    .. versionadded:: 5.0.0
    """

    def __init__(self, prefix: str, config_name: str) -> None:
        """Initialize with the endpoint ``prefix`` and the ``config_name``."""
        self.prefix = prefix
        self.config_name = config_name
        super().__init__(
            f"Endpoint prefix {prefix!r} (RECORDS_FILES_REST_ENDPOINTS) is "
            f"not defined in {config_name}."
        )

    def __str__(self) -> str:
        """Say which prefix is missing from which configuration."""
        return str(self.args[0])
