# SPDX-License-Identifier: MIT
"""The record's files state: hooks, lock order, rollbacks, removals, errors."""

import json
from io import BytesIO

import pytest
from flask import current_app
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion
from invenio_records.api import Record as PlainRecord
from invenio_records.extensions import RecordExtension
from invenio_records.models import RecordMetadata
from invenio_records.signals import (
    after_record_insert,
    after_record_revert,
    after_record_update,
    before_record_insert,
    before_record_revert,
    before_record_update,
)
from jsonschema.exceptions import ValidationError
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from invenio_records_files.api import Record
from invenio_records_files.models import FileEntry
from invenio_records_files.records.extension import FilesExtension
from invenio_records_files.store import transactions

from .helpers import CustomKeyRecord, body, create_record, upload


def stored_files(tmp_path):
    return sorted((tmp_path / "files").rglob("data"))


# -- 1. invenio-records' extension points, and the overrides that stay -----------


class LoggingExtension(RecordExtension):
    def __init__(self, log):
        self.log = log

    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        if name.startswith(("pre_", "post_")):

            def logged(*args, **kwargs):
                self.log.append(name)
                return attribute(*args, **kwargs)

            return logged
        return attribute


@pytest.fixture
def log():
    entries = []
    handlers = {}
    for signal in (
        before_record_insert,
        after_record_insert,
        before_record_update,
        after_record_update,
        before_record_revert,
        after_record_revert,
    ):

        def handler(sender, record, name=signal.name, **kwargs):
            entries.append(name)

        handlers[signal] = handler
        signal.connect(handler)
    yield entries
    for signal, handler in handlers.items():
        signal.disconnect(handler)


def logging_classes(log):
    extension = LoggingExtension(log)

    class Ours(Record):
        _extensions = [extension]

    class Upstream(PlainRecord):
        _extensions = [extension]

    return Ours, Upstream


def test_a_subclass_with_its_own_extensions_keeps_ours(log):
    ours, _ = logging_classes(log)
    assert isinstance(ours._extensions[0], FilesExtension)
    assert isinstance(ours._extensions[1], LoggingExtension)
    assert len(Record._extensions) == 1


def test_a_subclass_with_its_own_extensions_keeps_the_managed_fields(db, location):
    class Mine(Record):
        _extensions = [RecordExtension()]

    record = Mine.create({"title": "x"})
    record.files["a.txt"] = BytesIO(b"a")
    record.clear()
    record.update({"title": "y", "_bucket": "elsewhere"})
    record.commit()
    assert record["_bucket"] == str(record.bucket_id or record.files.bucket.id)
    assert [entry["key"] for entry in record["_files"]] == ["a.txt"]


@pytest.mark.parametrize(
    "operation",
    [
        lambda cls: cls.create({"title": "x"}),
        lambda cls: cls.create({"title": "x"}).commit(),
        lambda cls: cls.create({"title": "x"}).delete(),
        lambda cls: cls.create({"title": "x"}).delete(force=True),
    ],
    ids=["create", "commit", "delete", "hard-delete"],
)
def test_signals_and_extensions_run_in_upstream_order(db, location, log, operation):
    ours, upstream = logging_classes(log)
    operation(upstream)
    expected = list(log)
    log.clear()
    operation(ours)
    assert log == expected


def test_revert_runs_upstream_and_keeps_current_files(db, location, log):
    ours, upstream = logging_classes(log)
    orders = []
    for cls in (upstream, ours):
        record = cls.create({"title": "first"})
        db.session.commit()
        record["title"] = "second"
        record.commit()
        db.session.commit()
        log.clear()
        reverted = record.revert(0)
        orders.append(list(log))
        assert reverted["title"] == "first"
    assert orders[0] == orders[1]


def test_commit_retried_after_a_files_only_change_sends_before_update_twice(
    db, location, log
):
    record = create_record("1")
    loaded = Record.get_record(record.id)
    bump_version_elsewhere(db, record.id)
    log.clear()
    loaded["title"] = "edited"
    loaded.commit()
    assert log == [
        "before-record-update",
        "before-record-update",
        "after-record-update",
    ]
    db.session.expire_all()
    assert Record.get_record(record.id)["title"] == "edited"


