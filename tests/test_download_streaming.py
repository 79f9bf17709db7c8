# SPDX-License-Identifier: MIT
"""Downloads streamed in fixed-size chunks (``download``), same answers as Files-REST.

Every download the module serves (the object endpoint, inline and
``?download``, a ``versionId``, and ``file_download_ui``) is compared with
plain ``/api/files/<bucket>/<key>`` on the same object: same status, headers
(plus ``Digest``) and bytes; only the body's chunks differ.
"""

import base64
import hashlib
import io
import os

import pytest
from flask import redirect
from invenio_files_rest.models import ObjectVersion
from invenio_files_rest.signals import file_downloaded
from invenio_files_rest.storage import PyFSFileStorage, pyfs_storage_factory

from invenio_records_files.rest.download import FileChunks

from .helpers import RecordingStorage, create_record

KIB = 1024
MIB = 1024 * KIB
RANDOM = os.urandom(200 * KIB + 17)
CONTENTS = {
    "hello.txt": b"Hello, World",
    "page.html": b"<script>alert(1)</script>",
    "data.bin": RANDOM,
    "zeros.bin": bytes(300 * KIB),
    "r\u00e9sum\u00e9.pdf": b"%PDF-1.4 not really",
}
IGNORED_HEADERS = {"Date", "Digest"}


@pytest.fixture
def record(db, location):
    record = create_record("1", {"title": "Downloads"})
    for key, data in CONTENTS.items():
        record.files[key] = io.BytesIO(data)
    record.commit()
    db.session.commit()
    return record


@pytest.fixture
def ranges(app, monkeypatch):
    monkeypatch.setitem(app.config, "FILES_REST_ALLOW_RANGE_REQUESTS", True)


@pytest.fixture
def chunk_size(app, monkeypatch):
    def set_size(size):
        monkeypatch.setitem(app.config, "RECORDS_FILES_DOWNLOAD_CHUNK_SIZE", size)
        return size

    return set_size


@pytest.fixture
def storage_class(app, monkeypatch):
    """Serve the files through another storage class (same bytes on disk)."""

    def use(cls):
        def factory(**kwargs):
            return pyfs_storage_factory(filestorage_class=cls, **kwargs)

        state = app.extensions["invenio-files-rest"]
        monkeypatch.setitem(state.__dict__, "storage_factory", factory)

    return use


class Trickle(io.RawIOBase):
    """A network-like stream: ``read()`` returns at most 1000 bytes."""

    def __init__(self, fp):
        self.fp = fp

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.fp.read(min(len(buffer), 1000))
        buffer[: len(data)] = data
        return len(data)

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self.fp.seek(offset, whence)

    def close(self):
        self.fp.close()
        super().close()


class TrickleStorage(PyFSFileStorage):
    def open(self, mode="rb"):
        return Trickle(super().open(mode))


class RedirectingStorage(PyFSFileStorage):
    """A storage with a send_file() of its own, like invenio-s3's."""

    def send_file(self, filename, **kwargs):
        return redirect(f"https://storage.example.org/{filename}")


class FileWrapper:
    """A WSGI server's ``wsgi.file_wrapper``, recording its use."""

    calls: list = []

    def __init__(self, fp, block_size):
        FileWrapper.calls.append((fp, block_size))
        self.chunks = FileChunks(fp, block_size)

    def __iter__(self):
        return self.chunks

    def close(self):
        self.chunks.close()


@pytest.fixture(autouse=True)
def _reset_recorders():
    RecordingStorage.opened = []
    FileWrapper.calls = []


def ours(key, **params):
    query = "&".join(f"{k}={v}" if v is not None else k for k, v in params.items())
    return f"/api/records/1/files/{key}" + (f"?{query}" if query else "")


def ui(key, **params):
    query = "&".join(f"{k}={v}" if v is not None else k for k, v in params.items())
    return f"/records/1/files/{key}" + (f"?{query}" if query else "")


def files_rest(record, key, **params):
    query = "&".join(f"{k}={v}" if v is not None else k for k, v in params.items())
    return f"/api/files/{record.bucket.id}/{key}" + (f"?{query}" if query else "")


