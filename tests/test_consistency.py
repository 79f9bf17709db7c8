# SPDX-License-Identifier: MIT
"""A record and its files agree on every path; nothing is orphaned."""

import base64
import hashlib
import json
from io import BytesIO

import pytest
from invenio_files_rest.errors import StorageError
from invenio_files_rest.models import (
    Bucket,
    BucketTag,
    FileInstance,
    MultipartObject,
    ObjectVersion,
    ObjectVersionTag,
)
from invenio_records.models import RecordMetadata
from invenio_records.signals import after_record_update, before_record_update
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import ClientDisconnected

from invenio_records_files.api import Record
from invenio_records_files.models import RecordsBuckets

from .helpers import body, create_record, upload


@pytest.fixture
def record(db, location):
    return create_record("1", {"title": "Consistent"})


def stored(record_id):
    """The record as readers see it (a fresh read): its JSON with ``_files``."""
    from invenio_db import db

    db.session.expire_all()
    return dict(Record.get_record(record_id))


def stored_json(record_id):
    """The record's JSON column as stored (a fresh read)."""
    from invenio_db import db

    db.session.expire_all()
    return db.session.get(RecordMetadata, record_id).json


def revision(record_id):
    from invenio_db import db

    db.session.expire_all()
    return db.session.get(RecordMetadata, record_id).version_id


def keys(record_id):
    return [entry["key"] for entry in stored(record_id).get("_files", [])]


def heads(bucket_id):
    return {o.key: o for o in ObjectVersion.get_by_bucket(bucket_id).all()}


def assert_in_sync(record_id, bucket_id):
    """Every head object has its entry in _files, with matching fields."""
    entries = stored(record_id).get("_files", [])
    objects = heads(bucket_id)
    assert sorted(e["key"] for e in entries) == sorted(objects)
    for entry in entries:
        obj = objects[entry["key"]]
        assert entry["version_id"] == str(obj.version_id)
        assert entry["file_id"] == str(obj.file_id)
        assert entry["checksum"] == obj.file.checksum
        assert entry["size"] == obj.file.size
        assert entry["bucket"] == str(bucket_id)


def stored_files(tmp_path):
    return sorted((tmp_path / "files").rglob("data"))


@pytest.fixture
def signals():
    sent = []

    def before(sender, record):
        sent.append(("before", record.id))

    def after(sender, record):
        sent.append(("after", record.id))

    before_record_update.connect(before)
    after_record_update.connect(after)
    yield sent
    before_record_update.disconnect(before)
    after_record_update.disconnect(after)


# -- 1. REST writes update _files in the same transaction ------------------------


def test_upload_adds_entry_bumps_revision_and_signals(client, record, signals):
    before = revision(record.id)
    assert upload(client, "a.txt", b"a").status_code == 200
    assert keys(record.id) == ["a.txt"]
    assert_in_sync(record.id, record.bucket.id)
    assert revision(record.id) == before + 1
    assert signals == [("before", record.id), ("after", record.id)]


def test_uploads_append_and_keep_order_and_metadata(client, record, db):
    for key in ("b.txt", "a.txt", "c.txt"):
        upload(client, key, key.encode())
    loaded = Record.get_record(record.id)
    loaded.files["a.txt"]["title"] = "The A file"
    loaded.files.sort_by("c.txt", "a.txt", "b.txt")
    loaded.commit()
    db.session.commit()

    upload(client, "d.txt", b"d")
    upload(client, "a.txt", b"a, second version")
    entries = stored(record.id)["_files"]
    assert [e["key"] for e in entries] == ["c.txt", "a.txt", "b.txt", "d.txt"]
    assert entries[1]["title"] == "The A file"
    assert entries[1]["size"] == len(b"a, second version")
    assert_in_sync(record.id, record.bucket.id)


def test_delete_removes_entry(client, record):
    upload(client, "a.txt", b"a")
    upload(client, "b.txt", b"b")
    before = revision(record.id)
    assert client.delete("/api/records/1/files/a.txt").status_code == 204
    assert keys(record.id) == ["b.txt"]
    assert revision(record.id) == before + 1
    assert_in_sync(record.id, record.bucket.id)


def test_removing_the_head_version_brings_back_the_previous_one(client, record):
    upload(client, "a.txt", b"first")
    second = body(upload(client, "a.txt", b"second"))["version_id"]
    response = client.delete(f"/api/records/1/files/a.txt?versionId={second}")
    assert response.status_code == 204
    assert_in_sync(record.id, record.bucket.id)
    assert stored(record.id)["_files"][0]["size"] == len(b"first")


