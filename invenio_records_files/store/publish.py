# SPDX-License-Identifier: MIT
"""Publishing and deleting files: the one step every write path takes.

A file is *published* when it becomes the head version of its key in a
record's bucket and is listed in the record's entries. Every path that does
so calls :func:`publish`: the Python API (``files[key] = stream``,
``update_all``, ``copy_from``), a REST upload, the completion of a multipart
upload, an import, and the removal of a version that makes an older one the
head again (a delete marker's, say). :func:`publish` applies, in this order:

1. the keys the caller says must be new are not files yet (``exclusive``);
2. the file limit (:func:`~invenio_records_files.store.limits.check_max_files`);
3. the bucket's quota;
4. the new head versions (a constant number of statements, see
   :mod:`~invenio_records_files.store.objects`);
5. the record's entries (one statement).

:func:`unpublish` is the one step that deletes a file (a delete marker) or
removes one of its versions.

Both run after the caller took the locks in the order of
:mod:`~invenio_records_files.store.locks`; neither commits.

.. versionadded:: 5.0.0
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from invenio_db import db
from invenio_files_rest.errors import FileSizeError
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from invenio_records_files.errors import KeyExistsError, MissingFileError
from invenio_records_files.store import entries, limits, objects
from invenio_records_files.store.storage import remove_unused_files


@dataclass(frozen=True)
class NewFile:
    """A file to publish under ``key``.

    Either bytes (``file``: a file instance, new or shared with another
    version) or ``version``: an existing version of ``key`` that becomes the
    head again.
    """

    key: str
    file: FileInstance | None = None
    version: ObjectVersion | None = None
    version_id: uuid.UUID | None = None
    mimetype: str | None = None
    tags: Sequence[tuple[str, str]] = ()
    data: Mapping | None = field(default=None)
    """Per-file metadata of the entry; given, it replaces a stale entry."""


def publish(
    bucket: Bucket,
    files: Sequence[NewFile],
    record_id: uuid.UUID | None = None,
    exclusive: bool = False,
) -> list[ObjectVersion]:
    """Make ``files`` the head versions of their keys, all or none.

    The caller holds the locks of the record and of ``bucket``. Checks come
    before any write: a refusal writes nothing.

    :param record_id: List the files in this record's entries (last, in
        this order; a key listed already keeps its place and metadata,
        unless its :attr:`NewFile.data` is given). ``None``: leave the
        entries be (``RECORDS_FILES_REST_UPDATE_RECORD = False``).
    :param exclusive: Refuse keys that are files of the bucket already
        (copies and imports never replace a file).
    :returns: The head versions, in order.
    :raises invenio_records_files.errors.KeyExistsError: (409) with
        ``exclusive``, if a key is a file already.
    :raises invenio_records_files.errors.TooManyFilesError: if new keys take
        the record past ``RECORDS_FILES_MAX_FILES``.
    :raises invenio_files_rest.errors.FileSizeError: if the bucket's quota
        would be exceeded.
    """
    keys = [new.key for new in files]
    if exclusive:
        taken = existing_keys(bucket, keys)
        for key in keys:
            if key in taken:
                raise KeyExistsError(key)
    limits.check_max_files(bucket, keys)
    quota = bucket.quota_size
    size = sum(new.file.size or 0 for new in files if new.file is not None)
    if quota is not None and bucket.size + size > quota:
        raise FileSizeError(description="Bucket quota exceeded.")
    created = objects.create_heads(
        bucket,
        [
            objects.Head(new.key, new.file, new.mimetype, new.version_id, new.tags)
            for new in files
            if new.version is None
        ],
    )
    made = iter(created)
    heads = []
    for new in files:
        if new.version is None:
            heads.append(next(made))
        else:
            new.version.is_head = True
            heads.append(new.version)
    if record_id is not None and files:
        replaced = [new.key for new in files if new.data is not None]
        if replaced:
            entries.remove(record_id, replaced)
        entries.add_many(record_id, ((new.key, new.data or {}) for new in files))
    return heads


@dataclass(frozen=True)
class Unpublished:
    """What :func:`unpublish` did."""

    obj: ObjectVersion
    """The deleted object version (or the removed version)."""
    changed: bool
    """The head version of the key changed."""
    listed: bool
    """The key is still a file of the record."""
    head: ObjectVersion | None = None
    """The version that became the head again, if any."""


def unpublish(
    bucket: Bucket,
    key: str,
    version_id: uuid.UUID | None = None,
    record_id: uuid.UUID | None = None,
) -> Unpublished:
    """Delete ``key`` (a delete marker), or remove one of its versions for good.

    Without ``version_id`` the file gets a delete marker (its history is
    kept). With one, that version is removed; if it was the head, the
    previous version becomes the head again and, if it has bytes, is
    published again (:func:`publish`: the file limit applies and the record
    lists it). The bytes of a removed version go once the transaction
    commits, unless another version still uses them. The caller holds the
    locks of the record and of ``bucket``.

    :param record_id: Keep this record's entries in step (``None``: leave
        them be).
    :raises invenio_records_files.errors.MissingFileError: if there is no
        such file or version.
    """
    obj = object_with_file(bucket, key, version_id)
    if obj is None:
        raise MissingFileError(key)
    if version_id is None:
        ObjectVersion.delete(bucket, key)
        if record_id is not None:
            entries.remove(record_id, [key])
        return Unpublished(obj, changed=True, listed=False)
    was_head, file_id = obj.is_head, obj.file_id
    obj.remove()
    head = None
    if was_head:
        head = ObjectVersion.get_versions(bucket, key, desc=True).first()
    remove_unused_files([file_id])
    if head is not None and head.file_id is not None:
        head.is_head = False  # publish() makes it the head, after its checks
        publish(bucket, [NewFile(key, version=head)], record_id)
        return Unpublished(obj, changed=True, listed=True, head=head)
    if head is not None:
        head.is_head = True  # a delete marker: the key is no file
    if was_head and record_id is not None:
        entries.remove(record_id, [key])
    return Unpublished(obj, changed=was_head, listed=False, head=head)


def object_with_file(bucket: Bucket, key: str, version_id=None) -> ObjectVersion | None:
    """Return the file ``key`` (or its version ``version_id``), file loaded.

    Without ``version_id``: the head version, if it is not a delete marker.
    One query.
    """
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
