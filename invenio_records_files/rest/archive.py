# SPDX-License-Identifier: MIT
"""All of a record's files as one zip archive, streamed and resumable.

:class:`RecordArchive` lays out the record's current files (in the record's
order, under safe names, see :mod:`~invenio_records_files.zips.layout`) as a
stored zip whose bytes depend only on the files: its length is known before
the first byte, its ETag changes whenever a file, its name, size, timestamp
or the order changes, and any byte range is produced without reading what
comes before it (:func:`send_archive` answers ``Range`` and ``If-Range``).

The CRC-32 of every member is computed while its bytes are streamed and kept
in :class:`~invenio_records_files.models.FileCRC32`; a download that resumes
past a member takes its CRC-32 from there (or reads that member once when it
is not known yet). Bytes are read through Invenio-Files-REST's storage API
(``FileInstance.storage().open()`` and ``seek()``), so any backend works.

.. versionadded:: 5.0.0
"""

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import BinaryIO

from flask import Flask, Response, current_app, request
from invenio_db import db
from invenio_files_rest.errors import FileInstanceUnreadableError
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_range_header, unquote_etag

from invenio_records_files import settings
from invenio_records_files.errors import ArchiveRangeError
from invenio_records_files.store.checksums import crc32
from invenio_records_files.store.keys import in_files_order, listed_keys
from invenio_records_files.store.models import FileCRC32
from invenio_records_files.zips.layout import Member, StoredZip, safe_names, utc_naive
from invenio_records_files.zips.stream import iter_range

ARCHIVE_FORMAT = 1
"""Version of the layout; part of the ETag, bumped when the bytes change."""

DEFAULT_CHUNK_SIZE = 1024 * 1024
CRC_BATCH = 1000
CRC_BATCH_BYTES = 1024**3


def chunk_size() -> int:
    """Bytes per chunk of a download (``RECORDS_FILES_DOWNLOAD_CHUNK_SIZE``)."""
    return settings.download_chunk_size()


@dataclass(frozen=True)
class ArchiveFile:
    """What the archive needs of one file (loaded at once, no ORM objects)."""

    key: str
    modified: datetime
    version_id: object
    file_id: object
    uri: str
    storage_class: str | None
    size: int
    checksum: str | None
    readable: bool
    file_updated: datetime | None
    cached_crc: int | None

    def as_object(self, bucket: Bucket) -> ObjectVersion:
        """Return a (transient) head version of this file, for permission checks."""
        return ObjectVersion(
            bucket_id=bucket.id,
            key=self.key,
            version_id=self.version_id,
            file_id=self.file_id,
            is_head=True,
        )

    def open(self) -> BinaryIO:
        """Open the file through its storage (needs an application context)."""
        instance = FileInstance(
            id=self.file_id,
            uri=self.uri,
            storage_class=self.storage_class,
            size=self.size,
            checksum=self.checksum,
            readable=self.readable,
            writable=False,
            updated=self.file_updated,
        )
        return instance.storage().open("rb")


def load_files(record, bucket: Bucket) -> list[ArchiveFile]:
    """Load the bucket's current files and cached CRC-32s in one query.

    Files come in the order of the record's ``_files``; files it does not
    list follow in key order.
    """
    rows = (
        db.session.query(
            ObjectVersion.key,
            ObjectVersion.updated,
            ObjectVersion.version_id,
            FileInstance.id,
            FileInstance.uri,
            FileInstance.storage_class,
            FileInstance.size,
            FileInstance.checksum,
            FileInstance.readable,
            FileInstance.updated,
            FileCRC32.crc32,
            FileCRC32.size,
            FileCRC32.checksum,
        )
        .join(FileInstance, FileInstance.id == ObjectVersion.file_id)
        .outerjoin(FileCRC32, FileCRC32.file_id == FileInstance.id)
        .filter(ObjectVersion.bucket_id == bucket.id, ObjectVersion.is_head.is_(True))
        .order_by(ObjectVersion.key)
        .all()
    )
    rows = in_files_order(rows, listed_keys(record.get("_files")), key=itemgetter(0))
    return [
        ArchiveFile(
            key=key,
            modified=modified,
            version_id=version_id,
            file_id=file_id,
            uri=uri,
            storage_class=storage_class,
            size=size or 0,
            checksum=checksum,
            readable=readable,
            file_updated=file_updated,
            cached_crc=(
                crc
                if crc is not None and crc_size == size and crc_checksum == checksum
                else None
            ),
        )
        for (
            key,
            modified,
            version_id,
            file_id,
            uri,
            storage_class,
            size,
            checksum,
            readable,
            file_updated,
            crc,
            crc_size,
            crc_checksum,
        ) in rows
    ]


