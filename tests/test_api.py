# SPDX-License-Identifier: MIT
"""Python API: records, their bucket and their files."""

import uuid
from io import BytesIO

import pytest
from invenio_files_rest.errors import (
    BucketLockedError,
    InvalidKeyError,
    InvalidOperationError,
)
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion
from invenio_records.api import Record as PlainRecord
from invenio_records.errors import MissingModelError
from invenio_records.models import RecordMetadata

from invenio_records_files.api import FileObject, FilesIterator, Record
from invenio_records_files.errors import KeyExistsError
from invenio_records_files.models import RecordsBuckets

from .helpers import CustomKeyRecord


def read_bytes(obj):
    """Read an object's bytes through the storage API."""
    with obj.file.storage().open("rb") as fp:
        return fp.read()


def heads(bucket):
    return {o.key: o for o in ObjectVersion.get_by_bucket(bucket).all()}


def all_versions(bucket):
    return ObjectVersion.query.filter_by(bucket_id=bucket.id).all()


@pytest.fixture
def record(db, location):
    return Record.create({"title": "A record"})


@pytest.fixture
def record_with_files(record):
    for key in ("a.txt", "b.txt", "c.txt"):
        record.files[key] = BytesIO(key.encode())
    return record


class FailingStream:
    """Stream that gives some bytes, then fails like a dropped connection."""

    def __init__(self):
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls == 1:
            return b"partial data"
        raise OSError("connection reset")


# -- record and bucket ---------------------------------------------------------


def test_create_links_a_new_bucket(record, db):
    bucket = db.session.get(Bucket, record["_bucket"])
    assert bucket is not None
    assert record.bucket_id == str(bucket.id)
    assert record.bucket is bucket
    link = RecordsBuckets.query.filter_by(record_id=record.id).one()
    assert link.bucket_id == bucket.id
    assert link.record.id == record.id
    stored = db.session.get(RecordMetadata, record.id)
    assert stored.json["_bucket"] == str(bucket.id)
    assert "_files" not in stored.json


def test_create_without_bucket(db, location):
    record = Record.create({}, with_bucket=False)
    assert "_bucket" not in record
    assert record.bucket_id == ""
    assert record.bucket is None
    assert record.files is None
    assert RecordsBuckets.query.count() == 0
    assert Bucket.query.count() == 0


def test_create_does_not_commit(db, location):
    record = Record.create({})
    db.session.rollback()
    assert db.session.get(RecordMetadata, record.id) is None
    assert RecordsBuckets.query.count() == 0


class NoBucketRecord(Record):
    @classmethod
    def create_bucket(cls, data):
        return None


class SharedBucketRecord(Record):
    shared = None

    @classmethod
    def create_bucket(cls, data):
        return cls.shared


def test_create_bucket_returning_none(db, location):
    record = NoBucketRecord.create({})
    assert record.files is None
    assert "_bucket" not in record


def test_create_bucket_returning_an_existing_bucket(db, location):
    SharedBucketRecord.shared = Bucket.create()
    record = SharedBucketRecord.create({})
    assert record["_bucket"] == str(SharedBucketRecord.shared.id)
    assert record.files.bucket is SharedBucketRecord.shared
    assert Bucket.query.count() == 1


def test_custom_dump_and_load_bucket(db, location):
    record = CustomKeyRecord.create({})
    assert "_bucket" not in record
    bucket_id = record["storage"]["bucket"]
    assert record.bucket_id == bucket_id
    assert str(record.bucket.id) == bucket_id
    record.files["x.txt"] = BytesIO(b"x")
    assert str(record.files["x.txt"].bucket_id) == bucket_id


def test_files_follow_the_link_when_json_has_no_bucket(record, db):
    record.files["a.txt"] = BytesIO(b"a")
    record.commit()
    db.session.commit()
    model = db.session.get(RecordMetadata, record.id)
    data = dict(model.json)
    del data["_bucket"]
    assert "_files" not in data  # stored as rows, not in the JSON
    loaded = Record(data, model=model)
    assert loaded.bucket is None
    assert [f.key for f in loaded.files] == ["a.txt"]
    loaded.files["b.txt"] = BytesIO(b"b")
    assert [f["key"] for f in loaded["_files"]] == ["a.txt", "b.txt"]


