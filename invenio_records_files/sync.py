# SPDX-License-Identifier: MIT
"""The writes of the REST endpoints: change the bucket, keep the record in step.

Each write locks the record's row, then the bucket's
(:meth:`FilesState.lock <invenio_records_files.state.FilesState.lock>`, the
same order as every other writer), reloads the record's metadata, changes
the bucket, updates the file's entry in ``_files`` (one row) and commits
the record: a new revision (small: the record's JSON does not repeat
``_files``) with Invenio-Records' signals, in the same transaction. With
``RECORDS_FILES_REST_UPDATE_RECORD = False`` only the bucket is locked and
changed.

Uploads store their bytes before any of this (:mod:`~invenio_records_files.storage`),
so that the locks are held for a few statements, never during a transfer.
Imports (:func:`import_files`) copy another record's files the same way,
sharing their bytes (:mod:`~invenio_records_files.copying`). Nothing here
commits the session.
"""

import base64
import binascii
from collections.abc import Iterable
from contextlib import suppress

from blinker import Signal
from invenio_db import db
from invenio_files_rest.errors import FileSizeError, MultipartMissingParts
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    MultipartObject,
    ObjectVersion,
    ObjectVersionTag,
    Part,
)
from invenio_records.signals import after_record_update, before_record_update
from jsonschema.exceptions import ValidationError
from sqlalchemy.orm import joinedload

from . import copying, entries, limits, state
from .errors import ChecksumMismatchError, MissingFileError, RecordValidationError
from .state import lock_bucket, state_of
from .storage import remove_unused_files


def lock(record, bucket: Bucket, update_record: bool = True) -> None:
    """Lock the record (when it is updated), then the bucket; reload both."""
    if update_record:
        state_of(record).lock(record, bucket, reload=True)
    else:
        lock_bucket(bucket)


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


def check_md5(fileinstance: FileInstance, content_md5: str | None) -> None:
    """Compare the stored bytes' MD5 with a ``Content-MD5`` header value.

    Accepts the base64 form of RFC 1864 and the hexadecimal form.

    :raises invenio_records_files.errors.ChecksumMismatchError: if they differ.
    """
    if not content_md5:
        return
    algorithm, _, actual = (fileinstance.checksum or "").partition(":")
    if algorithm != "md5":
        return
    expected = content_md5.strip()
    try:
        expected_hex = base64.b64decode(expected, validate=True).hex()
    except (binascii.Error, ValueError):
        expected_hex = expected.lower()
    if len(expected_hex) != 32:
        expected_hex = expected.lower()
    if expected_hex != actual:
        raise ChecksumMismatchError(expected=content_md5, actual=f"md5:{actual}")


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
    :func:`~invenio_records_files.storage.write_file`), not yet in the
    session. The quota is checked against the bucket's size under the lock.

    :raises invenio_records_files.errors.ChecksumMismatchError: when the
        bytes do not match ``content_md5``.
    :raises invenio_files_rest.errors.FileSizeError: when the bucket's quota
        is exceeded.
    :raises invenio_records_files.errors.TooManyFilesError: when ``key`` is
        new and the record holds ``RECORDS_FILES_MAX_FILES`` files.
    """
    check_md5(fileinstance, content_md5)
    lock(record, bucket, update_record)
    limits.check_max_files(bucket, [key])
    quota = bucket.quota_size
    if quota is not None and bucket.size + fileinstance.size > quota:
        raise FileSizeError(description="Bucket quota exceeded.")
    # The object version brings the file instance into the session: both are
    # inserted by one flush.
    obj = ObjectVersion.create(bucket, key, _file_id=fileinstance)
    for tag, value in (tags or {}).items():
        ObjectVersionTag.create(obj, tag, value)
    if update_record:
        entries.add(record.id, key)
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

    Without ``version_id`` the object gets a delete marker (its history is
    kept); with one, that version is removed for good and, if it was the
    head, the previous version becomes the head again. The bytes of a
    removed version go once the transaction commits, unless another object
    version still uses them.

    :returns: The deleted object version.
    :raises invenio_records_files.errors.MissingFileError: if there is no
        such object (any more).
    """
    lock(record, bucket, update_record)
    obj = _object_with_file(bucket, key, version_id)
    if obj is None:
        raise MissingFileError(key)
    changed = listed = obj.is_head
    if version_id is None:
        ObjectVersion.delete(bucket, key)
        listed = False
    else:
        file_id = obj.file_id
        obj.remove()
        if changed:
            latest = ObjectVersion.get_versions(bucket, key, desc=True).first()
            if latest is not None:
                latest.is_head = True
            listed = latest is not None and latest.file_id is not None
        remove_unused_files([file_id])
    if update_record and changed:
        if not listed:
            entries.remove(record.id, [key])
        touch(record, emptied=not listed and not entries.exist(record.id))
    return obj


def _object_with_file(bucket: Bucket, key: str, version_id) -> ObjectVersion | None:
    """``ObjectVersion.get()``, with the file in the same query."""
    query = ObjectVersion.query.options(joinedload(ObjectVersion.file)).filter_by(
        bucket_id=bucket.id, key=key
    )
    if version_id is not None:
        return query.filter_by(version_id=version_id).one_or_none()
    return (
        query.filter_by(is_head=True)
        .filter(ObjectVersion.file_id.isnot(None))
        .one_or_none()
    )


def lock_upload(record, multipart: MultipartObject, update_record: bool = True):
    """Lock the record, the bucket, then the multipart upload; re-read it.

    Every multipart operation takes the locks in this order, the order of
    every other writer.

    :returns: The upload, reloaded.
    :raises invenio_records_files.errors.UploadGoneError: if it was completed
        or aborted meanwhile.
    :raises invenio_records_files.errors.UploadCompletedError: if it is
        completed already.
    """
    lock(record, multipart.bucket, update_record)
    state.lock_upload(multipart)
    return multipart


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
    multipart.file.checksum = checksum
    multipart.file.readable = True
    multipart.file.writable = False
    limits.check_max_files(multipart.bucket, [multipart.key])
    # Passing the file instance (not its id) avoids a query that would
    # autoflush the half-built object version.
    obj = ObjectVersion.create(
        multipart.bucket, multipart.key, _file_id=multipart.file, version_id=version_id
    )
    multipart.delete()
    if update_record:
        entries.add(record.id, multipart.key)
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
    <invenio_records_files.files.FilesIterator.copy_from>`: the bytes are
    shared, the files keep their metadata and order and follow the record's
    own files, and a key the record already has is refused before anything
    is written. The record is locked, then the bucket; the record gets the
    files in ``_files`` and is committed (one revision), unless
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
        files = copying.source_files(source, keys)
    except KeyError as error:
        raise MissingFileError(error.args[0]) from error
    created = copying.copy_files(record.id if update_record else None, bucket, files)
    if update_record and created:
        touch(record)
    return created
