# SPDX-License-Identifier: MIT
"""Fixity: verify that the stored bytes of records' files match their checksums.

The unit of work is the file instance (the bytes): every file instance that an
object version of a record's bucket points to, whether that version is the head
or an older one (delete markers have no bytes). A file instance shared by
several versions, buckets or records is read once; when it fails, the failure
is reported for every record version that points to it.

Files are read through Invenio-Files-REST's storage API
(``fileinstance.storage().open()``), in chunks, so any backend works (local
disk, S3 through Invenio-S3) and memory stays constant. The checksum is
recomputed in the algorithm the stored one names (``md5:<hex>``, or any other
algorithm :mod:`hashlib` offers), and the outcome is stored in
``FileInstance.last_check`` and ``last_check_at``:

* ``True``: the bytes match;
* ``False``: they do not, or they cannot be read (missing object, storage
  error);
* ``None``: the file cannot be verified (no checksum stored, or an algorithm
  :mod:`hashlib` does not know); reported as a failure too.

Work goes in batches with a constant number of SQL statements each: one query
for the batch's file instances, one ``UPDATE`` (executed for many rows) for the
results and, when something failed, one query for the record versions that
point to the failed files. Nothing is committed here: the callers (the
``flask records-files verify`` command and the
:func:`invenio_records_files.tasks.verify_files` task) commit each batch.

.. versionadded:: 5.0.0
"""

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from invenio_db import db
from invenio_files_rest.models import FileInstance, ObjectVersion
from invenio_pidstore.errors import PIDDoesNotExistError
from invenio_pidstore.models import PersistentIdentifier
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm.attributes import set_committed_value

from invenio_records_files.store import checksums
from invenio_records_files.store.models import RecordsBuckets

BATCH_SIZE = 100
"""Default number of file instances verified per batch."""

CHUNK_SIZE = 1024 * 1024
"""Bytes read from storage at a time."""

OLDER_THAN = timedelta(days=30)
"""Default age of the last check beyond which a file is verified again."""

RECORD_OBJECT_TYPE = "rec"
"""``object_type`` of the persistent identifiers of records."""


@dataclass(frozen=True)
class Check:
    """Outcome of reading one file instance's bytes."""

    result: bool | None
    """``True`` intact, ``False`` damaged or unreadable, ``None`` unverifiable."""

    found: str
    """The checksum computed, or why there is none."""


@dataclass(frozen=True)
class Failure:
    """A version of a record's file whose bytes failed verification."""

    record_id: uuid.UUID
    """Id of the record."""

    pid_type: str | None
    """Type of the record's first persistent identifier (``None`` if none)."""

    pid_value: str | None
    """Value of that persistent identifier."""

    key: str
    """Key of the object version."""

    version_id: uuid.UUID
    """Id of the object version."""

    file_id: uuid.UUID
    """Id of the file instance (shared by the versions that point to it)."""

    expected: str | None
    """The stored checksum."""

    found: str
    """The checksum computed, or why there is none (missing, unreadable...)."""


@dataclass
class Batch:
    """What one batch verified."""

    checked: int = 0
    """File instances read."""

    failed: int = 0
    """File instances whose check failed."""

    gone: int = 0
    """File instances removed while they were read (no version uses them any
    more): neither intact nor damaged, and not counted as failed."""

    failures: list[Failure] = field(default_factory=list)
    """One entry per record version pointing to a failed file instance."""


@dataclass
class Report(Batch):
    """What a whole run verified: the sum of its batches."""

    def add(self, batch: Batch) -> None:
        """Add a batch's counts and failures."""
        self.checked += batch.checked
        self.failed += batch.failed
        self.gone += batch.gone
        self.failures.extend(batch.failures)

    @property
    def intact(self) -> bool:
        """Tell whether every file checked was intact."""
        return not self.failed