def test_files_without_model():
    with pytest.raises(MissingModelError):
        Record({}).files


class AutoBucketRecord(Record):
    def _create_bucket(self):
        return Bucket.create()


def test_create_bucket_hook_of_the_files_property(db, location):
    record = AutoBucketRecord.create({}, with_bucket=False)
    files = record.files
    assert files is not None
    assert RecordsBuckets.query.filter_by(record_id=record.id).count() == 1
    assert record.files.bucket is files.bucket


def test_files_of_a_loaded_record(record_with_files, db):
    record_with_files.files["b.txt"]["title"] = "Bee"
    record_with_files.commit()
    db.session.commit()
    loaded = Record.get_record(record_with_files.id)
    assert [f.key for f in loaded.files] == ["a.txt", "b.txt", "c.txt"]
    assert loaded.files["b.txt"]["title"] == "Bee"
    assert read_bytes(loaded.files["c.txt"].obj) == b"c.txt"


# -- delete ------------------------------------------------------------------------


def test_soft_delete_keeps_link_and_files(record_with_files, db):
    bucket_id = record_with_files.bucket.id
    record_with_files.delete()
    db.session.commit()
    assert RecordsBuckets.query.filter_by(record_id=record_with_files.id).count() == 1
    assert len(heads(bucket_id)) == 3


def test_hard_delete_removes_link_keeps_bucket(record_with_files, db):
    record_id = record_with_files.id
    bucket_id = record_with_files.bucket.id
    record_with_files.delete(force=True)
    db.session.commit()
    assert db.session.get(RecordMetadata, record_id) is None
    assert RecordsBuckets.query.count() == 0
    assert db.session.get(Bucket, bucket_id) is not None
    assert len(heads(bucket_id)) == 3


def test_delete_without_model():
    with pytest.raises(MissingModelError):
        Record({}).delete()


# -- adding files ------------------------------------------------------------


def test_add_file_stores_bytes_and_describes_it(record, db):
    record.files["hello.txt"] = BytesIO(b"Hello, World")
    obj = ObjectVersion.get(record.bucket, "hello.txt")
    assert read_bytes(obj) == b"Hello, World"
    assert record["_files"] == [
        {
            "bucket": str(record.bucket.id),
            "checksum": obj.file.checksum,
            "file_id": str(obj.file_id),
            "key": "hello.txt",
            "size": 12,
            "version_id": str(obj.version_id),
        }
    ]
    assert obj.file.checksum == "md5:82bb413746aee42f89dea2b59614f9ef"
    assert record.bucket.size == 12


def test_new_files_go_to_the_end(record_with_files):
    record_with_files.files["0.txt"] = BytesIO(b"0")
    assert list(record_with_files.files.keys) == ["a.txt", "b.txt", "c.txt", "0.txt"]
    assert [f["key"] for f in record_with_files["_files"]] == list(
        record_with_files.files.keys
    )


def test_new_version_keeps_position_and_metadata(record_with_files):
    files = record_with_files.files
    files["a.txt"]["title"] = "First"
    old_version = files["a.txt"].version_id
    files["a.txt"] = BytesIO(b"new content")
    assert list(files.keys) == ["a.txt", "b.txt", "c.txt"]
    entry = record_with_files["_files"][0]
    assert entry["title"] == "First"
    assert entry["size"] == len(b"new content")
    new = ObjectVersion.get(record_with_files.bucket, "a.txt")
    assert entry["version_id"] == str(new.version_id) != str(old_version)
    assert read_bytes(new) == b"new content"
    assert read_bytes(ObjectVersion.get(new.bucket, "a.txt", old_version)) == b"a.txt"


def test_assign_files_mapping_to_empty_record(record):
    record.files = {"x.txt": BytesIO(b"x"), "y.txt": BytesIO(b"y")}
    assert list(record.files.keys) == ["x.txt", "y.txt"]
    assert [f["key"] for f in record["_files"]] == ["x.txt", "y.txt"]