def headers(response):
    return sorted(
        (name, value)
        for name, value in response.headers.items()
        if name not in IGNORED_HEADERS
    )


def chunks(response):
    """The body's pieces as the WSGI server would write them."""
    try:
        return [bytes(chunk) for chunk in response.response]
    finally:
        response.close()


def md5_digest(data):
    return "md5=" + base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324


def assert_same_answer(client, url, reference, **kwargs):
    ours_ = client.get(url, **kwargs)
    theirs = client.get(reference, **kwargs)
    assert ours_.status_code == theirs.status_code
    assert headers(ours_) == headers(theirs)
    assert ours_.data == theirs.data
    return ours_


# -- same answers as Files-REST ---------------------------------------------


@pytest.mark.parametrize("key", sorted(CONTENTS))
@pytest.mark.parametrize("download", [False, True])
@pytest.mark.parametrize("view", [ours, ui])
def test_same_headers_and_bytes_as_files_rest(client, record, view, key, download):
    params = {"download": None} if download else {}
    response = assert_same_answer(
        client, view(key, **params), files_rest(record, key, **params)
    )
    assert response.status_code == 200
    assert response.data == CONTENTS[key]
    assert response.headers["Content-Security-Policy"] == "default-src 'none';"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-MD5"] == hashlib.md5(CONTENTS[key]).hexdigest()  # noqa: S324
    assert response.headers["Digest"] == md5_digest(CONTENTS[key])
    disposition = response.headers["Content-Disposition"]
    if download or response.mimetype == "application/octet-stream":
        assert disposition.startswith("attachment")
    else:
        assert disposition == "inline"


def test_html_is_not_served_as_html(client, record):
    response = client.get(ours("page.html"))
    assert response.headers["Content-Type"].startswith("text/plain")


def test_head(client, record):
    response = client.head(ours("data.bin"))
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(RANDOM))
    assert headers(response) == headers(client.head(files_rest(record, "data.bin")))


def conditions(response):
    etag = response.headers["ETag"]
    modified = response.headers["Last-Modified"]
    return [
        {"If-None-Match": etag},
        {"If-None-Match": '"md5:other"'},
        {"If-Modified-Since": modified},
        {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"If-None-Match": "*"},
        {"If-None-Match": etag, "If-Modified-Since": modified},
        {"If-None-Match": '"md5:other"', "If-Modified-Since": modified},
    ]


@pytest.mark.parametrize("view", [ours, ui])
def test_conditional_requests(client, record, view):
    statuses = []
    for condition in conditions(client.get(ours("hello.txt"))):
        response = assert_same_answer(
            client,
            view("hello.txt"),
            files_rest(record, "hello.txt"),
            headers=condition,
        )
        statuses.append(response.status_code)
    assert statuses == [304, 200, 304, 200, 304, 304, 200]


RANGES = [
    ("bytes=7-11", 206, lambda data: data[7:12]),
    ("bytes=7-", 206, lambda data: data[7:]),
    ("bytes=-5", 206, lambda data: data[-5:]),
    ("bytes=0-0", 206, lambda data: data[:1]),
    ("bytes=5-100000000", 206, lambda data: data[5:]),
    ("bytes=100000000-", 416, lambda data: None),
    ("bytes=20-10", 416, lambda data: None),
    ("items=0-1", 416, lambda data: None),
]


@pytest.mark.parametrize("key", ["hello.txt", "data.bin"])
@pytest.mark.parametrize(("header", "status", "expected"), RANGES)
@pytest.mark.parametrize("view", [ours, ui])
def test_range_requests(client, record, ranges, view, key, header, status, expected):
    response = assert_same_answer(
        client, view(key), files_rest(record, key), headers={"Range": header}
    )
    assert response.status_code == status
    if status == 206:
        data = CONTENTS[key]
        assert response.data == expected(data)
        assert response.headers["Content-Length"] == str(len(expected(data)))
        assert response.headers["Content-Range"].endswith(f"/{len(data)}")
        # The digest of the whole file (RFC 3230: of the instance).
        assert response.headers["Digest"] == md5_digest(data)


