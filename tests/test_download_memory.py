# SPDX-License-Identifier: MIT
"""Bounded memory of downloads, measured through a real HTTP server.

A threaded Werkzeug server on loopback serves the example application (with
a database and files of this module's own); the test reads the response over
a socket while ``tracemalloc`` traces the allocations of both (the server
runs in a thread of this process). Werkzeug's test client is not used: it
buffers. A 256 MiB file of zeros (no newline byte), of random bytes and of
text may raise the peak by at most 16 MiB.

Measured: about 3 MiB (a chunk being read on the server, one being sent, one
received by the client), plus at times 9.5 MiB that Werkzeug's development
server allocates after the response, whatever its size: it drains the
request's socket with ``rfile.read(10_000_000)``, which allocates its buffer
in full when the client has closed the connection meanwhile.
"""

import gc
import hashlib
import http.client
import io
import os
import socket
import threading
import time
import tracemalloc
from itertools import cycle

import pytest
from flask import Response
from invenio_db import db
from invenio_files_rest.models import Location, ObjectVersion
from invenio_files_rest.storage import pyfs_storage_factory
from sqlalchemy.engine import make_url
from sqlalchemy_utils import create_database, drop_database
from werkzeug.serving import make_server

from examples.app import QuietHandler

from .helpers import RecordingStorage, create_app, create_record

pytestmark = pytest.mark.database_independent

MIB = 1024 * 1024
FILE_SIZE = 256 * MIB
BUDGET = 16 * MIB
CONTROL_SIZE = 32 * MIB


def zeros():
    return cycle([bytes(MIB)])


def random_bytes():
    while True:
        yield os.urandom(MIB)


def text():
    lines = b"".join(
        b"%08d The quick brown fox jumps over the lazy dog.\n" % i for i in range(20000)
    )
    return cycle([lines])


CONTENTS = {"zeros.bin": zeros, "random.bin": random_bytes, "text.txt": text}


class Generated(io.RawIOBase):
    """``size`` bytes from an iterator of blocks, without holding them all."""

    def __init__(self, size, blocks):
        self.remaining = size
        self.blocks = blocks
        self.pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        if not self.pending and self.remaining:
            self.pending = next(self.blocks)[: self.remaining]
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        self.remaining -= size
        return size


def add_control_view(app):
    """A download view that reads the whole file: the measurement must see it."""

    def buffered(bucket_id, key):
        obj = ObjectVersion.get(bucket_id, key)
        with obj.file.storage().open("rb") as fp:
            return Response(fp.read(), mimetype="application/octet-stream")

    app.add_url_rule("/buffered/<bucket_id>/<key>", "buffered", buffered)


@pytest.fixture(scope="module")
def live(database_uri, is_postgresql, tmp_path_factory):
    directory = tmp_path_factory.mktemp("live-downloads")
    if is_postgresql:
        url = make_url(database_uri)
        uri = url.set(database=f"{url.database}_downloads").render_as_string(
            hide_password=False
        )
        create_database(uri)
    else:
        uri = f"sqlite:///{directory / 'live.db'}"
    app = create_app(uri)
    add_control_view(app)
    try:
        with app.app_context():
            db.create_all()
            db.session.add(
                Location(name="live", uri=str(directory / "files"), default=True)
            )
            db.session.commit()
            record = create_record("1")
            for key, blocks in CONTENTS.items():
                record.files[key] = Generated(FILE_SIZE, blocks())
            record.files["control.bin"] = Generated(CONTROL_SIZE, zeros())
            record.commit()
            db.session.commit()
            checksums = {
                obj.key: obj.file.checksum for obj in record.files.bucket.objects
            }
            bucket_id = str(record.bucket.id)
            db.session.remove()
        server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield {
                "app": app,
                "port": server.server_port,
                "checksums": checksums,
                "bucket_id": bucket_id,
            }
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            with app.app_context():
                db.session.remove()
                db.drop_all()
                db.engine.dispose()
    finally:
        if is_postgresql:
            drop_database(uri)


def download(port, path):
    """GET ``path``; return (status, bytes received, md5, peak traced memory)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    gc.collect()
    tracemalloc.start()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        md5 = hashlib.md5(usedforsecurity=False)
        received = 0
        while chunk := response.read(MIB):
            md5.update(chunk)
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        connection.close()
    return response.status, received, f"md5:{md5.hexdigest()}", peak


@pytest.mark.parametrize("key", sorted(CONTENTS))
@pytest.mark.parametrize(
    "url",
    ["/api/records/1/files/{key}", "/api/records/1/files/{key}?download"],
)
def test_download_memory_is_bounded(live, url, key):
    status, received, checksum, peak = download(live["port"], url.format(key=key))
    assert status == 200
    assert received == FILE_SIZE
    assert checksum == live["checksums"][key]
    assert peak <= BUDGET, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("key", ["zeros.bin", "random.bin"])
def test_download_view_memory_is_bounded(live, key):
    status, received, checksum, peak = download(live["port"], f"/records/1/files/{key}")
    assert status == 200
    assert received == FILE_SIZE
    assert checksum == live["checksums"][key]
    assert peak <= BUDGET, f"peak {peak / MIB:.1f} MiB"


def test_measurement_sees_a_buffered_download(live):
    path = f"/buffered/{live['bucket_id']}/control.bin"
    status, received, checksum, peak = download(live["port"], path)
    assert status == 200
    assert received == CONTROL_SIZE
    assert checksum == live["checksums"]["control.bin"]
    assert peak >= CONTROL_SIZE


def test_file_closed_when_the_client_disconnects(live, monkeypatch):
    def factory(**kwargs):
        return pyfs_storage_factory(filestorage_class=RecordingStorage, **kwargs)

    state = live["app"].extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "storage_factory", factory)
    monkeypatch.setattr(RecordingStorage, "opened", [])
    with socket.create_connection(("127.0.0.1", live["port"]), timeout=30) as sock:
        sock.sendall(b"GET /api/records/1/files/random.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        while received < MIB:
            received += len(sock.recv(MIB))
        (fp,) = RecordingStorage.opened
        assert not fp.closed
    deadline = time.monotonic() + 20
    while not fp.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fp.closed
