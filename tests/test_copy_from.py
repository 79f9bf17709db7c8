# SPDX-License-Identifier: MIT
"""``record.files.copy_from()``: new versions share their files' bytes."""

from io import BytesIO

import pytest
from invenio_files_rest.errors import BucketLockedError, FileSizeError
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    ObjectVersion,
    ObjectVersionTag,
)

from invenio_records_files.api import Record
from invenio_records_files.errors import KeyExistsError, LockedBucketError
from invenio_records_files.models import FileEntry


def read(fileinstance):
    with fileinstance.storage().open("rb") as fp:
        return fp.read()


def readable(storage):
    """Tell whether the storage API can still open the bytes."""
    try:
        with storage.open("rb") as fp:
            fp.read()
    except Exception:
        return False
    return True


def make(db, files, metadata=None, locked=False):
    record = Record.create({"title": "published"})
    for key, data in files.items():
        record.files[key] = BytesIO(data)
    for key, values in (metadata or {}).items():
        for name, value in values.items():
            record.files[key][name] = value
    record.commit()
    if locked:
        record.bucket.locked = True
    db.session.commit()
    return record


def fresh(db, record):
    """The record loaded afresh (other record objects stay usable)."""
    record_id = record.id
    db.session.expire_all()
    return Record.get_record(record_id)


def heads(bucket_id):
    return {
        obj.key: obj
        for obj in ObjectVersion.get_by_bucket(bucket_id).all()  # current files
    }


def rows(record):
    return [
        (entry.key, entry.data)
        for entry in FileEntry.query.filter_by(record_id=record.id).order_by(
            FileEntry.position.is_(None), FileEntry.position, FileEntry.id
        )
    ]


@pytest.fixture
def published(db, location):
    record = make(
        db,
        {"c.txt": b"ccc", "a.txt": b"a", "b.txt": b"bb"},
        metadata={"a.txt": {"description": "first"}, "c.txt": {"type": "data"}},
    )
    record.files.sort_by("b.txt", "a.txt")
    ObjectVersionTag.create(record.files["a.txt"].obj, "color", "red")
    record.files["a.txt"].obj.mimetype = "text/x-custom"
    record.commit()
    record.bucket.locked = True
    db.session.commit()
    return fresh(db, record)


@pytest.fixture
def new_version(db, location):
    return make(db, {})


def test_bytes_are_shared(db, published, new_version):
    file_ids = {obj.key: obj.file_id for obj in heads(published.bucket.id).values()}
    instances = {f.id: (f.updated, f.uri) for f in FileInstance.query}

    created = new_version.files.copy_from(published.files)
    new_version.commit()
    db.session.commit()

    assert [obj.key for obj in created] == ["b.txt", "a.txt", "c.txt"]
    db.session.expire_all()
    # No new file instance, and the source's are left untouched.
    assert {f.id: (f.updated, f.uri) for f in FileInstance.query} == instances
    copies = heads(new_version.bucket.id)
    assert {key: obj.file_id for key, obj in copies.items()} == file_ids
    for key, obj in heads(published.bucket.id).items():
        assert read(copies[key].file) == read(obj.file)
        assert copies[key].version_id != obj.version_id
    assert new_version.bucket.size == published.bucket.size == 6


def test_order_metadata_tags_and_mimetype_are_kept(db, published, new_version):
    new_version.files["own.txt"] = BytesIO(b"own")
    new_version.files["own.txt"]["description"] = "mine"
    new_version.commit()

    new_version.files.copy_from(published.files)
    in_memory = [(e["key"], e.get("description")) for e in new_version["_files"]]
    new_version.commit()
    db.session.commit()

    expected = [
        ("own.txt", "mine"),
        ("b.txt", None),
        ("a.txt", "first"),
        ("c.txt", None),
    ]
    assert in_memory == expected
    loaded = fresh(db, new_version)
    assert [(e["key"], e.get("description")) for e in loaded["_files"]] == expected
    assert list(loaded.files.keys) == ["own.txt", "b.txt", "a.txt", "c.txt"]
    assert loaded.files["c.txt"]["type"] == "data"
    copied = loaded.files["a.txt"].obj
    assert {tag.key: tag.value for tag in copied.tags} == {"color": "red"}
    assert copied.mimetype == "text/x-custom"
    assert rows(loaded) == [
        ("own.txt", {"description": "mine"}),
        ("b.txt", {}),
        ("a.txt", {"description": "first"}),
        ("c.txt", {"type": "data"}),
    ]
    # The managed fields describe the new record's own object versions.
    entry = next(e for e in loaded["_files"] if e["key"] == "a.txt")
    assert entry["bucket"] == str(loaded.bucket.id)
    assert entry["version_id"] == str(copied.version_id)