def record_ids_of(pids: Iterable[tuple[str, str]]) -> list[uuid.UUID]:
    """Return the ids of the records with these ``(pid_type, pid_value)`` PIDs.

    One query for all of them.

    :raises invenio_pidstore.errors.PIDDoesNotExistError: For the first PID
        that does not exist or does not identify a record.
    """
    pids = list(dict.fromkeys(pids))
    if not pids:
        return []
    found = {
        (row.pid_type, row.pid_value): row.object_uuid
        for row in db.session.execute(
            select(
                PersistentIdentifier.pid_type,
                PersistentIdentifier.pid_value,
                PersistentIdentifier.object_uuid,
            ).where(
                PersistentIdentifier.object_type == RECORD_OBJECT_TYPE,
                or_(
                    *(
                        and_(
                            PersistentIdentifier.pid_type == pid_type,
                            PersistentIdentifier.pid_value == pid_value,
                        )
                        for pid_type, pid_value in pids
                    )
                ),
            )
        )
    }
    for pid in pids:
        if pid not in found:
            raise PIDDoesNotExistError(*pid)
    return list(dict.fromkeys(found[pid] for pid in pids))


def count_files(
    checked_before: datetime, record_ids: Iterable[uuid.UUID] | None = None
) -> int:
    """Count the file instances :func:`verify_files` would verify (no limit)."""
    query = select(func.count()).where(_selected(checked_before, record_ids))
    return db.session.execute(query.select_from(FileInstance)).scalar_one()


def verify_files(
    checked_before: datetime | None = None,
    record_ids: Iterable[uuid.UUID] | None = None,
    batch_size: int = BATCH_SIZE,
    limit: int | None = None,
) -> Iterator[Batch]:
    """Verify the bytes of records' files, one batch at a time.

    Yields a :class:`Batch` after storing its results in the session (the
    caller may commit between batches). Files never checked come first, then
    the least recently checked.

    :param checked_before: Verify files never checked or last checked before
        this moment (timezone-aware); ``None`` (or a later moment) means now,
        i.e. every file.
    :param record_ids: Verify only the files of these records (all records
        when ``None``).
    :param batch_size: File instances per batch.
    :param limit: Verify at most this many file instances.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}.")
    now = datetime.now(tz=UTC)
    # Later than now, the files verified by this run would be selected again.
    checked_before = now if checked_before is None else min(checked_before, now)
    if record_ids is not None:
        record_ids = list(record_ids)
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        fileinstances = (
            db.session.execute(
                select(FileInstance)
                .where(_selected(checked_before, record_ids))
                .order_by(
                    # Never checked first (NULLS FIRST, which MariaDB lacks).
                    FileInstance.last_check_at.is_not(None),
                    FileInstance.last_check_at,
                    FileInstance.id,
                )
                .limit(size)
            )
            .scalars()
            .all()
        )
        if not fileinstances:
            return
        checks = {
            fileinstance.id: check_bytes(fileinstance) for fileinstance in fileinstances
        }
        _store(fileinstances, checks)
        failed = {
            fileinstance.id: fileinstance.checksum
            for fileinstance in fileinstances
            if checks[fileinstance.id].result is not True
        }
        failures = _failures(failed, checks) if failed else []
        # A failed file that no record version uses now was removed while
        # this run read it (a version deleted meanwhile): it is gone, not
        # damaged. Every failure counted has its line in ``failures``.
        gone = set(failed) - {failure.file_id for failure in failures}
        yield Batch(
            checked=len(fileinstances),
            failed=len(failed) - len(gone),
            gone=len(gone),
            failures=failures,
        )
        if remaining is not None:
            remaining -= len(fileinstances)
        if len(fileinstances) < size:
            return


def check_bytes(fileinstance: FileInstance, chunk_size: int = CHUNK_SIZE) -> Check:
    """Read a file instance's bytes through the storage API and check them.

    Nothing is stored: see :func:`verify_files`.
    """
    expected = fileinstance.checksum
    if not expected:
        return Check(None, "cannot verify: no checksum stored")
    algorithm = expected.partition(":")[0]
    digest = checksums.hasher(algorithm)
    if digest is None:
        return Check(None, f"cannot verify: unknown algorithm {algorithm!r}")
    if not fileinstance.uri:
        return Check(False, "missing: no location stored")
    size = 0
    try:
        with fileinstance.storage().open("rb") as stream:
            while chunk := stream.read(chunk_size):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return Check(False, "missing")
    except Exception as error:  # any storage backend's read error
        return Check(False, f"unreadable: {type(error).__name__}: {error}")
    found = f"{algorithm}:{digest.hexdigest()}"
    if found.lower() == expected.lower():
        return Check(True, found)
    if size != fileinstance.size:
        found += f" ({size} bytes, {fileinstance.size} expected)"
    return Check(False, found)


def _selected(checked_before: datetime, record_ids: list | None):
    """Condition on file instances: a record's, and not checked since."""
    referenced = (
        select(ObjectVersion.file_id)
        .join(RecordsBuckets, RecordsBuckets.bucket_id == ObjectVersion.bucket_id)
        .where(ObjectVersion.file_id.is_not(None))
    )
    if record_ids is not None:
        referenced = referenced.where(RecordsBuckets.record_id.in_(record_ids))
    return and_(
        FileInstance.id.in_(referenced),
        or_(
            FileInstance.last_check_at.is_(None),
            FileInstance.last_check_at < checked_before,
        ),
    )


