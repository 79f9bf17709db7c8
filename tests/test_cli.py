# SPDX-License-Identifier: MIT
"""Command line interface: ``flask records-files check``."""

import subprocess
import sys
import uuid
from copy import deepcopy
from io import BytesIO

import pytest
from invenio_files_rest.models import Bucket, ObjectVersion
from invenio_records.models import RecordMetadata

from invenio_records_files.api import Record
from invenio_records_files.maintenance import cli
from invenio_records_files.maintenance.check import KEYS_SHOWN, LEGACY
from invenio_records_files.models import FileEntry, RecordsBuckets

from .helpers import CustomKeyRecord

FILE_FIELDS = ("bucket", "checksum", "file_id", "key", "size", "version_id")


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def check(runner):
    def invoke(*args):
        return runner.invoke(args=["records-files", "check", *args])

    return invoke


def create(db, keys=("a.txt", "b.txt"), record_class=Record):
    record = record_class.create({"title": "A record"})
    for key in keys:
        record.files[key] = BytesIO(key.encode())
    record.commit()
    db.session.commit()
    return record


def stored(db, record):
    """The record as readers see it: its JSON with ``_files`` (a fresh read)."""
    db.session.expire_all()
    return dict(Record.get_record(record.id))


def stored_json(db, record):
    db.session.expire_all()
    return db.session.get(RecordMetadata, record.id).json


def drift(db, record, change):
    """Change the stored JSON behind the record API's back."""
    model = db.session.get(RecordMetadata, record.id)
    json = deepcopy(model.json)
    change(json)
    model.json = json
    db.session.commit()


def unlist(db, record, *keys):
    """Remove entries behind the record API's back (all when no keys)."""
    query = FileEntry.query.filter_by(record_id=record.id)
    if keys:
        query = query.filter(FileEntry.key.in_(keys))
    query.delete(synchronize_session=False)
    db.session.commit()


def make_legacy(db, record, change=None):
    """Store ``_files`` in the JSON, without rows, as version 4 did."""
    listed = deepcopy(Record.get_record(record.id)["_files"])
    unlist(db, record)
    if change is not None:
        change(listed)
    drift(db, record, lambda json: json.update(_files=listed))


def bucket_dump(record):
    """What ``_files`` must say for the record's bucket, by key."""
    return {
        obj.key: {
            "bucket": str(obj.bucket_id),
            "checksum": obj.file.checksum,
            "file_id": str(obj.file_id),
            "key": obj.key,
            "size": obj.file.size,
            "version_id": str(obj.version_id),
        }
        for obj in ObjectVersion.get_by_bucket(record.bucket_id).all()
    }


def file_fields(entry):
    return {field: entry[field] for field in FILE_FIELDS}


def lines(result):
    return result.stdout.splitlines()


