# SPDX-License-Identifier: MIT
"""A storm of concurrent writers across processes: gunicorn on PostgreSQL.

gunicorn serves the test application (``tests/wsgi.py``) with
``STORM_WORKERS`` worker processes on loopback, each with its own engine and
connections; clients in threads upload, delete, import (``POST ...?import=``)
and download archives of the same few records at once, while a Python-API
writer in this process adds files through ``record.files[key] = stream``.
Writers meet only in the database: the row locks of the record and of its
bucket must order them across processes as they do across threads
(``tests/test_concurrency.py``, whose clients and readers this reuses).

The storm is bounded (``ROUNDS`` operations per client, ``STORM_TIMEOUT``
seconds in all). It ends with: no 500 and no deadlock (no error in the
server's log), each record's ``_files`` equal to its bucket's current files,
and no orphan: every file instance belongs to an object version, and the
bytes on disk are exactly those of the file instances.
"""

import io
import os
import random
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests
from invenio_db import db
from invenio_files_rest.models import Location
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .helpers import create_app, new_database, stop_process
from .test_concurrency import (
    LiveServer,
    call,
    contents,
    delete,
    import_files,
    lock_bucket,
    python_api_writer,
    run_together,
    stored_state,
    upload,
)
from .test_concurrency import (
    create_record as create_rest_record,
)

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parent.parent

STORM_WORKERS = int(os.environ.get("STORM_WORKERS", "4"))
"""gunicorn worker processes (4 or more: more than this machine's cores)."""

CLIENTS = 8
ROUNDS = 12
"""Operations of each client thread."""

STORM_TIMEOUT = 120
"""Seconds the whole storm may take; a stuck client fails the test."""

ERRORS = re.compile(r"Traceback|Exception on|Error handling request|deadlock", re.I)


def wait_until(predicate, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def gunicorn(database_uri, tmp_path_factory):
    """gunicorn with ``STORM_WORKERS`` processes on a database of its own."""
    name = f"{make_url(database_uri).database}_storm"
    with new_database(database_uri, name) as uri:
        files_dir = tmp_path_factory.mktemp("storm-files")
        app = create_app(uri)
        with app.app_context():
            db.create_all()
            db.session.add(Location(name="storm", uri=str(files_dir), default=True))
            db.session.commit()
        log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
            ),
            "SQLALCHEMY_DATABASE_URI": uri,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn"),
                    *("--workers", str(STORM_WORKERS), "--bind", "127.0.0.1:0"),
                    *("--worker-class", "gthread", "--threads", "2"),
                    *("--timeout", "60", "--graceful-timeout", "5"),
                    *("--error-logfile", "-", "--log-level", "info"),
                    # No control socket: another session's is at the same
                    # default path.
                    "--no-control-socket",
                    "tests.wsgi:create()",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        reader = create_engine(uri, poolclass=NullPool)
        try:
            listening = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
            wait_until(
                lambda: (
                    process.poll() is not None
                    or (
                        len(re.findall("Booting worker", log.read_text()))
                        >= STORM_WORKERS
                        and listening.search(log.read_text())
                    )
                ),
                60,
                "gunicorn did not start its workers",
                log,
            )
            assert process.poll() is None, log.read_text()
            port = listening.search(log.read_text()).group(1)
            live = LiveServer(
                base_url=f"http://127.0.0.1:{port}", reader=reader, app=app
            )
            wait_until(lambda: _answers(live), 60, "gunicorn does not answer", log)
            yield live, log, files_dir, process
        finally:
            stop_process(process)
            reader.dispose()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def _answers(live: LiveServer) -> bool:
    try:
        # No search server here: an unknown record answers without one.
        return call("GET", live.url("/api/records/0")).status_code == 404
    except requests.RequestException:
        return False


def archive(live: LiveServer, pid: str):
    """Download all files of ``pid`` as a zip; check that it is whole."""

    def job():
        response = call("GET", live.url(f"/api/records/{pid}/files-archive"))
        if response.status_code == 200:
            assert zipfile.ZipFile(io.BytesIO(response.content)).testzip() is None
        return ("ARCHIVE", pid, response)

    return job


