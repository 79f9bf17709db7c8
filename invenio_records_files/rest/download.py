# SPDX-License-Identifier: MIT
"""Downloads streamed in fixed-size chunks.

Invenio-Files-REST's ``send_stream`` gives the open file to the WSGI server
as the response body, and the server iterates it line by line: some 260,000
writes for 64 MiB of random bytes, or the whole file in one piece when it has
no newline byte. Here the same response (built by ``send_stream`` itself, so
the headers, conditional and range requests are Files-REST's) gets a body
that reads ``RECORDS_FILES_DOWNLOAD_CHUNK_SIZE`` bytes at a time, or the WSGI
server's ``wsgi.file_wrapper`` for a whole local file (``sendfile``). The
bytes are always read through the storage API; a storage with a
``send_file()`` of its own (e.g. one that redirects to S3) keeps it.

.. versionadded:: 5.0.0
"""

import io
import unicodedata

from flask import Response, current_app, request
from invenio_files_rest.errors import StorageError
from invenio_files_rest.helpers import send_stream
from invenio_files_rest.models import FileInstance, ObjectVersion
from invenio_files_rest.proxies import current_permission_factory
from invenio_files_rest.signals import file_downloaded
from invenio_files_rest.storage import FileStorage, PyFSFileStorage
from invenio_files_rest.views import check_permission
from werkzeug.exceptions import HTTPException

from invenio_records_files import settings
from invenio_records_files.store import checksums

_OBJECT_STATUSES = frozenset({200, 206, 304})


def header_filename(name: str) -> str:
    """Make ``name`` safe for a ``Content-Disposition`` header's filename.

    Control characters (CR, LF, NUL, ...), line and paragraph separators
    and lone surrogates become ``_`` (a header cannot carry them). Nothing
    left gives ``file``.

    .. versionadded:: 5.0.0
    """
    cleaned = "".join(
        "_" if unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs") else char
        for char in name
    )
    return cleaned.strip() or "file"


class FileChunks:
    """Iterate an open file in chunks of ``chunk_size`` bytes, then close it.

    Reads ``length`` bytes (to the end if ``None``) from ``offset``. Every
    chunk but the last has exactly ``chunk_size`` bytes, also when the file's
    ``read()`` returns less than asked (network streams). The file is closed
    at the end of the iteration and by :meth:`close`, which WSGI servers call
    after the response, also when the client went away: an instance is a
    complete WSGI response body.

    .. versionadded:: 5.0.0
    """

    def __init__(
        self, fp, chunk_size: int, offset: int = 0, length: int | None = None
    ) -> None:
        """Wrap the open binary file ``fp``; nothing is read yet."""
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer: {chunk_size!r}")
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"Invalid range: offset {offset}, length {length}.")
        self.fp = fp
        self.chunk_size = chunk_size
        self.offset = offset
        self.remaining = length
        self._started = False

    def __iter__(self) -> "FileChunks":
        """Return the iterator itself."""
        return self

    def __next__(self) -> bytes:
        """Return the next chunk; close the file after the last one."""
        if self.fp.closed:
            raise StopIteration
        if not self._started:
            self._started = True
            if self.offset:
                self.fp.seek(self.offset)
        size = self.chunk_size
        if self.remaining is not None:
            size = min(size, self.remaining)
        chunk = self._read(size) if size else b""
        if not chunk:
            self.close()
            raise StopIteration
        if self.remaining is not None:
            self.remaining -= len(chunk)
        return chunk

    def _read(self, size: int) -> bytes:
        chunk = self.fp.read(size)
        if not chunk or len(chunk) == size:
            return chunk
        parts = [chunk]
        missing = size - len(chunk)
        while missing:
            more = self.fp.read(missing)
            if not more:
                break
            parts.append(more)
            missing -= len(more)
        return b"".join(parts)

    def close(self) -> None:
        """Close the file (again: it does no harm)."""
        self.fp.close()


def send_object(
    bucket,
    obj: ObjectVersion,
    expected_chksum: str | None = None,
    logger_data: dict | None = None,
    restricted: bool = True,
    as_attachment: bool = False,
) -> Response:
    """Send an object version, as Files-REST's ``ObjectResource.send_object``.

    Same permission check (``object-read-version`` for a version that is not
    the head), checksum warning, ``file_downloaded`` signal and response as
    Invenio-Files-REST's, with the body streamed by :func:`send_file`, and an
    RFC 3230 ``Digest`` header next to ``Content-MD5``.

    :param bucket: Not used; Files-REST's signature.
    :param obj: The :class:`~invenio_files_rest.models.ObjectVersion` to send.
    :param expected_chksum: Checksum the caller expects (e.g. the record's
        ``_files``); a different one is logged as a warning with
        ``logger_data``.
    :param restricted: ``False`` lets caches keep the file.
    :param as_attachment: Send ``Content-Disposition: attachment``.

    .. versionadded:: 5.0.0
    """
    if not obj.is_head:
        check_permission(
            current_permission_factory(obj, "object-read-version"), hidden=False
        )
    if expected_chksum and obj.file.checksum != expected_chksum:
        current_app.logger.warning(
            "File checksum mismatch detected.", extra=logger_data
        )
    file_downloaded.send(current_app._get_current_object(), obj=obj)
    return send_file(
        obj.file,
        obj.basename,
        mimetype=obj.mimetype,
        restricted=restricted,
        as_attachment=as_attachment,
    )


