# SPDX-License-Identifier: MIT
"""Cost of the zip archive of a record's files (``GET <files URL>-archive``).

Over real HTTP on loopback (a threaded Werkzeug server in this process), in
one run, on the same machine:

1. Peak memory of one archive download of 1 GiB (16 files of 64 MiB by
   default) and of a small one, server and client in this process: Python's
   tracemalloc's peak (a download of its own) and the growth of the
   process's resident set size (sampled every 5 ms during another download).
   Budget: the 1 GiB archive grows the peak by at most 64 MiB.
2. Throughput, best of several alternating rounds, of:

   * the archive, CRC-32s computed while streaming (cache emptied first);
   * the archive, CRC-32s cached (a second download);
   * one file of the same total size through our object endpoint
     (``GET /api/records/<pid>/files/<key>``);
   * a trivial Flask view streaming the same file in 1 MiB chunks (the
     stack's ceiling).

   Budget: the archive within 0.8x the throughput of the object endpoint.
3. SQL statements of an archive download.

    python benchmarks/bench_archive.py
    python benchmarks/bench_archive.py --files 16 --mib 64 --rounds 3
"""

import argparse
import http.client
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
import zipfile

from common import report
from flask import Response
from invenio_db import db
from invenio_files_rest.models import Location, ObjectVersion
from werkzeug.serving import WSGIRequestHandler, make_server

from examples.app import create_app
from invenio_records_files.models import FileCRC32
from tests.helpers import StatementCounter, create_record

MIB = 1024 * 1024
MEMORY_BUDGET = 64 * MIB
THROUGHPUT_BUDGET = 0.8


class QuietHandler(WSGIRequestHandler):
    """Request handler that does not log."""

    def log_request(self, *args, **kwargs):
        """Do not log requests."""


class Blocks:
    """A readable stream of ``size`` pseudo-random bytes, made on the fly."""

    def __init__(self, size: int, seed: int) -> None:
        self.block = os.urandom(MIB)[:-1] + bytes([seed % 256])
        self.remaining = size

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes."""
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = (self.block * (size // MIB + 1))[:size]
        self.remaining -= len(data)
        return data


def make_record(pid_value: str, files: int, size: int):
    """Create a record with ``files`` files of ``size`` bytes each."""
    streams = {f"file-{index:03d}.bin": Blocks(size, index) for index in range(files)}
    return create_record(pid_value, files=streams)


def download(port: int, path: str, headers=None) -> tuple[float, int, int]:
    """GET ``path``; read 1 MiB at a time; return (seconds, bytes, status)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    received = 0
    while chunk := response.read(MIB):
        received += len(chunk)
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed, received, response.status


def rss() -> int:
    """Resident set size of this process now, in bytes."""
    with open("/proc/self/statm") as fp:
        return int(fp.read().split()[1]) * resource.getpagesize()


