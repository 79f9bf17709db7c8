# SPDX-License-Identifier: MIT
"""Our Celery tasks, run by a real ``celery worker`` process on a real broker.

The module starts one worker (``--pool=solo``) for all its tests, with the
test application of ``tests/celery_worker.py`` on a database of the module's
own (PostgreSQL), and consumes a queue of its own on Redis (else RabbitMQ):
other test sessions on the same broker neither take its tasks nor give it
theirs. Tests commit their rows for real, send a task by name through the
broker, as Celery beat does, and wait for the worker to report it.

A test of another task (upload expiry, checksum backfill...) is one more
function here: commit its rows, :meth:`Worker.run` the task, check the rows.
"""

import ast
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from celery import Celery
from invenio_db import db
from invenio_files_rest.models import FileInstance, Location, ObjectVersion
from sqlalchemy.engine import make_url

from .helpers import create_app, create_record, new_database, stop_process

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parent.parent

TASK_TIMEOUT = 60
"""Seconds a task may take in the worker, from its sending."""

BROKERS = (
    (6379, "redis://127.0.0.1:6379/0"),
    (5672, "amqp://guest:guest@127.0.0.1:5672//"),
)


def broker_url() -> str:
    """The first broker that answers on loopback: Redis, else RabbitMQ."""
    for port, url in BROKERS:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            continue
        return url
    reason = "no Celery broker (Redis at 127.0.0.1:6379 or RabbitMQ at :5672)"
    if os.environ.get("RECORDS_FILES_REQUIRE_BROKER"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Worker:
    """A running ``celery worker`` and the client that sends it tasks."""

    client: Celery
    queue: str
    log: Path
    process: subprocess.Popen

    def run(self, name: str, **kwargs):
        """Send the task ``name`` and return what the worker says it returned.

        The worker logs ``Task <name>[<id>] succeeded in <s>: <value>`` (our
        tasks ignore their results: no result backend is involved).
        """
        task_id = self.client.send_task(name, kwargs=kwargs, queue=self.queue).id
        done = re.compile(
            rf"Task {re.escape(name)}\[{task_id}\] "
            r"(succeeded in [\d.]+s: (.*)|raised .*)$",
            re.MULTILINE,
        )
        deadline = time.monotonic() + TASK_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            found = done.search(self.output())
            if found:
                assert found.group(2) is not None, found.group(0)
                return ast.literal_eval(found.group(2))
            time.sleep(0.1)
        raise AssertionError(f"{name}[{task_id}] not done:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def tasks_app(database_uri, tmp_path_factory):
    """The test application on a database of this module's own (committed)."""
    name = f"{make_url(database_uri).database}_tasks"
    with new_database(database_uri, name) as uri:
        app = create_app(uri)
        with app.app_context():
            db.create_all()
            files = tmp_path_factory.mktemp("task-files")
            db.session.add(Location(name="tasks", uri=str(files), default=True))
            db.session.commit()
            engine = db.engine
        try:
            yield app
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def worker(tasks_app, tmp_path_factory):
    """One ``celery worker --pool=solo`` for the module, on a queue of its own."""
    url = broker_url()
    queue = f"irf-test-{uuid.uuid4().hex[:12]}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        "SQLALCHEMY_DATABASE_URI": tasks_app.config["SQLALCHEMY_DATABASE_URI"],
        "CELERY_BROKER_URL": url,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery"),
                *("--app", "tests.celery_worker", "worker"),
                *("--pool", "solo", "--queues", queue, "--loglevel", "INFO"),
                *("--hostname", f"{queue}@%h"),
                *("--without-heartbeat", "--without-mingle", "--without-gossip"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    client = Celery("irf-test-client", broker=url)
    client.conf.broker_connection_retry_on_startup = True
    worker = Worker(client=client, queue=queue, log=log, process=process)
    try:
        deadline = time.monotonic() + TASK_TIMEOUT
        while " ready." not in worker.output():
            assert process.poll() is None, worker.output()
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.1)
        yield worker
    finally:
        stop_process(process)
        client.close()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_verify_files_runs_in_the_worker(tasks_app, worker):
    with tasks_app.app_context():
        record = create_record("verify-1")
        for key, content in (("a.txt", b"a"), ("b.txt", b"bb"), ("c.txt", b"ccc")):
            record.files[key] = BytesIO(content)
        record.commit()
        db.session.commit()
        damaged = ObjectVersion.get(record.bucket_id, "b.txt").file
        with damaged.storage().open("wb") as fp:  # behind Files-REST's back
            fp.write(b"XX")
        ids = {obj.key: obj.file_id for obj in record.files.bucket.objects}
        db.session.remove()

    assert worker.run("invenio_records_files.tasks.verify_files") == {
        "checked": 3,
        "failed": 1,
    }

    with tasks_app.app_context():
        found = {
            key: db.session.get(FileInstance, file_id) for key, file_id in ids.items()
        }
        assert {key: f.last_check for key, f in found.items()} == {
            "a.txt": True,
            "b.txt": False,
            "c.txt": True,
        }
        assert all(f.last_check_at is not None for f in found.values())
        db.session.remove()
    # The failure is logged as an error naming the record and the key.
    assert re.search(
        rf"ERROR.*Fixity check failed: record recid:verify-1 .* key 'b.txt', "
        rf"version .*: expected {md5(b'bb')}, found {md5(b'XX')}\.",
        worker.output(),
    ), worker.output()

    # Checked a moment ago: the scheduled run (30 days) has nothing to do.
    assert worker.run(
        "invenio_records_files.tasks.verify_files", older_than_days=30
    ) == {"checked": 0, "failed": 0}
