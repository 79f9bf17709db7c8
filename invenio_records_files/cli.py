# SPDX-License-Identifier: MIT
"""Command line interface: ``flask records-files check [--fix]`` and ``verify``.

The check compares every record linked to a bucket with that bucket, in
batches of records: one query loads a batch of records with their linked
bucket ids, one query loads the head versions of all the batch's buckets
(with their file instances), and the comparison happens in Python. One more
query counts and lists the buckets no record links to. The report goes to
standard output, the progress bar to standard error.

The database models are imported when the command runs, not when this module
is imported: the extension registers the command in ``init_app``, possibly
before Invenio-DB has set up record versioning.

.. versionadded:: 2.0.0
"""

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import click
from flask.cli import with_appcontext
from invenio_db import db
from werkzeug.utils import ImportStringError, import_string

BATCH_SIZE = 500
"""Default number of records checked per batch."""

ORPHANS_SHOWN = 100
"""Maximum number of orphan bucket ids listed (all are counted)."""

KEYS_SHOWN = 10
"""Maximum number of file keys named per reason in a report line."""

_ID_FIELDS = ("bucket", "file_id", "version_id")
_VALUE_FIELDS = ("checksum", "size")

Heads = dict[str, dict[str, dict[str, Any]]]
"""Head file versions by bucket id, then by key."""


@click.group("records-files")
def records_files() -> None:
    """Maintain the files of records."""


def _load_record_class(ctx: click.Context, param: click.Parameter, value: str) -> type:
    try:
        cls = import_string(value)
    except ImportStringError as error:
        raise click.BadParameter(f"cannot import {value!r}.") from error
    if not callable(getattr(cls, "load_bucket", None)):
        raise click.BadParameter(f"{value!r} has no load_bucket().")
    return cls


@records_files.command("check")
@click.option("--fix", is_flag=True, help="Rewrite _files from the bucket.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=BATCH_SIZE,
    show_default=True,
    help="Records checked per batch (and committed per batch with --fix).",
)
@click.option(
    "--record-class",
    default="invenio_records_files.api:Record",
    show_default=True,
    callback=_load_record_class,
    help="Record class (import string) that loads and fixes the records.",
)
@with_appcontext
def check(fix: bool, batch_size: int, record_class) -> None:
    """Report records whose _files disagree with their bucket, and orphan buckets.

    Exits with status 1 when problems remain (after fixing, with ``--fix``).
    Orphan buckets are reported, never deleted.
    """
    checked = disagreeing = fixed = 0
    with click.progressbar(
        length=_count_linked_records(),
        label="Checking records",
        file=sys.stderr,
    ) as bar:
        for batch, heads in _batches(batch_size):
            for record_id, json, bucket_ids in batch:
                reasons = _disagreements(record_class, json, bucket_ids, heads)
                if not reasons:
                    continue
                disagreeing += 1
                outcome = ""
                if fix:
                    failure = _fix(record_class, record_id, bucket_ids, heads)
                    fixed += failure is None
                    outcome = f" (not fixed: {failure})" if failure else " (fixed)"
                click.echo(f"{record_id}: {'; '.join(reasons)}{outcome}")
            if fix:
                db.session.commit()
            checked += len(batch)
            bar.update(len(batch))
    orphans, orphan_ids = _orphan_buckets(ORPHANS_SHOWN)
    for bucket_id in orphan_ids:
        click.echo(f"orphan bucket: {bucket_id}")
    if orphans > len(orphan_ids):
        more = _plural(orphans - len(orphan_ids), "more orphan bucket")
        click.echo(f"... and {more}")
    click.echo(_summary(checked, disagreeing, fixed if fix else None, orphans))
    if disagreeing - fixed + orphans:
        click.get_current_context().exit(1)


def _summary(checked: int, disagreeing: int, fixed: int | None, orphans: int) -> str:
    text = f"Checked {_plural(checked, 'record')}: "
    if not disagreeing and not orphans:
        return text + "no problems found."
    text += f"problems in {_plural(disagreeing, 'record')}"
    if fixed is not None:
        text += f" ({fixed} fixed)"
    return text + f", {_plural(orphans, 'orphan bucket')}."


def _plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


