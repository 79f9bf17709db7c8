# SPDX-License-Identifier: MIT
"""Queries on file entries: a record's ``_files``, one row per file.

A record's ``_files`` is built from two sources, read in one query: the
:class:`~invenio_records_files.models.FileEntry` rows (order and per-file
metadata) and the head object versions of the record's bucket (``key``,
``version_id``, ``file_id``, ``size``, ``checksum``). An entry whose file is
gone from the bucket is not listed. Every write here is one statement,
whatever the number of files; none commits.

.. versionadded:: 5.0.0
"""

from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Any
from uuid import UUID

from invenio_db import db
from invenio_files_rest.models import FileInstance, ObjectVersion
from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from invenio_records_files.store.models import FileEntry, RecordsBuckets

MANAGED_FIELDS = ("bucket", "checksum", "file_id", "key", "size", "version_id")
"""Fields of a ``_files`` entry that come from the bucket, never from users."""

_SCALARS = (str, int, float, bool, type(None))
_TABLE = FileEntry.__table__
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def custom(entry: Mapping) -> dict:
    """Return the fields of ``entry`` that are not managed by the bucket."""
    return {k: v for k, v in entry.items() if k not in MANAGED_FIELDS}


def copy_json(value: dict) -> dict:
    """Copy a JSON object (fast for the usual flat metadata)."""
    if all(isinstance(v, _SCALARS) for v in value.values()):
        return dict(value)
    return deepcopy(value)


def describe(obj: ObjectVersion) -> dict:
    """Return the managed fields of a ``_files`` entry for the object ``obj``."""
    file_ = obj.file
    return {
        "bucket": str(obj.bucket_id),
        "checksum": file_.checksum if file_ is not None else None,
        "file_id": str(obj.file_id),
        "key": obj.key,
        "size": file_.size if file_ is not None else None,
        "version_id": str(obj.version_id),
    }


def in_entry_order(query):
    """Order a query on entries by record, then the record's file order."""
    return query.order_by(
        FileEntry.record_id,
        FileEntry.position.is_(None),
        FileEntry.position,
        FileEntry.id,
    )


def load(record_id: UUID, bucket_id: UUID) -> list[dict]:
    """Return the ``_files`` of a record linked to the bucket ``bucket_id``."""
    return load_many({record_id: bucket_id}).get(record_id, [])


def load_many(buckets: Mapping[UUID, UUID]) -> dict[UUID, list[dict]]:
    """Return the ``_files`` of several records (one query).

    :param buckets: The bucket id of each record id.
    """
    if not buckets:
        return {}
    query = (
        select(
            FileEntry.record_id,
            FileEntry.key,
            FileEntry.data,
            ObjectVersion.bucket_id,
            ObjectVersion.version_id,
            ObjectVersion.file_id,
            FileInstance.checksum,
            FileInstance.size,
        )
        .select_from(FileEntry)
        .join(RecordsBuckets, RecordsBuckets.record_id == FileEntry.record_id)
        .join(
            ObjectVersion,
            and_(
                ObjectVersion.bucket_id == RecordsBuckets.bucket_id,
                ObjectVersion.key == FileEntry.key,
                ObjectVersion.is_head.is_(True),
                ObjectVersion.file_id.is_not(None),
            ),
        )
        .join(FileInstance, FileInstance.id == ObjectVersion.file_id)
        .where(
            FileEntry.record_id.in_(list(buckets)),
            RecordsBuckets.bucket_id.in_(set(buckets.values())),
        )
    )
    result: dict[UUID, list[dict]] = {}
    for row in db.session.execute(in_entry_order(query)):
        if buckets[row.record_id] != row.bucket_id:
            continue
        entry = copy_json(row.data or {})
        entry.update(
            bucket=str(row.bucket_id),
            checksum=row.checksum,
            file_id=str(row.file_id),
            key=row.key,
            size=row.size,
            version_id=str(row.version_id),
        )
        result.setdefault(row.record_id, []).append(entry)
    return result


def exist(record_id: UUID) -> bool:
    """Tell whether the record lists any file."""
    return (
        db.session.execute(
            select(FileEntry.id).where(FileEntry.record_id == record_id).limit(1)
        ).first()
        is not None
    )