class RecordArchive:
    """A zip archive of a record's current files.

    :param files: The files, in their order in the archive.
    """

    def __init__(self, files: list[ArchiveFile]) -> None:
        """Lay the archive out (no storage is read)."""
        self.files = files
        self.names = safe_names(file.key for file in files)
        self.layout = StoredZip(
            [
                Member(name, file.size, file.modified)
                for name, file in zip(self.names, files, strict=True)
            ]
        )

    @classmethod
    def of(cls, record, bucket: Bucket) -> "RecordArchive":
        """Lay out the archive of ``record``'s files in ``bucket`` (one query).

        :raises invenio_files_rest.errors.FileInstanceUnreadableError: if a
            file cannot be read at the moment.
        """
        files = load_files(record, bucket)
        if not all(file.readable for file in files):
            raise FileInstanceUnreadableError()
        return cls(files)

    def objects(self, bucket: Bucket) -> list[ObjectVersion]:
        """Return the archived files as (transient) object versions of ``bucket``."""
        return [file.as_object(bucket) for file in self.files]

    @property
    def size(self) -> int:
        """Length of the archive in bytes."""
        return self.layout.size

    @property
    def etag(self) -> str:
        """Strong entity tag: the same bytes have the same tag."""
        members = [
            (
                name,
                f.size,
                utc_naive(f.modified).isoformat(),
                str(f.file_id),
                f.checksum,
            )
            for name, f in zip(self.names, self.files, strict=True)
        ]
        digest = hashlib.sha256(json.dumps([ARCHIVE_FORMAT, members]).encode())
        return f"zip-{digest.hexdigest()[:40]}"

    @property
    def last_modified(self) -> datetime | None:
        """Latest modification time of the files (``None`` without files)."""
        return max((file.modified for file in self.files), default=None)

    def iter_bytes(
        self, start: int = 0, stop: int | None = None, chunk_size: int | None = None
    ) -> Iterator[bytes]:
        """Return an iterator over the bytes ``start`` to ``stop`` (excluded).

        Call it within the request: the iterator keeps the application to
        open files and store CRC-32s later, when the response is streamed.
        Computed CRC-32s are stored in transactions of their own, in batches
        and when the iterator ends or is closed.
        """
        source = _ArchiveSource(
            self, current_app._get_current_object(), chunk_size or DEFAULT_CHUNK_SIZE
        )

        def generate():
            try:
                yield from iter_range(
                    self.layout, source, start, stop, source.chunk_size, crc32
                )
            finally:
                source.flush()

        return generate()


