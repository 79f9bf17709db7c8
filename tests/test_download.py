# SPDX-License-Identifier: MIT
"""Download view for Invenio-Records-UI: ``utils.file_download_ui``."""

import copy
import logging
from io import BytesIO

import pytest
from invenio_pidstore.models import PersistentIdentifier, PIDStatus
from werkzeug.exceptions import NotFound

from invenio_records_files.api import Record
from invenio_records_files.utils import file_download_ui

from .helpers import create_record


@pytest.fixture
def record(db, location):
    record = create_record("1", {"title": "Downloads"})
    record.files["hello.txt"] = BytesIO(b"Hello, World")
    record.files["page.html"] = BytesIO(b"<script>alert(1)</script>")
    record.commit()
    db.session.commit()
    return record


def test_download(client, record):
    response = client.get("/records/1/files/hello.txt")
    assert response.status_code == 200
    assert response.data == b"Hello, World"
    assert response.headers["Content-MD5"] == "82bb413746aee42f89dea2b59614f9ef"
    assert response.headers["ETag"] == '"md5:82bb413746aee42f89dea2b59614f9ef"'
    assert "attachment" not in response.headers.get("Content-Disposition", "")


def test_download_as_attachment(client, record):
    response = client.get("/records/1/files/hello.txt?download")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "hello.txt" in response.headers["Content-Disposition"]


def test_html_is_not_served_as_html(client, record):
    response = client.get("/records/1/files/page.html")
    assert response.status_code == 200
    assert not response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"] == "default-src 'none';"


def test_conditional_request(client, record):
    etag = client.get("/records/1/files/hello.txt").headers["ETag"]
    response = client.get("/records/1/files/hello.txt", headers={"If-None-Match": etag})
    assert response.status_code == 304


def test_range_request_when_files_rest_allows_it(client, record, app, monkeypatch):
    monkeypatch.setitem(app.config, "FILES_REST_ALLOW_RANGE_REQUESTS", True)
    response = client.get("/records/1/files/hello.txt", headers={"Range": "bytes=7-11"})
    assert response.status_code == 206
    assert response.data == b"World"


@pytest.mark.parametrize("filename", ["nope.txt", "HELLO.TXT"])
def test_missing_file(client, record, filename):
    assert client.get(f"/records/1/files/{filename}").status_code == 404


def test_unknown_record(client, record):
    assert client.get("/records/2/files/hello.txt").status_code == 404


def test_object_permission(client, record, app, monkeypatch):
    def deny_read(obj, action):
        return type("P", (), {"can": lambda self: action != "object-read"})()

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", deny_read)
    assert client.get("/records/1/files/hello.txt").status_code == 404


def test_pid_in_log_data_of_a_checksum_mismatch(client, record, db, caplog):
    # A record whose _files disagree with the bytes: written by an older
    # version (in the JSON, without entry rows) and edited in SQL.
    from invenio_records_files.models import FileEntry

    listed = copy.deepcopy(record["_files"])
    listed[0]["checksum"] = "md5:00000000000000000000000000000000"
    record.model.json = {**record.model.json, "_files": listed}
    FileEntry.query.filter_by(record_id=record.id).delete()
    db.session.commit()
    with caplog.at_level(logging.WARNING):
        response = client.get("/records/1/files/hello.txt")
    assert response.status_code == 200
    (warning,) = [r for r in caplog.records if "checksum mismatch" in r.getMessage()]
    assert warning.pid_type == "recid"
    assert warning.pid_value == "1"
    assert warning.bucket_id == str(record.bucket.id)


def test_custom_record_file_factory(app, record):
    calls = []

    def factory(pid, record, filename):
        calls.append(filename)
        return record.files["hello.txt"]

    pid = PersistentIdentifier.get("recid", "1")
    with app.test_request_context("/records/1/files/anything"):
        response = file_download_ui(
            pid, record, _record_file_factory=factory, filename="anything"
        )
        response.direct_passthrough = False
        assert response.get_data() == b"Hello, World"
        response.close()
    assert calls == ["anything"]


def test_record_without_files(app, db, location):
    plain = Record.create({}, with_bucket=False)
    pid = PersistentIdentifier.create(
        "recid",
        "9",
        object_type="rec",
        object_uuid=plain.id,
        status=PIDStatus.REGISTERED,
    )
    with app.test_request_context(), pytest.raises(NotFound):
        file_download_ui(pid, plain, filename="a.txt")
