# SPDX-License-Identifier: MIT
"""The writes of the REST endpoints: change the bucket, keep the record in step.

Each write locks the record's row, then the bucket's
(:meth:`FilesState.lock <invenio_records_files.records.state.FilesState.lock>`,
the order of :mod:`~invenio_records_files.store.locks`), reloads the record's
metadata, publishes or deletes through the one step of every writer
(:mod:`~invenio_records_files.store.publish`) and commits the record: a new
revision (small: the record's JSON does not repeat ``_files``) with
Invenio-Records' signals, in the same transaction. With
``RECORDS_FILES_REST_UPDATE_RECORD = False`` only the bucket is locked and
changed.

Uploads store their bytes before any of this
(:mod:`~invenio_records_files.store.storage`), so that the locks are held for
a few statements, never during a transfer. Imports (:func:`import_files`)
copy another record's files the same way, sharing their bytes
(:mod:`~invenio_records_files.store.copying`). Nothing here commits the
session: the views commit.
"""

from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

from blinker import Signal
from invenio_db import db
from invenio_files_rest.errors import (
    FileSizeError,
    MultipartInvalidChunkSize,
    MultipartInvalidPartNumber,
    MultipartMissingParts,
)
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    MultipartObject,
    ObjectVersion,
    Part,
)
from invenio_records.signals import after_record_update, before_record_update
from jsonschema.exceptions import ValidationError

from invenio_records_files import settings
from invenio_records_files.errors import (
    MissingFileError,
    RecordValidationError,
    UploadCompletedError,
    UploadGoneError,
)
from invenio_records_files.records.state import state_of
from invenio_records_files.store import checksums, copying, entries, limits, locks
from invenio_records_files.store.keys import check_key
from invenio_records_files.store.publish import NewFile, publish, unpublish
from invenio_records_files.store.storage import remove_unused_files


def lock(record, bucket: Bucket, update_record: bool = True) -> None:
    """Lock the record, then the bucket; reload both.

    :param update_record: ``False`` (``RECORDS_FILES_REST_UPDATE_RECORD``
        off): the write leaves the record be, so only the bucket is locked
        (the record's row is not written, so it is not locked either).
    """
    if update_record:
        state_of(record).lock(record, bucket, reload=True)
    else:
        locks.lock_bucket(bucket)


def touch(record, emptied: bool = False) -> None:
    """Commit ``record`` after a change of its files (a revision, signals).

    ``_files`` is filled in first when someone will look at it: signal
    receivers, record extensions, or the record's JSON schema; otherwise
    the commit does not read the file list, whatever its length.

    :param emptied: The record lists no file any more.
    :raises invenio_records_files.errors.RecordValidationError: if the
        record fails its schema.
    """
    state = state_of(record)
    if state.base is None:
        if emptied:
            dict.__setitem__(record, "_files", [])
        elif record.get("_files") == []:
            dict.pop(record, "_files")
        if _files_are_looked_at(record):
            state.load(record)
    try:
        record.commit()
    except ValidationError as error:
        raise RecordValidationError(record.id, error.message) from error


def _files_are_looked_at(record) -> bool:
    signals: tuple[Signal, ...] = (before_record_update, after_record_update)
    return (
        "$schema" in record
        or any(signal.receivers for signal in signals)
        or len(type(record)._extensions) > 1
    )


def check_upload(
    bucket: Bucket, key: str, content_length: int | None, tags: Mapping | None
) -> None:
    """Refuse an upload before its bytes are read: key, tags, size, file limit.

    The file limit and the quota are checked again under the locks
    (:func:`upload`); this only spares the client a transfer that would be
    refused.

    :raises invenio_records_files.errors.InvalidFileKeyError: for a bad key
        or tag.
    :raises invenio_files_rest.errors.FileSizeError: if ``content_length``
        exceeds the bucket's largest file size.
    :raises invenio_records_files.errors.TooManyFilesError: if ``key`` is
        new and the record is full.
    """
    check_key(key)
    for tag, value in (tags or {}).items():
        check_key(tag, max_length=255)
        check_key(value, max_length=255)
    size_limit = bucket.size_limit
    if content_length and size_limit and content_length > size_limit:
        raise FileSizeError(
            description="File size limit exceeded."
            if isinstance(size_limit, int)
            else size_limit.reason
        )
    limits.check_max_files(bucket, [key])


