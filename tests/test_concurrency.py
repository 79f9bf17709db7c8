# SPDX-License-Identifier: MIT
"""Concurrent writes to one record over a real HTTP server (PostgreSQL, MariaDB).

Clients in threads hit a threaded Werkzeug server on loopback at the same
moment (a barrier releases them together). Every write through the record
files endpoints locks the record row, then the bucket row, so concurrent
writers queue up: none may get a 500, lose another's change or deadlock.
The app commits for real, so it runs on a database of this module's own.
"""

import hashlib
import http.client
import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
import requests
from invenio_db import db
from invenio_files_rest.models import Location
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlalchemy_utils.types import UUIDType
from werkzeug.serving import make_server

from examples.app import QuietHandler

from .helpers import (
    as_json,
    as_uuid,
    create_app,
    new_database,
    server_connect_args,
)

pytestmark = pytest.mark.row_locks

REQUEST_TIMEOUT = 30
"""Seconds a request may take: a hung (deadlocked) request fails the test."""

LOCK_TIMEOUT_MS = 10_000
"""Lock wait limit of the server's connections (:func:`server_connect_args`).

A lock wait that never ends becomes a server error with a traceback (shorter
than ``REQUEST_TIMEOUT``) rather than a silent client time-out. Real lock
waits here last milliseconds: locks are held for a few statements.
"""

FILE_SIZE = 256 * 1024


class ErrorLog(logging.Handler):
    """Collect the server's error log records (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class LiveServer:
    base_url: str
    reader: Engine
    app: object
    """Engine of its own (no pool) to read what was really committed."""
    errors: ErrorLog = field(default_factory=ErrorLog)

    def url(self, path: str) -> str:
        return self.base_url + path

    def report(self) -> str:
        """Server errors logged so far, for assertion messages."""
        return "\n".join(self.errors.lines) or "(no server errors logged)"


def live_server(database_uri, backend, files_dir, name, **engine_options):
    """Run the example app on a database of its own behind a threaded server."""
    if backend == "sqlite":
        pytest.skip(
            "needs PostgreSQL or MariaDB (set SQLALCHEMY_DATABASE_URI): "
            "concurrent writers rely on row locks (SELECT ... FOR UPDATE)"
        )
    with new_database(database_uri, f"{make_url(database_uri).database}_{name}") as uri:
        app = create_app(
            uri,
            SQLALCHEMY_ENGINE_OPTIONS={
                **engine_options,
                "connect_args": server_connect_args(uri, LOCK_TIMEOUT_MS),
            },
        )
        with app.app_context():
            db.create_all()
            db.session.add(
                Location(name=name.replace("_", "-"), uri=str(files_dir), default=True)
            )
            db.session.commit()
        http = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
        )
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        live = LiveServer(
            base_url=f"http://127.0.0.1:{http.server_port}",
            reader=create_engine(uri, poolclass=NullPool),
            app=app,
        )
        # Werkzeug ("Error on request") and Flask ("Exception on ...") log
        # unhandled errors; both propagate to the root logger.
        logging.getLogger().addHandler(live.errors)
        try:
            yield live
        finally:
            logging.getLogger().removeHandler(live.errors)
            http.shutdown()
            http.server_close()
            thread.join(timeout=10)
            live.reader.dispose()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.fixture(scope="module")
def server(database_uri, backend, tmp_path_factory):
    yield from live_server(
        database_uri,
        backend,
        tmp_path_factory.mktemp("files"),
        "concurrency",
        pool_size=20,
        max_overflow=10,
    )


@pytest.fixture
def live(server):
    server.errors.lines.clear()
    yield server
    assert not server.errors.lines, server.report()


def call(method: str, url: str, **kwargs) -> requests.Response:
    return requests.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)


def run_together(jobs: list) -> list:
    """Run the callables in threads released together; return their results.

    A job that raises (e.g. a request time-out) returns its formatted
    exception; a job still running after the deadline fails the test.
    """
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def work(index, job):
        try:
            barrier.wait(timeout=REQUEST_TIMEOUT)
            results[index] = job()
        except BaseException:
            results[index] = traceback.format_exc()

    threads = [
        threading.Thread(target=work, args=(index, job), daemon=True)
        for index, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * REQUEST_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in threads)
    assert not stuck, f"{stuck} clients still running (deadlock?)"
    failures = [result for result in results if isinstance(result, str)]
    assert not failures, "\n".join(failures)
    return results


def contents(tag: str, count: int) -> dict[str, bytes]:
    """Files of a few hundred KB, each with its own bytes and size."""
    return {f"{tag}-{i}.bin": os.urandom(FILE_SIZE + 1024 * i) for i in range(count)}


def create_record(live: LiveServer, title: str = "concurrency") -> tuple[str, int]:
    """Create a record over REST; return its PID value and revision."""
    response = call("POST", live.url("/api/records/"), json={"title": title})
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    return pid, stored_state(live, pid)["revision"]


def upload(live: LiveServer, pid: str, key: str, data: bytes):
    def job():
        return (
            "PUT",
            key,
            call(
                "PUT",
                live.url(f"/api/records/{pid}/files/{key}"),
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            ),
        )

    return job


def delete(live: LiveServer, pid: str, key: str):
    def job():
        return (
            "DELETE",
            key,
            call("DELETE", live.url(f"/api/records/{pid}/files/{key}")),
        )

    return job


def statuses(results) -> list[tuple[str, str, int]]:
    return [(method, key, response.status_code) for method, key, response in results]


def stored_state(live: LiveServer, pid: str) -> dict:
    """Read the record row and its bucket's objects with a fresh connection."""
    with live.reader.connect() as connection:
        json, version_id, bucket_id, record_id = connection.execute(
            text(
                "SELECT r.json, r.version_id, rb.bucket_id, r.id FROM pidstore_pid p "
                "JOIN records_metadata r ON r.id = p.object_uuid "
                "JOIN records_buckets rb ON rb.record_id = r.id "
                "WHERE p.pid_type = 'recid' AND p.pid_value = :pid"
            ),
            {"pid": pid},
        ).one()
        heads = connection.execute(
            text(
                "SELECT o.key, o.version_id, o.file_id, f.checksum, f.size "
                "FROM files_object o "
                "JOIN files_files f ON f.id = o.file_id "
                "WHERE o.bucket_id = :bucket AND o.is_head"
            ),
            {"bucket": bucket_id},
        ).all()
        bucket_size = connection.execute(
            text("SELECT size FROM files_bucket WHERE id = :bucket"),
            {"bucket": bucket_id},
        ).scalar_one()
        listed = (
            connection.execute(
                text(
                    "SELECT e.key FROM pidstore_pid p "
                    "JOIN records_files_entries e ON e.record_id = p.object_uuid "
                    "WHERE p.pid_type = 'recid' AND p.pid_value = :pid "
                    "ORDER BY e.position IS NULL, e.position, e.id"
                ),
                {"pid": pid},
            )
            .scalars()
            .all()
        )
    return {
        "id": as_uuid(record_id),
        "json": as_json(json),
        "listed": list(listed),
        "revision": version_id - 1,
        "bucket": str(as_uuid(bucket_id)),
        "heads": {
            key: {
                "version_id": str(as_uuid(v)),
                "file_id": str(as_uuid(f)),
                "checksum": c,
                "size": s,
            }
            for key, v, f, c, s in heads
        },
        "bucket_size": bucket_size,
    }


