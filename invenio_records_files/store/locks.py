# SPDX-License-Identifier: MIT
"""Row locks: the one lock order of every writer.

Every writer (the Python API, the REST endpoints, ``records-files check
--fix``, ``copy_from`` and import) takes its locks in this order, and in no
other:

1. the record's row (:meth:`FilesState.lock
   <invenio_records_files.records.state.FilesState.lock>`, which calls
   :func:`lock_row` on the record's model);
2. the record's bucket's row (:func:`lock_row`, or :func:`lock_bucket` for a
   write that leaves the record be);
3. a multipart upload (:func:`lock_upload`), when one is involved.

Each lock is ``SELECT ... FOR UPDATE OF <table>`` with a reload of the row;
on SQLite, which locks the whole database for writes, the same queries run
without ``FOR UPDATE``. Every ``FOR UPDATE`` of the package is in this
module.

.. versionadded:: 5.0.0
"""

from invenio_db import db
from invenio_files_rest.models import Bucket
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError

from invenio_records_files.errors import (
    DeletedBucketError,
    LockedBucketError,
    UploadCompletedError,
    UploadGoneError,
)


def lock_row(instance) -> None:
    """Reload ``instance`` and lock its row (``SELECT ... FOR UPDATE OF``)."""
    with db.session.no_autoflush:
        db.session.refresh(instance, with_for_update={"of": type(instance)})


def lock_ids(model: type, ids: list) -> None:
    """Lock the rows of ``model`` with these ids, in id order, without loading them.

    For readers that must not see a write half done (``records-files
    check``): they take the writers' locks in the writers' order.
    """
    if ids:
        db.session.execute(
            select(model.id)
            .where(model.id.in_(sorted(ids)))
            .order_by(model.id)
            .with_for_update()
        ).all()


def lock_bucket(bucket: Bucket) -> None:
    """Lock and reload ``bucket`` alone (for writes that leave the record be).

    :raises invenio_records_files.errors.LockedBucketError: if it is locked.
    :raises invenio_records_files.errors.DeletedBucketError: if it is
        deleted.
    """
    lock_row(bucket)
    check_writable(bucket)


def lock_upload(multipart) -> None:
    """Lock and reload a multipart upload, after its record and bucket.

    :raises invenio_records_files.errors.UploadGoneError: if it was completed
        or aborted meanwhile.
    :raises invenio_records_files.errors.UploadCompletedError: if it is
        completed already.
    """
    upload_id = multipart.upload_id
    try:
        lock_row(multipart)
    except InvalidRequestError as error:  # the row is gone
        raise UploadGoneError(upload_id) from error
    if multipart.completed:
        raise UploadCompletedError(upload_id)


def check_writable(bucket: Bucket) -> None:
    """Refuse writes to a locked or deleted bucket.

    :raises invenio_records_files.errors.LockedBucketError: if it is locked.
    :raises invenio_records_files.errors.DeletedBucketError: if it is
        deleted.
    """
    if bucket.locked:
        raise LockedBucketError(bucket.id)
    if bucket.deleted:
        raise DeletedBucketError(bucket.id)