@records_files.command("verify")
@click.option(
    "--all", "all_files", is_flag=True, help="Verify every file, however recent."
)
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Verify files never checked or last checked more than DAYS days ago "
    "(the default: 30, or every file of the records given with --pid).",
)
@click.option(
    "--pid-type",
    "pid_types",
    multiple=True,
    metavar="TYPE",
    help="PID type of the record given by the --pid at the same position "
    "(one --pid-type applies to every --pid).",
)
@click.option(
    "--pid",
    "pid_values",
    multiple=True,
    metavar="VALUE",
    help="Verify only the files of this record (repeatable).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=100,  # fixity.BATCH_SIZE (not imported here: it loads the models)
    show_default=True,
    help="Files verified (and their results committed) per batch.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Verify at most this many files, the least recently checked first.",
)
@with_appcontext
def verify(
    all_files: bool,
    older_than: float | None,
    pid_types: tuple[str, ...],
    pid_values: tuple[str, ...],
    batch_size: int,
    limit: int | None,
) -> None:
    """Verify the stored bytes of records' files against their checksums.

    Reads each file through the storage API, recomputes its checksum and
    stores the result (``FileInstance.last_check``, ``last_check_at``),
    committed after each batch. Prints a table of the files that failed and
    exits with status 1 if any did.

    .. versionadded:: 2.0.0
    """
    from invenio_pidstore.errors import PIDDoesNotExistError

    from . import fixity

    if all_files and older_than is not None:
        raise click.UsageError("Give --all or --older-than, not both.")
    pids = _pid_pairs(pid_types, pid_values)
    try:
        record_ids = fixity.record_ids_of(pids) if pids else None
    except PIDDoesNotExistError as error:
        raise click.BadParameter(
            f"no record has the PID {error.pid_type}:{error.pid_value}.",
            param_hint="--pid",
        ) from error
    checked_before = datetime.now(tz=UTC)
    if older_than is None and not all_files and not pids:
        older_than = fixity.OLDER_THAN.days
    if older_than is not None:
        checked_before -= timedelta(days=older_than)
    total = fixity.count_files(checked_before, record_ids)
    report = fixity.Report()
    with click.progressbar(
        length=min(total, limit or total), label="Verifying files", file=sys.stderr
    ) as bar:
        for batch in fixity.verify_files(checked_before, record_ids, batch_size, limit):
            db.session.commit()
            report.add(batch)
            bar.update(batch.checked)
    if report.failures:
        for line in fixity.failure_table(report.failures):
            click.echo(line)
    click.echo(
        f"Verified {_plural(report.checked, 'file')}: "
        + ("all intact." if report.intact else f"{report.failed} failed.")
    )
    if not report.intact:
        click.get_current_context().exit(1)


def _pid_pairs(types: tuple[str, ...], values: tuple[str, ...]) -> list:
    """Pair ``--pid-type`` and ``--pid`` options by position."""
    if len(types) == 1 and values:
        types *= len(values)
    if len(types) != len(values):
        raise click.UsageError(
            "Give one --pid-type for all --pid options, or one for each."
        )
    return list(zip(types, values, strict=True))


# -- queries ------------------------------------------------------------------


def _linked(query):
    """Restrict ``query`` to records that are not deleted and have a bucket."""
    from invenio_records.models import RecordMetadata

    from .models import RecordsBuckets

    return query.join(
        RecordsBuckets, RecordsBuckets.record_id == RecordMetadata.id
    ).where(RecordMetadata.json.is_not(None))


def _count_linked_records() -> int:
    from invenio_records.models import RecordMetadata
    from sqlalchemy import distinct, func, select

    query = select(func.count(distinct(RecordMetadata.id))).select_from(RecordMetadata)
    return db.session.execute(_linked(query)).scalar_one()


def _batches(size: int) -> Iterator[tuple[list[tuple[Any, dict, list]], Heads]]:
    """Yield batches of ``(record id, json, linked bucket ids)`` with their heads.

    Two queries per batch. Records come in id order (keyset pagination); a
    record linked to several buckets comes once, with all of them.
    """
    from invenio_records.models import RecordMetadata
    from sqlalchemy import select

    from .models import RecordsBuckets

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
        batch = [
            (record_id, group[0].json, [row.bucket_id for row in group])
            for record_id, group in (
                (key, list(group)) for key, group in groupby(rows, lambda r: r.id)
            )
        ]
        yield batch, _heads(batch[0][0], batch[-1][0])
        if len(batch) < size:
            return
        after = batch[-1][0]


