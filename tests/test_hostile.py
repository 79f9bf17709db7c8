# SPDX-License-Identifier: MIT
"""Hostile and unlucky clients get a clear 4xx (or succeed), never a 500.

The concurrent cases (completions racing abortions, deletions racing
uploads, slow clients and a small connection pool) are in
``tests/test_concurrency.py``, on PostgreSQL through a real server.
"""

import logging
from io import BytesIO
from urllib.parse import quote

import pytest
from invenio_files_rest.models import (
    FileInstance,
    MultipartObject,
    ObjectVersion,
    ObjectVersionTag,
)
from invenio_pidstore.models import PersistentIdentifier

from invenio_records_files.api import Record
from invenio_records_files.errors import InvalidFileKeyError

from .helpers import body, create_record, upload


def stored_files(tmp_path):
    return sorted((tmp_path / "files").rglob("data"))


def keys(record_id):
    return [entry["key"] for entry in Record.get_record(record_id).get("_files", [])]


def start_upload(client, key="big.bin", size=8, part_size=4, pid="1"):
    response = client.post(
        f"/api/records/{pid}/files/{key}?uploads&size={size}&partSize={part_size}"
    )
    assert response.status_code == 200, response.data
    return f"/api/records/{pid}/files/{key}?uploadId={body(response)['id']}"


def send_parts(client, url, parts):
    for number, part in enumerate(parts):
        response = client.put(f"{url}&partNumber={number}", data=part)
        assert response.status_code == 200, response.data


# -- 1. and 5. multipart uploads ----------------------------------------------------


def test_upload_of_an_exact_multiple_of_the_part_size_completes(client, record):
    url = start_upload(client, size=8, part_size=4)
    send_parts(client, url, [b"abcd", b"efgh"])
    response = client.post(url)
    assert response.status_code == 200, response.data
    assert client.get("/api/records/1/files/big.bin").data == b"abcdefgh"
    assert keys(record.id) == ["big.bin"]


@pytest.mark.parametrize("size", [7, 8, 9])
def test_parts_of_the_wrong_size_are_refused(client, record, size):
    url = start_upload(client, size=size, part_size=4)
    last = size // 4 - (0 if size % 4 else 1)
    assert client.put(f"{url}&partNumber=0", data=b"abc").status_code == 400
    assert client.put(f"{url}&partNumber={last + 1}", data=b"abcd").status_code == 400


def test_completing_a_completed_upload(client, record):
    url = start_upload(client)
    send_parts(client, url, [b"abcd", b"efgh"])
    assert client.post(url).status_code == 200
    assert client.post(url).status_code in (404, 409)
    assert client.delete(url).status_code in (404, 409)
    assert client.put(f"{url}&partNumber=0", data=b"abcd").status_code in (404, 409)
    assert keys(record.id) == ["big.bin"]
    assert client.get("/api/records/1/files/big.bin").data == b"abcdefgh"


def test_completing_an_aborted_upload(client, record, tmp_path):
    url = start_upload(client)
    send_parts(client, url, [b"abcd", b"efgh"])
    assert client.delete(url).status_code == 204
    assert client.post(url).status_code == 404
    assert keys(record.id) == []
    assert MultipartObject.query.count() == 0
    assert FileInstance.query.count() == 0
    assert stored_files(tmp_path) == []
    assert record.bucket.size == 0


def test_completing_with_missing_parts(client, record):
    url = start_upload(client, size=9, part_size=4)
    send_parts(client, url, [b"abcd", b"efgh"])
    response = client.post(url)
    assert response.status_code == 400
    assert keys(record.id) == []


# -- 2. redirected PIDs ------------------------------------------------------------


@pytest.fixture
def redirected(client, record, db):
    create_record("2")
    upload(client, "x", b"x", pid="2")
    PersistentIdentifier.get("recid", "1").redirect(
        PersistentIdentifier.get("recid", "2")
    )
    db.session.commit()


@pytest.mark.parametrize(
    "query",
    [
        "key=zz",
        "_external=1&_scheme=javascript&_anchor=x&_method=POST",
        "download",
        "versionId=not-a-uuid&a=%0D%0Ab",
    ],
)
def test_redirect_keeps_the_query_string_verbatim(client, redirected, query):
    response = client.get(f"/api/records/1/files/x?{query}")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/api/records/2/files/x?{query}"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("put", "/api/records/1/files/x?a=1"),
        ("post", "/api/records/1/files/big.bin?uploads&size=8&partSize=4"),
        ("delete", "/api/records/1/files/x"),
    ],
)
def test_writes_through_a_redirected_pid_get_308(client, redirected, method, url):
    response = getattr(client, method)(url, data=b"body")
    assert response.status_code == 308
    assert response.headers["Location"] == url.replace("/1/", "/2/", 1)
    assert client.head("/api/records/1/files/x").status_code == 301
    assert client.get("/api/records/2/files/x").data == b"x"