def test_assign_files_mapping_to_record_with_files(record_with_files):
    with pytest.raises(RuntimeError):
        record_with_files.files = {"x.txt": BytesIO(b"x")}
    assert list(record_with_files.files.keys) == ["a.txt", "b.txt", "c.txt"]


def test_assign_files_mapping_is_all_or_nothing(record, tmp_path):
    with pytest.raises(TypeError):
        record.files = {"x.txt": BytesIO(b"x"), "y.txt": "not a stream"}
    assert "_files" not in record
    assert all_versions(record.bucket) == []
    assert not list((tmp_path / "files").rglob("data"))


def test_assign_files_mapping_to_record_without_bucket(db, location):
    record = Record.create({}, with_bucket=False)
    with pytest.raises(TypeError):
        record.files = {"x.txt": BytesIO(b"x")}


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("a.txt", "a string", TypeError),
        ("a.txt", b"bytes", TypeError),
        ("a.txt", None, TypeError),
        ("", BytesIO(b"x"), InvalidKeyError),
        ("x" * 256, BytesIO(b"x"), InvalidKeyError),
        (42, BytesIO(b"x"), TypeError),
    ],
)
def test_bad_input_changes_nothing(record_with_files, key, value, error):
    before = [dict(entry) for entry in record_with_files["_files"]]
    count = len(all_versions(record_with_files.bucket))
    with pytest.raises(error):
        record_with_files.files[key] = value
    assert record_with_files["_files"] == before
    assert len(all_versions(record_with_files.bucket)) == count


def test_failed_upload_leaves_nothing(record_with_files, tmp_path):
    stored = set((tmp_path / "files").rglob("data"))
    before = [dict(entry) for entry in record_with_files["_files"]]
    with pytest.raises(OSError):
        record_with_files.files["broken.bin"] = FailingStream()
    assert record_with_files["_files"] == before
    assert "broken.bin" not in record_with_files.files
    assert ObjectVersion.query.filter_by(key="broken.bin").count() == 0
    assert FileInstance.query.count() == 3
    assert set((tmp_path / "files").rglob("data")) == stored
    assert record_with_files.bucket.size == 15


def test_failed_first_upload_leaves_no_files_key(record):
    with pytest.raises(OSError):
        record.files["broken.bin"] = FailingStream()
    assert "_files" not in record


# -- locked and deleted buckets ---------------------------------------------


@pytest.mark.parametrize(
    ("state", "error"),
    [("locked", BucketLockedError), ("deleted", InvalidOperationError)],
)
@pytest.mark.parametrize(
    "write",
    [
        lambda files: files.__setitem__("new.txt", BytesIO(b"x")),
        lambda files: files.__setitem__("a.txt", BytesIO(b"x")),
        lambda files: files.__delitem__("a.txt"),
        lambda files: files.rename("a.txt", "z.txt"),
    ],
    ids=["add", "new-version", "delete", "rename"],
)
def test_writes_on_a_closed_bucket(record_with_files, state, error, write):
    setattr(record_with_files.bucket, state, True)
    before = [dict(entry) for entry in record_with_files["_files"]]
    count = len(all_versions(record_with_files.bucket))
    with pytest.raises(error):
        write(record_with_files.files)
    assert record_with_files["_files"] == before
    assert len(all_versions(record_with_files.bucket)) == count


def test_reads_on_a_locked_bucket(record_with_files):
    record_with_files.bucket.locked = True
    assert list(record_with_files.files.keys) == ["a.txt", "b.txt", "c.txt"]
    assert read_bytes(record_with_files.files["b.txt"].obj) == b"b.txt"


# -- reading -------------------------------------------------------------------


def test_len_contains_getitem(record_with_files):
    files = record_with_files.files
    assert len(files) == 3
    assert "a.txt" in files
    assert "nope.txt" not in files
    assert 42 not in files
    assert files["a.txt"].key == "a.txt"
    with pytest.raises(KeyError) as exc:
        files["nope.txt"]
    assert exc.value.args == ("nope.txt",)