def test_ranges_are_ignored_unless_files_rest_allows_them(client, record):
    response = assert_same_answer(
        client,
        ours("hello.txt"),
        files_rest(record, "hello.txt"),
        headers={"Range": "bytes=7-"},
    )
    assert response.status_code == 200
    assert response.data == b"Hello, World"
    assert "Accept-Ranges" not in response.headers


@pytest.mark.parametrize("matches", [True, False])
def test_if_range(client, record, ranges, matches):
    etag = client.get(ours("hello.txt")).headers["ETag"] if matches else '"md5:x"'
    response = assert_same_answer(
        client,
        ours("hello.txt"),
        files_rest(record, "hello.txt"),
        headers={"Range": "bytes=7-", "If-Range": etag},
    )
    assert response.status_code == (206 if matches else 200)
    assert response.data == (b"World" if matches else b"Hello, World")


def test_version_download(client, record):
    old = ObjectVersion.get(record.bucket, "hello.txt")
    record.files["hello.txt"] = io.BytesIO(b"Hello again")
    record.commit()
    params = {"versionId": old.version_id}
    response = assert_same_answer(
        client, ours("hello.txt", **params), files_rest(record, "hello.txt", **params)
    )
    assert response.data == b"Hello, World"
    assert response.headers["Digest"] == md5_digest(b"Hello, World")
    assert client.get(ours("hello.txt")).data == b"Hello again"


def test_version_download_needs_its_permission(client, record, app, monkeypatch):
    old = ObjectVersion.get(record.bucket, "hello.txt")
    record.files["hello.txt"] = io.BytesIO(b"Hello again")
    record.commit()

    def factory(obj, action):
        return type("P", (), {"can": lambda self: action != "object-read-version"})()

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", factory)
    params = {"versionId": old.version_id}
    response = assert_same_answer(
        client, ours("hello.txt", **params), files_rest(record, "hello.txt", **params)
    )
    assert response.status_code == 401
    assert client.get(ours("hello.txt")).status_code == 200


@pytest.mark.parametrize("view", [ours, ui])
def test_missing_bytes(client, record, view, caplog):
    obj = ObjectVersion.get(record.bucket, "hello.txt")
    with obj.file.storage().open("rb") as fp:
        path = fp.name
    os.remove(path)
    response = client.get(view("hello.txt"))
    assert response.status_code == 500
    assert response.json["message"] == "Could not send file: File not found"
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert str(obj.file_id) in error.getMessage()


@pytest.mark.parametrize("url", [ours("hello.txt"), ui("hello.txt")])
def test_file_downloaded_signal(client, record, app, url):
    sent = []

    def receiver(sender, obj):
        sent.append(obj.key)

    with file_downloaded.connected_to(receiver, sender=app):
        assert client.get(url).status_code == 200
    assert sent == ["hello.txt"]


# -- fixed-size chunks -------------------------------------------------------