def test_redirect_of_the_listing(client, redirected):
    response = client.get("/api/records/1/files?versions")
    assert response.status_code == 301
    assert response.headers["Location"] == "/api/records/2/files?versions"


# -- 4. control characters in keys and tags -------------------------------------------


CONTROL = ["\x00", "\r", "\n", "\x1f", "\x7f"]


@pytest.mark.parametrize("char", CONTROL, ids=[hex(ord(c)) for c in CONTROL])
def test_keys_with_control_characters_are_refused(client, record, tmp_path, char):
    key = quote(f"a{char}b.txt")
    response = upload(client, key, b"x")
    assert response.status_code == 400
    assert "control characters" in body(response)["message"]
    response = client.post(f"/api/records/1/files/{key}?uploads&size=8&partSize=4")
    assert response.status_code == 400
    assert ObjectVersion.query.count() == 0
    assert MultipartObject.query.count() == 0
    assert stored_files(tmp_path) == []
    assert keys(record.id) == []


@pytest.mark.parametrize("char", CONTROL, ids=[hex(ord(c)) for c in CONTROL])
def test_tags_with_control_characters_are_refused(client, record, tmp_path, char):
    for tags in (f"a{quote(char)}b=value", f"name=va{quote(char)}lue"):
        response = client.put(
            "/api/records/1/files/a.txt",
            data=b"x",
            headers={"X-Invenio-File-Tags": tags},
        )
        assert response.status_code == 400, tags
    assert ObjectVersionTag.query.count() == 0
    assert ObjectVersion.query.count() == 0
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("char", CONTROL, ids=[hex(ord(c)) for c in CONTROL])
def test_python_api_refuses_control_characters(record, char):
    from invenio_files_rest.errors import InvalidKeyError

    with pytest.raises(InvalidKeyError):
        record.files[f"a{char}b.txt"] = BytesIO(b"x")
    record.files["ok.txt"] = BytesIO(b"x")
    with pytest.raises(InvalidFileKeyError):
        record.files.rename("ok.txt", f"a{char}b.txt")
    assert keys(record.id) == ["ok.txt"]


# -- 6. removing a version removes its bytes ------------------------------------------


def test_removing_a_version_removes_its_bytes(client, record, tmp_path):
    first = body(upload(client, "a.txt", b"first"))["version_id"]
    upload(client, "a.txt", b"second")
    assert len(stored_files(tmp_path)) == 2
    response = client.delete(f"/api/records/1/files/a.txt?versionId={first}")
    assert response.status_code == 204
    assert len(stored_files(tmp_path)) == 1
    assert FileInstance.query.count() == 1
    assert client.get("/api/records/1/files/a.txt").data == b"second"


def test_bytes_another_version_uses_are_kept(client, record, db, tmp_path):
    record.files["a.txt"] = BytesIO(b"shared")
    record.files.rename("a.txt", "b.txt")
    record.commit()
    db.session.commit()
    (old,) = [
        v for v in ObjectVersion.get_versions(record.bucket, "a.txt") if v.file_id
    ]
    response = client.delete(f"/api/records/1/files/a.txt?versionId={old.version_id}")
    assert response.status_code == 204
    assert len(stored_files(tmp_path)) == 1
    assert client.get("/api/records/1/files/b.txt").data == b"shared"


# -- 8. a PID whose record row is gone -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/records/1/files"),
        ("get", "/api/records/1/files/a.txt"),
        ("put", "/api/records/1/files/a.txt"),
        ("delete", "/api/records/1/files/a.txt"),
    ],
)
def test_pid_of_a_hard_deleted_record(client, record, db, method, url):
    upload(client, "a.txt", b"a")
    Record.get_record(record.id).delete(force=True)
    db.session.commit()
    response = getattr(client, method)(url, data=b"x")
    assert response.status_code in (404, 410)


# -- 9. removing bytes that are already gone is not an error -------------------


class DisconnectingStream:
    def __init__(self):
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls == 1:
            return b"partial"
        raise OSError("connection reset by peer")


def test_failed_upload_logs_no_error_for_bytes_already_gone(
    db, location, caplog, tmp_path
):
    record = create_record("1")
    with caplog.at_level(logging.DEBUG), pytest.raises(OSError):
        record.files["a.txt"] = DisconnectingStream()
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    assert stored_files(tmp_path) == []


