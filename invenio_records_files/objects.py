# SPDX-License-Identifier: MIT
"""Object versions created in bulk: a constant number of statements.

Invenio-Files-REST's :meth:`ObjectVersion.create()
<invenio_files_rest.models.ObjectVersion.create>` runs a query and a
savepoint per object, and :meth:`ObjectVersion.copy()
<invenio_files_rest.models.ObjectVersion.copy>` a few more per tag. Adding
many files at once (the ``files`` setter, ``copy_from()``) creates them here
instead: one statement to retire the current head versions of the keys, one
batched insert of the new versions, one update of the bucket's size, and for
copies one query for the sources' tags and one batched insert of the copies'
(when there are tags).

.. versionadded:: 5.0.0
"""

import uuid
from collections.abc import Iterable, Sequence

from invenio_db import db
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    ObjectVersion,
    ObjectVersionTag,
)
from sqlalchemy import insert, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value


def create_heads(
    bucket: Bucket, files: Iterable[tuple[str, FileInstance]]
) -> list[ObjectVersion]:
    """Make each ``(key, file instance)`` the new head version of ``key``.

    The keys' previous head versions (delete markers, usually) stop being
    heads. The bucket's size grows by the files' sizes. The caller locks the
    bucket and checks the keys.
    """
    return _create(bucket, [(key, fileinstance, None) for key, fileinstance in files])


def copy_heads(bucket: Bucket, sources: Sequence[ObjectVersion]) -> list[ObjectVersion]:
    """Copy the object versions ``sources`` into ``bucket`` as new head versions.

    Like Invenio-Files-REST's ``ObjectVersion.copy()`` for many objects at
    once: each copy has the key, the file instance (the bytes are shared, not
    copied), the MIME type and the tags of its source. The sources are not
    delete markers and have distinct keys, and their file instances are
    loaded (for their sizes). The caller locks ``bucket`` and checks the keys
    (:func:`create_heads`).
    """
    tags = tags_of([obj.version_id for obj in sources]) if sources else {}
    created = _create(bucket, [(obj.key, obj.file, obj._mimetype) for obj in sources])
    rows = [
        {"version_id": new.version_id, "key": key, "value": value}
        for source, new in zip(sources, created, strict=True)
        for key, value in tags.get(source.version_id, ())
    ]
    if rows:
        db.session.execute(insert(ObjectVersionTag.__table__), rows)
    return created


def tags_of(version_ids: list) -> dict:
    """Return the tags ``[(key, value)]`` of each object version (one query)."""
    table = ObjectVersionTag.__table__
    tags: dict = {}
    for row in db.session.execute(
        select(table.c.version_id, table.c.key, table.c.value)
        .where(table.c.version_id.in_(version_ids))
        .order_by(table.c.version_id, table.c.key)
    ):
        tags.setdefault(row.version_id, []).append((row.key, row.value))
    return tags


def _create(
    bucket: Bucket, files: list[tuple[str, FileInstance, str | None]]
) -> list[ObjectVersion]:
    if not files:
        return []
    db.session.execute(
        update(ObjectVersion)
        .where(
            ObjectVersion.bucket_id == bucket.id,
            ObjectVersion.key.in_([key for key, _, _ in files]),
            ObjectVersion.is_head.is_(True),
        )
        .values(is_head=False),
        execution_options={"synchronize_session": False},
    )
    created = []
    for key, fileinstance, mimetype in files:
        obj = ObjectVersion(
            bucket=bucket, key=key, version_id=uuid.uuid4(), is_head=True
        )
        obj._mimetype = mimetype
        if inspect(fileinstance).persistent:
            # A stored file instance is pointed at by id: going through the
            # relationship would mark it changed (an UPDATE of its row and
            # its "updated" time for each file).
            obj.file_id = fileinstance.id
            set_committed_value(obj, "file", fileinstance)
        else:
            obj.file = fileinstance
        created.append(obj)
    db.session.add_all(created)
    bucket.size += sum(fileinstance.size or 0 for _, fileinstance, _ in files)
    db.session.flush()
    return created
