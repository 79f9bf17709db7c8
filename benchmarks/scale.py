# SPDX-License-Identifier: MIT
"""``bench_rest.py --scale``: REST writes to records with many files.

For records of N files (10, 1,000 and 10,000 by default), the time and the
SQL statements of an upload of a new key, a new version of an existing key
and a delete, through the record files endpoint and through plain
Files-REST into a bucket of the same size, in the same run (median of
``--repeat`` requests each). Then the growth of the database per upload,
from its size before and after 100 uploads.

Budgets (issue "Records with 10,000+ files"): each request at the largest N
costs at most 2x plain Files-REST's and 1.5x our own at the smallest N, with
the same number of statements at every N; the database grows by at most
16 KiB per upload.
"""

import statistics
import time
from io import BytesIO

import common  # noqa: F401 (puts the repository on sys.path, for tests.helpers)
from invenio_db import db
from invenio_files_rest.models import Bucket, FileInstance
from sqlalchemy import text

from invenio_records_files.api import Record
from invenio_records_files.store import objects
from tests.helpers import create_record

RATIO_TO_FILES_REST = 2.0
RATIO_TO_SMALL = 1.5
GROWTH_BUDGET = 16 * 1024
OPERATIONS = ("upload", "new version", "delete")


def make_record(pid_value: str, n: int) -> Record:
    """Create a record with ``n`` small files and a registered PID."""
    files = {f"file-{i:05d}.txt": BytesIO(b"%d" % i) for i in range(n)}
    return create_record(pid_value, {"title": f"{n} files"}, files=files)


def make_bucket(n: int) -> Bucket:
    """Create a plain bucket of ``n`` objects (sharing one file: rows matter)."""
    bucket = Bucket.create()
    shared = FileInstance.create()
    shared.set_contents(BytesIO(b"x"), default_location=bucket.location.uri)
    objects.create_heads(bucket, [(f"file-{i:05d}.txt", shared) for i in range(n)])
    db.session.commit()
    return bucket


def requests_for(prefix: str):
    """Return the three requests as ``(method, url, body)`` for round ``i``."""
    return {
        "upload": lambda i: ("PUT", f"{prefix}/new-{i}.txt", b"hello"),
        "new version": lambda i: ("PUT", f"{prefix}/file-00000.txt", b"v%d" % i),
        "delete": lambda i: ("DELETE", f"{prefix}/new-{i}.txt", None),
    }


def time_requests(client, counter, prefix: str, repeat: int) -> dict:
    """Median seconds and statements of each operation on ``prefix``."""
    results = {}
    for name, make in requests_for(prefix).items():
        seconds = []
        for i in range(repeat):
            method, url, body = make(i)
            db.session.remove()
            with counter.count():
                start = time.perf_counter()
                response = client.open(url, method=method, data=body)
                seconds.append(time.perf_counter() - start)
            assert response.status_code in (200, 204), (url, response.data)
        results[name] = (statistics.median(seconds), counter.total)
    return results


def database_size() -> int:
    """Bytes the database uses now."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return connection.execute(
            text("SELECT pg_database_size(current_database())")
        ).scalar()
    pages = connection.execute(text("PRAGMA page_count")).scalar()
    return pages * connection.execute(text("PRAGMA page_size")).scalar()


def growth_per_upload(client, pid: str, uploads: int = 100) -> float:
    """Bytes the database grows by per upload, over ``uploads`` uploads."""
    db.session.commit()
    before = database_size()
    for i in range(uploads):
        response = client.put(f"/api/records/{pid}/files/growth-{i}.txt", data=b"12345")
        assert response.status_code == 200
    db.session.remove()
    return (database_size() - before) / uploads


def run(app, counter, sizes: list[int], repeat: int) -> list[str]:
    """Print the scale table; return the budgets exceeded."""
    client = app.test_client()
    print(f"\nREST writes to records with N files ({db.engine.url.get_backend_name()})")
    print(
        f"{'N':>7} {'operation':<12} {'ours':>9} {'Files-REST':>11} {'ratio':>6}"
        f" {'statements':>11}"
    )
    ours_by_size, failures = {}, []
    for n in sizes:
        make_record(f"scale{n}", n)
        bucket_id = make_bucket(n).id
        db.session.remove()
        ours = time_requests(client, counter, f"/api/records/scale{n}/files", repeat)
        plain = time_requests(client, counter, f"/api/files/{bucket_id}", repeat)
        ours_by_size[n] = ours
        for name in OPERATIONS:
            ratio = ours[name][0] / plain[name][0]
            print(
                f"{n:>7} {name:<12} {ours[name][0] * 1000:>7.1f}ms"
                f" {plain[name][0] * 1000:>9.1f}ms {ratio:>6.2f}"
                f" {ours[name][1]:>5} vs {plain[name][1]:<3}"
            )
            if n == max(sizes) and ratio > RATIO_TO_FILES_REST:
                failures.append(f"{name} at {n}: {ratio:.2f}x Files-REST")
        growth = growth_per_upload(client, f"scale{n}")
        print(f"{n:>7} database growth per upload: {growth / 1024:.1f} KiB")
        if growth > GROWTH_BUDGET:
            failures.append(f"growth at {n}: {growth / 1024:.1f} KiB per upload")
    small, large = ours_by_size[min(sizes)], ours_by_size[max(sizes)]
    for name in OPERATIONS:
        ratio = large[name][0] / small[name][0]
        print(f"{name}: N={max(sizes)} costs {ratio:.2f}x N={min(sizes)}")
        if ratio > RATIO_TO_SMALL:
            failures.append(f"{name}: {ratio:.2f}x our own cost at {min(sizes)}")
        if large[name][1] != small[name][1]:
            failures.append(f"{name}: statements grow with N")
    return failures