def add(record_id: UUID, key: str, data: Mapping | None = None) -> None:
    """List the file ``key`` last in the record's order, unless it is listed."""
    add_many(record_id, [(key, data or {})])


def add_many(record_id: UUID, entries: Iterable[tuple[str, Mapping]]) -> None:
    """List files last, in this order, unless they are listed (one statement)."""
    rows = [
        {"record_id": record_id, "key": key, "data": dict(data)}
        for key, data in entries
    ]
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    upsert = _INSERTS.get(dialect)
    if upsert is not None:
        db.session.execute(upsert(FileEntry).on_conflict_do_nothing(), rows)
        return
    if dialect == "mysql":
        # MariaDB and MySQL have no ON CONFLICT: a listed row is "updated" to
        # itself (INSERT IGNORE would hide other errors too).
        statement = mysql.insert(FileEntry)
        db.session.execute(
            statement.on_duplicate_key_update(record_id=_TABLE.c.record_id), rows
        )
        return
    db.session.execute(insert(FileEntry), rows)


def set_data(record_id: UUID, data: Mapping[str, Mapping]) -> None:
    """Replace the metadata of the listed files ``{key: metadata}``."""
    if data:
        db.session.execute(
            update(_TABLE)
            .where(_TABLE.c.record_id == bindparam("r"), _TABLE.c.key == bindparam("k"))
            .values(data=bindparam("d")),
            [
                {"r": record_id, "k": key, "d": dict(value)}
                for key, value in data.items()
            ],
            execution_options={"synchronize_session": False},
        )


def set_order(record_id: UUID, keys: Iterable[str]) -> None:
    """Put the listed files in this order."""
    params = [{"r": record_id, "k": key, "p": index} for index, key in enumerate(keys)]
    if params:
        db.session.execute(
            update(_TABLE)
            .where(_TABLE.c.record_id == bindparam("r"), _TABLE.c.key == bindparam("k"))
            .values(position=bindparam("p")),
            params,
            execution_options={"synchronize_session": False},
        )


def rename(record_id: UUID, old_key: str, new_key: str) -> None:
    """Give the entry of ``old_key`` the key ``new_key`` (same place, metadata)."""
    remove(record_id, [new_key])
    db.session.execute(
        update(FileEntry)
        .where(FileEntry.record_id == record_id, FileEntry.key == old_key)
        .values(key=new_key),
        execution_options={"synchronize_session": False},
    )


def remove(record_id: UUID, keys: Iterable[str] | None = None) -> None:
    """Remove the entries of ``keys`` (all of the record's when ``None``)."""
    statement = delete(FileEntry).where(FileEntry.record_id == record_id)
    if keys is not None:
        statement = statement.where(FileEntry.key.in_(list(keys)))
    db.session.execute(statement, execution_options={"synchronize_session": False})


def heads(bucket_id: UUID, keys: Iterable[str] | None = None) -> dict[str, dict]:
    """Return the managed fields of the bucket's files, by key (one query)."""
    query = (
        select(
            ObjectVersion.key,
            ObjectVersion.version_id,
            ObjectVersion.file_id,
            FileInstance.checksum,
            FileInstance.size,
        )
        .join(FileInstance, FileInstance.id == ObjectVersion.file_id)
        .where(ObjectVersion.bucket_id == bucket_id, ObjectVersion.is_head.is_(True))
    )
    if keys is not None:
        query = query.where(ObjectVersion.key.in_(list(keys)))
    return {
        row.key: {
            "bucket": str(bucket_id),
            "checksum": row.checksum,
            "file_id": str(row.file_id),
            "key": row.key,
            "size": row.size,
            "version_id": str(row.version_id),
        }
        for row in db.session.execute(query.order_by(ObjectVersion.key))
    }


def fields(record_id: UUID) -> Any:
    """Return ``(key, position, data)`` of all the record's entries, in order."""
    return db.session.execute(
        in_entry_order(
            select(FileEntry.key, FileEntry.position, FileEntry.data).where(
                FileEntry.record_id == record_id
            )
        )
    ).all()
