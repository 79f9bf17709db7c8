# SPDX-License-Identifier: MIT
"""Command line interface: ``flask records-files check [--fix]`` and ``verify``.

The logic lives in :mod:`invenio_records_files.maintenance.check`; this module only
reads the options and prints: the report to standard output, the progress
bar to standard error.

The database models are imported when the command runs, not when this module
is imported: the extension registers the command in ``init_app``, possibly
before Invenio-DB has set up record versioning.

.. versionadded:: 5.0.0
"""

import sys
from datetime import UTC, datetime, timedelta

import click
from flask.cli import with_appcontext
from invenio_db import db
from werkzeug.utils import ImportStringError, import_string

BATCH_SIZE = 500
"""Default number of records checked per batch."""

ORPHANS_SHOWN = 100
"""Maximum number of orphan bucket ids listed (all are counted)."""


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
@click.option("--fix", is_flag=True, help="Repair the records' files from the bucket.")
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
    """Report records whose files disagree with their bucket, and orphan buckets.

    Exits with status 1 when problems remain (after fixing, with ``--fix``).
    A record that cannot be fixed is reported and the others go on. Orphan
    buckets are reported, never deleted.
    """
    from invenio_records_files.maintenance import check as checks

    checked = disagreeing = fixed = 0
    with click.progressbar(
        length=checks.count_linked_records(),
        label="Checking records",
        file=sys.stderr,
    ) as bar:
        for batch in checks.batches(batch_size):
            for record in batch.records:
                found = checks.problem(record_class, batch, record)
                if found is not None:  # or a write committed meanwhile
                    found = checks.confirm(record_class, record)
                if found is None:
                    continue
                disagreeing += 1
                if fix:
                    fixed += checks.fix(record_class, found)
                click.echo(str(found))
            if fix:
                db.session.commit()
            checked += len(batch.records)
            bar.update(len(batch.records))
    orphans, orphan_ids = checks.orphan_buckets(ORPHANS_SHOWN)
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

    .. versionadded:: 5.0.0
    """
    from invenio_pidstore.errors import PIDDoesNotExistError

    from invenio_records_files.maintenance import fixity

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
    if report.gone:
        removed = _plural(report.gone, "file was", "files were")
        click.echo(f"{removed} removed while being verified (not counted).")
    click.echo(
        f"Verified {_plural(report.checked - report.gone, 'file')}: "
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