def test_copy_some_keys_in_the_source_order(db, published, new_version):
    created = new_version.files.copy_from(published.files, keys=["c.txt", "b.txt"])
    assert [obj.key for obj in created] == ["b.txt", "c.txt"]
    new_version.commit()
    db.session.commit()
    assert list(fresh(db, new_version).files.keys) == ["b.txt", "c.txt"]
    assert list(fresh(db, published).files.keys) == ["b.txt", "a.txt", "c.txt"]


def test_unsaved_metadata_of_the_source_is_copied(db, location, new_version):
    source = make(db, {"a.txt": b"a"})
    source.files["a.txt"]["note"] = "not committed yet"
    new_version.files.copy_from(source.files)
    assert new_version.files["a.txt"]["note"] == "not committed yet"


def test_metadata_is_copied_not_shared(db, published, new_version):
    new_version.files.copy_from(published.files)
    new_version.files["a.txt"]["description"] = "changed in the new version"
    new_version.commit()
    db.session.commit()
    assert fresh(db, published).files["a.txt"]["description"] == "first"
    assert fresh(db, new_version).files["a.txt"]["description"] == (
        "changed in the new version"
    )


def nothing_written(db, record, before):
    assert heads(record.bucket.id).keys() == before["heads"]
    assert ObjectVersion.query.count() == before["versions"]
    assert ObjectVersionTag.query.count() == before["tags"]
    assert rows(record) == before["rows"]
    assert record.bucket.size == before["size"]
    assert [e["key"] for e in record.get("_files", [])] == before["listed"]


def snapshot(record):
    return {
        "heads": heads(record.bucket.id).keys(),
        "versions": ObjectVersion.query.count(),
        "tags": ObjectVersionTag.query.count(),
        "rows": rows(record),
        "size": record.bucket.size,
        "listed": [e["key"] for e in record.get("_files", [])],
    }


def test_collision_raises_and_writes_nothing(db, published, location):
    target = make(db, {"own.txt": b"own", "c.txt": b"other c"})
    before = snapshot(target)
    with pytest.raises(KeyExistsError) as error:
        target.files.copy_from(published.files)
    assert error.value.key == "c.txt"
    assert error.value.code == 409
    assert "c.txt" in error.value.description
    nothing_written(db, target, before)
    target.commit()
    db.session.commit()
    nothing_written(db, fresh(db, target), before)


def test_missing_source_key_raises_and_writes_nothing(db, published, new_version):
    before = snapshot(new_version)
    with pytest.raises(KeyError) as error:
        new_version.files.copy_from(published.files, keys=["a.txt", "nope.txt"])
    assert error.value.args == ("nope.txt",)
    nothing_written(db, new_version, before)


def test_deleted_file_of_the_source_is_not_copied(db, location, new_version):
    source = make(db, {"a.txt": b"a", "gone.txt": b"gone"})
    del source.files["gone.txt"]
    db.session.commit()
    assert [o.key for o in new_version.files.copy_from(source.files)] == ["a.txt"]
    with pytest.raises(KeyError):
        new_version.files.copy_from(source.files, keys=["gone.txt"])


def test_a_deleted_file_of_the_target_can_be_copied_over(db, published, location):
    target = make(db, {"a.txt": b"old a"})
    del target.files["a.txt"]
    target.files.copy_from(published.files, keys=["a.txt"])
    target.commit()
    db.session.commit()
    versions = ObjectVersion.get_versions(target.bucket.id, "a.txt", desc=True).all()
    assert [v.is_head for v in versions] == [True, False, False]
    assert read(versions[0].file) == b"a"
    assert list(fresh(db, target).files.keys) == ["a.txt"]