def check_record(
    live: LiveServer, pid: str, files: dict[str, bytes]
) -> tuple[dict, int]:
    """Check that REST, the stored record and the bucket all hold ``files``.

    :returns: The record's REST representation and its stored revision (the
        records-rest JSON has none).
    """
    record = call("GET", live.url(f"/api/records/{pid}"))
    assert record.status_code == 200, record.text
    record = record.json()
    listing = call("GET", live.url(f"/api/records/{pid}/files"))
    assert listing.status_code == 200, listing.text
    listing = listing.json()
    fields = ("version_id", "checksum", "size")
    listed = {
        item["key"]: {k: str(item[k]) for k in fields} for item in listing["contents"]
    }
    assert sorted(listed) == sorted(files)

    entries = record["metadata"].get("_files", [])
    assert len(entries) == len(files), [entry["key"] for entry in entries]
    in_record = {
        entry["key"]: {k: str(entry[k]) for k in (*fields, "file_id")}
        for entry in entries
    }
    assert {key: {k: e[k] for k in fields} for key, e in in_record.items()} == listed
    for key, data in files.items():
        assert (
            listed[key]["checksum"]
            == f"md5:{hashlib.md5(data, usedforsecurity=False).hexdigest()}"
        )
        assert listed[key]["size"] == str(len(data))
        download = call("GET", live.url(f"/api/records/{pid}/files/{key}"))
        assert download.status_code == 200, key
        assert download.content == data, key

    stored = stored_state(live, pid)
    metadata = {k: v for k, v in record["metadata"].items() if k != "_files"}
    assert stored["json"] == metadata
    assert stored["listed"] == [entry["key"] for entry in entries]
    assert record["metadata"]["_bucket"] == stored["bucket"]
    assert {entry["bucket"] for entry in entries} <= {stored["bucket"]}
    heads = {
        key: {k: str(v) for k, v in head.items()}
        for key, head in stored["heads"].items()
    }
    assert heads == in_record
    # Files-REST adds each new version's size to the bucket's and subtracts
    # the head's when a delete marker hides it. Every key here is written
    # once, so the bucket's size is that of its heads, unless a concurrent
    # update of bucket.size was lost.
    assert stored["bucket_size"] == sum(len(data) for data in files.values())
    assert listing["size"] == stored["bucket_size"]
    return record, stored["revision"]


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_uploads_are_all_kept(live, round_):
    pid, revision = create_record(live)
    files = contents("file", 8)

    results = run_together([upload(live, pid, k, v) for k, v in files.items()])

    assert statuses(results) == [("PUT", key, 200) for key in files], live.report()
    record, final = check_record(live, pid, files)
    for _, key, response in results:
        entry = next(e for e in record["metadata"]["_files"] if e["key"] == key)
        assert entry["version_id"] == response.json()["version_id"]
    # One new revision per upload: each one committed the record once.
    assert final == revision + len(files)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_uploads_and_deletes(live, round_):
    pid, _ = create_record(live)
    old, new = contents("old", 4), contents("new", 4)
    for key, data in old.items():
        assert upload(live, pid, key, data)()[2].status_code == 200
    _, revision = check_record(live, pid, old)

    results = run_together(
        [upload(live, pid, k, v) for k, v in new.items()]
        + [delete(live, pid, key) for key in old]
    )

    assert statuses(results) == [("PUT", key, 200) for key in new] + [
        ("DELETE", key, 204) for key in old
    ], live.report()
    _, final = check_record(live, pid, new)
    assert final == revision + len(new) + len(old)
    for key in old:
        response = call("GET", live.url(f"/api/records/{pid}/files/{key}"))
        assert response.status_code == 404, key