def upload(
    record,
    bucket: Bucket,
    key: str,
    fileinstance: FileInstance,
    content_md5: str | None = None,
    tags: dict | None = None,
    update_record: bool = True,
) -> ObjectVersion:
    """Publish stored bytes as the new version of ``key``.

    ``fileinstance`` holds bytes already written (see
    :func:`~invenio_records_files.store.storage.write_file`), not yet in the
    session.

    :raises invenio_records_files.errors.ChecksumMismatchError: when the
        bytes do not match ``content_md5``.
    :raises invenio_files_rest.errors.FileSizeError: when the bucket's quota
        is exceeded.
    :raises invenio_records_files.errors.TooManyFilesError: when ``key`` is
        new and the record holds ``RECORDS_FILES_MAX_FILES`` files.
    """
    checksums.check_content_md5(fileinstance.checksum, content_md5)
    lock(record, bucket, update_record)
    (obj,) = publish(
        bucket,
        [NewFile(key, file=fileinstance, tags=tuple((tags or {}).items()))],
        record.id if update_record else None,
    )
    if update_record:
        touch(record)
    return obj


def delete(
    record,
    bucket: Bucket,
    key: str,
    version_id=None,
    update_record: bool = True,
) -> ObjectVersion:
    """Delete ``key`` (a delete marker) or remove one of its versions.

    See :func:`~invenio_records_files.store.publish.unpublish`: removing the
    head version (a delete marker, say) publishes the previous version
    again, with the file limit and ``_files``.

    :returns: The deleted object version.
    :raises invenio_records_files.errors.MissingFileError: if there is no
        such object (any more).
    :raises invenio_records_files.errors.TooManyFilesError: if the version
        that would become the head again does not fit in the record.
    """
    lock(record, bucket, update_record)
    done = unpublish(
        bucket,
        key,
        version_id=version_id,
        record_id=record.id if update_record else None,
    )
    if update_record and done.changed:
        touch(record, emptied=not done.listed and not entries.exist(record.id))
    return done.obj


def lock_upload(record, multipart: MultipartObject, update_record: bool = True):
    """Lock the record, the bucket, then the multipart upload; re-read it.

    :returns: The upload, reloaded.
    :raises invenio_records_files.errors.UploadGoneError: if it was completed
        or aborted meanwhile.
    :raises invenio_records_files.errors.UploadCompletedError: if it is
        completed already.
    """
    lock(record, multipart.bucket, update_record)
    locks.lock_upload(multipart)
    return multipart


def start_multipart(record, bucket: Bucket, key: str) -> None:
    """Check a new multipart upload of ``key`` (the bucket's size changes).

    The bucket is locked; the file limit is checked again on completion.
    """
    check_key(key)
    lock(record, bucket, update_record=False)
    limits.check_max_files(bucket, [key])


def part_range(multipart: MultipartObject, part_number: Any, content_length) -> tuple:
    """Return ``(offset, size)`` of a part, or refuse it.

    The last part of an upload whose size is a multiple of the part size is
    a whole part (Files-REST expects it empty).

    :raises invenio_records_files.errors.UploadCompletedError: (409) if the
        upload is completed.
    :raises invenio_files_rest.errors.MultipartInvalidPartNumber: for a part
        number out of range.
    :raises invenio_files_rest.errors.MultipartInvalidChunkSize: if
        ``content_length`` is not the part's size.
    """
    if multipart.completed:
        raise UploadCompletedError(multipart.upload_id)
    if part_number is None or not 0 <= part_number <= multipart.last_part_number:
        raise MultipartInvalidPartNumber()
    start = part_number * multipart.chunk_size
    size = min(multipart.chunk_size, multipart.size - start)
    if content_length is not None and content_length != size:
        raise MultipartInvalidChunkSize()
    return start, size


