# SPDX-License-Identifier: MIT
"""``POST <record files URL>?import=<pid_value>``: import another record's files."""

from io import BytesIO

import pytest
from invenio_files_rest.models import FileInstance, ObjectVersion
from invenio_pidstore.models import PersistentIdentifier
from invenio_records.models import RecordMetadata

from invenio_records_files.api import Record

from .helpers import body, create_record, upload


def import_files(client, target, source):
    return client.post(f"/api/records/{target}/files", query_string={"import": source})


def stored(record_id):
    return Record.get_record(record_id)


def revision(record_id):
    from invenio_db import db

    db.session.expire_all()
    return db.session.get(RecordMetadata, record_id).version_id


@pytest.fixture
def published(client, db, record):
    """Record 1 with three files (one with metadata), its bucket locked."""
    for key, data in (("b.txt", b"bb"), ("a.txt", b"a"), ("c.txt", b"ccc")):
        assert upload(client, key, data, pid="1").status_code == 200
    record = Record.get_record(record.id)
    record.files["a.txt"]["description"] = "first"
    record.commit()
    record.bucket.locked = True
    db.session.commit()
    return record


@pytest.fixture
def new_version(client, db, location):
    return create_record("2")


def test_import_copies_the_files_and_answers_the_listing(
    client, db, published, new_version
):
    assert upload(client, "own.txt", b"own", pid="2").status_code == 200
    before = revision(new_version.id)
    instances = FileInstance.query.count()

    response = import_files(client, "2", "1")

    assert response.status_code == 200, response.get_data(as_text=True)
    listing = body(response)
    assert [item["key"] for item in listing["contents"]] == [
        "a.txt",
        "b.txt",
        "c.txt",
        "own.txt",
    ]
    assert listing["size"] == 9
    assert listing["id"] == str(new_version.bucket.id)
    assert listing == body(client.get("/api/records/2/files"))
    assert FileInstance.query.count() == instances
    record = stored(new_version.id)
    assert [(e["key"], e.get("description")) for e in record["_files"]] == [
        ("own.txt", None),
        ("b.txt", None),
        ("a.txt", "first"),
        ("c.txt", None),
    ]
    assert revision(new_version.id) == before + 1  # one commit of the record
    for key, data in (("a.txt", b"a"), ("b.txt", b"bb"), ("c.txt", b"ccc")):
        download = client.get(f"/api/records/2/files/{key}")
        assert download.status_code == 200
        assert download.get_data() == data
    source = {o.key: o.file_id for o in ObjectVersion.get_by_bucket(published.bucket)}
    copies = {o.key: o.file_id for o in ObjectVersion.get_by_bucket(record.bucket)}
    assert {k: v for k, v in copies.items() if k != "own.txt"} == source


def test_unknown_source(client, new_version):
    response = import_files(client, "2", "404")
    assert response.status_code == 404
    assert body(response)["message"] == "Cannot import from '404': PID does not exist."


def test_deleted_source(client, db, published, new_version):
    PersistentIdentifier.get("recid", "1").delete()
    published.delete()
    db.session.commit()
    response = import_files(client, "2", "1")
    assert response.status_code == 410
    assert body(response)["message"] == (
        "Cannot import from '1': The record has been deleted."
    )
    assert ObjectVersion.query.filter_by(bucket_id=new_version.bucket.id).count() == 0


def test_source_without_files(client, db, new_version):
    create_record("3", with_bucket=False)
    response = import_files(client, "2", "3")
    assert response.status_code == 404
    assert "has no files" in body(response)["message"]


def test_redirected_source_is_followed(client, db, published, new_version):
    create_record("3")
    PersistentIdentifier.get("recid", "3").redirect(
        PersistentIdentifier.get("recid", "1")
    )
    db.session.commit()
    response = import_files(client, "2", "3")
    assert response.status_code == 200
    assert len(body(response)["contents"]) == 3


def test_collision_names_the_key_and_writes_nothing(client, db, published, new_version):
    assert upload(client, "c.txt", b"mine", pid="2").status_code == 200
    before = revision(new_version.id)
    versions = ObjectVersion.query.count()

    response = import_files(client, "2", "1")

    assert response.status_code == 409
    assert body(response)["message"] == "File 'c.txt' already exists."
    assert ObjectVersion.query.count() == versions
    assert revision(new_version.id) == before
    assert [e["key"] for e in stored(new_version.id)["_files"]] == ["c.txt"]
    assert client.get("/api/records/2/files/c.txt").get_data() == b"mine"


def test_locked_target(client, db, published, new_version):
    new_version.bucket.locked = True
    db.session.commit()
    response = import_files(client, "2", "1")
    assert response.status_code == 403
    assert ObjectVersion.query.filter_by(bucket_id=new_version.bucket.id).count() == 0