def test_iteration_follows_record_order(record_with_files):
    record_with_files.files.sort_by("c.txt", "a.txt", "b.txt")
    files = record_with_files.files
    assert [f.key for f in files] == ["c.txt", "a.txt", "b.txt"]
    assert all(isinstance(f, FileObject) for f in files)
    iterator = iter(files)
    assert iterator.next().key == "c.txt"
    assert next(iterator).key == "a.txt"
    assert [files.next().key for _ in range(3)] == ["c.txt", "a.txt", "b.txt"]
    assert next(iterator).key == "b.txt"
    with pytest.raises(StopIteration):
        files.next()


def test_nested_iteration(record_with_files):
    files = record_with_files.files
    pairs = [(x.key, y.key) for x in files for y in files]
    assert len(pairs) == 9
    assert [(a.key, b.key) for a, b in zip(files, files, strict=True)] == [
        ("a.txt", "a.txt"),
        ("b.txt", "b.txt"),
        ("c.txt", "c.txt"),
    ]


def test_bucket_files_missing_from_record_order_follow(record_with_files):
    ObjectVersion.create(
        record_with_files.bucket, "0-outside.txt", stream=BytesIO(b"0")
    )
    files = record_with_files.files
    # keys are those of _files (no query), as in version 4
    assert list(files.keys) == ["a.txt", "b.txt", "c.txt"]
    assert [f.key for f in files] == ["a.txt", "b.txt", "c.txt", "0-outside.txt"]


def test_deleted_objects_are_not_files(record_with_files):
    ObjectVersion.delete(record_with_files.bucket, "b.txt")
    files = record_with_files.files
    assert [f.key for f in files] == ["a.txt", "c.txt"]
    assert len(files) == 2
    assert "b.txt" not in files


def test_empty_record(record):
    files = record.files
    assert len(files) == 0
    assert list(files) == []
    assert files.dumps() == []
    assert not files


def test_dumps(record_with_files):
    files = record_with_files.files
    files["b.txt"]["filetype"] = "txt"
    dump = files.dumps()
    assert [d["key"] for d in dump] == ["a.txt", "b.txt", "c.txt"]
    assert sorted(dump[1]) == [
        "bucket",
        "checksum",
        "file_id",
        "filetype",
        "key",
        "size",
        "version_id",
    ]
    obj = ObjectVersion.get(record_with_files.bucket, "b.txt")
    assert dump[1] == {
        "bucket": str(obj.bucket_id),
        "checksum": obj.file.checksum,
        "file_id": str(obj.file_id),
        "filetype": "txt",
        "key": "b.txt",
        "size": 5,
        "version_id": str(obj.version_id),
    }


def test_dumps_of_another_bucket(record_with_files):
    files = record_with_files.files
    files["a.txt"]["title"] = "A"
    snapshot = Bucket.create()
    for fileobj in files:
        ObjectVersion.create(snapshot, fileobj.key, _file_id=fileobj.obj.file)
    dump = files.dumps(bucket=snapshot)
    assert [d["key"] for d in dump] == ["a.txt", "b.txt", "c.txt"]
    assert {d["bucket"] for d in dump} == {str(snapshot.id)}
    assert dump[0]["title"] == "A"
    assert {f["bucket"] for f in record_with_files["_files"]} == {
        str(record_with_files.bucket.id)
    }


def test_iterator_defaults_to_the_record_bucket(record_with_files):
    files = FilesIterator(record_with_files)
    assert files.bucket is record_with_files.bucket
    assert files.file_cls is FileObject
    assert list(files.keys) == ["a.txt", "b.txt", "c.txt"]


# -- deleting ------------------------------------------------------------------


def test_delete_file(record_with_files):
    del record_with_files.files["b.txt"]
    assert list(record_with_files.files.keys) == ["a.txt", "c.txt"]
    assert [f["key"] for f in record_with_files["_files"]] == ["a.txt", "c.txt"]
    versions = ObjectVersion.get_versions(record_with_files.bucket, "b.txt").all()
    assert [v.deleted for v in versions] == [True, False]
    assert record_with_files.bucket.size == 10