def test_a_real_removal_failure_is_logged_once_with_the_uri(
    client, record, caplog, monkeypatch
):
    from invenio_files_rest.storage import PyFSFileStorage

    first = body(upload(client, "a.txt", b"first"))["version_id"]
    upload(client, "a.txt", b"second")
    uri = ObjectVersion.get(record.bucket, "a.txt", first).file.uri

    def refuse(self):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(PyFSFileStorage, "delete", refuse)
    with caplog.at_level(logging.DEBUG):
        response = client.delete(f"/api/records/1/files/a.txt?versionId={first}")
    assert response.status_code == 204
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert uri in errors[0].getMessage()


# -- over a real HTTP server (PostgreSQL) -------------------------------------------


@pytest.fixture(scope="module")
def hostile_server(database_uri, is_postgresql, tmp_path_factory):
    from .test_concurrency import live_server

    yield from live_server(
        database_uri, is_postgresql, tmp_path_factory.mktemp("files"), "hostile"
    )


@pytest.fixture
def live(hostile_server):
    hostile_server.errors.lines.clear()
    yield hostile_server
    assert not hostile_server.errors.lines, hostile_server.report()


@pytest.mark.postgresql
def test_requests_follows_a_write_redirect_with_its_body(live):
    from invenio_db import db as db_

    from .test_concurrency import call
    from .test_concurrency import create_record as create_over_rest

    source, _ = create_over_rest(live, "source")
    destination, _ = create_over_rest(live, "destination")
    with live.app.app_context():
        PersistentIdentifier.get("recid", source).redirect(
            PersistentIdentifier.get("recid", destination)
        )
        db_.session.commit()
    response = call("PUT", live.url(f"/api/records/{source}/files/a.txt"), data=b"abc")
    assert response.status_code == 200, response.text
    assert [r.status_code for r in response.history] == [308]
    assert response.json()["key"] == "a.txt"
    got = call("GET", live.url(f"/api/records/{destination}/files/a.txt"))
    assert got.content == b"abc"
    response = call("DELETE", live.url(f"/api/records/{source}/files/a.txt"))
    assert response.status_code == 204
    assert [r.status_code for r in response.history] == [308]
    head = call("HEAD", live.url(f"/api/records/{source}/files"), allow_redirects=False)
    assert head.status_code == 301


# -- 6. NUL anywhere in a URL (PostgreSQL cannot store or compare it) -----------------


NUL_REQUESTS = [
    ("get", "/api/records/1/files/a%00b.txt"),
    ("head", "/api/records/1/files/a%00b.txt"),
    ("delete", "/api/records/1/files/a%00b.txt"),
    ("put", "/api/records/1/files/a%00b.txt"),
    ("get", "/api/records/1/files/a%00b.txt?versions"),
    ("get", "/api/records/%00/files"),
    ("get", "/api/records/%00/files/a.txt"),
    ("put", "/api/records/%00/files/a.txt"),
    ("get", "/api/records/%00/files-archive"),
    ("get", "/api/records/a%00b/files-archive"),
    ("post", "/api/records/1/files?import=%00"),
    ("post", "/api/records/1/files?import=2%00"),
    ("get", "/api/records/1/files/data.zip?member=%00"),
    ("get", "/api/records/1/files/data.zip?member=a%00b&download"),
    ("get", "/api/records/1/files/data.zip?members&versionId=%00"),
    ("get", "/api/records/1/files/data.zip?versionId=%00"),
    ("get", "/api/records/1/files/data.zip?versions&versionId=a%00"),
    ("get", "/records/1/files/a%00b.txt"),
    ("get", "/records/%00/files/a.txt"),
    ("get", "/records/1/files/a%00b.txt?download"),
]


@pytest.mark.postgresql
@pytest.mark.parametrize(("method", "url"), NUL_REQUESTS)
def test_nul_in_a_url_is_never_a_500(client, record, method, url):
    from .test_zipmembers import make_zip

    upload(client, "data.zip", make_zip({"a.txt": b"a"}, directories=()))
    response = getattr(client, method)(url, data=b"x")
    # Files-REST's own versionId argument answers 422, as for any bad UUID.
    files_rest_args = "versionId" in url and "members" not in url
    allowed = (400, 404, 422) if files_rest_args else (400, 404)
    assert response.status_code in allowed, response.data
    assert ObjectVersion.query.count() == 1
    assert keys(record.id) == ["data.zip"]
