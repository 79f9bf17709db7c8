# SPDX-License-Identifier: MIT
"""Find (and repair) records whose files disagree with their bucket.

A record's ``_files`` is built from its entry rows
(:class:`~invenio_records_files.models.FileEntry`) and its bucket's head
versions, so the fields the bucket provides cannot drift. What can:

* a file of the bucket without an entry (uploaded behind the record's
  back, e.g. through plain ``/files/<bucket>``): *missing in _files*;
* an entry whose file is gone from the bucket: *not in bucket*;
* ``_files`` still stored in the record's JSON by an older version (before
  5.0.0), with no rows yet: *_files in the record's JSON*; records are
  moved to rows on their next write, or by ``--fix``;
* the bucket id in the record (``_bucket``) and the linked bucket;
* a record linked to several buckets (reported, never fixed).

Records are read in batches (keyset pagination), three queries per batch:
the records with their linked bucket ids, the entries of the batch's
records, the head versions of the batch's buckets. Repairs run through the
record API, each in a savepoint: a record that cannot be repaired (fails its
schema, say) is reported and the others go on.

The database models are imported when a check runs, not when this module is
imported (the command is registered before Invenio-DB sets up versioning).

.. versionadded:: 5.0.0
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from invenio_db import db

KEYS_SHOWN = 10
"""Maximum number of file keys named per reason in a report line."""

LEGACY = "_files in the record's JSON (written by an older version)"


@dataclass
class Problem:
    """What is wrong with one record."""

    record_id: Any
    reasons: list[str]
    outcome: str = ""
    """``""`` (not fixed), ``"fixed"``, or ``"not fixed: <why>"``."""

    def __str__(self) -> str:
        """Report the problem on one line."""
        text = f"{self.record_id}: {'; '.join(self.reasons)}"
        return f"{text} ({self.outcome})" if self.outcome else text


@dataclass
class Batch:
    """A batch of records with what they list and what their buckets hold."""

    records: list[tuple[Any, dict, list]]
    """``(record id, JSON, linked bucket ids)``."""
    listed: dict[Any, list[str]] = field(default_factory=dict)
    """Keys of each record's entries, in order."""
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Keys of each bucket's current files (bucket id as a string)."""


def count_linked_records() -> int:
    """Count the records (not deleted) linked to a bucket."""
    from invenio_records.models import RecordMetadata
    from sqlalchemy import distinct, func, select

    query = select(func.count(distinct(RecordMetadata.id))).select_from(RecordMetadata)
    return db.session.execute(_linked(query)).scalar_one()


def batches(size: int) -> Iterator[Batch]:
    """Yield batches of ``size`` linked records, in id order (3 queries each)."""
    from invenio_records.models import RecordMetadata
    from sqlalchemy import select

    from invenio_records_files.store.models import RecordsBuckets

    after = None
    while True:
        ids = _linked(select(RecordMetadata.id))
        if after is not None:
            ids = ids.where(RecordMetadata.id > after)
        ids = ids.distinct().order_by(RecordMetadata.id).limit(size).subquery()
        query = _linked(
            select(RecordMetadata.id, RecordMetadata.json, RecordsBuckets.bucket_id)
            .select_from(ids)
            .join(RecordMetadata, RecordMetadata.id == ids.c.id)
        )
        rows = db.session.execute(
            query.order_by(RecordMetadata.id, RecordsBuckets.bucket_id)
        ).all()
        if not rows:
            return
        records = [
            (record_id, group[0].json, [row.bucket_id for row in group])
            for record_id, group in (
                (key, list(group)) for key, group in groupby(rows, lambda r: r.id)
            )
        ]
        batch = Batch(records)
        batch.listed = _listed([record[0] for record in records])
        batch.heads = _heads({b for record in records for b in record[2]})
        yield batch
        if len(records) < size:
            return
        after = records[-1][0]


def _linked(query):
    """Restrict ``query`` to records that are not deleted and have a bucket."""
    from invenio_records.models import RecordMetadata

    from invenio_records_files.store.models import RecordsBuckets

    return query.join(
        RecordsBuckets, RecordsBuckets.record_id == RecordMetadata.id
    ).where(RecordMetadata.json.is_not(None))


def _listed(record_ids: list) -> dict[Any, list[str]]:
    from sqlalchemy import select

    from invenio_records_files.store.entries import in_entry_order
    from invenio_records_files.store.models import FileEntry

    query = in_entry_order(
        select(FileEntry.record_id, FileEntry.key).where(
            FileEntry.record_id.in_(record_ids)
        )
    )
    listed: dict[Any, list[str]] = {}
    for row in db.session.execute(query):
        listed.setdefault(row.record_id, []).append(row.key)
    return listed


def _heads(bucket_ids: set) -> dict[str, dict[str, Any]]:
    from invenio_files_rest.models import ObjectVersion
    from sqlalchemy import select

    query = select(ObjectVersion.bucket_id, ObjectVersion.key).where(
        ObjectVersion.bucket_id.in_(bucket_ids),
        ObjectVersion.is_head.is_(True),
        ObjectVersion.file_id.is_not(None),
    )
    heads: dict[str, dict[str, Any]] = {str(b): {} for b in bucket_ids}
    for row in db.session.execute(query):
        heads[str(row.bucket_id)][row.key] = True
    return heads


