# SPDX-License-Identifier: MIT
"""Keep a record's ``_files`` in step with its bucket, under concurrency.

The bucket is the source of truth; ``_files`` is an ordered view of it with
per-file metadata, and ``_bucket`` names the bucket. Both are managed by the
server:

* :func:`keep_managed_fields` runs in :meth:`Record.commit()
  <invenio_records_files.api.Record.commit>`: whatever a caller did to the
  record's dictionary (``clear()``, ``update()``, a JSON patch), ``_bucket``
  and ``_files`` are taken from the stored record, unless ``_files`` was
  changed through the files API of this very record object.
* The write operations below, used by the REST endpoints, lock the record
  row and then the bucket row (``SELECT ... FOR UPDATE``, always in this
  order), reload both, change the bucket, update ``_files`` and commit the
  record: concurrent writers to one record queue up instead of losing each
  other's changes. Uploads write their bytes before taking the locks, so the
  locks are held for a few statements, not for the transfer.

Nothing here commits the session.
"""

import base64
import binascii
from copy import deepcopy

from invenio_db import db
from invenio_files_rest.errors import (
    BucketLockedError,
    FileSizeError,
    InvalidOperationError,
)
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    MultipartObject,
    ObjectVersion,
    ObjectVersionTag,
)
from invenio_records.errors import MissingModelError
from sqlalchemy.orm.exc import StaleDataError

from .errors import ChecksumMismatchError
from .storage import written_file

MANAGED_FIELDS = ("_bucket", "_files")


def _metadata(json: dict | None) -> dict:
    """Return the record's JSON without the fields managed by the server."""
    return {k: v for k, v in (json or {}).items() if k not in MANAGED_FIELDS}


def keep_managed_fields(record) -> None:
    """Restore ``_bucket`` and ``_files`` before ``record`` is committed.

    Locks the record row and reloads it. ``_files`` comes from the stored
    record, unless it was changed through the files API of this record object
    (then the in-memory list is kept); ``_bucket`` is dumped again from the
    linked bucket (or restored from the stored record).

    A commit that follows another transaction's change of the record only
    goes through when that change touched nothing but ``_files`` and this
    record did not change its files: then both changes are kept.

    :raises sqlalchemy.orm.exc.StaleDataError: on a conflicting concurrent
        change (as Invenio-Records raises for any concurrent change).
    """
    model = record.model
    loaded_json, loaded_version = model.json, model.version_id
    if record.__dict__.get("_locked_in") is not db.session().get_transaction():
        with db.session.no_autoflush:
            db.session.refresh(model, with_for_update=True)
    stored = model.json or {}
    changed_here = record.__dict__.get("_files_changed", False)
    if model.version_id != loaded_version:
        concurrent_files = (loaded_json or {}).get("_files") != stored.get("_files")
        if _metadata(loaded_json) != _metadata(stored) or (
            changed_here and concurrent_files
        ):
            raise StaleDataError(
                f"Record {record.id} was changed by another transaction."
            )
    if not changed_here:
        _restore(record, stored, "_files")
    bucket = record._linked_bucket()
    if bucket is not None:
        record.dump_bucket(record, bucket)
    else:
        _restore(record, stored, "_bucket")


def _restore(record, stored: dict, field: str) -> None:
    if field in stored:
        record[field] = deepcopy(stored[field])
    else:
        record.pop(field, None)


def lock(record, bucket: Bucket | None = None) -> None:
    """Lock and reload the record row, then the bucket row.

    The record's dictionary is reloaded from the database, so that files
    changes made after the lock start from the latest ``_files``.

    :param record: The record (``None`` to lock only the bucket).
    :raises invenio_records.errors.MissingModelError: if the record was
        deleted in the meantime.
    :raises invenio_files_rest.errors.BucketLockedError: if the bucket was
        locked in the meantime.
    """
    with db.session.no_autoflush:
        if record is not None:
            db.session.refresh(record.model, with_for_update=True)
            if record.model.is_deleted:
                raise MissingModelError()
            dict.clear(record)
            dict.update(record, record.model.data)
            record.__dict__.pop("_files_changed", None)
            # Row locks last until the end of the transaction: no need to
            # lock (and reload) again when the record is committed in it.
            record.__dict__["_locked_in"] = db.session().get_transaction()
        if bucket is not None:
            db.session.refresh(bucket, with_for_update=True)
    if bucket is not None:
        if bucket.locked:
            raise BucketLockedError()
        if bucket.deleted:
            raise InvalidOperationError(description="Bucket is deleted.")


def _publish(record, key: str, update_record: bool) -> None:
    """Update the record's entry for ``key``; commit the record if it changed."""
    if not update_record:
        return
    had_files = "_files" in record
    files = record.files
    before = dict(files.filesmap.get(key) or {})
    files.sync(key)
    if not had_files or files.filesmap.get(key, {}) != before:
        record.commit()


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
    stream,
    size: int | None = None,
    size_limit=None,
    content_md5: str | None = None,
    tags: dict | None = None,
    update_record: bool = True,
) -> ObjectVersion:
    """Store ``stream`` as the new version of ``key`` and publish it.

    The bytes go to storage first, without locks; then the record and the
    bucket are locked, the quota checked against the bucket's current size,
    the object version created and the record's ``_files`` updated and
    committed (when ``update_record``). On any failure the bytes are removed
    and nothing is left in the session.

    :raises invenio_records_files.errors.ChecksumMismatchError: when the
        bytes do not match ``content_md5``.
    :raises invenio_files_rest.errors.FileSizeError: when the file exceeds
        ``size_limit`` or the bucket's quota.
    """
    with written_file(bucket, stream, size=size, size_limit=size_limit) as file_:
        check_md5(file_, content_md5)
        lock(record if update_record else None, bucket)
        quota = bucket.quota_size
        if quota is not None and bucket.size + file_.size > quota:
            raise FileSizeError(description="Bucket quota exceeded.")
        obj = ObjectVersion.create(bucket, key, _file_id=file_)
        for tag, value in (tags or {}).items():
            ObjectVersionTag.create(obj, tag, value)
        _publish(record, key, update_record)
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
    head, the previous version becomes the head again.

    :returns: The deleted object version (or the delete marker's object).
    :raises KeyError: if there is no such object (any more).
    """
    with db.session.begin_nested():
        lock(record if update_record else None, bucket)
        obj = ObjectVersion.get(bucket, key, version_id=version_id)
        if obj is None:
            raise KeyError(key)
        if version_id is None:
            ObjectVersion.delete(bucket, key)
        else:
            obj.remove()
            if obj.is_head:
                latest = ObjectVersion.get_versions(bucket, key, desc=True).first()
                if latest is not None:
                    latest.is_head = True
        _publish(record, key, update_record)
    return obj


def complete_multipart(
    record,
    multipart: MultipartObject,
    version_id=None,
    update_record: bool = True,
) -> ObjectVersion:
    """Turn a completed multipart upload into the new version of its object.

    The checksum is computed before the locks are taken.

    :returns: The new head :class:`~invenio_files_rest.models.ObjectVersion`.
    """
    multipart.file.update_checksum()
    bucket = multipart.bucket
    with db.session.begin_nested():
        lock(record if update_record else None, bucket)
        # Passing the file instance (not its id) avoids a query that would
        # autoflush the half-built object version.
        obj = ObjectVersion.create(
            bucket, multipart.key, _file_id=multipart.file, version_id=version_id
        )
        multipart.delete()
        _publish(record, multipart.key, update_record)
    return obj