@pytest.mark.database_independent
def test_importing_the_cli_defines_no_models():
    code = (
        "import sys, invenio_records_files.maintenance.cli; "
        "print([m for m in sys.modules if m.startswith('invenio') and "
        "m.endswith('.models')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_command_is_registered(app):
    assert "check" in app.cli.get_command(None, "records-files").commands


# -- clean repositories ----------------------------------------------------------


def test_no_records(check, db, location):
    result = check()
    assert result.exit_code == 0, result.output
    assert lines(result) == ["Checked 0 records: no problems found."]


def test_clean_records(check, db, location):
    create(db)
    create(db, keys=("x.txt",))
    create(db, keys=())
    result = check()
    assert result.exit_code == 0, result.output
    assert lines(result) == ["Checked 3 records: no problems found."]


def test_order_of_files_is_not_a_problem(check, db, location):
    record = create(db, keys=("a.txt", "b.txt", "c.txt"))
    record.files.sort_by("c.txt", "a.txt")
    record.commit()
    db.session.commit()
    assert [f["key"] for f in stored(db, record)["_files"]] == [
        "c.txt",
        "a.txt",
        "b.txt",
    ]
    assert check().exit_code == 0


def test_empty_files_list_and_empty_bucket_agree(check, db, location):
    record = create(db, keys=())
    drift(db, record, lambda json: json.update(_files=[]))
    assert check().exit_code == 0
    assert stored(db, record)["_files"] == []


def test_progress_bar_goes_to_stderr(check, db, location):
    create(db)
    result = check()
    assert "Checking records" in result.stderr
    assert "Checking records" not in result.stdout


# -- problems and their repair -----------------------------------------------------


def legacy(change=None):
    def drifter(db, record):
        make_legacy(db, record, change)

    return drifter


def drop_b(listed):
    listed[:] = [entry for entry in listed if entry["key"] != "b.txt"]


def add_ghost(listed):
    listed.append({**listed[0], "key": "ghost.txt"})


def duplicate_a(listed):
    listed.append(deepcopy(listed[0]))


def add_keyless(listed):
    listed.extend([{"size": 1}, {"key": 5}, "c.txt"])


def change(field, value):
    def changer(listed):
        listed[0][field] = value

    return changer


def ghost_entry(db, record):
    db.session.add(FileEntry(record_id=record.id, key="ghost.txt", data={}))
    db.session.commit()


DRIFTS = {
    "missing": (lambda db, r: unlist(db, r, "b.txt"), "missing in _files: b.txt"),
    "no-entries": (lambda db, r: unlist(db, r), "missing in _files: a.txt, b.txt"),
    "ghost": (ghost_entry, "not in bucket: ghost.txt"),
    "legacy": (legacy(), LEGACY),
    "legacy-missing": (legacy(drop_b), f"{LEGACY}; missing in _files: b.txt"),
    "legacy-ghost": (legacy(add_ghost), f"{LEGACY}; not in bucket: ghost.txt"),
    "legacy-duplicate": (legacy(duplicate_a), LEGACY),
    "legacy-keyless": (legacy(add_keyless), LEGACY),
    "legacy-stale": (legacy(change("checksum", "md5:0")), LEGACY),
    "legacy-not-a-list": (
        lambda db, r: (
            make_legacy(db, r, lambda listed: listed.clear())
            or drift(db, r, lambda json: json.update(_files={"a.txt": {}}))
        ),
        f"{LEGACY}; missing in _files: a.txt, b.txt",
    ),
}


@pytest.mark.parametrize(("make_drift", "reason"), DRIFTS.values(), ids=DRIFTS)
def test_disagreement_reported_and_fixed(check, db, location, make_drift, reason):
    create(db)
    record = create(db)
    make_drift(db, record)

    result = check()
    assert result.exit_code == 1, result.output
    assert lines(result) == [
        f"{record.id}: {reason}",
        "Checked 2 records: problems in 1 record, 0 orphan buckets.",
    ]

    result = check("--fix")
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        f"{record.id}: {reason} (fixed)",
        "Checked 2 records: problems in 1 record (1 fixed), 0 orphan buckets.",
    ]
    data = stored(db, record)
    assert data["title"] == "A record"
    assert data["_files"] == list(bucket_dump(record).values())
    assert "_files" not in stored_json(db, record)

    result = check()
    assert result.exit_code == 0, result.output
    assert lines(result) == ["Checked 2 records: no problems found."]


@pytest.mark.parametrize(
    ("change_bucket", "shown"),
    [
        (
            lambda json: json.update(_bucket=str(uuid.UUID(int=1))),
            str(uuid.UUID(int=1)),
        ),
        (lambda json: json.pop("_bucket"), "missing"),
    ],
    ids=["other", "missing"],
)
def test_wrong_bucket_id_reported_and_fixed(check, db, location, change_bucket, shown):
    record = create(db, keys=())
    bucket_id = record["_bucket"]
    drift(db, record, change_bucket)

    result = check()
    assert result.exit_code == 1
    assert lines(result)[0] == (
        f"{record.id}: bucket id in record is {shown}, linked bucket is {bucket_id}"
    )

    assert check("--fix").exit_code == 0
    assert stored(db, record)["_bucket"] == bucket_id
    assert "_files" not in stored_json(db, record)
    assert check().exit_code == 0


def test_new_version_uploaded_behind_the_record_is_no_drift(check, db, location):
    record = create(db)
    obj = ObjectVersion.create(record.bucket, "a.txt", stream=BytesIO(b"version 2"))
    db.session.commit()

    assert check().exit_code == 0
    entry = stored(db, record)["_files"][0]
    assert entry["version_id"] == str(obj.version_id)
    assert entry["checksum"] == obj.file.checksum
    assert entry["size"] == len(b"version 2")
    assert check().exit_code == 0


def test_file_deleted_behind_the_record(check, db, location):
    record = create(db)
    ObjectVersion.delete(record.bucket, "a.txt")
    db.session.commit()

    assert [f["key"] for f in stored(db, record)["_files"]] == ["b.txt"]
    result = check()
    assert lines(result)[0] == f"{record.id}: not in bucket: a.txt"
    assert check("--fix").exit_code == 0
    assert check().exit_code == 0
    assert FileEntry.query.filter_by(record_id=record.id).count() == 1


def test_all_reasons_on_one_line(check, db, location):
    record = create(db, keys=("a.txt", "b.txt", "c.txt"))
    ObjectVersion.create(record.bucket, "d.txt", stream=BytesIO(b"d"))
    db.session.commit()

    unlist(db, record, "a.txt")
    ghost_entry(db, record)
    drift(db, record, lambda json: json.update(_bucket="elsewhere"))
    result = check()
    assert lines(result)[0] == (
        f"{record.id}: missing in _files: a.txt, d.txt; not in bucket: ghost.txt; "
        f"bucket id in record is elsewhere, linked bucket is {record.bucket_id}"
    )


