# SPDX-License-Identifier: MIT
"""Copy a record's files into another record: the bytes are shared.

A new version of a published record starts with the files of the old one.
Copying them makes, in the new record's bucket, new object versions that
point at the same file instances: no byte is copied and no
:class:`~invenio_files_rest.models.FileInstance` row is made. The file
entries (per-file metadata, order) are copied too, after the new record's
own files. Used by :meth:`FilesIterator.copy_from()
<invenio_records_files.files.FilesIterator.copy_from>` and, over REST, by
:func:`invenio_records_files.sync.import_files`.

Everything is checked before anything is written: the keys asked for exist
in the source, none exists in the target, the target's quota. The writes are
a constant number of statements whatever the number of files (see
:mod:`~invenio_records_files.objects` and
:mod:`~invenio_records_files.entries`). The source is only read: it is not
locked, and a locked (published) source is the usual case.

Shared bytes are removed only when no object version uses them any more
(:func:`~invenio_records_files.storage.remove_unused_files`): removing either
record, or a version of one of its files, leaves the other's files readable.

.. versionadded:: 5.0.0
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from invenio_db import db
from invenio_files_rest.errors import FileSizeError
from invenio_files_rest.models import Bucket, ObjectVersion
from sqlalchemy import select

from . import entries, limits, objects
from .errors import KeyExistsError

if TYPE_CHECKING:
    from .files import FilesIterator


def source_files(
    source: "FilesIterator", keys: Iterable[str] | None = None
) -> list[tuple[ObjectVersion, dict]]:
    """Return the current files of ``source`` with their metadata, in its order.

    One query (the source's head versions with their file instances); the
    order and the per-file metadata come from the source record's
    ``_files``.

    :param keys: Copy only these files (still in the source's order).
    :raises KeyError: if a key of ``keys`` is not a current file of the
        source (the Python API's error for a missing file).
    """
    current = source._objects()
    if keys is not None:
        by_key = {obj.key: obj for obj in current}
        wanted = dict.fromkeys(keys)
        for key in wanted:
            if key not in by_key:
                raise KeyError(key)
        current = [obj for obj in current if obj.key in wanted]
    return [(obj, entries.custom(source.filesmap.get(obj.key, {}))) for obj in current]


def existing_keys(bucket: Bucket, keys: list[str]) -> set[str]:
    """Return which of ``keys`` are current files of ``bucket`` (one query)."""
    if not keys:
        return set()
    return set(
        db.session.scalars(
            select(ObjectVersion.key).where(
                ObjectVersion.bucket_id == bucket.id,
                ObjectVersion.key.in_(keys),
                ObjectVersion.is_head.is_(True),
                ObjectVersion.file_id.is_not(None),
            )
        )
    )


def copy_files(
    record_id: UUID | None,
    bucket: Bucket,
    files: list[tuple[ObjectVersion, dict]],
) -> list[ObjectVersion]:
    """Add ``files`` (from :func:`source_files`) to ``bucket``, all or none.

    Each file gets a new head version in ``bucket`` that points at the
    source's file instance, with its MIME type and tags. With a
    ``record_id``, the record lists the files last, in this order, with
    their metadata (an entry left over for a key the bucket no longer has is
    replaced). The caller holds the lock of the record and of ``bucket``;
    nothing commits.

    :returns: The new object versions, in order.
    :raises invenio_records_files.errors.KeyExistsError: (409) if a key is
        already a file of ``bucket``; nothing is written.
    :raises invenio_files_rest.errors.FileSizeError: if the bucket's quota
        would be exceeded; nothing is written.
    :raises invenio_records_files.errors.TooManyFilesError: if the files
        would take the record past ``RECORDS_FILES_MAX_FILES``.
    """
    keys = [obj.key for obj, _ in files]
    taken = existing_keys(bucket, keys)
    for key in keys:
        if key in taken:
            raise KeyExistsError(key)
    limits.check_max_files(bucket, keys)
    quota = bucket.quota_size
    size = sum(obj.file.size or 0 for obj, _ in files)
    if quota is not None and bucket.size + size > quota:
        raise FileSizeError(description="Bucket quota exceeded.")
    if not files:
        return []
    with db.session.begin_nested():
        created = objects.copy_heads(bucket, [obj for obj, _ in files])
        if record_id is not None:
            entries.remove(record_id, keys)
            entries.add_many(record_id, ((obj.key, data) for obj, data in files))
    return created