def orphan_buckets(limit: int) -> tuple[int, list]:
    """Count the buckets (not deleted) no record links to; list ``limit`` ids."""
    from invenio_files_rest.models import Bucket
    from sqlalchemy import exists, func, select

    from invenio_records_files.store.models import RecordsBuckets

    query = (
        select(Bucket.id, func.count().over())
        .where(
            Bucket.deleted.is_(False),
            ~exists().where(RecordsBuckets.bucket_id == Bucket.id),
        )
        .order_by(Bucket.created, Bucket.id)
        .limit(limit)
    )
    rows = db.session.execute(query).all()
    return (rows[0][1] if rows else 0), [row[0] for row in rows]


def problem(record_class, batch: Batch, record: tuple) -> Problem | None:
    """Tell how one record of ``batch`` disagrees with its bucket."""
    record_id, json, bucket_ids = record
    if len(bucket_ids) > 1:
        return Problem(
            record_id, [f"linked to {len(bucket_ids)} buckets: {names(bucket_ids)}"]
        )
    (bucket_id,) = bucket_ids
    heads = batch.heads.get(str(bucket_id), {})
    listed = list(batch.listed.get(record_id, []))
    reasons = []
    legacy = (json or {}).get("_files")
    if legacy not in (None, []) and not batch.listed.get(record_id):
        reasons.append(LEGACY)
        from invenio_records_files.store.keys import listed_keys

        listed = listed_keys(legacy)
    for label, keys in (
        ("missing in _files", [key for key in heads if key not in set(listed)]),
        ("not in bucket", [key for key in listed if key not in heads]),
    ):
        if keys:
            reasons.append(f"{label}: {names(keys)}")
    stored = record_class.load_bucket(record_class(json))
    if str(stored or "") != str(bucket_id):
        reasons.append(
            f"bucket id in record is {stored or 'missing'}, "
            f"linked bucket is {bucket_id}"
        )
    return Problem(record_id, reasons) if reasons else None


def confirm(record_class, record: tuple) -> Problem | None:
    """Check one record of a batch again, under the writers' locks.

    A batch reads records, entries and heads in separate statements: a write
    that commits between them looks like drift. Here the record's row, then
    its buckets' rows are locked (the order of every writer,
    :mod:`~invenio_records_files.store.locks`), so no write is half seen; the
    locks go with the savepoint.

    :param record: ``(record id, JSON, linked bucket ids)`` of a batch.
    :returns: The problem if it is still there, else ``None``.
    """
    from invenio_files_rest.models import Bucket
    from invenio_records.models import RecordMetadata
    from sqlalchemy import select

    from invenio_records_files.store import locks

    record_id, _, bucket_ids = record
    savepoint = db.session.begin_nested()
    try:
        locks.lock_ids(RecordMetadata, [record_id])
        locks.lock_ids(Bucket, bucket_ids)
        json = db.session.execute(
            select(RecordMetadata.json).where(RecordMetadata.id == record_id)
        ).scalar_one_or_none()
        if json is None:
            return None  # deleted meanwhile
        fresh = Batch(
            [(record_id, json, bucket_ids)],
            listed=_listed([record_id]),
            heads=_heads(set(bucket_ids)),
        )
        return problem(record_class, fresh, fresh.records[0])
    finally:
        savepoint.rollback()


def fix(record_class, found: Problem) -> bool:
    """Repair the record of ``found`` in a savepoint; say how in ``outcome``.

    The entries of files gone from the bucket are removed, files of the
    bucket without an entry are listed last, an older version's ``_files``
    (its metadata and order) is moved to rows, and the bucket id is dumped
    again.

    :returns: Whether the record was repaired.
    """
    from invenio_records_files.records.state import state_of
    from invenio_records_files.store import entries

    if len(found.reasons) == 1 and found.reasons[0].startswith("linked to "):
        found.outcome = "not fixed: several buckets"
        return False
    try:
        with db.session.begin_nested():
            record = record_class.get_record(found.record_id)
            state = state_of(record)
            bucket = state.bucket(record)
            state.lock(record, bucket, check=False)
            heads = entries.heads(bucket.id)
            ghosts = [key for key, *_ in entries.fields(record.id) if key not in heads]
            entries.remove(record.id, ghosts)
            files = record.files
            files.flush()
            record.commit()
    except Exception as error:  # reported; the other records go on
        message = str(getattr(error, "message", None) or error).splitlines()
        found.outcome = (
            f"not fixed: {type(error).__name__}: {message[0] if message else ''}"
        )
        return False
    found.outcome = "fixed"
    return True


def names(values: Iterable) -> str:
    """Name ``values`` sorted, at most :data:`KEYS_SHOWN` of them."""
    shown = sorted(str(value) for value in values)
    text = ", ".join(shown[:KEYS_SHOWN])
    if len(shown) > KEYS_SHOWN:
        text += f" (and {len(shown) - KEYS_SHOWN} more)"
    return text