def write_part(storage, upload_id, stream, start: int, size: int) -> str:
    """Write a part's bytes at their place in the upload's file (no database).

    :returns: The part's checksum.
    :raises invenio_records_files.errors.UploadGoneError: if the upload was
        aborted meanwhile (its file is gone).
    """
    try:
        _, checksum = storage.update(
            stream, seek=start, size=size, chunk_size=settings.upload_chunk_size()
        )
    except FileNotFoundError as error:
        raise UploadGoneError(upload_id) from error
    return checksum


def record_part(record, upload_id, part_number: int, checksum: str) -> Part:
    """Record a written part, under the locks; refuse if the upload is gone.

    :raises invenio_records_files.errors.UploadGoneError: (404) if the upload
        was aborted or completed meanwhile.
    """
    multipart = db.session.get(MultipartObject, upload_id)
    if multipart is None:
        raise UploadGoneError(upload_id)
    lock_upload(record, multipart, update_record=False)
    part = Part.get_or_none(multipart, part_number) or Part(
        multipart=multipart, part_number=part_number
    )
    part.checksum = checksum
    db.session.add(part)
    return part


def complete_multipart(
    record,
    multipart: MultipartObject,
    version_id=None,
    update_record: bool = True,
) -> ObjectVersion:
    """Turn a multipart upload with all its parts into a new object version.

    The checksum is computed before the locks are taken (reading a large
    file takes time); under the locks the upload is re-read, so that only one
    of several concurrent completions (or abortions) goes through, and the
    parts are counted again.

    :returns: The new head :class:`~invenio_files_rest.models.ObjectVersion`.
    :raises invenio_files_rest.errors.MultipartMissingParts: if a part is
        missing.
    :raises invenio_records_files.errors.UploadGoneError: if the upload was
        completed or aborted meanwhile.
    """
    checksum = None
    fileinstance = multipart.file  # None if an abortion removed it meanwhile
    if fileinstance and Part.count(multipart) == multipart.last_part_number + 1:
        with suppress(OSError):  # aborted meanwhile: its bytes are gone
            checksum = fileinstance.storage().checksum()
    lock_upload(record, multipart, update_record)
    if Part.count(multipart) != multipart.last_part_number + 1:
        raise MultipartMissingParts()
    if checksum is None:
        checksum = multipart.file.storage().checksum()
    multipart.completed = True
    fileinstance = multipart.file
    fileinstance.checksum = checksum
    fileinstance.readable = True
    fileinstance.writable = False
    bucket, key = multipart.bucket, multipart.key
    # The upload leaves the bucket's size; the new version enters it, with
    # the checks of every publication.
    multipart.delete()
    (obj,) = publish(
        bucket,
        [NewFile(key, file=fileinstance, version_id=version_id)],
        record.id if update_record else None,
    )
    if update_record:
        touch(record)
    return obj


def abort_multipart(record, multipart: MultipartObject) -> None:
    """Abort a multipart upload; its bytes go once the transaction commits."""
    lock_upload(record, multipart, update_record=False)
    file_id = multipart.file_id
    multipart.delete()
    db.session.flush()
    remove_unused_files([file_id])


def import_files(
    record,
    bucket: Bucket,
    source,
    keys: Iterable[str] | None = None,
    update_record: bool = True,
) -> list[ObjectVersion]:
    """Copy the current files of ``source`` (another record's ``files``) here.

    The same rules as :meth:`FilesIterator.copy_from()
    <invenio_records_files.records.files.FilesIterator.copy_from>`: the
    bytes are shared, the files keep their metadata and order and follow the
    record's own files, and a key the record already has is refused before
    anything is written. The record is locked, then the bucket; the record
    gets the files in ``_files`` and is committed (one revision), unless
    ``update_record`` is false.

    :returns: The new object versions.
    :raises invenio_records_files.errors.KeyExistsError: (409) if a key is
        already a file of the record.
    :raises invenio_records_files.errors.MissingFileError: (404) if a key of
        ``keys`` is not a file of ``source``.

    .. versionadded:: 5.0.0
    """
    lock(record, bucket, update_record)
    try:
        files = source.current_files(keys)
    except KeyError as error:
        raise MissingFileError(error.args[0]) from error
    created = copying.copy_files(record.id if update_record else None, bucket, files)
    if update_record and created:
        touch(record)
    return created
