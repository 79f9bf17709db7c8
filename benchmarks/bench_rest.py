# SPDX-License-Identifier: MIT
"""Cost of the record files endpoints, next to plain Invenio-Files-REST.

1. SQL statements to list a record's files (``GET /api/records/1/files``) and
   the same bucket through Files-REST (``GET /api/files/<bucket>``), for
   records with N files. Counts are exact; the budget is <= 8 at N = 300.
   Then the statements of one upload (which also updates and commits the
   record's ``_files``) to records with 0 and N files: at most 10 more.
2. Upload (PUT) and download (GET) of a large file (32 MiB by default) over
   real HTTP on loopback, through the record endpoint and through Files-REST,
   alternating, best of several rounds: the ratio record/Files-REST should
   stay within 1.10. Also the statements each request runs.
3. Peak memory (tracemalloc, server and client in this process) of an upload
   and a download of 8 MiB and of 32 MiB: streamed transfers do not grow with
   the file size.
4. Transfer rates of random bytes (64 MiB by default) over loopback, best of
   3 (in turns, each first once): the record endpoint, plain Files-REST, and
   a trivial view on the same server that streams the same storage file in
   1 MiB chunks (or, for uploads, reads the request in 1 MiB chunks into
   storage, computing the MD5 as every upload does): the ceiling of this
   stack. Downloads through the record endpoint must reach 5x Files-REST's
   rate and 0.8x the ceiling's.

4. ``--archive``: the zip of all of a record's files, memory and
   throughput against one file of the same size through the object endpoint
   (``benchmarks/bench_archive.py``); nothing else runs.
5. ``--scale``: REST writes to records of 10, 1,000 and 10,000 files against
   plain Files-REST on buckets of the same size, and the database's growth
   per upload (see ``benchmarks/scale.py``); nothing else runs.

    python benchmarks/bench_rest.py
    python benchmarks/bench_rest.py --sizes 10 300 --mib 32 --rounds 5
    python benchmarks/bench_rest.py --rate-mib 64 --rate-rounds 3
    python benchmarks/bench_rest.py --scale [--scale-sizes 10 1000 10000]
    SQLALCHEMY_DATABASE_URI=postgresql://postgres@127.0.0.1/postgres \
        python benchmarks/bench_rest.py --scale

On PostgreSQL the benchmark creates a database of its own next to the one
named, and drops only that one.
"""

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from io import BytesIO

import scale
from common import bench_app, report
from flask import Response, request
from invenio_db import db
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion
from werkzeug.serving import WSGIRequestHandler, make_server

from invenio_records_files.api import Record
from tests.helpers import StatementCounter, create_record

LISTING_BUDGET = 8
TIME_RATIO_BUDGET = 1.10
DOWNLOAD_VS_FILES_REST = 5.0
DOWNLOAD_VS_CEILING = 0.8
MIB = 1024 * 1024


class QuietHandler(WSGIRequestHandler):
    """Request handler that does not log."""

    def log_request(self, *args, **kwargs):
        """Do not log requests."""


def make_record(pid_value: str, n: int) -> Record:
    """Create a record with ``n`` files and a registered PID."""
    files = {f"file-{i:05d}.txt": BytesIO(b"line %d\n" % i) for i in range(n)}
    return create_record(pid_value, files=files)


def bench_listing(app, counter, sizes):
    """Print the statements of a listing through both endpoints."""
    print("\nlisting a record's files: SQL statements")
    print(f"{'N':>6} {'record endpoint':>16} {'Files-REST':>11}")
    failures = []
    client = app.test_client()
    for n in sizes:
        record = make_record(f"list{n}", n)
        bucket_id = record.bucket.id
        db.session.remove()
        counts = []
        for url in (f"/api/records/list{n}/files", f"/api/files/{bucket_id}"):
            with counter.count():
                response = client.get(url)
            assert response.status_code == 200, response.data
            assert len(response.json["contents"]) == n
            counts.append(counter.total)
        print(f"{n:>6} {counts[0]:>16} {counts[1]:>11}")
        if n == 300 and counts[0] > LISTING_BUDGET:
            failures.append(f"listing 300 files: {counts[0]} > {LISTING_BUDGET}")
    return failures


UPLOAD_GROWTH_BUDGET = 10


def bench_upload_growth(app, counter, sizes):
    """Statements of one upload to records with N files (``_files`` synced)."""
    print("\nuploading one file to a record with N files: SQL statements")
    client = app.test_client()
    counts = {}
    for n in sorted({0, *sizes}):
        make_record(f"up{n}", n)
        db.session.remove()
        with counter.count():
            response = client.put(f"/api/records/up{n}/files/new.txt", data=b"new")
        assert response.status_code == 200, response.data
        counts[n] = counter.total
        print(f"{n:>6} {counts[n]:>6}")
    growth = max(counts.values()) - counts[0]
    if growth > UPLOAD_GROWTH_BUDGET:
        return [f"upload to N files: +{growth} > {UPLOAD_GROWTH_BUDGET}"]
    return []