EDITS = 5


class Edit(NamedTuple):
    editor: int
    title: str
    response: requests.Response
    start: float
    end: float

    @property
    def applied(self) -> bool:
        return self.response.status_code == 200


@pytest.mark.parametrize("editors", [1, 4])
def test_concurrent_metadata_edits_and_uploads(live, editors):
    pid, revision = create_record(live, title="original")
    files = contents("upload", 4)
    bucket = stored_state(live, pid)["bucket"]

    def editor_job(editor):
        def job():
            done = []
            for n in range(EDITS):
                title = f"edit {editor}.{n}"
                start = time.monotonic()
                response = call(
                    "PUT",
                    live.url(f"/api/records/{pid}"),
                    json={"title": title},
                    headers={"Content-Type": "application/json"},
                )
                done.append(Edit(editor, title, response, start, time.monotonic()))
            return done

        return job

    results = run_together(
        [upload(live, pid, k, v) for k, v in files.items()]
        + [editor_job(editor) for editor in range(editors)]
    )

    uploads, by_editor = results[: len(files)], results[len(files) :]
    assert statuses(uploads) == [("PUT", key, 200) for key in files], live.report()
    edits = [edit for done in by_editor for edit in done]
    codes = [edit.response.status_code for edit in edits]
    # A metadata PUT replaces the metadata its request read; Record.commit
    # then locks the row and refuses (StaleDataError: 409 from records-rest)
    # only if another transaction changed the *metadata* in between. Uploads
    # change only _files, which is merged: with one editor nothing may
    # conflict. With several, two edits genuinely race (one read the record
    # before the other committed), so a 409 is then the correct answer, and
    # it must overlap in time an edit of another editor that was applied.
    assert set(codes) <= ({200} if editors == 1 else {200, 409}), (
        codes,
        live.report(),
    )
    applied = [edit for edit in edits if edit.applied]
    assert applied, codes
    for edit in edits:
        if edit.applied:
            metadata = edit.response.json()["metadata"]
            assert metadata["title"] == edit.title
            assert metadata["_bucket"] == bucket
            assert {e["key"] for e in metadata.get("_files", [])} <= set(files)
        else:
            assert any(
                other.editor != edit.editor
                and other.start < edit.end
                and edit.start < other.end
                for other in applied
            ), edit

    record, final = check_record(live, pid, files)
    # The last edit applied wins: the last applied edit of one editor.
    last_applied = {
        [edit for edit in done if edit.applied][-1].title
        for done in by_editor
        if any(edit.applied for edit in done)
    }
    assert record["metadata"]["title"] in last_applied
    # PUT replaces the metadata (control_number included); the server keeps
    # _bucket and _files.
    assert set(record["metadata"]) == {"title", "_bucket", "_files"}
    # Every successful write (upload or edit) made exactly one revision.
    assert final == revision + len(files) + len(applied)


