# SPDX-License-Identifier: MIT
"""Atomic writes to a bucket through Invenio-Files-REST's storage API.

Each helper works in a savepoint and never commits; when a write fails after
its bytes reached storage, the bytes are removed again, so no orphan file is
left behind.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from invenio_db import db
from invenio_files_rest.models import (
    Bucket,
    BucketTag,
    FileInstance,
    MultipartObject,
    ObjectVersion,
    ObjectVersionTag,
    Part,
)
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session


def write_file(
    bucket: Bucket, stream, size: int | None = None, size_limit=None
) -> FileInstance:
    """Write ``stream`` to a new file instance in ``bucket``'s location.

    The file instance is added to the session; nothing links it to an object
    yet. If writing fails, the storage removes the partial bytes. The stream
    is read ``RECORDS_FILES_UPLOAD_CHUNK_SIZE`` bytes at a time.

    :param size: Expected number of bytes, if known.
    :param size_limit: Limit (bytes or a Files-REST size limiter) enforced
        while writing.
    """
    fileinstance = FileInstance.create()
    location = {
        "default_location": bucket.location.uri,
        "default_storage_class": bucket.default_storage_class,
    }
    chunk_size = current_app.config.get("RECORDS_FILES_UPLOAD_CHUNK_SIZE")
    try:
        fileinstance.set_contents(
            stream, size=size, size_limit=size_limit, chunk_size=chunk_size, **location
        )
    except Exception:
        # Storages remove partial bytes themselves; make sure of it.
        remove_quietly(fileinstance.storage(**location))
        raise
    return fileinstance


def store_stream(bucket: Bucket, key: str, stream, **kwargs) -> ObjectVersion:
    """Store ``stream`` as a new version of ``key`` in ``bucket``, atomically.

    Runs inside a savepoint; if anything fails after the bytes reached
    storage, they are removed again so no orphan file is left behind.

    :returns: The new head :class:`~invenio_files_rest.models.ObjectVersion`.
    """
    with written_file(bucket, stream, size_limit=bucket.size_limit, **kwargs) as file_:
        return ObjectVersion.create(bucket, key, _file_id=file_)


@contextmanager
def written_file(bucket: Bucket, stream, **kwargs) -> Iterator[FileInstance]:
    """Write ``stream`` (see :func:`write_file`) for the block to publish.

    The write and the block share one savepoint; if the block fails, the
    savepoint is rolled back and the bytes are removed from storage.
    """
    fileinstance = None
    try:
        with db.session.begin_nested():
            fileinstance = write_file(bucket, stream, **kwargs)
            yield fileinstance
    except Exception:
        if fileinstance is not None and fileinstance.uri:
            remove_quietly(fileinstance.storage())
        raise


def remove_quietly(storage) -> None:
    """Remove a file's bytes from storage, logging (not raising) failures."""
    try:
        storage.delete()
    except Exception:
        current_app.logger.exception("Could not remove %s from storage.", storage)


def remove_bucket(bucket: Bucket) -> None:
    """Remove ``bucket`` with everything in it, for good.

    Deletes the bucket's object versions and their tags, its multipart
    uploads and their parts, its tags and the bucket itself, and the file
    instances that no other bucket uses. Their bytes are removed through the
    storage API once the transaction commits (and kept if it rolls back).

    .. versionadded:: 2.0.0
    """
    bucket_id = bucket.id
    with db.session.begin_nested():
        own = set(
            db.session.scalars(
                select(ObjectVersion.file_id).where(
                    ObjectVersion.bucket_id == bucket_id,
                    ObjectVersion.file_id.isnot(None),
                )
            )
        ) | set(
            db.session.scalars(
                select(MultipartObject.file_id).where(
                    MultipartObject.bucket_id == bucket_id
                )
            )
        )
        shared = (
            set(
                db.session.scalars(
                    select(ObjectVersion.file_id).where(
                        ObjectVersion.bucket_id != bucket_id,
                        ObjectVersion.file_id.in_(own),
                    )
                )
            )
            | set(
                db.session.scalars(
                    select(MultipartObject.file_id).where(
                        MultipartObject.bucket_id != bucket_id,
                        MultipartObject.file_id.in_(own),
                    )
                )
            )
            if own
            else set()
        )
        versions = select(ObjectVersion.version_id).where(
            ObjectVersion.bucket_id == bucket_id
        )
        uploads = select(MultipartObject.upload_id).where(
            MultipartObject.bucket_id == bucket_id
        )
        for statement in (
            delete(ObjectVersionTag).where(ObjectVersionTag.version_id.in_(versions)),
            delete(ObjectVersion).where(ObjectVersion.bucket_id == bucket_id),
            delete(Part).where(Part.upload_id.in_(uploads)),
            delete(MultipartObject).where(MultipartObject.bucket_id == bucket_id),
            delete(BucketTag).where(BucketTag.bucket_id == bucket_id),
            delete(Bucket).where(Bucket.id == bucket_id),
        ):
            db.session.execute(
                statement, execution_options={"synchronize_session": False}
            )
        exclusive = own - shared
        storages = []
        if exclusive:
            for fileinstance in db.session.scalars(
                select(FileInstance).where(FileInstance.id.in_(exclusive))
            ):
                if fileinstance.uri:
                    storages.append(fileinstance.storage())
            db.session.execute(
                delete(FileInstance).where(FileInstance.id.in_(exclusive)),
                execution_options={"synchronize_session": False},
            )
    db.session.expunge(bucket)
    remove_after_commit(storages)


_PENDING = "invenio_records_files.remove_after_commit"


def remove_after_commit(storages) -> None:
    """Remove these files' bytes when the session's transaction commits.

    Any rollback in the meantime (even of a savepoint) cancels the removal:
    bytes may be left behind, but never removed while still referenced.
    """
    if storages:
        db.session().info.setdefault(_PENDING, []).extend(storages)


@event.listens_for(Session, "after_commit")
def _remove_pending(session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the transaction goes on
    for storage in session.info.pop(_PENDING, []):
        remove_quietly(storage)


@event.listens_for(Session, "after_soft_rollback")
def _cancel_pending(session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)
