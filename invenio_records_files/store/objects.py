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
from collections.abc import Sequence
from typing import NamedTuple

from invenio_db import db
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    ObjectVersion,
    ObjectVersionTag,
)
from sqlalchemy import insert, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value


class Head(NamedTuple):
    """A new head version: its key, file instance, MIME type, id and tags."""

    key: str
    file: FileInstance
    mimetype: str | None = None
    version_id: uuid.UUID | None = None
    tags: Sequence[tuple[str, str]] = ()


def create_heads(bucket: Bucket, heads: Sequence[Head]) -> list[ObjectVersion]:
    """Make each :class:`Head` the new head version of its key.

    The keys' previous head versions (delete markers, usually) stop being
    heads. The bucket's size grows by the files' sizes. A stored file
    instance is shared (its bytes are not copied). The caller locks the
    bucket and checks the keys (:func:`invenio_records_files.store.publish.publish`).
    """
    if not heads:
        return []
    db.session.execute(
        update(ObjectVersion)
        .where(
            ObjectVersion.bucket_id == bucket.id,
            ObjectVersion.key.in_([head.key for head in heads]),
            ObjectVersion.is_head.is_(True),
        )
        .values(is_head=False),
        # Loaded versions of these keys learn that they are heads no more.
        execution_options={"synchronize_session": "evaluate"},
    )
    created = []
    for head in heads:
        obj = ObjectVersion(
            bucket=bucket,
            key=head.key,
            version_id=head.version_id or uuid.uuid4(),
            is_head=True,
        )
        obj._mimetype = head.mimetype
        if inspect(head.file).persistent:
            # A stored file instance is pointed at by id: going through the
            # relationship would mark it changed (an UPDATE of its row and
            # its "updated" time for each file).
            obj.file_id = head.file.id
            set_committed_value(obj, "file", head.file)
        else:
            obj.file = head.file
        created.append(obj)
    db.session.add_all(created)
    bucket.size += sum(head.file.size or 0 for head in heads)
    db.session.flush()
    rows = [
        {"version_id": obj.version_id, "key": key, "value": value}
        for head, obj in zip(heads, created, strict=True)
        for key, value in head.tags
    ]
    if rows:
        db.session.execute(insert(ObjectVersionTag.__table__), rows)
    return created


def tags_of(version_ids: list) -> dict:
    """Return the tags ``[(key, value)]`` of each object version (one query)."""
    if not version_ids:
        return {}
    table = ObjectVersionTag.__table__
    tags: dict = {}
    for row in db.session.execute(
        select(table.c.version_id, table.c.key, table.c.value)
        .where(table.c.version_id.in_(version_ids))
        .order_by(table.c.version_id, table.c.key)
    ):
        tags.setdefault(row.version_id, []).append((row.key, row.value))
    return tags