def transfer(port, method, path, body_path=None, size=0):
    """Send one request; stream the body from/to disk; return seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    if body_path:
        with open(body_path, "rb") as fp:
            connection.request(
                method,
                path,
                body=fp,
                headers={
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                },
            )
    else:
        connection.request(method, path)
    response = connection.getresponse()
    received = 0
    while chunk := response.read(1024 * 1024):
        received += len(chunk)
    elapsed = time.perf_counter() - start
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status}")
    return elapsed, received


def make_file(directory, mib):
    """Write a file of ``mib`` MiB of pseudo-random bytes; return its path."""
    path = os.path.join(directory, f"{mib}MiB.bin")
    with open(path, "wb") as fp:
        block = os.urandom(1024 * 1024)
        for _ in range(mib):
            fp.write(block)
    return path


def bench_transfers(app, counter, port, directory, mib, rounds):
    """Compare upload and download times through both endpoints."""
    record = make_record("big", 0)
    bucket_id = record.bucket.id
    db.session.remove()
    path = make_file(directory, mib)
    size = mib * 1024 * 1024
    urls = {
        "record": "/api/records/big/files/big.bin",
        "Files-REST": f"/api/files/{bucket_id}/big.bin",
    }
    best = {(op, name): float("inf") for op in ("PUT", "GET") for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            seconds, _ = transfer(port, "PUT", url, path, size)
            best["PUT", name] = min(best["PUT", name], seconds)
            seconds, received = transfer(port, "GET", url)
            assert received == size
            best["GET", name] = min(best["GET", name], seconds)

    statements = {}
    client = app.test_client()
    for name, url in urls.items():
        with open(path, "rb") as fp:
            with counter.count():
                client.put(url, data=fp, content_length=size)
            statements["PUT", name] = counter.total
        db.session.remove()
        with counter.count():
            client.get(url).close()
        statements["GET", name] = counter.total
        db.session.remove()

    print(f"\n{mib} MiB over HTTP on loopback, best of {rounds} (alternating)")
    print(f"{'':<10}{'record':>10}{'Files-REST':>12}{'ratio':>8}   statements")
    failures = []
    for op in ("PUT", "GET"):
        ratio = best[op, "record"] / best[op, "Files-REST"]
        print(
            f"{op:<10}{best[op, 'record']:>9.3f}s{best[op, 'Files-REST']:>11.3f}s"
            f"{ratio:>8.2f}   {statements[op, 'record']} vs "
            f"{statements[op, 'Files-REST']}"
        )
        if ratio > TIME_RATIO_BUDGET:
            failures.append(f"{op} {mib} MiB: ratio {ratio:.2f} > {TIME_RATIO_BUDGET}")
    versions = ObjectVersion.query.filter_by(bucket_id=bucket_id).count()
    db.session.remove()
    print(f"(object versions written: {versions})")
    return failures


def bench_memory(port, directory, sizes_mib):
    """Print the peak memory of a streamed upload and download."""
    print("\npeak memory (tracemalloc) of one transfer through the record endpoint")
    peaks = {}
    for mib in sizes_mib:
        path = make_file(directory, mib)
        size = mib * 1024 * 1024
        url = f"/api/records/big/files/mem-{mib}.bin"
        for method in ("PUT", "GET"):
            tracemalloc.start()
            transfer(port, method, url, path if method == "PUT" else None, size)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            peaks[method, mib] = peak
            print(f"{method} {mib:>4} MiB: peak {peak / 1024 / 1024:6.2f} MiB")
    return peaks


def add_ceiling_views(app) -> None:
    """Register the trivial chunked views: the ceiling of this stack."""

    def download(bucket_id, key):
        obj = ObjectVersion.get(bucket_id, key)
        fp = obj.file.storage().open("rb")

        def chunks():
            with fp:
                while chunk := fp.read(MIB):
                    yield chunk

        return Response(
            chunks(),
            mimetype="application/octet-stream",
            headers={"Content-Length": str(obj.file.size)},
            direct_passthrough=True,
        )

    def upload(bucket_id, key):
        bucket = Bucket.get(bucket_id)
        fileinstance = FileInstance.create()
        storage = fileinstance.storage(default_location=bucket.location.uri)
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        with storage.open("wb") as fp:
            while chunk := request.stream.read(MIB):
                md5.update(chunk)
                fp.write(chunk)
                size += len(chunk)
        storage.delete()
        db.session.rollback()
        return {"size": size, "checksum": f"md5:{md5.hexdigest()}"}

    app.add_url_rule(
        "/bench/ceiling/<bucket_id>/<key>",
        "bench_ceiling_download",
        download,
        methods=["GET"],
    )
    app.add_url_rule(
        "/bench/ceiling/<bucket_id>/<key>",
        "bench_ceiling_upload",
        upload,
        methods=["PUT"],
    )


def make_random_file(directory, mib):
    """Write ``mib`` MiB of random bytes (no repeated block); return its path."""
    path = os.path.join(directory, f"random-{mib}MiB.bin")
    with open(path, "wb") as fp:
        for _ in range(mib):
            fp.write(os.urandom(MIB))
    return path


def bench_rates(port, directory, mib, rounds):
    """Print download and upload rates: record endpoint, Files-REST, ceiling."""
    record = make_record("rate", 0)
    bucket_id = record.bucket.id
    db.session.remove()
    path = make_random_file(directory, mib)
    size = mib * MIB
    urls = {
        "record": "/api/records/rate/files/rate.bin",
        "Files-REST": f"/api/files/{bucket_id}/rate.bin",
        "ceiling": f"/bench/ceiling/{bucket_id}/rate.bin",
    }
    transfer(port, "PUT", urls["record"], path, size)
    best = {(op, name): float("inf") for op in ("GET", "PUT") for name in urls}
    names = list(urls)
    for turn in range(rounds):
        order = names[turn % len(names) :] + names[: turn % len(names)]
        for name in order:
            seconds, received = transfer(port, "GET", urls[name])
            if received != size:
                raise RuntimeError(f"GET {urls[name]}: {received} bytes of {size}")
            best["GET", name] = min(best["GET", name], seconds)
        for name in order:
            seconds, _ = transfer(port, "PUT", urls[name], path, size)
            best["PUT", name] = min(best["PUT", name], seconds)

    def rate(op, name):
        return mib / best[op, name]

    print(f"\n{mib} MiB of random bytes over loopback, best of {rounds}: MiB/s")
    print(
        f"{'':<10}{'record':>10}{'Files-REST':>12}{'ceiling':>10}"
        f"{'record/Files-REST':>20}{'record/ceiling':>16}"
    )
    failures = []
    for op in ("GET", "PUT"):
        vs_files_rest = rate(op, "record") / rate(op, "Files-REST")
        vs_ceiling = rate(op, "record") / rate(op, "ceiling")
        print(
            f"{op:<10}{rate(op, 'record'):>10.0f}{rate(op, 'Files-REST'):>12.0f}"
            f"{rate(op, 'ceiling'):>10.0f}{vs_files_rest:>20.2f}{vs_ceiling:>16.2f}"
        )
        if op == "GET" and vs_files_rest < DOWNLOAD_VS_FILES_REST:
            failures.append(
                f"GET: {vs_files_rest:.2f}x Files-REST < {DOWNLOAD_VS_FILES_REST}x"
            )
        if op == "GET" and vs_ceiling < DOWNLOAD_VS_CEILING:
            failures.append(f"GET: {vs_ceiling:.2f}x ceiling < {DOWNLOAD_VS_CEILING}x")
    return failures


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", action="store_true", help="only the scale table")
    parser.add_argument(
        "--archive",
        action="store_true",
        help="only the archive: memory, throughput against the object endpoint "
        "(benchmarks/bench_archive.py, in this run)",
    )
    parser.add_argument("--scale-sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--rate-mib", type=int, default=64)
    parser.add_argument("--rate-rounds", type=int, default=3)
    args = parser.parse_args()

    if args.archive:
        import bench_archive

        return bench_archive.main(["--rounds", str(args.rounds)])
    if args.scale:
        with bench_app() as app, app.app_context():
            counter = StatementCounter(db.engine)
            failures = scale.run(app, counter, args.scale_sizes, args.repeat)
            counter.close()
        return report(failures)

    directory = tempfile.mkdtemp(prefix="irf-bench-rest-")
    failures = []
    with bench_app() as app, app.app_context():
        add_ceiling_views(app)
        counter = StatementCounter(db.engine)
        server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            failures += bench_listing(app, counter, args.sizes)
            failures += bench_upload_growth(app, counter, args.sizes)
            failures += bench_transfers(
                app, counter, server.server_port, directory, args.mib, args.rounds
            )
            bench_memory(server.server_port, directory, [8, args.mib])
            failures += bench_rates(
                server.server_port, directory, args.rate_mib, args.rate_rounds
            )
        finally:
            server.shutdown()
            counter.close()
    shutil.rmtree(directory, ignore_errors=True)
    return report(failures)


if __name__ == "__main__":
    sys.exit(main())