def python_api_writer(live: LiveServer, record_id, files: dict[str, bytes]):
    """A worker adding files through the Python API, one commit per file."""

    def job():
        from invenio_records_files.api import Record

        with live.app.app_context():
            record = Record.get_record(record_id)
            try:
                for key, data in files.items():
                    record.files[key] = BytesIO(data)
                    record.commit()
                    db.session.commit()
            finally:
                db.session.remove()
        return ("API", "all", None)

    return job


@pytest.mark.parametrize("round_", range(3))
def test_python_api_writer_and_http_clients(live, round_):
    pid, revision = create_record(live)
    record_id = stored_state(live, pid)["id"]
    api_files, http_files = contents("api", 5), contents("http", 10)

    results = run_together(
        [python_api_writer(live, record_id, api_files)]
        + [upload(live, pid, k, v) for k, v in http_files.items()]
    )

    assert results[0] == ("API", "all", None)
    assert statuses(results[1:]) == [("PUT", key, 200) for key in http_files]
    _, final = check_record(live, pid, {**api_files, **http_files})
    assert final == revision + len(api_files) + len(http_files)


# -- hostile and unlucky clients (issue: no 500, no deadlock, nothing lost) -------


def multipart_upload(live: LiveServer, pid: str, key: str, data: bytes, part: int):
    """Start a multipart upload and send its parts; return its URL."""
    response = call(
        "POST",
        live.url(
            f"/api/records/{pid}/files/{key}?uploads&size={len(data)}&partSize={part}"
        ),
    )
    assert response.status_code == 200, response.text
    url = live.url(f"/api/records/{pid}/files/{key}?uploadId={response.json()['id']}")
    for number, start in enumerate(range(0, len(data), part)):
        response = call(
            "PUT", f"{url}&partNumber={number}", data=data[start : start + part]
        )
        assert response.status_code == 200, response.text
    return url


def complete(url):
    return lambda: ("POST", "complete", call("POST", url))


def abort(url):
    return lambda: ("DELETE", "abort", call("DELETE", url))


def leftover_uploads(live: LiveServer) -> int:
    with live.reader.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM files_multipartobject")
        ).scalar()


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_completions_of_one_upload(live, round_):
    pid, _ = create_record(live)
    data = os.urandom(3 * 1024)
    url = multipart_upload(live, pid, "big.bin", data, 1024)

    results = run_together([complete(url) for _ in range(8)])

    codes = sorted(code for _, _, code in statuses(results))
    assert codes.count(200) == 1, (codes, live.report())
    assert set(codes) <= {200, 404, 409}, (codes, live.report())
    check_record(live, pid, {"big.bin": data})
    assert leftover_uploads(live) == 0


@pytest.mark.parametrize("round_", range(4))
def test_completions_racing_abortions(live, round_):
    pid, _ = create_record(live)
    data = os.urandom(3 * 1024)
    url = multipart_upload(live, pid, "big.bin", data, 1024)

    jobs = [complete(url), abort(url)] * 4
    results = run_together(jobs[round_ % 2 :] + jobs[: round_ % 2])

    completed = [c for m, _, c in statuses(results) if m == "POST" and c == 200]
    aborted = [c for m, _, c in statuses(results) if m == "DELETE" and c == 204]
    codes = {code for _, _, code in statuses(results)}
    assert codes <= {200, 204, 404, 409}, (codes, live.report())
    assert len(completed) + len(aborted) == 1, statuses(results)
    check_record(live, pid, {"big.bin": data} if completed else {})
    assert leftover_uploads(live) == 0


