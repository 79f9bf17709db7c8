# SPDX-License-Identifier: MIT
"""Bytes on storage, through Invenio-Files-REST's storage API only.

Bytes are written before any database row describes them (and without
using the database at all, so that a slow upload holds no connection); when
publishing them fails, they are removed again, so no orphan file is left
behind. Bytes of files that are deleted for good are removed once the
transaction that deleted them commits, never before.
"""

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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
from sqlalchemy import delete, select

from invenio_records_files import settings
from invenio_records_files.store.transactions import on_commit


@dataclass(frozen=True)
class Destination:
    """Where a bucket's new files go: its location and storage class."""

    location: str
    storage_class: str

    @classmethod
    def of(cls, bucket: Bucket) -> "Destination":
        """Return the destination of new files in ``bucket``."""
        return cls(bucket.location.uri, bucket.default_storage_class)

    def storage(self, fileinstance: FileInstance):
        """Return the storage of ``fileinstance`` at this destination."""
        return fileinstance.storage(
            default_location=self.location, default_storage_class=self.storage_class
        )


def write_file(
    destination: Destination, stream, size: int | None = None, size_limit=None
) -> FileInstance:
    """Write ``stream`` to a new file instance, without using the database.

    The file instance is not added to the session: the caller adds it when
    publishing. If writing fails, the partial bytes are removed. The stream
    is read ``RECORDS_FILES_UPLOAD_CHUNK_SIZE`` bytes at a time.

    :param size: Expected number of bytes, if known.
    :param size_limit: Limit (bytes or a Files-REST size limiter) enforced
        while writing.
    """
    fileinstance = FileInstance(id=uuid.uuid4(), writable=True, readable=False, size=0)
    try:
        fileinstance.set_contents(
            stream,
            size=size,
            size_limit=size_limit,
            chunk_size=settings.upload_chunk_size(),
            default_location=destination.location,
            default_storage_class=destination.storage_class,
        )
    except Exception:
        remove_quietly(destination.storage(fileinstance))
        raise
    return fileinstance


@contextmanager
def written_file(destination: Destination, stream, **kwargs) -> Iterator[FileInstance]:
    """Write ``stream`` (see :func:`write_file`) for the block to publish.

    If the block fails, the bytes are removed from storage.
    """
    fileinstance = write_file(destination, stream, **kwargs)
    try:
        yield fileinstance
    except BaseException:
        remove_quietly(fileinstance.storage())
        raise


def remove_quietly(storage) -> None:
    """Remove a file's bytes from storage; log failures, once, with the URI.

    Bytes that are already gone are not an error (logged at DEBUG level).
    """
    uri = getattr(storage, "fileurl", None) or storage
    try:
        storage.delete()
    except FileNotFoundError:
        current_app.logger.debug("%s was already removed from storage.", uri)
    except Exception:
        current_app.logger.exception("Could not remove %s from storage.", uri)


def remove_after_commit(storages: Iterable) -> None:
    """Remove these files' bytes once the current transaction commits.

    A rollback of the transaction, or of the savepoint the removal was
    scheduled in, cancels it; a rollback of another savepoint does not.
    """
    storages = list(storages)
    if storages:
        on_commit(db.session(), lambda: [remove_quietly(s) for s in storages])


def remove_unused_files(file_ids: Iterable) -> None:
    """Delete the file instances no object version or upload uses any more.

    Their rows are deleted now; their bytes once the transaction commits.
    """
    file_ids = {file_id for file_id in file_ids if file_id is not None}
    if not file_ids:
        return
    used = set(
        db.session.scalars(
            select(ObjectVersion.file_id).where(ObjectVersion.file_id.in_(file_ids))
        )
    ) | set(
        db.session.scalars(
            select(MultipartObject.file_id).where(MultipartObject.file_id.in_(file_ids))
        )
    )
    unused = file_ids - used
    if not unused:
        return
    storages = [
        fileinstance.storage()
        for fileinstance in db.session.scalars(
            select(FileInstance).where(FileInstance.id.in_(unused))
        )
        if fileinstance.uri
    ]
    db.session.execute(
        delete(FileInstance).where(FileInstance.id.in_(unused)),
        execution_options={"synchronize_session": False},
    )
    remove_after_commit(storages)


def remove_bucket(bucket: Bucket) -> None:
    """Remove ``bucket`` with everything in it, for good.

    Deletes the bucket's object versions and their tags, its multipart
    uploads and their parts, its tags and the bucket itself, and the file
    instances that nothing else uses (other buckets may share them, see
    ``copy_from()``). Their bytes are removed through the storage API once
    the transaction commits (and kept if it rolls back).

    .. versionadded:: 5.0.0
    """
    bucket_id = bucket.id
    with db.session.begin_nested():
        own = set(
            db.session.scalars(
                select(ObjectVersion.file_id).where(
                    ObjectVersion.bucket_id == bucket_id
                )
            )
        ) | set(
            db.session.scalars(
                select(MultipartObject.file_id).where(
                    MultipartObject.bucket_id == bucket_id
                )
            )
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
        remove_unused_files(own)
    db.session.expunge(bucket)