ALLOWED = {
    "PUT": {200},
    "DELETE": {204, 404},  # another client deleted it first
    "IMPORT": {200, 409},  # an earlier import's files are still there
    "ARCHIVE": {200},
}


def client(live: LiveServer, seed: int, targets: list[str], source: str):
    """A client doing ``ROUNDS`` random operations on the target records."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload
    data = contents(f"c{seed}", 3)

    def job():
        done = []
        for _ in range(ROUNDS):
            pid = rng.choice(targets)
            operation = rng.choices(
                ["PUT", "DELETE", "IMPORT", "ARCHIVE"], weights=[4, 3, 1, 2]
            )[0]
            key = rng.choice([f"shared-{i}.bin" for i in range(4)])
            if operation == "PUT":
                done.append(upload(live, pid, key, rng.choice(list(data.values())))())
            elif operation == "DELETE":
                done.append(delete(live, pid, key)())
            elif operation == "IMPORT":
                done.append(import_files(live, pid, source)())
            else:
                done.append(archive(live, pid)())
        return done

    return job


def orphans(live: LiveServer, files_dir: Path) -> dict:
    """File instances no object version names, and unnamed or missing bytes."""
    with live.reader.connect() as connection:
        unused = connection.execute(
            text(
                "SELECT f.uri FROM files_files f WHERE NOT EXISTS "
                "(SELECT 1 FROM files_object o WHERE o.file_id = f.id)"
            )
        ).all()
        known = set(connection.execute(text("SELECT uri FROM files_files")).scalars())
    on_disk = {str(path) for path in files_dir.rglob("data")}
    return {
        "unused file instances": sorted(uri for (uri,) in unused),
        "bytes no file instance names": sorted(on_disk - known),
        "file instances without bytes": sorted(known - on_disk),
    }


def test_storm_across_gunicorn_workers(gunicorn):
    live, log, files_dir, process = gunicorn
    source, _ = create_rest_record(live, title="published")
    for key, data in contents("published", 3).items():
        assert upload(live, source, key, data)()[2].status_code == 200
    lock_bucket(live, source)
    targets = [create_rest_record(live, title=f"target {i}")[0] for i in range(3)]
    api_record = stored_state(live, targets[0])["id"]

    started = time.monotonic()
    results = run_together(
        [client(live, seed, targets, source) for seed in range(CLIENTS)]
        + [python_api_writer(live, api_record, contents("api", 4))]
    )
    elapsed = time.monotonic() - started

    assert elapsed < STORM_TIMEOUT, elapsed
    assert process.poll() is None, log.read_text()
    *by_client, api_result = results
    assert api_result == ("API", "all", None)
    answers = [(op, key, r.status_code) for done in by_client for op, key, r in done]
    assert len(answers) == CLIENTS * ROUNDS
    unexpected = [a for a in answers if a[2] not in ALLOWED[a[0]]]
    server_log = log.read_text(errors="replace")
    assert not unexpected, (unexpected, server_log)
    assert not ERRORS.search(server_log), server_log
    # Every kind of operation really ran, and some succeeded.
    assert {op for op, _, code in answers if code in (200, 204)} >= {
        "PUT",
        "IMPORT",
        "ARCHIVE",
    }, answers

    for pid in [source, *targets]:
        stored = stored_state(live, pid)
        record = call("GET", live.url(f"/api/records/{pid}"))
        assert record.status_code == 200, record.text
        files = record.json()["metadata"].get("_files", [])
        # _files is the bucket's current files: same keys, same versions, in
        # the order of the record's entries.
        assert [f["key"] for f in files] == stored["listed"], pid
        assert {f["key"]: f["version_id"] for f in files} == {
            key: head["version_id"] for key, head in stored["heads"].items()
        }, pid
        listing = call("GET", live.url(f"/api/records/{pid}/files")).json()
        assert sorted(item["key"] for item in listing["contents"]) == sorted(
            stored["heads"]
        ), pid
    assert set(stored_state(live, targets[0])["heads"]) >= {
        f"api-{i}.bin" for i in range(4)
    }
    assert orphans(live, files_dir) == {
        "unused file instances": [],
        "bytes no file instance names": [],
        "file instances without bytes": [],
    }