def test_locked_target_is_refused(db, published, location):
    target = make(db, {}, locked=True)
    with pytest.raises(BucketLockedError) as error:
        target.files.copy_from(published.files)
    assert isinstance(error.value, LockedBucketError)
    assert ObjectVersion.query.filter_by(bucket_id=target.bucket.id).count() == 0


def test_quota_is_enforced(db, published, location):
    class SmallRecord(Record):
        @classmethod
        def create_bucket(cls, data):
            return Bucket.create(quota_size=5)

    target = SmallRecord.create({})
    db.session.commit()
    before = snapshot(target)
    with pytest.raises(FileSizeError):
        target.files.copy_from(published.files)
    nothing_written(db, target, before)
    target.files.copy_from(published.files, keys=["a.txt", "b.txt"])
    assert target.bucket.size == 3


def test_source_must_be_files_of_a_record(new_version, published):
    with pytest.raises(TypeError, match="files of a record"):
        new_version.files.copy_from(published)
    with pytest.raises(TypeError, match="not a string"):
        new_version.files.copy_from(published.files, keys="a.txt")


def test_empty_source_copies_nothing(db, location, new_version):
    empty = make(db, {})
    assert new_version.files.copy_from(empty.files) == []
    assert "_files" not in new_version or new_version["_files"] == []


def test_nothing_is_committed(db, published, new_version):
    new_version.files.copy_from(published.files)
    db.session.rollback()
    assert ObjectVersion.query.filter_by(bucket_id=new_version.bucket.id).count() == 0
    assert rows(new_version) == []


def test_copy_is_undone_as_a_whole_by_its_savepoint(db, published, new_version):
    with db.session.begin_nested() as savepoint:
        new_version.files.copy_from(published.files)
        savepoint.rollback()
    assert ObjectVersion.query.filter_by(bucket_id=new_version.bucket.id).count() == 0


# -- removing either version -----------------------------------------------------


@pytest.fixture
def two_versions(db, published, new_version):
    new_version.files.copy_from(published.files)
    new_version.files["c.txt"] = BytesIO(b"changed")
    new_version.commit()
    db.session.commit()
    return published, new_version


def storages(record):
    return {
        obj.key: (obj.file_id, obj.file.storage())
        for obj in heads(record.bucket.id).values()
    }


def all_file_ids(record):
    return {
        obj.file_id
        for obj in ObjectVersion.get_by_bucket(record.bucket.id, versions=True)
    }


@pytest.mark.parametrize(
    ("first", "gone"),
    [
        # The new version's older "c.txt" is the old record's: all kept.
        ("old", set()),
        # The new version's own "c.txt" goes; the shared files stay.
        ("new", {"c.txt"}),
    ],
)
def test_removing_either_version_keeps_the_others_bytes(db, two_versions, first, gone):
    old, new = two_versions
    versions = {"old": old, "new": new}
    removed, kept = versions[first], versions["new" if first == "old" else "old"]
    removed_storages = storages(removed)
    kept_storages = storages(kept)
    kept_bytes = {key: read(obj.file) for key, obj in heads(kept.bucket.id).items()}
    kept_id = kept.id
    assert {
        key
        for key, (file_id, _) in removed_storages.items()
        if file_id not in all_file_ids(kept)
    } == gone

    removed.delete(force=True, remove_bucket=True)
    db.session.commit()

    kept = fresh(db, kept)
    assert {key: read(obj.file) for key, obj in heads(kept.bucket.id).items()} == (
        kept_bytes
    )
    for key, (_, storage) in kept_storages.items():
        assert readable(storage), key
    for key, (file_id, storage) in removed_storages.items():
        assert readable(storage) is (key not in gone), key
        assert (db.session.get(FileInstance, file_id) is not None) is (key not in gone)

    Record.get_record(kept_id).delete(force=True, remove_bucket=True)
    db.session.commit()
    assert FileInstance.query.count() == 0
    for _, storage in [*kept_storages.values(), *removed_storages.values()]:
        assert not readable(storage)


def test_check_and_verify_see_no_problem_in_shared_files(app, db, two_versions):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["records-files", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Checked 2 records: no problems found."]
    result = runner.invoke(args=["records-files", "verify", "--all"])
    assert result.exit_code == 0, result.output
    # 4 file instances: a, b and c shared, plus the new version's own c.
    assert result.stdout == "Verified 4 files: all intact.\n"
