# SPDX-License-Identifier: MIT
"""Cost of the Python API as a record's number of files grows.

Prints, for records with N files, the SQL statements each operation runs
(exact, machine-independent) and its wall time (noisy: compare the rows of one
run with each other, not with another machine). Each operation runs on a
record freshly loaded from the database, as in a new request.

    python benchmarks/bench_api.py            # N = 10, 100, 300 (+3000)
    python benchmarks/bench_api.py --sizes 10 300 --big 0
    SQLALCHEMY_DATABASE_URI=postgresql://postgres@127.0.0.1/bench python ...

The issue's budgets (N = 300) are checked and the script exits non-zero when
one is exceeded.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from io import BytesIO

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from invenio_db import db
from invenio_files_rest.models import Location
from sqlalchemy_utils import create_database, database_exists, drop_database

from invenio_records_files.api import Record
from tests.helpers import StatementCounter, create_app

# SQLAlchemy-Continuum's savepoint warning (see setup.cfg): harmless noise here.
warnings.filterwarnings("ignore", "nested transaction already deassociated")

BUDGETS = {
    "add one file": 20,
    "dumps()": 3,
    "iterate": 3,
    "len()": 3,
    "in": 3,
    "files[key]": 3,
    "sort_by()": 6,
    "rename()": 30,
    "del files[key]": 25,
    "metadata + flush()": 20,
}
BIG_OPERATIONS = ("add one file", "dumps()")


def make_record(n: int) -> str:
    """Create a record with ``n`` one-line files; return its id."""
    record = Record.create({"title": f"{n} files"})
    files = record.files
    for i in range(n):
        files[f"file-{i:05d}.txt"] = BytesIO(b"line %d\n" % i)
    record.commit()
    db.session.commit()
    return str(record.id)


def fresh(record_id: str) -> Record:
    """Load the record as a new request would."""
    db.session.remove()
    return Record.get_record(record_id)


def operations(n: int):
    """Yield ``(name, function)`` pairs; each gets a freshly loaded record."""
    last = f"file-{n - 1:05d}.txt"
    yield "add one file", lambda r: r.files.__setitem__("new.txt", BytesIO(b"new"))
    yield "dumps()", lambda r: r.files.dumps()
    yield "iterate", lambda r: [f.key for f in r.files]
    yield "len()", lambda r: len(r.files)
    yield "in", lambda r: last in r.files
    yield "files[key]", lambda r: r.files[last]["size"]
    yield "sort_by()", lambda r: r.files.sort_by(last)
    yield "rename()", lambda r: r.files.rename(last, "renamed.txt")
    yield "del files[key]", lambda r: r.files.__delitem__(last)

    def metadata_and_flush(record):
        files = record.files
        files[last]["description"] = "updated"
        files.flush()

    yield "metadata + flush()", metadata_and_flush


def measure(counter: StatementCounter, record_id: str, func):
    """Run ``func`` on a fresh record; return (statements, seconds)."""
    record = fresh(record_id)
    with counter.count():
        start = time.perf_counter()
        func(record)
        elapsed = time.perf_counter() - start
    db.session.rollback()
    return counter.total, elapsed


def bench_add_one_by_one(counter: StatementCounter, n: int):
    """Statements and time to add ``n`` files one by one (with commits)."""
    record = Record.create({})
    db.session.commit()
    with counter.count():
        start = time.perf_counter()
        for i in range(n):
            record.files[f"f{i}"] = BytesIO(b"x")
        record.commit()
        db.session.commit()
        elapsed = time.perf_counter() - start
    return counter.total, elapsed


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--big", type=int, default=3000, help="0 to skip")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="irf-bench-")
    uri = os.environ.get("SQLALCHEMY_DATABASE_URI") or f"sqlite:///{tmp}/bench.db"
    app = create_app(uri)
    failures = []
    with app.app_context():
        if not database_exists(uri):
            create_database(uri)
        db.drop_all()
        db.create_all()
        db.session.add(Location(name="bench", uri=f"{tmp}/files", default=True))
        db.session.commit()
        counter = StatementCounter(db.engine)
        print(f"database: {db.engine.url.get_backend_name()}")

        sizes = list(args.sizes) + ([args.big] if args.big else [])
        results = {}
        for n in sizes:
            record_id = make_record(n)
            for name, func in operations(n):
                if n == args.big and name not in BIG_OPERATIONS:
                    continue
                results[name, n] = measure(counter, record_id, func)

        width = max(len(name) for name in BUDGETS)
        header = "".join(f"{'N=' + str(n):>18}" for n in sizes)
        print(f"\n{'operation':<{width}}{header}   budget (N=300)")
        for name, budget in BUDGETS.items():
            row = ""
            for n in sizes:
                if (name, n) in results:
                    count, seconds = results[name, n]
                    row += f"{count:>7} {seconds * 1000:>8.1f} ms"
                else:
                    row += " " * 18
            print(f"{name:<{width}}{row}   <= {budget}")
            if (name, 300) in results and results[name, 300][0] > budget:
                failures.append(name)

        for n in (300,) if 300 in args.sizes else ():
            total, seconds = bench_add_one_by_one(counter, n)
            print(
                f"\nadding {n} files one by one: {total} statements, {seconds:.2f} s"
                " (the original: 49,358 statements)"
            )
        counter.close()
        db.session.remove()
        db.drop_all()
    if not uri.startswith("sqlite") and database_exists(uri):
        drop_database(uri)
    shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"\nOVER BUDGET: {', '.join(failures)}")
        return 1
    print("\nall budgets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