def bump_version_elsewhere(db, record_id, **managed):
    """Do what another transaction's upload does to the record's row."""
    table = RecordMetadata.__table__
    json = db.session.execute(select(table.c.json).where(table.c.id == record_id))
    db.session.execute(
        update(table)
        .where(table.c.id == record_id)
        .values(version_id=table.c.version_id + 1, json={**json.scalar(), **managed})
    )


def test_managed_fields_follow_dump_and_load_bucket(db, location):
    record = CustomKeyRecord.create({"title": "x"})
    bucket_id = record["storage"]["bucket"]
    record.clear()
    record.update({"title": "y", "storage": {"bucket": "elsewhere"}})
    record.commit()
    assert record["storage"] == {"bucket": bucket_id}
    assert "_bucket" not in record


def test_metadata_conflict_detection_ignores_custom_bucket_field(db, location):
    record = CustomKeyRecord.create({"title": "x"})
    db.session.commit()
    loaded = CustomKeyRecord.get_record(record.id)
    bump_version_elsewhere(db, record.id, storage={"bucket": "elsewhere"})
    loaded["title"] = "edited"
    loaded.commit()
    db.session.expire_all()
    stored = CustomKeyRecord.get_record(record.id)
    assert stored["title"] == "edited"
    assert stored["storage"] == {"bucket": str(record.bucket_id)}


# -- 2. the state forgets what a rollback undid ---------------------------------


def lock_queries(statements):
    return [
        s
        for s in statements.statements
        if "FOR UPDATE" in s or "records_metadata.id = " in s
    ]


def test_lock_taken_once_per_transaction(db, location, statements):
    record = create_record("1")
    record.files["a.txt"] = BytesIO(b"a")
    with statements.count():
        record.files["b.txt"] = BytesIO(b"b")
    assert not [s for s in statements.statements if "FROM records_metadata" in s]


def test_lock_forgotten_after_a_savepoint_rollback(db, location, statements):
    record = create_record("1")
    savepoint = db.session.begin_nested()
    record.files["a.txt"] = BytesIO(b"a")
    assert record._files_state.holds_lock()
    savepoint.rollback()
    assert not record._files_state.holds_lock()
    with statements.count():
        record.files["b.txt"] = BytesIO(b"b")
    assert [s for s in statements.statements if "FROM records_metadata" in s]


def test_bucket_created_in_a_rolled_back_savepoint_is_forgotten(db, location):
    class LazyBucketRecord(Record):
        def _create_bucket(self):
            return Bucket.create()

    record = LazyBucketRecord.create({}, with_bucket=False)
    savepoint = db.session.begin_nested()
    first = record.files.bucket
    savepoint.rollback()
    second = record.files.bucket
    assert second.id != first.id
    assert db.session.get(Bucket, second.id) is not None


def test_failed_setter_changes_nothing(db, location):
    record = create_record("1")
    with pytest.raises(TypeError):
        record.files = {"a.txt": BytesIO(b"a"), "b.txt": "not a stream"}
    assert "_files" not in record
    assert FileEntry.query.count() == 0
    record.files["c.txt"] = BytesIO(b"c")
    assert [e["key"] for e in record["_files"]] == ["c.txt"]


# -- 3. bytes scheduled for removal go when their transaction commits -------------


@pytest.fixture
def full_record(db, location):
    record = create_record("1")
    record.files["a.txt"] = BytesIO(b"a")
    record.commit()
    db.session.commit()
    return record


def test_removal_survives_an_unrelated_savepoint_rollback(full_record, db, tmp_path):
    full_record.delete(force=True, remove_bucket=True)
    unrelated = db.session.begin_nested()
    unrelated.rollback()
    assert len(stored_files(tmp_path)) == 1
    db.session.commit()
    assert stored_files(tmp_path) == []


def test_removal_cancelled_with_its_savepoint(full_record, db, tmp_path):
    savepoint = db.session.begin_nested()
    full_record.delete(force=True, remove_bucket=True)
    savepoint.rollback()
    db.session.commit()
    assert len(stored_files(tmp_path)) == 1
    assert FileInstance.query.count() == 1


def test_removal_cancelled_with_the_transaction(full_record, db, tmp_path):
    full_record.delete(force=True, remove_bucket=True)
    db.session.rollback()
    assert len(stored_files(tmp_path)) == 1