@pytest.mark.parametrize("key", ["data.bin", "zeros.bin"])
@pytest.mark.parametrize("view", [ours, ui])
def test_chunks_of_the_configured_size(client, record, chunk_size, view, key):
    size = chunk_size(64 * KIB)
    data = CONTENTS[key]
    pieces = chunks(client.get(view(key), buffered=False))
    assert b"".join(pieces) == data
    assert [len(piece) for piece in pieces[:-1]] == [size] * (len(data) // size)
    assert len(pieces[-1]) == len(data) % size
    # Files-REST's body is the file, iterated by lines (not chunks).
    theirs = chunks(client.get(files_rest(record, key), buffered=False))
    assert b"".join(theirs) == data
    assert [len(piece) for piece in theirs] != [len(piece) for piece in pieces]


def test_default_chunk_size_is_one_mib(client, record, app):
    assert app.config["RECORDS_FILES_DOWNLOAD_CHUNK_SIZE"] == MIB
    data = os.urandom(2 * MIB + 5)
    record.files["big.bin"] = io.BytesIO(data)
    record.commit()
    pieces = chunks(client.get(ours("big.bin"), buffered=False))
    assert [len(piece) for piece in pieces] == [MIB, MIB, 5]
    assert b"".join(pieces) == data


def test_version_download_in_chunks(client, record, chunk_size):
    size = chunk_size(64 * KIB)
    old = ObjectVersion.get(record.bucket, "data.bin")
    record.files["data.bin"] = io.BytesIO(b"new")
    record.commit()
    pieces = chunks(
        client.get(ours("data.bin", versionId=old.version_id), buffered=False)
    )
    assert b"".join(pieces) == RANDOM
    assert {len(piece) for piece in pieces[:-1]} == {size}


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=1000-150000", 1000, 150001), ("bytes=70000-", 70000, len(RANDOM))],
)
def test_range_in_chunks(client, record, ranges, chunk_size, header, start, stop):
    size = chunk_size(64 * KIB)
    response = client.get(ours("data.bin"), headers={"Range": header}, buffered=False)
    assert response.status_code == 206
    pieces = chunks(response)
    assert b"".join(pieces) == RANDOM[start:stop]
    assert [len(piece) for piece in pieces[:-1]] == [size] * ((stop - start) // size)


def test_chunks_from_a_stream_with_short_reads(
    client, record, chunk_size, storage_class
):
    storage_class(TrickleStorage)
    size = chunk_size(64 * KIB)
    pieces = chunks(client.get(ours("data.bin"), buffered=False))
    assert b"".join(pieces) == RANDOM
    assert {len(piece) for piece in pieces[:-1]} == {size}


# -- the file is closed ------------------------------------------------------


def test_file_closed_after_download(client, record, storage_class):
    storage_class(RecordingStorage)
    assert client.get(ours("data.bin")).data == RANDOM
    assert [fp.closed for fp in RecordingStorage.opened] == [True]


def test_file_closed_when_client_goes_away(client, record, storage_class, chunk_size):
    storage_class(RecordingStorage)
    chunk_size(16 * KIB)
    response = client.get(ours("data.bin"), buffered=False)
    body = iter(response.response)
    assert next(body) == RANDOM[: 16 * KIB]
    (fp,) = RecordingStorage.opened
    assert not fp.closed
    response.close()  # what a WSGI server does when the client disconnects
    assert fp.closed


@pytest.mark.parametrize(
    "request_headers",
    [{}, {"If-None-Match": f'"md5:{hashlib.md5(RANDOM).hexdigest()}"'}],  # noqa: S324
)
def test_file_closed_without_a_body(client, record, storage_class, request_headers):
    storage_class(RecordingStorage)
    method = client.head if not request_headers else client.get
    response = method(ours("data.bin"), headers=request_headers)
    assert response.data == b""
    assert [fp.closed for fp in RecordingStorage.opened] == [True]


def test_file_closed_for_an_unsatisfiable_range(client, record, ranges, storage_class):
    storage_class(RecordingStorage)
    response = client.get(ours("data.bin"), headers={"Range": "bytes=99999999-"})
    assert response.status_code == 416
    assert [fp.closed for fp in RecordingStorage.opened] == [True]


# -- wsgi.file_wrapper and other storages ------------------------------------


def test_file_wrapper_for_a_local_file(client, record, storage_class):
    storage_class(RecordingStorage)
    response = client.get(
        ours("data.bin"), environ_overrides={"wsgi.file_wrapper": FileWrapper}
    )
    assert response.data == RANDOM
    ((fp, block_size),) = FileWrapper.calls
    assert fp is RecordingStorage.opened[0]
    assert block_size == MIB
    assert fp.closed
    assert response.headers["Digest"] == md5_digest(RANDOM)


@pytest.mark.parametrize(
    ("method", "request_headers"), [("GET", {"Range": "bytes=5-"}), ("HEAD", {})]
)
def test_no_file_wrapper_for_a_range_or_head(
    client, record, ranges, method, request_headers
):
    response = client.open(
        ours("data.bin"),
        method=method,
        headers=request_headers,
        environ_overrides={"wsgi.file_wrapper": FileWrapper},
    )
    assert response.data == (RANDOM[5:] if method == "GET" else b"")
    assert FileWrapper.calls == []


def test_no_file_wrapper_for_a_remote_stream(client, record, storage_class):
    storage_class(TrickleStorage)
    response = client.get(
        ours("data.bin"), environ_overrides={"wsgi.file_wrapper": FileWrapper}
    )
    assert response.data == RANDOM
    assert FileWrapper.calls == []


@pytest.mark.parametrize("view", [ours, ui])
def test_storage_with_its_own_send_file(client, record, storage_class, view):
    storage_class(RedirectingStorage)
    response = client.get(view("hello.txt"))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://storage.example.org/hello.txt"
    assert "Digest" not in response.headers


# -- Digest ------------------------------------------------------------------


def set_checksum(record, key, checksum):
    obj = ObjectVersion.get(record.bucket, key)
    obj.file.checksum = checksum
    record.commit()  # the record's _files follow in the tests' view only


@pytest.mark.parametrize(
    ("algorithm", "name"),
    [("sha1", "sha"), ("sha256", "sha-256"), ("sha512", "sha-512")],
)
def test_digest_of_other_algorithms(client, record, db, algorithm, name):
    digest = hashlib.new(algorithm, b"Hello, World").digest()
    set_checksum(record, "hello.txt", f"{algorithm}:{digest.hex()}")
    db.session.commit()
    response = assert_same_answer(
        client, ours("hello.txt"), files_rest(record, "hello.txt")
    )
    assert response.headers["Digest"] == f"{name}={base64.b64encode(digest).decode()}"
    assert "Content-MD5" not in response.headers  # Files-REST: md5 only


@pytest.mark.parametrize("checksum", ["adler32:1c49043e", "md5:not-hex", "custom:abc"])
def test_no_digest_for_unknown_algorithms(client, record, db, checksum):
    set_checksum(record, "hello.txt", checksum)
    db.session.commit()
    response = client.get(ours("hello.txt"))
    assert response.status_code == 200
    assert response.data == b"Hello, World"
    assert "Digest" not in response.headers


def test_digest_on_not_modified(client, record):
    etag = client.get(ours("hello.txt")).headers["ETag"]
    response = client.get(ours("hello.txt"), headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["Digest"] == md5_digest(b"Hello, World")


def test_no_digest_on_plain_files_rest(client, record):
    assert "Digest" not in client.get(files_rest(record, "hello.txt")).headers


# -- FileChunks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, [b"abcd", b"efgh", b"ij"]),
        (3, None, [b"defg", b"hij"]),
        (3, 5, [b"defg", b"h"]),
        (0, 4, [b"abcd"]),
        (2, 0, []),
        (10, None, []),
        (8, 100, [b"ij"]),
    ],
)
def test_file_chunks(offset, length, expected):
    fp = io.BytesIO(b"abcdefghij")
    assert list(FileChunks(fp, 4, offset=offset, length=length)) == expected
    assert fp.closed


def test_file_chunks_close_is_idempotent():
    fp = io.BytesIO(b"abc")
    body = FileChunks(fp, 2)
    assert next(body) == b"ab"
    body.close()
    body.close()
    assert fp.closed
    assert list(body) == []


def test_file_chunks_fill_short_reads():
    with open(__file__, "rb") as source:
        data = source.read()
    trickle = Trickle(io.BytesIO(data))
    pieces = list(FileChunks(trickle, 4096))
    assert b"".join(pieces) == data
    assert {len(piece) for piece in pieces[:-1]} == {4096}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chunk_size": 0},
        {"chunk_size": -1},
        {"chunk_size": 1.5},
        {"chunk_size": 4, "offset": -1},
        {"chunk_size": 4, "length": -1},
    ],
)
def test_file_chunks_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        FileChunks(io.BytesIO(b"abc"), **kwargs)