def test_delete_missing_file(record_with_files):
    with pytest.raises(KeyError) as exc:
        del record_with_files.files["nope.txt"]
    assert exc.value.args == ("nope.txt",)
    assert len(record_with_files["_files"]) == 3


def test_delete_last_file_keeps_empty_list(record):
    record.files["a.txt"] = BytesIO(b"a")
    del record.files["a.txt"]
    assert record["_files"] == []


# -- flush ---------------------------------------------------------------------


def test_flush_without_files_adds_no_key(record):
    record.files.flush()
    assert "_files" not in record


def test_flush_rewrites_files_from_bucket(record_with_files):
    record_with_files["_files"][1]["title"] = "Bee"
    record_with_files["_files"].append({"key": "ghost.txt"})
    ObjectVersion.create(record_with_files.bucket, "d.txt", stream=BytesIO(b"d"))
    record_with_files.files.flush()
    assert [f["key"] for f in record_with_files["_files"]] == [
        "a.txt",
        "b.txt",
        "c.txt",
        "d.txt",
    ]
    assert record_with_files["_files"][1]["title"] == "Bee"


def test_metadata_update_and_flush_is_stored_on_commit(record_with_files, db):
    files = record_with_files.files
    files["c.txt"]["description"] = "The third file"
    files.flush()
    record_with_files.commit()
    record_id = record_with_files.id
    db.session.commit()
    db.session.expunge_all()
    stored = Record.get_record(record_id)
    assert stored["_files"][2]["description"] == "The third file"


# -- sort_by -------------------------------------------------------------------


def test_sort_by_keys(record_with_files):
    record_with_files.files.sort_by("c.txt", "a.txt", "b.txt")
    assert [f["key"] for f in record_with_files["_files"]] == [
        "c.txt",
        "a.txt",
        "b.txt",
    ]


def test_sort_by_file_ids(record_with_files):
    files = record_with_files.files
    ids = [files["b.txt"].file_id, str(files["c.txt"].file_id)]
    files.sort_by(*ids)
    assert list(files.keys) == ["b.txt", "c.txt", "a.txt"]


def test_sort_by_keeps_metadata_and_unlisted_files(record_with_files):
    files = record_with_files.files
    files["a.txt"]["title"] = "A"
    files.sort_by("c.txt")
    assert [f["key"] for f in record_with_files["_files"]] == [
        "c.txt",
        "a.txt",
        "b.txt",
    ]
    assert record_with_files["_files"][1]["title"] == "A"


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        (("a.txt", "nope.txt"), KeyError),
        ((str(uuid.uuid4()),), KeyError),
        (("a.txt", "a.txt"), ValueError),
    ],
)
def test_sort_by_bad_ids_changes_nothing(record_with_files, ids, error):
    before = [dict(entry) for entry in record_with_files["_files"]]
    with pytest.raises(error) as exc:
        record_with_files.files.sort_by(*ids)
    assert record_with_files["_files"] == before
    if error is KeyError:
        assert exc.value.args == (ids[-1],)


# -- rename --------------------------------------------------------------------


def test_rename(record_with_files):
    files = record_with_files.files
    files["b.txt"]["title"] = "Bee"
    old = files["b.txt"]
    new = files.rename("b.txt", "renamed.txt")
    assert isinstance(new, ObjectVersion)
    assert new.key == "renamed.txt"
    assert new.file_id == old.file_id
    assert read_bytes(new) == b"b.txt"
    assert "b.txt" not in record_with_files.files
    assert list(record_with_files.files.keys) == ["a.txt", "renamed.txt", "c.txt"]
    entry = record_with_files["_files"][1]
    assert entry["key"] == "renamed.txt"
    assert entry["title"] == "Bee"
    assert entry["version_id"] == str(new.version_id)
    assert record_with_files.bucket.size == 15


