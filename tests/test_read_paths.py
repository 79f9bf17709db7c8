# SPDX-License-Identifier: MIT
"""Every read path asks one question (``authorize``); writes publish one way.

Files-REST's permission factory may allow ``bucket-read`` (listing) and deny
``object-read`` (the bytes) of one record's files: then no path gives the
bytes away (hostile clients, round three: cases 1, 2 and 8).
"""

from io import BytesIO

import pytest
from invenio_files_rest.models import ObjectVersion

from invenio_records_files.api import Record
from invenio_records_files.maintenance import check as checks

from .helpers import body, create_record, upload


@pytest.fixture
def two_records(client, db):
    source = create_record("1")
    upload(client, "secret.txt", b"secret bytes", pid="1")
    target = create_record("2")
    return source, target


@pytest.fixture
def deny_object_read_of(app, monkeypatch):
    """Files-REST's factory: everything allowed but ``object-read`` in one bucket."""
    state = app.extensions["invenio-files-rest"]

    def deny(record):
        bucket_id = record.bucket.id

        def factory(obj, action):
            denied = action.startswith("object-read") and (
                getattr(obj, "bucket_id", None) == bucket_id
            )
            return type("P", (), {"can": lambda self: not denied})()

        monkeypatch.setitem(state.__dict__, "permission_factory", factory)

    return deny


def test_download_of_a_denied_object_is_404(client, two_records, deny_object_read_of):
    source, _ = two_records
    deny_object_read_of(source)
    assert client.get("/api/records/1/files/secret.txt").status_code == 404


def test_archive_applies_object_read(client, two_records, deny_object_read_of):
    source, _ = two_records
    assert client.get("/api/records/1/files-archive").status_code == 200
    deny_object_read_of(source)
    response = client.get("/api/records/1/files-archive")
    assert response.status_code == 404
    assert b"secret bytes" not in response.data


def test_import_applies_object_read_of_the_source(
    client, two_records, deny_object_read_of
):
    source, target = two_records
    deny_object_read_of(source)
    response = client.post("/api/records/2/files", query_string={"import": "1"})
    assert response.status_code == 404
    assert b"secret" not in response.data
    assert ObjectVersion.get_by_bucket(target.bucket.id).count() == 0
    assert client.get("/api/records/2/files/secret.txt").status_code == 404


def test_import_does_not_list_a_target_the_user_may_not_read(
    client, db, two_records, app, monkeypatch
):
    _, target = two_records
    upload(client, "private-name.txt", b"target's own", pid="2")
    state = app.extensions["invenio-files-rest"]
    target_bucket = target.bucket.id

    def factory(obj, action):
        denied = action == "bucket-read" and getattr(obj, "id", None) == target_bucket
        return type("P", (), {"can": lambda self: not denied})()

    monkeypatch.setitem(state.__dict__, "permission_factory", factory)
    response = client.post("/api/records/2/files", query_string={"import": "1"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "private-name.txt" not in text
    assert [item["key"] for item in body(response)["contents"]] == ["secret.txt"]


def test_removing_a_delete_marker_publishes_the_file_again(client, db, location):
    record = create_record("1")
    upload(client, "a.txt", b"a")
    assert client.delete("/api/records/1/files/a.txt").status_code == 204
    marker = ObjectVersion.get_versions(record.bucket, "a.txt", desc=True).first()
    assert marker.file_id is None
    response = client.delete(
        f"/api/records/1/files/a.txt?versionId={marker.version_id}"
    )
    assert response.status_code == 204
    db.session.expire_all()
    stored = Record.get_record(record.id)
    assert [entry["key"] for entry in stored["_files"]] == ["a.txt"]
    assert client.get("/api/records/1/files/a.txt").data == b"a"
    batch = next(checks.batches(100))
    assert [checks.problem(Record, batch, row) for row in batch.records] == [None]


def test_removing_a_delete_marker_respects_the_file_limit(
    client, db, location, app, monkeypatch
):
    record = create_record("1")
    upload(client, "a.txt", b"a")
    client.delete("/api/records/1/files/a.txt")
    monkeypatch.setitem(app.config, "RECORDS_FILES_MAX_FILES", 1)
    assert upload(client, "b.txt", b"b").status_code == 200
    marker = ObjectVersion.get_versions(record.bucket, "a.txt", desc=True).first()
    response = client.delete(
        f"/api/records/1/files/a.txt?versionId={marker.version_id}"
    )
    assert response.status_code == 400
    assert "at most 1 files" in body(response)["message"]
    db.session.expire_all()
    assert [e["key"] for e in Record.get_record(record.id)["_files"]] == ["b.txt"]
    assert ObjectVersion.get(record.bucket, marker.key, marker.version_id) is not None


def test_python_api_and_rest_publish_through_one_step(db, location, monkeypatch):
    from invenio_records_files.store import publish as publish_module

    calls = []
    original = publish_module.publish

    def spy(bucket, files, *args, **kwargs):
        calls.append([new.key for new in files])
        return original(bucket, files, *args, **kwargs)

    for module in (
        "invenio_records_files.records.files",
        "invenio_records_files.services.files",
        "invenio_records_files.store.copying",
    ):
        monkeypatch.setattr(f"{module}.publish", spy)
    record = create_record("1")
    record.files["a.txt"] = BytesIO(b"a")
    other = create_record("2")
    other.files.copy_from(record.files)
    assert calls == [["a.txt"], ["a.txt"]]