def test_import_without_a_source_is_a_clear_400(client, new_version):
    for url in ("/api/records/2/files", "/api/records/2/files?import="):
        response = client.post(url)
        assert response.status_code == 400
        assert "?import=<pid_value>" in body(response)["message"]


@pytest.fixture
def permissions(app, monkeypatch):
    """Deny the ``(bucket id, action)`` pairs added to the returned set."""
    denied = set()

    def factory(obj, action):
        key = (str(getattr(obj, "id", obj)), action)
        return type("Permission", (), {"can": lambda self: key not in denied})()

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", factory)
    return denied


@pytest.mark.parametrize(
    ("who", "action"), [("source", "bucket-read"), ("target", "bucket-update")]
)
def test_permissions(client, db, published, new_version, permissions, who, action):
    bucket = (published if who == "source" else new_version).bucket
    permissions.add((str(bucket.id), action))
    response = import_files(client, "2", "1")
    assert response.status_code == 404
    assert ObjectVersion.query.filter_by(bucket_id=new_version.bucket.id).count() == 0
    permissions.clear()
    # Reading the target is not needed to import into it; the listing answers.
    permissions.add((str(new_version.bucket.id), "bucket-read"))
    assert import_files(client, "2", "1").status_code == 200


def test_without_updating_the_record(
    client, app, db, published, new_version, monkeypatch
):
    monkeypatch.setitem(app.config, "RECORDS_FILES_REST_UPDATE_RECORD", False)
    before = revision(new_version.id)
    response = import_files(client, "2", "1")
    assert response.status_code == 200
    assert len(body(response)["contents"]) == 3
    assert revision(new_version.id) == before
    assert "_files" not in db.session.get(RecordMetadata, new_version.id).json


def test_removing_a_version_keeps_bytes_the_other_record_uses(
    client, db, published, new_version
):
    published.bucket.locked = False
    db.session.commit()
    assert import_files(client, "2", "1").status_code == 200
    version_id = ObjectVersion.get(published.bucket.id, "a.txt").version_id
    storage = ObjectVersion.get(published.bucket.id, "a.txt").file.storage()

    response = client.delete(f"/api/records/1/files/a.txt?versionId={version_id}")

    assert response.status_code == 204
    assert client.get("/api/records/1/files/a.txt").status_code == 404
    assert client.get("/api/records/2/files/a.txt").get_data() == b"a"
    with storage.open("rb") as fp:
        assert fp.read() == b"a"
    copy = ObjectVersion.get(new_version.bucket.id, "a.txt")
    response = client.delete(f"/api/records/2/files/a.txt?versionId={copy.version_id}")
    assert response.status_code == 204
    with pytest.raises(FileNotFoundError):  # the bytes are gone
        storage.open("rb")
    assert db.session.get(FileInstance, copy.file_id) is None


def test_import_from_itself_collides(client, published):
    published.bucket.locked = False
    from invenio_db import db

    db.session.commit()
    response = import_files(client, "1", "1")
    assert response.status_code == 409
    assert body(response)["message"] == "File 'b.txt' already exists."


def test_python_copy_matches_rest_import(client, db, published, new_version, location):
    python = create_record("3")
    python.files.copy_from(published.files)
    python.commit()
    db.session.commit()
    assert import_files(client, "2", "1").status_code == 200
    listed = [
        [{k: v for k, v in e.items() if k not in ("bucket", "version_id")} for e in r]
        for r in (stored(python.id)["_files"], stored(new_version.id)["_files"])
    ]
    assert listed[0] == listed[1]


def test_import_then_upload_keeps_everything(client, db, published, new_version):
    assert import_files(client, "2", "1").status_code == 200
    assert upload(client, "c.txt", b"changed", pid="2").status_code == 200
    record = stored(new_version.id)
    assert [e["key"] for e in record["_files"]] == ["b.txt", "a.txt", "c.txt"]
    assert client.get("/api/records/2/files/c.txt").get_data() == b"changed"
    assert client.get("/api/records/1/files/c.txt").get_data() == b"ccc"
    record.files["new.txt"] = BytesIO(b"new")
    assert list(record.files.keys) == ["b.txt", "a.txt", "c.txt", "new.txt"]


def test_sync_import_files_with_keys(db, published, new_version):
    from invenio_records_files.errors import MissingFileError
    from invenio_records_files.services import files as sync

    with pytest.raises(MissingFileError) as error:
        sync.import_files(
            new_version, new_version.bucket, published.files, keys=["nope.txt"]
        )
    assert error.value.code == 404
    assert error.value.key == "nope.txt"
    created = sync.import_files(
        new_version, new_version.bucket, published.files, keys=["c.txt", "a.txt"]
    )
    assert [obj.key for obj in created] == ["a.txt", "c.txt"]
    db.session.commit()
    assert [e["key"] for e in stored(new_version.id)["_files"]] == ["a.txt", "c.txt"]