def test_removing_an_old_version_leaves_record_alone(client, record):
    first = body(upload(client, "a.txt", b"first"))["version_id"]
    upload(client, "a.txt", b"second")
    before = revision(record.id)
    response = client.delete(f"/api/records/1/files/a.txt?versionId={first}")
    assert response.status_code == 204
    assert revision(record.id) == before
    assert_in_sync(record.id, record.bucket.id)


def test_multipart_completion_adds_entry(client, record):
    multipart = body(
        client.post("/api/records/1/files/big.bin?uploads&size=7&partSize=3")
    )
    url = f"/api/records/1/files/big.bin?uploadId={multipart['id']}"
    for number, part in enumerate([b"abc", b"def", b"g"]):
        assert client.put(f"{url}&partNumber={number}", data=part).status_code == 200
    assert keys(record.id) == []
    assert client.post(url).status_code == 200
    assert keys(record.id) == ["big.bin"]
    assert_in_sync(record.id, record.bucket.id)


def test_sync_can_be_turned_off(client, record, app, monkeypatch, signals):
    monkeypatch.setitem(app.config, "RECORDS_FILES_REST_UPDATE_RECORD", False)
    before = revision(record.id)
    assert upload(client, "a.txt", b"a").status_code == 200
    assert client.delete("/api/records/1/files/a.txt").status_code == 204
    assert "_files" not in stored(record.id)
    assert revision(record.id) == before
    assert signals == []


# -- 2. _bucket and _files are managed by the server ------------------------------