def test_removal_in_a_released_savepoint_waits_for_the_commit(
    full_record, db, tmp_path
):
    with db.session.begin_nested():
        full_record.delete(force=True, remove_bucket=True)
    assert len(stored_files(tmp_path)) == 1
    db.session.commit()
    assert stored_files(tmp_path) == []


def test_listeners_are_on_the_application_session_only(app, db):
    assert not event.contains(Session, "after_commit", transactions._after_commit)
    transactions.listen(db.session)
    assert event.contains(
        db.session.session_factory.class_, "after_commit", transactions._after_commit
    )


# -- 4. errors: only ours become HTTP answers; schema failures are 400 ----------


def test_a_key_error_from_a_signal_receiver_is_a_server_error(
    client, db, location, app, monkeypatch
):
    record = create_record("1")

    def broken(sender, record):
        raise KeyError("an application bug")

    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    before_record_update.connect(broken)
    try:
        response = upload(client, "a.txt", b"a")
    finally:
        before_record_update.disconnect(broken)
    assert response.status_code == 500
    assert ObjectVersion.query.filter_by(bucket_id=record.bucket.id).count() == 0


SCHEMA = {
    "type": "object",
    "properties": {"_files": {"type": "array", "maxItems": 1}},
}


def test_a_file_write_that_breaks_the_schema_is_refused(client, db, location, tmp_path):
    record = create_record("1", {"title": "x", "$schema": SCHEMA})
    assert upload(client, "a.txt", b"a").status_code == 200
    response = upload(client, "b.txt", b"b")
    assert response.status_code == 400
    assert "too long" in body(response)["message"]
    assert [o.key for o in ObjectVersion.get_by_bucket(record.bucket.id)] == ["a.txt"]
    assert [e["key"] for e in Record.get_record(record.id)["_files"]] == ["a.txt"]
    assert len(stored_files(tmp_path)) == 1


def test_schema_failure_in_the_python_api_is_jsonschemas(db, location):
    record = create_record("1", {"title": "x", "$schema": SCHEMA})
    record.files["a.txt"] = BytesIO(b"a")
    record.files["b.txt"] = BytesIO(b"b")
    with pytest.raises(ValidationError):
        record.commit()
    assert type(record["_files"]) is list
    assert [e["key"] for e in record["_files"]] == ["a.txt", "b.txt"]


def test_validation_sees_the_files_without_storing_them(db, location):
    schema = {
        "type": "object",
        "properties": {
            "_files": {"type": "array", "items": {"required": ["type"]}},
        },
    }
    record = create_record("1", {"title": "x", "$schema": schema})
    record.files["a.txt"] = BytesIO(b"a")
    record.files["a.txt"]["type"] = "txt"
    record.commit()
    db.session.commit()
    assert "_files" not in record.model.json
    record.files["b.txt"] = BytesIO(b"b")  # no type: invalid
    with pytest.raises(ValidationError, match="'type' is a required property"):
        record.commit()


def test_check_fix_reports_a_record_it_cannot_fix_and_goes_on(app, db, location):
    broken = create_record("1", {"title": "x", "$schema": SCHEMA})
    fine = create_record("2")
    for record in (broken, fine):
        for key in ("a.txt", "b.txt"):
            ObjectVersion.create(record.bucket, key, stream=BytesIO(b"x"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["records-files", "check", "--fix"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == (
        "Checked 2 records: problems in 2 records (1 fixed), 0 orphan buckets."
    )
    reports = {line.split(":")[0]: line for line in lines[:-1]}
    assert reports[str(broken.id)].endswith(")")
    assert "not fixed: ValidationError" in reports[str(broken.id)]
    assert reports[str(fine.id)].endswith("(fixed)")
    assert [e["key"] for e in Record.get_record(fine.id)["_files"]] == [
        "a.txt",
        "b.txt",
    ]


def test_records_rest_put_keeps_entries_and_their_metadata(client, db, location):
    record = create_record("1")
    upload(client, "a.txt", b"a")
    loaded = Record.get_record(record.id)
    loaded["_files"][0]["type"] = "text"
    loaded.commit()
    db.session.commit()
    response = client.put(
        "/api/records/1",
        data=json.dumps({"title": "new"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert body(response)["metadata"]["_files"][0]["type"] == "text"
    assert "_files" not in db.session.get(RecordMetadata, record.id).json


def test_current_app_is_used(app):
    assert current_app._get_current_object() is app