class _ArchiveSource:
    """Members' bytes and CRC-32s for :func:`~.zipstream.iter_range`."""

    def __init__(self, archive: RecordArchive, app: Flask, chunk_size: int) -> None:
        self.archive = archive
        self.app = app
        self.chunk_size = chunk_size
        self.known: dict[int, int] = {}
        self.pending: list[dict] = []
        self.pending_bytes = 0

    def open(self, index: int) -> BinaryIO:
        with self.app.app_context():
            return self.archive.files[index].open()

    def known_crc(self, index: int) -> int | None:
        if index in self.known:
            return self.known[index]
        return self.archive.files[index].cached_crc

    def crc(self, index: int) -> int:
        crc = self.known_crc(index)
        if crc is not None:
            return crc
        crc, remaining = 0, self.archive.files[index].size
        with self.open(index) as fp:
            while remaining:
                data = fp.read(min(self.chunk_size, remaining))
                if not data:
                    raise OSError(f"File {self.archive.files[index].key!r} is short.")
                crc = crc32(data, crc)
                remaining -= len(data)
        self.computed(index, crc)
        return crc

    def computed(self, index: int, crc: int) -> None:
        file = self.archive.files[index]
        self.known[index] = crc
        if file.cached_crc is not None:
            return
        self.pending.append(
            {
                "file_id": file.file_id,
                "crc32": crc,
                "size": file.size,
                "checksum": file.checksum,
            }
        )
        self.pending_bytes += file.size
        if len(self.pending) >= CRC_BATCH or self.pending_bytes >= CRC_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Store the pending CRC-32s (best effort: a failure is only logged)."""
        if not self.pending:
            return
        rows, self.pending, self.pending_bytes = self.pending, [], 0
        with self.app.app_context():
            try:
                cache_crcs(rows)
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                self.app.logger.warning("Could not cache CRC-32s.", exc_info=True)


def cache_crcs(rows: list[dict]) -> None:
    """Add CRC-32 rows to :class:`FileCRC32`, skipping the known ones.

    Works in the caller's session and transaction; nothing is committed.
    """
    table = FileCRC32.__table__
    dialect = db.session.connection().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(table), rows)
        except IntegrityError:
            pass  # another download stored (some of) them first
        return
    db.session.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


def archive_filename(pid_value: str) -> str:
    """Name of the archive file of a record, with its PID value."""
    return f"record-{re.sub(r'[^A-Za-z0-9._-]', '_', str(pid_value))}-files.zip"


def proves_unchanged(if_range: str, etag: str) -> bool:
    """Tell whether an ``If-Range`` value proves the archive is still ``etag``.

    Only a strong ETag equal to the current one does. A date cannot: the
    archive changes within a second (a deletion, a new order of ``_files``,
    a removed head version) without its ``Last-Modified`` moving forward. A
    weak ETag never allows a range (RFC 9110, 13.1.5).
    """
    value = if_range.strip()
    if not (value.startswith('"') and value.endswith('"')):
        return False
    tag, weak = unquote_etag(value)
    return not weak and tag == etag


def send_archive(archive: RecordArchive, filename: str) -> Response:
    """Answer a request for ``archive``: 200, 206, 304, 412 or 416.

    A single ``Range`` gets exactly those bytes (206) unless ``If-Range`` is
    there and is not the current strong ETag (:func:`proves_unchanged`);
    several ranges get the whole archive (200). A resumed download thus
    never joins the bytes of two archives.
    """
    headers = Headers()
    headers["Content-Length"] = str(archive.size)
    headers["Content-Security-Policy"] = "default-src 'none';"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.add("Content-Disposition", "attachment", filename=filename)
    response = current_app.response_class(
        [], mimetype="application/zip", headers=headers, direct_passthrough=True
    )
    response.set_etag(archive.etag)
    response.last_modified = archive.last_modified
    response.cache_control.no_cache = True

    environ = request.environ
    ranges = parse_range_header(environ.get("HTTP_RANGE"))
    if_range = environ.get("HTTP_IF_RANGE")
    if ranges is not None and (
        len(ranges.ranges) > 1
        or (if_range is not None and not proves_unchanged(if_range, archive.etag))
    ):
        environ = {
            k: v for k, v in environ.items() if k not in ("HTTP_RANGE", "HTTP_IF_RANGE")
        }
    try:
        response.make_conditional(
            environ, accept_ranges="bytes", complete_length=archive.size
        )
    except RequestedRangeNotSatisfiable as error:
        raise ArchiveRangeError(archive.size) from error
    response.headers["Accept-Ranges"] = "bytes"
    size = chunk_size()
    if response.status_code == 206:
        content_range = response.content_range
        response.response = archive.iter_bytes(
            content_range.start, content_range.stop, size
        )
    elif response.status_code == 200:
        response.response = archive.iter_bytes(0, archive.size, size)
    return response


__all__ = (
    "ArchiveFile",
    "ArchiveRangeError",
    "RecordArchive",
    "archive_filename",
    "cache_crcs",
    "load_files",
    "send_archive",
)