def test_rename_keeps_tags(record_with_files):
    from invenio_files_rest.models import ObjectVersionTag

    ObjectVersionTag.create(record_with_files.files["a.txt"].obj, "color", "red")
    new = record_with_files.files.rename("a.txt", "z.txt")
    assert new.get_tags() == {"color": "red"}


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("a.txt", "b.txt", KeyExistsError),
        ("a.txt", "a.txt", KeyExistsError),
        ("nope.txt", "z.txt", KeyError),
        ("a.txt", "", InvalidKeyError),
        ("a.txt", "x" * 256, InvalidKeyError),
    ],
)
def test_rename_errors_change_nothing(record_with_files, old, new, error):
    before = [dict(entry) for entry in record_with_files["_files"]]
    count = len(all_versions(record_with_files.bucket))
    with pytest.raises(error) as exc:
        record_with_files.files.rename(old, new)
    assert record_with_files["_files"] == before
    assert len(all_versions(record_with_files.bucket)) == count
    if error is KeyExistsError:
        assert exc.value.key == new
        assert exc.value.code == 409
    if error is KeyError:
        assert exc.value.args == (old,)


# -- FileObject ----------------------------------------------------------------


def test_file_object(record_with_files):
    fileobj = record_with_files.files["a.txt"]
    assert fileobj.key == "a.txt"
    assert fileobj["key"] == "a.txt"
    assert fileobj["size"] == 5
    fileobj["filetype"] = "txt"
    assert fileobj["filetype"] == "txt"
    assert fileobj.get("filetype") == "txt"
    assert fileobj.get("missing", "default") == "default"
    assert fileobj.get("key") == "a.txt"
    assert "filetype" in fileobj
    assert "mimetype" in fileobj
    assert "missing" not in fileobj
    with pytest.raises(KeyError):
        fileobj["missing"]
    with pytest.raises(AttributeError):
        fileobj.missing_attribute


@pytest.mark.parametrize(
    "reserved",
    ["key", "bucket", "file_id", "version_id", "mimetype", "checksum", "size"],
)
def test_file_object_reserved_keys(record_with_files, reserved):
    fileobj = record_with_files.files["a.txt"]
    with pytest.raises(KeyError) as exc:
        fileobj[reserved] = "x"
    assert exc.value.args == (reserved,)
    assert record_with_files["_files"][0]["key"] == "a.txt"


def test_file_object_versions(record_with_files):
    first = record_with_files.files["a.txt"].version_id
    record_with_files.files["a.txt"] = BytesIO(b"v2")
    fileobj = record_with_files.files["a.txt"]
    assert fileobj.get_version().version_id == fileobj.version_id
    assert read_bytes(fileobj.get_version(first)) == b"a.txt"
    assert fileobj.get_version(uuid.uuid4()) is None


def test_file_object_metadata_writes_through_to_record(record_with_files):
    record_with_files.files["a.txt"]["filetype"] = "txt"
    assert record_with_files["_files"][0]["filetype"] == "txt"
    assert record_with_files.files["a.txt"]["filetype"] == "txt"


def test_custom_file_class(db, location):
    class MyFile(FileObject):
        def describe(self):
            return f"{self.key} ({self['size']} bytes)"

    class MyRecord(Record):
        file_cls = MyFile

    record = MyRecord.create({})
    record.files["a.txt"] = BytesIO(b"abc")
    assert record.files["a.txt"].describe() == "a.txt (3 bytes)"


def test_plain_record_is_not_a_files_record(db):
    assert not hasattr(PlainRecord, "files")


@pytest.mark.parametrize(
    "bad", [None, "text", {"key": "a.txt"}, [None, 3, {"no": "key"}]]
)
def test_malformed_files_list_is_rebuilt_from_the_bucket(record_with_files, bad):
    record_with_files["_files"] = bad
    files = record_with_files.files
    assert [f.key for f in files] == ["a.txt", "b.txt", "c.txt"]
    files.flush()
    assert [f["key"] for f in record_with_files["_files"]] == [
        "a.txt",
        "b.txt",
        "c.txt",
    ]