@pytest.mark.parametrize("round_", range(3))
def test_record_deletion_racing_uploads(live, round_):
    pid, _ = create_record(live)
    for key, data in contents("before", 2).items():
        assert upload(live, pid, key, data)()[2].status_code == 200

    def delete_record():
        return ("DELETE", "record", call("DELETE", live.url(f"/api/records/{pid}")))

    uploads = contents("during", 6)
    results = run_together(
        [upload(live, pid, k, v) for k, v in uploads.items()] + [delete_record]
    )

    *upload_results, deletion = statuses(results)
    assert deletion == ("DELETE", "record", 204), live.report()
    assert {code for _, _, code in upload_results} <= {200, 410}, upload_results
    assert call("GET", live.url(f"/api/records/{pid}")).status_code == 410
    assert call("GET", live.url(f"/api/records/{pid}/files")).status_code == 410


@pytest.fixture(scope="module")
def small_pool(database_uri, backend, tmp_path_factory):
    yield from live_server(
        database_uri,
        backend,
        tmp_path_factory.mktemp("files"),
        "small_pool",
        pool_size=2,
        max_overflow=0,
        pool_timeout=5,
    )


def slow_upload(live: LiveServer, pid: str, key: str, data: bytes, seconds: float):
    """Send ``data`` in pieces over ``seconds``; return the response status."""

    def job():
        parsed = urlsplit(live.url(f"/api/records/{pid}/files/{key}"))
        connection = http.client.HTTPConnection(
            parsed.hostname, parsed.port, timeout=REQUEST_TIMEOUT
        )
        connection.putrequest("PUT", parsed.path)
        connection.putheader("Content-Length", str(len(data)))
        connection.putheader("Content-Type", "application/octet-stream")
        connection.endheaders()
        pieces = 10
        step = len(data) // pieces + 1
        for start in range(0, len(data), step):
            connection.send(data[start : start + step])
            time.sleep(seconds / pieces)
        status = connection.getresponse().status
        connection.close()
        return ("PUT", key, status)

    return job


def import_files(live: LiveServer, target: str, source: str):
    def job():
        return (
            "IMPORT",
            source,
            call(
                "POST",
                live.url(f"/api/records/{target}/files"),
                params={"import": source},
            ),
        )

    return job


@pytest.mark.parametrize("round_", range(2))
def test_slow_clients_hold_no_connection(small_pool, round_):
    live = small_pool
    live.errors.lines.clear()
    pid, _ = create_record(live)
    other, _ = create_record(live, title="other")
    files = contents("slow", 4)

    def listing_while_uploading():
        time.sleep(1.0)  # the slow uploads are sending their bodies now
        start = time.monotonic()
        response = call("GET", live.url(f"/api/records/{other}/files"))
        return ("GET", "listing", (response.status_code, time.monotonic() - start))

    results = run_together(
        [slow_upload(live, pid, k, v, seconds=4) for k, v in files.items()]
        + [listing_while_uploading]
    )

    *uploads, (_, _, (status, seconds)) = results
    assert status == 200
    assert seconds < 1.0, seconds
    assert [code for _, _, code in uploads] == [200] * len(files), live.report()
    check_record(live, pid, files)
    assert not live.errors.lines, live.report()


def lock_bucket(live: LiveServer, pid: str) -> None:
    """Lock the record's bucket (publish it), as a fresh transaction."""
    with live.reader.begin() as connection:
        connection.execute(
            text("UPDATE files_bucket SET locked = true WHERE id = :bucket").bindparams(
                bindparam("bucket", type_=UUIDType())
            ),
            {"bucket": stored_state(live, pid)["bucket"]},
        )


@pytest.mark.parametrize("round_", range(3))
def test_import_racing_uploads_loses_nothing(live, round_):
    source, _ = create_record(live, title="published")
    published = contents("published", 4)
    for key, data in published.items():
        assert upload(live, source, key, data)()[2].status_code == 200
    lock_bucket(live, source)
    target, revision = create_record(live, title="new version")
    uploads = contents("upload", 6)

    results = run_together(
        [import_files(live, target, source)]
        + [upload(live, target, k, v) for k, v in uploads.items()]
    )

    assert statuses(results) == [("IMPORT", source, 200)] + [
        ("PUT", key, 200) for key in uploads
    ], live.report()
    listing = results[0][2].json()["contents"]
    assert set(published) <= {item["key"] for item in listing}
    _, final = check_record(live, target, {**published, **uploads})
    # The import and each upload committed the record once.
    assert final == revision + 1 + len(uploads)
    check_record(live, source, published)
    shared = stored_state(live, source)["heads"]
    copied = stored_state(live, target)["heads"]
    for key in published:
        assert copied[key]["file_id"] == shared[key]["file_id"], key