def _heads(first, last) -> Heads:
    """Load the head file versions of the buckets of records ``first..last``."""
    from invenio_files_rest.models import FileInstance, ObjectVersion
    from invenio_records.models import RecordMetadata
    from sqlalchemy import select

    from .models import RecordsBuckets

    buckets = _linked(select(RecordsBuckets.bucket_id).select_from(RecordMetadata))
    buckets = buckets.where(RecordMetadata.id.between(first, last))
    query = (
        select(
            ObjectVersion.bucket_id,
            ObjectVersion.key,
            ObjectVersion.file_id,
            ObjectVersion.version_id,
            FileInstance.checksum,
            FileInstance.size,
        )
        .join(FileInstance, FileInstance.id == ObjectVersion.file_id)
        .where(
            ObjectVersion.bucket_id.in_(buckets),
            ObjectVersion.is_head.is_(True),
            ObjectVersion.file_id.is_not(None),
        )
    )
    heads: Heads = {}
    for row in db.session.execute(query):
        heads.setdefault(str(row.bucket_id), {})[row.key] = {
            "bucket": str(row.bucket_id),
            "file_id": str(row.file_id),
            "version_id": str(row.version_id),
            "checksum": row.checksum,
            "size": row.size,
        }
    return heads


def _orphan_buckets(limit: int) -> tuple[int, list]:
    """Count the buckets (not deleted) no record links to; list ``limit`` ids."""
    from invenio_files_rest.models import Bucket
    from sqlalchemy import exists, func, select

    from .models import RecordsBuckets

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


# -- comparison and repair ----------------------------------------------------


def _disagreements(record_class, json: dict, bucket_ids: list, heads: Heads) -> list:
    """Tell how the record ``json`` disagrees with its linked bucket."""
    if len(bucket_ids) > 1:
        return [f"linked to {len(bucket_ids)} buckets: {_names(bucket_ids)}"]
    (bucket_id,) = bucket_ids
    bucket_heads = heads.get(str(bucket_id), {})
    reasons = []
    entries = json.get("_files", [])
    if not isinstance(entries, list):
        reasons.append("_files is not a list")
        entries = []
    seen: set[str] = set()
    duplicates: set[str] = set()
    stale: set[str] = set()
    keyless = 0
    for entry in entries:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            keyless += 1
            continue
        if key in seen:
            duplicates.add(key)
        seen.add(key)
        head = bucket_heads.get(key)
        if head is not None and _is_stale(entry, head):
            stale.add(key)
    for label, keys in (
        ("missing in _files", bucket_heads.keys() - seen),
        ("not in bucket", seen - bucket_heads.keys()),
        ("stale", stale),
        ("duplicate", duplicates),
    ):
        if keys:
            reasons.append(f"{label}: {_names(keys)}")
    if keyless:
        reasons.append(f"{_plural(keyless, 'entry', 'entries')} without a key")
    stored_bucket_id = record_class.load_bucket(record_class(json))
    if str(stored_bucket_id or "") != str(bucket_id):
        reasons.append(
            f"bucket id in record is {stored_bucket_id or 'missing'}, "
            f"linked bucket is {bucket_id}"
        )
    return reasons


def _is_stale(entry: dict, head: dict[str, Any]) -> bool:
    return any(str(entry.get(field)) != head[field] for field in _ID_FIELDS) or any(
        entry.get(field) != head[field] for field in _VALUE_FIELDS
    )


def _names(values: Iterable) -> str:
    names = sorted(str(value) for value in values)
    text = ", ".join(names[:KEYS_SHOWN])
    if len(names) > KEYS_SHOWN:
        text += f" (and {len(names) - KEYS_SHOWN} more)"
    return text


def _fix(record_class, record_id, bucket_ids: list, heads: Heads) -> str | None:
    """Rewrite the record's ``_files`` and bucket id from its bucket.

    The record is changed in a savepoint (the caller commits the batch).

    :returns: ``None`` if the record now agrees with the bucket's heads,
        else why not.
    """
    from invenio_records.errors import MissingModelError
    from sqlalchemy.exc import SQLAlchemyError

    if len(bucket_ids) > 1:
        return "several buckets"
    try:
        with db.session.begin_nested():
            record = record_class.get_record(record_id)
            if not isinstance(record.get("_files", []), list):
                record["_files"] = []
            files = record.files
            files.flush()
            record.dump_bucket(record, files.bucket)
            record.commit()
    except (SQLAlchemyError, MissingModelError) as error:
        return type(error).__name__
    if _disagreements(record_class, record.model.json, bucket_ids, heads):
        return "still disagrees"
    return None