class RssSampler(threading.Thread):
    """Sample the resident set size every few milliseconds; keep the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss()
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self.done.wait(0.005):
            self.peak = max(self.peak, rss())

    def stop(self) -> int:
        """Stop; return the peak."""
        self.done.set()
        self.join()
        return self.peak


def bench_memory(port, sizes):
    """Peak memory of archive downloads; return the failures."""
    print("\npeak memory of one archive download (server and client here)")
    print(f"{'archive':>10} {'tracemalloc peak':>17} {'RSS peak growth':>16}")
    failures = []
    for pid, size in sizes:
        url = f"/api/records/{pid}/files-archive"
        before = rss()
        sampler = RssSampler()
        sampler.start()
        _, received, status = download(port, url)
        growth = sampler.stop() - before
        tracemalloc.start()
        download(port, url)
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if status != 200 or received < size:
            raise RuntimeError(f"archive {pid}: {status}, {received} bytes")
        print(
            f"{received / MIB:>6.0f} MiB {traced / MIB:>13.2f} MiB"
            f" {growth / MIB:>12.2f} MiB"
        )
        if received >= 1024 * MIB and max(traced, growth) > MEMORY_BUDGET:
            failures.append(
                f"memory of a {received / MIB:.0f} MiB archive: "
                f"{max(traced, growth) / MIB:.1f} MiB > {MEMORY_BUDGET / MIB:.0f}"
            )
    return failures


def bench_throughput(app, port, urls, size, rounds):
    """Best times of alternating downloads; return the failures."""
    best = dict.fromkeys(urls, float("inf"))
    for _ in range(rounds):
        for name, url in urls.items():
            if name == "archive, CRC-32 computed":
                with app.app_context():
                    FileCRC32.query.delete()
                    db.session.commit()
            seconds, received, status = download(port, url)
            if status != 200 or received < size:
                raise RuntimeError(f"{url}: {status}, {received} bytes")
            best[name] = min(best[name], seconds)
    print(f"\nthroughput, {size / MIB:.0f} MiB over HTTP, best of {rounds}")
    reference = best["one file, object endpoint"]
    ceiling = best["one file, plain Flask view"]
    print(f"{'':<32}{'seconds':>8}{'MiB/s':>8}{'vs object':>10}{'vs Flask':>9}")
    for name, seconds in best.items():
        print(
            f"{name:<32}{seconds:>8.3f}{size / MIB / seconds:>8.0f}"
            f"{reference / seconds:>10.2f}{ceiling / seconds:>9.2f}"
        )
    failures = []
    for name in ("archive, CRC-32 computed", "archive, CRC-32 cached"):
        ratio = reference / best[name]
        if ratio < THROUGHPUT_BUDGET:
            failures.append(f"{name}: {ratio:.2f}x the object endpoint")
    return failures


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--mib", type=int, default=64, help="MiB per file")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    size = args.files * args.mib * MIB

    directory = tempfile.mkdtemp(prefix="irf-bench-archive-")
    app = create_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{directory}/bench.db")

    plain = {}

    @app.route("/bench/plain")
    def plain_view():
        """Stream the single file in 1 MiB chunks: the stack's ceiling."""

        def generate():
            with open(plain["path"], "rb") as fp:
                while chunk := fp.read(MIB):
                    yield chunk

        return Response(generate(), headers={"Content-Length": str(size)})

    failures = []
    with app.app_context():
        db.create_all()
        db.session.add(Location(name="bench", uri=f"{directory}/files", default=True))
        db.session.commit()
        print(f"writing {args.files} x {args.mib} MiB and 1 x {size // MIB} MiB ...")
        make_record("many", args.files, args.mib * MIB)
        single = make_record("single", 0, 0)
        single.files["all.bin"] = Blocks(size, 7)
        single.commit()
        db.session.commit()
        plain["path"] = ObjectVersion.get(single.bucket, "all.bin").file.uri
        make_record("small", 4, MIB)
        counter = StatementCounter(db.engine)
        db.session.remove()

    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
    )
    port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _, received, _ = download(port, "/api/records/many/files-archive")
        archive_size = received
        failures += bench_memory(port, [("small", 4 * MIB), ("many", size)])
        urls = {
            "archive, CRC-32 computed": "/api/records/many/files-archive",
            "archive, CRC-32 cached": "/api/records/many/files-archive",
            "one file, object endpoint": "/api/records/single/files/all.bin",
            "one file, plain Flask view": "/bench/plain",
        }
        failures += bench_throughput(app, port, urls, size, args.rounds)

        with app.app_context():
            with counter.count():
                client = app.test_client()
                response = client.get("/api/records/small/files-archive")
                data = response.get_data()
            print(f"\nSQL statements of an archive download: {counter.total}")
            print(f"archive of {args.files} files: {archive_size} bytes")
            zipfile.ZipFile(__import__("io").BytesIO(data)).testzip()
            counter.close()
            db.session.remove()
    finally:
        server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)
    return report(failures)


if __name__ == "__main__":
    sys.exit(main())