def test_long_key_lists_are_shortened(check, db, location):
    keys = [f"file-{i:02d}.txt" for i in range(KEYS_SHOWN + 3)]
    record = create(db, keys=keys)
    unlist(db, record)
    shown = ", ".join(keys[:KEYS_SHOWN])
    assert lines(check())[0] == f"{record.id}: missing in _files: {shown} (and 3 more)"


def test_fix_keeps_order_and_metadata(check, db, location):
    record = create(db, keys=("a.txt", "b.txt", "c.txt"))
    record.files["b.txt"]["title"] = "Bee"
    record.files.sort_by("c.txt", "b.txt", "a.txt")
    record.commit()
    db.session.commit()
    ObjectVersion.create(record.bucket, "d.txt", stream=BytesIO(b"d"))
    ObjectVersion.create(record.bucket, "c.txt", stream=BytesIO(b"c, version 2"))
    db.session.commit()

    unlist(db, record, "a.txt")
    ghost_entry(db, record)

    result = check("--fix")
    assert result.exit_code == 0, result.output
    assert lines(result)[0].endswith(" (fixed)")
    files = stored(db, record)["_files"]
    assert [f["key"] for f in files] == ["c.txt", "b.txt", "a.txt", "d.txt"]
    assert files[1]["title"] == "Bee"
    expected = bucket_dump(record)
    assert [file_fields(f) for f in files] == [expected[f["key"]] for f in files]
    assert check().exit_code == 0


def test_fix_moves_legacy_files_with_their_metadata_and_order(check, db, location):
    record = create(db, keys=("a.txt", "b.txt", "c.txt"))

    def mess(listed):
        listed[1]["title"] = "Bee"
        listed.reverse()
        listed.extend([{"size": 1}, deepcopy(listed[1])])

    make_legacy(db, record, mess)
    assert check("--fix").exit_code == 0
    files = stored(db, record)["_files"]
    assert [f["key"] for f in files] == ["c.txt", "b.txt", "a.txt"]
    assert files[1]["title"] == "Bee"
    assert "_files" not in stored_json(db, record)


def test_legacy_files_are_read_before_they_are_moved(db, location):
    record = create(db)

    def mess(listed):
        listed[1]["title"] = "Bee"
        listed.extend([{"size": 1}, deepcopy(listed[1])])

    make_legacy(db, record, mess)
    files = stored(db, record)["_files"]
    assert [f["key"] for f in files] == ["a.txt", "b.txt"]
    assert files[1]["title"] == "Bee"


def test_fix_adds_a_revision_and_keeps_other_metadata(check, db, location):
    record = create(db)
    unlist(db, record, "b.txt")
    revision = db.session.get(RecordMetadata, record.id).version_id
    assert check("--fix").exit_code == 0
    model = db.session.get(RecordMetadata, record.id)
    assert model.version_id == revision + 1
    assert model.json["title"] == "A record"


# -- orphan buckets --------------------------------------------------------------


def test_orphan_buckets_reported_never_deleted(check, db, location):
    create(db)
    orphan = Bucket.create()
    deleted = Bucket.create()
    deleted.deleted = True
    db.session.commit()

    result = check()
    assert result.exit_code == 1
    assert lines(result) == [
        f"orphan bucket: {orphan.id}",
        "Checked 1 record: problems in 0 records, 1 orphan bucket.",
    ]
    result = check("--fix")
    assert result.exit_code == 1
    assert lines(result) == [
        f"orphan bucket: {orphan.id}",
        "Checked 1 record: problems in 0 records (0 fixed), 1 orphan bucket.",
    ]
    assert db.session.get(Bucket, orphan.id) is not None


def test_orphan_list_is_limited(check, db, location, monkeypatch):
    monkeypatch.setattr(cli, "ORPHANS_SHOWN", 2)
    for _ in range(3):
        Bucket.create()
    db.session.commit()
    result = check()
    assert result.exit_code == 1
    assert len([line for line in lines(result) if line.startswith("orphan")]) == 2
    assert lines(result)[-2:] == [
        "... and 1 more orphan bucket",
        "Checked 0 records: problems in 0 records, 3 orphan buckets.",
    ]


def test_fix_with_orphans_still_fails(check, db, location):
    record = create(db)
    unlist(db, record, "b.txt")
    orphan = Bucket.create()
    db.session.commit()
    result = check("--fix")
    assert result.exit_code == 1
    assert lines(result) == [
        f"{record.id}: missing in _files: b.txt (fixed)",
        f"orphan bucket: {orphan.id}",
        "Checked 1 record: problems in 1 record (1 fixed), 1 orphan bucket.",
    ]
    assert len(stored(db, record)["_files"]) == 2


