# SPDX-License-Identifier: MIT
"""Command line interface: ``flask records-files check [--fix]``.

The logic lives in :mod:`invenio_records_files.check`; this module only
reads the options and prints: the report to standard output, the progress
bar to standard error.

The database models are imported when the command runs, not when this module
is imported: the extension registers the command in ``init_app``, possibly
before Invenio-DB has set up record versioning.

.. versionadded:: 5.0.0
"""

import sys

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
    from . import check as checks

    checked = disagreeing = fixed = 0
    with click.progressbar(
        length=checks.count_linked_records(),
        label="Checking records",
        file=sys.stderr,
    ) as bar:
        for batch in checks.batches(batch_size):
            for record in batch.records:
                found = checks.problem(record_class, batch, record)
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