def send_file(
    fileinstance: FileInstance,
    filename: str,
    mimetype: str | None = None,
    restricted: bool = True,
    as_attachment: bool = False,
    trusted: bool = False,
) -> Response:
    """Send a file's bytes, read through its storage in fixed-size chunks.

    The response is the one of Files-REST's ``FileStorage.send_file``; a
    storage class that overrides ``send_file()`` sends the file itself.

    .. versionadded:: 5.0.0
    """
    storage = fileinstance.storage()
    checksum = fileinstance.checksum
    if type(storage).send_file is not FileStorage.send_file:
        response = storage.send_file(
            filename,
            mimetype=mimetype,
            restricted=restricted,
            checksum=checksum,
            trusted=trusted,
            as_attachment=as_attachment,
        )
        return _add_digest(response, checksum)
    try:
        fp = storage.open(mode="rb")
    except Exception as error:
        # Files-REST passes the error as ``errors``, which Invenio-REST then
        # fails to render as JSON; log it and answer with the message only.
        current_app.logger.error(
            "Could not open file instance %s: %r", fileinstance.id, error
        )
        reason = "File not found" if isinstance(error, FileNotFoundError) else error
        raise StorageError(description=f"Could not send file: {reason}") from error
    try:
        response = send_stream(
            FileChunks(fp, _chunk_size()),
            filename,
            # What FileStorage.send_file sends (its size and Unix mtime).
            storage._size,
            storage._modified,
            mimetype=mimetype,
            restricted=restricted,
            etag=checksum,
            content_md5=checksums.md5_hex(checksum),
            trusted=trusted,
            as_attachment=as_attachment,
        )
        _set_body(response, storage, fp)
    except HTTPException:
        fp.close()  # e.g. 416 for an unsatisfiable range
        raise
    except Exception as error:
        fp.close()
        current_app.logger.error(
            "Could not send file instance %s: %r", fileinstance.id, error
        )
        raise StorageError(description=f"Could not send file: {error}") from error
    return _add_digest(response, checksum)


def _chunk_size() -> int:
    return settings.download_chunk_size()


def _set_body(response: Response, storage, fp) -> None:
    """Give the response the body that sends ``fp`` best.

    A range gets the chunks of exactly that range (instead of Werkzeug's
    wrapper, which reads past its end). A whole local file goes to the WSGI
    server's ``wsgi.file_wrapper`` if it has one, so the server may use
    ``sendfile``. Servers differ on whether a file wrapper starts at the
    file's position and stops at ``Content-Length``, so ranges never use it.
    """
    if response.status_code == 206:
        content_range = response.content_range
        response.response = FileChunks(
            fp,
            _chunk_size(),
            offset=content_range.start,
            length=content_range.stop - content_range.start,
        )
    elif (
        response.status_code == 200
        and request.method == "GET"
        and "wsgi.file_wrapper" in request.environ
        and _is_local_file(storage, fp)
    ):
        response.response = request.environ["wsgi.file_wrapper"](fp, _chunk_size())


def _is_local_file(storage, fp) -> bool:
    """Tell whether ``fp`` is a local file opened by Files-REST's local storage.

    Decided by types: the storage is a ``PyFSFileStorage`` and the file it
    opened is an operating-system file (a subclass that opens remote files,
    as invenio-s3's does, does not qualify).
    """
    raw = getattr(fp, "raw", fp)
    return isinstance(storage, PyFSFileStorage) and isinstance(raw, io.FileIO)


def _add_digest(response: Response, checksum: str | None) -> Response:
    """Add the RFC 3230 ``Digest`` header of the stored ``checksum``.

    Only on responses that carry the file (not redirects or errors), and
    only for algorithms with an RFC 3230 name (:mod:`.checksums`).
    """
    if response.status_code not in _OBJECT_STATUSES:
        return response
    digest = checksums.digest_header(checksum)
    if digest is not None:
        response.headers["Digest"] = digest
    return response


__all__ = ("FileChunks", "send_file", "send_object")