def _store(fileinstances: list[FileInstance], checks: dict) -> None:
    """Store the results of a batch in one statement.

    A Core ``UPDATE`` (executed for many rows) leaves the ``updated``
    timestamp of the file instances alone (downloads derive ``Last-Modified``
    from it) and does not fail on a file removed meanwhile.
    """
    now = datetime.now(tz=UTC)
    table = FileInstance.__table__
    db.session.execute(
        table.update()
        .where(table.c.id == bindparam("file_id"))
        .values(last_check=bindparam("result"), last_check_at=bindparam("now")),
        [
            {
                "file_id": fileinstance.id,
                "result": checks[fileinstance.id].result,
                "now": now,
            }
            for fileinstance in fileinstances
        ],
    )
    for fileinstance in fileinstances:
        set_committed_value(fileinstance, "last_check", checks[fileinstance.id].result)
        set_committed_value(fileinstance, "last_check_at", now)


def _failures(failed: dict, checks: dict) -> list[Failure]:
    """List the record versions pointing to the failed file instances."""
    rows = db.session.execute(
        select(
            RecordsBuckets.record_id,
            PersistentIdentifier.pid_type,
            PersistentIdentifier.pid_value,
            ObjectVersion.key,
            ObjectVersion.version_id,
            ObjectVersion.file_id,
        )
        .join(RecordsBuckets, RecordsBuckets.bucket_id == ObjectVersion.bucket_id)
        .outerjoin(
            PersistentIdentifier,
            and_(
                PersistentIdentifier.object_type == RECORD_OBJECT_TYPE,
                PersistentIdentifier.object_uuid == RecordsBuckets.record_id,
            ),
        )
        .where(ObjectVersion.file_id.in_(list(failed)))
        .order_by(
            RecordsBuckets.record_id,
            ObjectVersion.key,
            ObjectVersion.created,
            ObjectVersion.version_id,
            PersistentIdentifier.created,
            PersistentIdentifier.id,
        )
    )
    failures: dict[tuple, Failure] = {}
    for row in rows:
        # The first PID of a record (the oldest) names it.
        failures.setdefault(
            (row.record_id, row.version_id),
            Failure(
                record_id=row.record_id,
                pid_type=row.pid_type,
                pid_value=row.pid_value,
                key=row.key,
                version_id=row.version_id,
                file_id=row.file_id,
                expected=failed[row.file_id],
                found=checks[row.file_id].found,
            ),
        )
    return list(failures.values())


TABLE_HEADER = ("PID TYPE", "PID", "KEY", "VERSION ID", "EXPECTED", "FOUND")
"""Column titles of :func:`failure_table`."""


def failure_table(failures: Iterable[Failure]) -> list[str]:
    """Format failures as the lines of a table, sorted by PID, key and version.

    A record without a PID shows ``-`` and its record id. Characters that
    are not printable (in keys) are escaped.
    """
    rows = [
        (
            failure.pid_type or "-",
            failure.pid_value or str(failure.record_id),
            failure.key,
            str(failure.version_id),
            failure.expected or "-",
            failure.found,
        )
        for failure in failures
    ]
    rows = [tuple(_printable(cell) for cell in row) for row in sorted(rows)]
    widths = [max(map(len, column)) for column in zip(TABLE_HEADER, *rows, strict=True)]
    return [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in (TABLE_HEADER, *rows)
    ]


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