def test_rest_put_cannot_remove_or_change_managed_fields(client, record, db):
    upload(client, "a.txt", b"a")
    other = Record.create({"title": "Other"})
    db.session.commit()
    before = stored(record.id)
    response = client.put(
        "/api/records/1",
        data=json.dumps(
            {
                "title": "Replaced",
                "_bucket": str(other.bucket.id),
                "_files": [{"key": "forged.txt"}],
            }
        ),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    after = stored(record.id)
    assert after["title"] == "Replaced"
    assert after["_bucket"] == before["_bucket"]
    assert after["_files"] == before["_files"]
    assert body(client.get("/api/records/1/files"))["contents"][0]["key"] == "a.txt"


def test_rest_put_without_managed_fields_keeps_them(client, record):
    upload(client, "a.txt", b"a")
    before = stored(record.id)
    response = client.put(
        "/api/records/1",
        data=json.dumps({"title": "Only a title"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert body(response)["metadata"]["_files"] == before["_files"]
    after = stored(record.id)
    assert after["_bucket"] == before["_bucket"]
    assert after["_files"] == before["_files"]
    assert client.get("/api/records/1/files/a.txt").data == b"a"


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "remove", "path": "/_files"}],
        [{"op": "remove", "path": "/_bucket"}],
        [{"op": "replace", "path": "/_files/0/key", "value": "forged.txt"}],
        [
            {
                "op": "replace",
                "path": "/_bucket",
                "value": "00000000-0000-0000-0000-0000",
            }
        ],
    ],
)
def test_rest_patch_cannot_touch_managed_fields(client, record, patch):
    upload(client, "a.txt", b"a")
    before = stored(record.id)
    response = client.patch(
        "/api/records/1",
        data=json.dumps([*patch, {"op": "add", "path": "/note", "value": "x"}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200
    after = stored(record.id)
    assert after["note"] == "x"
    assert after["_bucket"] == before["_bucket"]
    assert after["_files"] == before["_files"]


def test_api_clear_and_update_keep_managed_fields(record, db):
    record.files["a.txt"] = BytesIO(b"a")
    record.commit()
    db.session.commit()
    before = stored(record.id)
    loaded = Record.get_record(record.id)
    loaded.clear()
    loaded.update({"title": "New", "_files": [], "_bucket": "elsewhere"})
    loaded.commit()
    db.session.commit()
    after = stored(record.id)
    assert after == {**before, "title": "New"}
    assert loaded["_files"] == before["_files"]
    assert loaded["_bucket"] == before["_bucket"]


def test_api_files_changes_are_stored(record, db):
    record.files["a.txt"] = BytesIO(b"a")
    record.files["b.txt"] = BytesIO(b"b")
    record.files["a.txt"]["title"] = "A"
    record.files.sort_by("b.txt")
    record.commit()
    db.session.commit()
    entries = stored(record.id)["_files"]
    assert [e["key"] for e in entries] == ["b.txt", "a.txt"]
    assert entries[1]["title"] == "A"


def commit_elsewhere(db, record_id, **changes):
    """Change the stored record as another transaction would (bypassing ORM)."""
    table = RecordMetadata.__table__
    row = db.session.execute(
        select(table.c.json, table.c.version_id).where(table.c.id == record_id)
    ).one()
    db.session.execute(
        update(table)
        .where(table.c.id == record_id)
        .values(json={**row.json, **changes}, version_id=row.version_id + 1)
    )


def add_file_elsewhere(db, record, key):
    """Add a file as another transaction's upload would (new revision)."""
    from invenio_records_files.store import entries

    ObjectVersion.create(record.bucket, key, stream=BytesIO(key.encode()))
    entries.add(record.id, key)
    commit_elsewhere(db, record.id)


def test_concurrent_change_of_files_only_is_merged(record, db):
    loaded = Record.get_record(record.id)
    add_file_elsewhere(db, record, "from-another-request.txt")
    loaded["title"] = "Edited meanwhile"
    loaded.commit()
    db.session.commit()
    after = stored(record.id)
    assert after["title"] == "Edited meanwhile"
    assert [e["key"] for e in after["_files"]] == ["from-another-request.txt"]


def test_concurrent_metadata_changes_conflict(record, db):
    loaded = Record.get_record(record.id)
    commit_elsewhere(db, record.id, title="Changed by another request")
    loaded["title"] = "Changed here"
    with pytest.raises(StaleDataError):
        loaded.commit()


def test_concurrent_files_changes_are_both_kept(record, db):
    loaded = Record.get_record(record.id)
    add_file_elsewhere(db, record, "other.txt")
    loaded.files["mine.txt"] = BytesIO(b"mine")
    loaded.commit()
    db.session.commit()
    assert keys(record.id) == ["other.txt", "mine.txt"]
    assert_in_sync(record.id, record.bucket.id)


def test_revert_keeps_current_files(record, db):
    record["title"] = "Version with a title"
    record.commit()
    db.session.commit()
    old_revision = record.revision_id
    record.files["a.txt"] = BytesIO(b"a")
    record["title"] = "Newer title"
    record.commit()
    db.session.commit()
    reverted = record.revert(old_revision)
    db.session.commit()
    after = stored(record.id)
    assert after["title"] == "Version with a title"
    assert [e["key"] for e in after["_files"]] == ["a.txt"]
    assert reverted["_files"] == after["_files"]


def test_created_record_refuses_client_files_not_in_its_bucket(db, location):
    from invenio_records_files.errors import UnknownFileEntryError

    record = Record.create({"_files": [{"key": "forged.txt"}]})
    with pytest.raises(UnknownFileEntryError, match=r"forged\.txt"):
        record.commit()
    with pytest.raises(ValueError, match=r"forged\.txt"):
        db.session.commit()
    db.session.rollback()
    assert RecordMetadata.query.count() == 0
    assert Bucket.query.count() == 0


def test_record_created_on_an_existing_bucket_describes_its_files(db, location):
    first = Record.create({})
    first.files["a.txt"] = BytesIO(b"a")

    class SharingRecord(Record):
        @classmethod
        def create_bucket(cls, data):
            return first.bucket

    second = SharingRecord.create({})
    db.session.commit()
    assert [e["key"] for e in stored(second.id)["_files"]] == ["a.txt"]


# -- 3. deleting records ------------------------------------------------------


@pytest.fixture
def full_record(record, db):
    record.files["a.txt"] = BytesIO(b"a")
    record.files["b.txt"] = BytesIO(b"bb")
    ObjectVersionTag.create(record.files["a.txt"].obj, "color", "red")
    BucketTag.create(record.bucket, "owner", "me")
    MultipartObject.create(record.bucket, "big.bin", size=6, chunk_size=3)
    record.commit()
    db.session.commit()
    return record


def test_hard_delete_keeps_bucket_by_default(full_record, db, tmp_path):
    bucket_id = full_record.bucket.id
    files = stored_files(tmp_path)
    full_record.delete(force=True)
    db.session.commit()
    assert db.session.get(Bucket, bucket_id) is not None
    assert RecordsBuckets.query.count() == 0
    assert stored_files(tmp_path) == files


def test_hard_delete_with_bucket_removes_everything(full_record, db, tmp_path):
    bucket_id = full_record.bucket.id
    assert len(stored_files(tmp_path)) == 3
    full_record.delete(force=True, remove_bucket=True)
    assert len(stored_files(tmp_path)) == 3  # bytes go only after commit
    db.session.commit()
    assert db.session.get(RecordMetadata, full_record.id) is None
    assert db.session.get(Bucket, bucket_id) is None
    assert ObjectVersion.query.count() == 0
    assert ObjectVersionTag.query.count() == 0
    assert MultipartObject.query.count() == 0
    assert BucketTag.query.count() == 0
    assert FileInstance.query.count() == 0
    assert RecordsBuckets.query.count() == 0
    assert stored_files(tmp_path) == []


def test_hard_delete_rolled_back_keeps_bytes(full_record, db, tmp_path):
    files = stored_files(tmp_path)
    full_record.delete(force=True, remove_bucket=True)
    db.session.rollback()
    db.session.commit()
    assert stored_files(tmp_path) == files
    assert FileInstance.query.count() == 3


def test_hard_delete_keeps_a_bucket_another_record_links_to(full_record, db, tmp_path):
    other = Record.create({}, with_bucket=False)
    RecordsBuckets.create(record=other, bucket=full_record.bucket)
    db.session.commit()
    bucket_id = full_record.bucket.id
    full_record.delete(force=True, remove_bucket=True)
    db.session.commit()
    assert db.session.get(Bucket, bucket_id) is not None
    assert len(stored_files(tmp_path)) == 3


def test_hard_delete_keeps_files_another_bucket_uses(full_record, db, tmp_path):
    snapshot = Bucket.create()
    shared = full_record.files["a.txt"].obj.file
    ObjectVersion.create(snapshot, "copy-of-a.txt", _file_id=shared)
    db.session.commit()
    full_record.delete(force=True, remove_bucket=True)
    db.session.commit()
    assert [f.id for f in FileInstance.query.all()] == [shared.id]
    with ObjectVersion.get(snapshot, "copy-of-a.txt").file.storage().open() as fp:
        assert fp.read() == b"a"
    assert len(stored_files(tmp_path)) == 1


def test_hard_delete_of_a_locked_bucket(full_record, db, tmp_path):
    full_record.bucket.locked = True
    db.session.commit()
    full_record.delete(force=True, remove_bucket=True)
    db.session.commit()
    assert Bucket.query.count() == 0
    assert stored_files(tmp_path) == []


def test_remove_bucket_needs_force(full_record):
    with pytest.raises(ValueError, match="force"):
        full_record.delete(remove_bucket=True)


def test_soft_delete_keeps_files(full_record, db, client):
    full_record.delete()
    db.session.commit()
    assert len(heads(full_record.bucket.id)) == 2
    assert client.get("/api/records/1/files").status_code == 410


# -- 4. failed writes leave nothing behind -------------------------------------


def assert_nothing_changed(record, snapshot, tmp_path):
    before_json, before_revision, files = snapshot
    assert stored(record.id) == before_json
    assert revision(record.id) == before_revision
    assert stored_files(tmp_path) == files
    assert FileInstance.query.count() == len(files)
    assert ObjectVersion.query.filter_by(key="new.bin").count() == 0


@pytest.fixture
def snapshot(client, record, tmp_path):
    upload(client, "a.txt", b"a")
    return stored(record.id), revision(record.id), stored_files(tmp_path)


def test_quota_exceeded(client, record, db, tmp_path, snapshot):
    record.bucket.quota_size = 10
    db.session.commit()
    response = upload(client, "new.bin", b"x" * 20)
    assert response.status_code == 400
    assert body(response)["message"] == "Bucket quota exceeded."
    assert_nothing_changed(record, snapshot, tmp_path)


def test_max_file_size_exceeded(client, record, db, tmp_path, snapshot):
    record.bucket.max_file_size = 5
    db.session.commit()
    response = upload(client, "new.bin", b"x" * 20)
    assert response.status_code == 400
    assert_nothing_changed(record, snapshot, tmp_path)


def content_md5(data, form):
    digest = hashlib.md5(data)  # noqa: S324 - what the Content-MD5 header is
    return (
        base64.b64encode(digest.digest()).decode()
        if form == "base64"
        else (digest.hexdigest())
    )


@pytest.mark.parametrize("form", ["base64", "hex"])
def test_checksum_mismatch(client, record, tmp_path, snapshot, form):
    header = content_md5(b"other bytes", form)
    response = client.put(
        "/api/records/1/files/new.bin",
        data=b"the bytes",
        headers={"Content-MD5": header},
    )
    assert response.status_code == 400
    assert "Checksum mismatch" in body(response)["message"]
    assert_nothing_changed(record, snapshot, tmp_path)


@pytest.mark.parametrize("form", ["base64", "hex"])
def test_checksum_match(client, record, form):
    header = content_md5(b"the bytes", form)
    response = client.put(
        "/api/records/1/files/new.bin",
        data=b"the bytes",
        headers={"Content-MD5": header},
    )
    assert response.status_code == 200
    assert "new.bin" in keys(record.id)


class DroppedConnection(BytesIO):
    """Request body of a client that goes away after the first bytes."""

    def __init__(self):
        super().__init__()
        self.sent = False

    def read(self, size=-1):
        if not self.sent:
            self.sent = True
            return b"the first bytes"
        raise ClientDisconnected()

    readline = read


def test_client_disconnect_mid_upload(client, record, tmp_path, snapshot):
    response = client.put(
        "/api/records/1/files/new.bin",
        input_stream=DroppedConnection(),
        headers={"Content-Length": "1000"},
    )
    assert response.status_code == 400
    assert_nothing_changed(record, snapshot, tmp_path)


def test_storage_error(client, record, app, monkeypatch, tmp_path, snapshot):
    from invenio_files_rest.storage import pyfs_storage_factory

    class BrokenStorage:
        def __init__(self, storage):
            self.storage = storage

        def __getattr__(self, name):
            return getattr(self.storage, name)

        def save(self, stream, **kwargs):
            self.storage.save(BytesIO(b"written, then the disk fails"))
            raise StorageError(description="Disk failure.")

    def factory(**kwargs):
        return BrokenStorage(pyfs_storage_factory(**kwargs))

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "storage_factory", factory)
    response = upload(client, "new.bin", b"x" * 20)
    assert response.status_code == 500
    assert body(response)["message"] == "Disk failure."
    monkeypatch.undo()
    assert_nothing_changed(record, snapshot, tmp_path)


def test_failure_after_the_bytes_are_stored(
    client, record, monkeypatch, tmp_path, snapshot
):
    from invenio_records_files.services import files as sync

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(sync, "touch", fail)
    with pytest.raises(RuntimeError):
        upload(client, "new.bin", b"x" * 20)
    assert_nothing_changed(record, snapshot, tmp_path)


# -- another request changed things between the first read and the lock --------


@pytest.fixture
def meanwhile(monkeypatch):
    """Run a change just before a write takes its locks."""
    from invenio_records_files.services import files as sync

    changes = []
    original = sync.lock

    def lock(record, bucket, update_record=True):
        for change in changes:
            change()
        changes.clear()
        return original(record, bucket, update_record)

    monkeypatch.setattr(sync, "lock", lock)
    return changes


def test_object_deleted_meanwhile(client, record, meanwhile):
    upload(client, "a.txt", b"a")
    meanwhile.append(lambda: ObjectVersion.delete(record.bucket, "a.txt"))
    response = client.delete("/api/records/1/files/a.txt")
    assert response.status_code == 404
    assert body(response)["message"] == "File 'a.txt' does not exist."


def test_record_deleted_meanwhile(client, record, meanwhile, db, tmp_path):
    upload(client, "a.txt", b"a")
    files = stored_files(tmp_path)

    def delete_record():
        table = RecordMetadata.__table__
        db.session.execute(
            update(table).where(table.c.id == record.id).values(json=None)
        )

    meanwhile.append(delete_record)
    response = upload(client, "b.txt", b"b")
    assert response.status_code == 410
    assert ObjectVersion.query.filter_by(key="b.txt").count() == 0
    assert stored_files(tmp_path) == files


UNSTORABLE_KEYS = ["\ud800", "a\x00b.txt", "\udfff.txt"]


@pytest.mark.parametrize("key", UNSTORABLE_KEYS, ids=["surrogate", "nul", "low"])
def test_rest_put_and_patch_refuse_files_keys_no_row_can_have(client, record, key):
    upload(client, "a.txt", b"a")
    before = stored(record.id)
    put = client.put(
        "/api/records/1",
        data=json.dumps({"title": "Replaced", "_files": [{"key": key}]}),
        headers={"Content-Type": "application/json"},
    )
    patch = client.patch(
        "/api/records/1",
        data=json.dumps([{"op": "add", "path": "/_files/-", "value": {"key": key}}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    for response in (put, patch):
        assert response.status_code == 400, response.data
        assert "Filename" in body(response)["message"]
    after = stored(record.id)
    assert after["title"] == before["title"]
    assert after["_files"] == before["_files"]
    assert client.get("/api/records/1/files/a.txt").data == b"a"
