# SPDX-License-Identifier: MIT
r"""Cost of ``verify`` (fixity checks): statements, time and memory.

Prints the SQL statements per batch (exact), the wall time of verifying the
files against the time of just reading and hashing the same bytes through the
storage API (a ratio of two timings of one run: compare them with each other,
not across machines), and the peak memory (tracemalloc) of verifying one large
file.

    python benchmarks/bench_fixity.py
    python benchmarks/bench_fixity.py --files 2000 --mib 128
    SQLALCHEMY_DATABASE_URI=postgresql+psycopg2://postgres@127.0.0.1/postgres \
        python benchmarks/bench_fixity.py

On PostgreSQL it creates a database of its own (a unique name) and drops only
that one. Exits non-zero when a budget is exceeded.
"""

import argparse
import gc
import hashlib
import os
import shutil
import sys
import time
import tracemalloc
from io import BytesIO

from common import bench_app, report
from invenio_db import db
from invenio_files_rest.models import FileInstance, Location
from sqlalchemy import update

from invenio_records_files.api import Record
from invenio_records_files.maintenance import fixity
from tests.helpers import StatementCounter

STATEMENTS_PER_BATCH = 3
"""Budget: select, update, and the failures' records (only when some failed)."""

TIME_RATIO_BUDGET = 1.5
"""Budget: verify / read-and-hash of the same large files."""

PEAK_MIB_BUDGET = 4
"""Budget: peak memory of verifying one large file, MiB."""


def make_records(records: int, files: int, size: int) -> None:
    """Create ``records`` records with ``files`` files of ``size`` bytes each."""
    for r in range(records):
        record = Record.create({"title": f"record {r}"})
        for f in range(files):
            record.files[f"file-{f:04d}.bin"] = BytesIO(os.urandom(size))
        record.commit()
        db.session.commit()


def forget_checks() -> None:
    """Mark every file as never checked."""
    db.session.execute(update(FileInstance).values(last_check_at=None))
    db.session.commit()


def verify_all(batch_size: int) -> tuple[int, int, float]:
    """Verify every file, committing per batch; return batches, checked, time."""
    gc.collect()
    start = time.perf_counter()
    batches = checked = 0
    for batch in fixity.verify_files(batch_size=batch_size):
        db.session.commit()
        batches += 1
        checked += batch.checked
    return batches, checked, time.perf_counter() - start


def read_and_hash_all() -> float:
    """Read and hash every file through the storage API, with no database work."""
    fileinstances = FileInstance.query.all()
    gc.collect()
    start = time.perf_counter()
    for fileinstance in fileinstances:
        digest = hashlib.md5(usedforsecurity=False)
        with fileinstance.storage().open("rb") as stream:
            while chunk := stream.read(fixity.CHUNK_SIZE):
                digest.update(chunk)
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="small files")
    parser.add_argument("--batch-size", type=int, default=fixity.BATCH_SIZE)
    parser.add_argument("--mib", type=int, default=64, help="size of large files")
    parser.add_argument("--large", type=int, default=4, help="number of large files")
    args = parser.parse_args()

    failures = []
    with bench_app():
        files_uri = Location.get_default().uri
        counter = StatementCounter(db.engine)
        print(f"database: {db.engine.url.get_backend_name()}")

        # Statements per batch: many small files.
        make_records(args.files // 10, 10, 4096)
        with counter.count():
            batches, checked, seconds = verify_all(args.batch_size)
        # SQLite counts the BEGIN of each transaction (see tests/helpers.py).
        queries = [q for q in counter.statements if q.strip() != "BEGIN"]
        per_batch = len(queries) / batches
        print(
            f"\n{checked} files of 4 KiB, batches of {args.batch_size}: "
            f"{batches} batches, {len(queries)} statements besides BEGIN "
            f"({per_batch:.1f} per batch, the last empty query included), "
            f"{seconds * 1000 / checked:.2f} ms per file"
        )
        if per_batch > STATEMENTS_PER_BATCH:
            failures.append(f"{per_batch:.1f} statements per batch")

        # Time: large files, verify against reading and hashing alone.
        # Start again with the large files only (the database is ours).
        db.session.remove()
        shutil.rmtree(files_uri, ignore_errors=True)
        db.drop_all()
        db.create_all()
        db.session.add(Location(name="bench", uri=files_uri, default=True))
        db.session.commit()
        make_records(1, args.large, args.mib * 1024 * 1024)
        baseline = read_and_hash_all()
        forget_checks()
        _, checked, seconds = verify_all(args.batch_size)
        ratio = seconds / baseline
        print(
            f"\n{checked} files of {args.mib} MiB: verify {seconds:.2f} s, "
            f"read and hash alone {baseline:.2f} s: ratio {ratio:.2f}"
        )
        if ratio > TIME_RATIO_BUDGET:
            failures.append(f"time ratio {ratio:.2f}")

        # Memory: one large file.
        forget_checks()
        gc.collect()
        tracemalloc.start()
        list(fixity.verify_files(batch_size=1, limit=1))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        db.session.commit()
        peak_mib = peak / 1024 / 1024
        print(f"\npeak memory verifying one {args.mib} MiB file: {peak_mib:.2f} MiB")
        if peak_mib > PEAK_MIB_BUDGET:
            failures.append(f"peak memory {peak_mib:.2f} MiB")
        counter.close()
    return report(failures)


if __name__ == "__main__":
    sys.exit(main())