def stored_uris(live: LiveServer) -> tuple[set[str], set[str]]:
    """The files on storage, and those the database knows (every bucket)."""
    with live.reader.connect() as connection:
        root = connection.execute(
            text("SELECT uri FROM files_location WHERE name = 'concurrency'")
        ).scalar_one()
        known = set(connection.execute(text("SELECT uri FROM files_files")).scalars())
    on_disk = {str(path) for path in Path(root).rglob("data")}
    return on_disk, known


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_uploads_cannot_overshoot_the_file_limit(live, monkeypatch, round_):
    monkeypatch.setitem(live.app.config, "RECORDS_FILES_MAX_FILES", 5)
    pid, revision = create_record(live)
    files = contents("limited", 8)

    results = run_together([upload(live, pid, k, v) for k, v in files.items()])

    codes = sorted(response.status_code for _, _, response in results)
    assert codes == [200] * 5 + [400] * 3, live.report()
    for _, _, response in results:
        if response.status_code == 400:
            assert response.json() == {
                "status": 400,
                "message": "A record may hold at most 5 files.",
            }
    kept = {
        key: files[key] for _, key, response in results if response.status_code == 200
    }
    _, final = check_record(live, pid, kept)
    assert final == revision + 5
    # The refused uploads' bytes were removed: nothing on storage that no
    # file row names.
    on_disk, known = stored_uris(live)
    assert on_disk == known
    # A new version of a file the record holds is still allowed.
    key = next(iter(kept))
    assert upload(live, pid, key, b"new version")()[2].status_code == 200


def checker(live: LiveServer, runs: int):
    """``records-files check`` run again and again while others write."""

    def job():
        runner = live.app.test_cli_runner()
        outputs = []
        for _ in range(runs):
            result = runner.invoke(args=["records-files", "check"])
            outputs.append((result.exit_code, result.output))
        return ("CHECK", "all", outputs)

    return job


@pytest.mark.parametrize("round_", range(3))
def test_check_reports_no_drift_while_rest_writes_run(live, round_):
    pid, _ = create_record(live)
    files = contents("drift", 12)
    for key in list(files)[:4]:
        assert upload(live, pid, key, files[key])()[2].status_code == 200

    results = run_together(
        [checker(live, 8)]
        + [upload(live, pid, k, v) for k, v in list(files.items())[4:]]
        + [delete(live, pid, key) for key in list(files)[:2]]
    )

    _, _, outputs = results[0]
    assert [output for code, output in outputs if code != 0] == []
    assert all("no problems found" in output for _, output in outputs)


@pytest.mark.skip(
    reason="flaky in the full PostgreSQL pass (its removal thread ran no request "
    "in one CI run): passes alone; to be made deterministic"
)
def test_verify_does_not_count_a_version_removed_meanwhile(live, monkeypatch):
    """Reads take 20 ms each, as on an object store; one version goes meanwhile."""
    from invenio_files_rest.storage import PyFSFileStorage

    pid, _ = create_record(live)
    for key in ("a.txt", "b.txt", "c.txt"):
        assert upload(live, pid, key, key.encode() * 10)()[2].status_code == 200
    old = upload(live, pid, "a.txt", b"second")()[2]  # a.txt has two versions
    assert old.status_code == 200
    first = next(
        version
        for version in call(
            "GET", live.url(f"/api/records/{pid}/files?versions")
        ).json()["contents"]
        if version["key"] == "a.txt" and not version["is_head"]
    )
    original_open = PyFSFileStorage.open
    removed = []

    def slow_open(self, *args, **kwargs):
        time.sleep(0.02)
        if not removed:  # while the first file is read, remove the old version
            url = live.url(f"/api/records/{pid}/files/a.txt")
            worker = threading.Thread(
                target=lambda: removed.append(
                    call("DELETE", url, params={"versionId": first["version_id"]})
                )
            )
            worker.start()
            worker.join()
        return original_open(self, *args, **kwargs)

    monkeypatch.setattr(PyFSFileStorage, "open", slow_open)
    runner = live.app.test_cli_runner()
    result = runner.invoke(args=["records-files", "verify", "--all"])

    assert removed[0].status_code == 204
    lines = result.output.splitlines()
    # Other tests' records share this database: only what this test did counts.
    assert "failed" not in result.output, result.output
    assert lines[-1].endswith("all intact."), result.output
    assert "1 file was removed while being verified (not counted)." in lines
    assert result.exit_code == 0, result.output