# -- records that are not checked ---------------------------------------------------


def test_deleted_records_and_records_without_bucket_are_ignored(check, db, location):
    create(db)
    deleted = create(db)
    unlist(db, deleted, "b.txt")
    Record.get_record(deleted.id).delete()
    without_bucket = Record.create({}, with_bucket=False)
    db.session.commit()
    drift(db, without_bucket, lambda json: json.update(_files=[{"key": "x.txt"}]))
    assert db.session.get(RecordMetadata, deleted.id).json is None

    result = check("--fix")
    assert result.exit_code == 0, result.output
    assert lines(result) == ["Checked 1 record: no problems found."]
    assert stored_json(db, without_bucket)["_files"] == [{"key": "x.txt"}]


def test_record_linked_to_several_buckets(check, db, location):
    record = create(db)
    other = Bucket.create()
    RecordsBuckets.create(record=record.model, bucket=other)
    db.session.commit()
    ids = ", ".join(sorted([record["_bucket"], str(other.id)]))

    result = check("--fix")
    assert result.exit_code == 1
    assert lines(result) == [
        f"{record.id}: linked to 2 buckets: {ids} (not fixed: several buckets)",
        "Checked 1 record: problems in 1 record (0 fixed), 0 orphan buckets.",
    ]


def test_shared_bucket(check, db, location):
    record = create(db)
    other = Record.create({}, with_bucket=False)
    RecordsBuckets.create(record=other.model, bucket=record.bucket)
    db.session.commit()

    result = check("--fix")
    assert lines(result) == [
        f"{other.id}: missing in _files: a.txt, b.txt; bucket id in record is "
        f"missing, linked bucket is {record['_bucket']} (fixed)",
        "Checked 2 records: problems in 1 record (1 fixed), 0 orphan buckets.",
    ]
    assert stored(db, other)["_files"] == stored(db, record)["_files"]


# -- options ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 500])
def test_batches(check, db, location, batch_size):
    records = [create(db, keys=(f"{i}.txt",)) for i in range(5)]
    broken = sorted((records[1], records[4]), key=lambda r: r.id)
    for record in broken:
        unlist(db, record)

    result = check("--batch-size", str(batch_size))
    assert result.exit_code == 1
    assert lines(result)[:2] == [
        f"{record.id}: missing in _files: {next(iter(record.files.keys))}"
        for record in broken
    ]
    assert lines(result)[2] == (
        "Checked 5 records: problems in 2 records, 0 orphan buckets."
    )

    result = check("--fix", "--batch-size", str(batch_size))
    assert result.exit_code == 0, result.output
    result = check("--batch-size", str(batch_size))
    assert lines(result) == ["Checked 5 records: no problems found."]


def test_batch_size_must_be_positive(check, db, location):
    result = check("--batch-size", "0")
    assert result.exit_code == 2
    assert "--batch-size" in result.stderr


def test_record_class(check, db, location):
    record = create(db, record_class=CustomKeyRecord)
    result = check()
    assert result.exit_code == 1
    assert lines(result)[0] == (
        f"{record.id}: bucket id in record is missing, "
        f"linked bucket is {record['storage']['bucket']}"
    )
    result = check("--record-class", "tests.helpers:CustomKeyRecord")
    assert result.exit_code == 0, result.output


def test_record_class_with_custom_bucket_key_is_fixed(check, db, location):
    record = create(db, record_class=CustomKeyRecord)
    bucket_id = record["storage"]["bucket"]
    drift(db, record, lambda json: json.update(storage={}))
    args = ("--record-class", "tests.helpers:CustomKeyRecord")
    assert check(*args).exit_code == 1
    assert check("--fix", *args).exit_code == 0
    assert stored(db, record)["storage"] == {"bucket": bucket_id}


@pytest.mark.parametrize("value", ["no.such.module:Record", "uuid:UUID"])
def test_bad_record_class(check, db, location, value):
    result = check("--record-class", value)
    assert result.exit_code == 2
    assert "--record-class" in result.stderr


# -- statements --------------------------------------------------------------------


def count_statements(check, statements, records):
    with statements.count():
        result = check("--batch-size", "50")
    assert result.exit_code == 1
    assert lines(result)[-1] == (
        f"Checked {records} records: problems in 1 record, 0 orphan buckets."
    )
    return statements.total


def test_statements_do_not_grow_with_records(check, statements, db, location):
    unlist(db, create(db, keys=("a.txt", "b.txt", "c.txt")), "b.txt")
    for _ in range(2):
        create(db, keys=("a.txt", "b.txt", "c.txt"))
    few = count_statements(check, statements, 3)
    for _ in range(9):
        create(db, keys=("a.txt", "b.txt", "c.txt"))
    assert count_statements(check, statements, 12) == few
