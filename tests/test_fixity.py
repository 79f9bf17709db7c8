# SPDX-License-Identifier: MIT
"""Fixity: ``flask records-files verify``, its library and its Celery task."""

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion

from invenio_records_files import tasks
from invenio_records_files.api import Record
from invenio_records_files.maintenance import cli, fixity

from .helpers import create_record


def md5(data):
    return "md5:" + hashlib.md5(data, usedforsecurity=False).hexdigest()


MD5_A = md5(b"a")
MD5_DAMAGED = md5(b"X")


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def verify(runner):
    def invoke(*args):
        return runner.invoke(args=["records-files", "verify", *args])

    return invoke


def make_record(db, pid_value, files=(("a.txt", b"a"), ("b.txt", b"bb"))):
    record = create_record(pid_value)
    for key, content in files:
        record.files[key] = BytesIO(content)
    record.commit()
    db.session.commit()
    return record


def file_of(record, key):
    return ObjectVersion.get(record.bucket_id, key).file


def overwrite(fileinstance, content=b"X"):
    """Change the stored bytes behind Files-REST's back."""
    with fileinstance.storage().open("wb") as fp:
        fp.write(content)


def checks(db):
    """``(last_check, checked)`` of every file instance, by checksum."""
    db.session.expire_all()
    return {
        f.checksum: (f.last_check, f.last_check_at is not None)
        for f in FileInstance.query.all()
    }


def set_last_check(db, fileinstance, days_ago):
    fileinstance.last_check_at = datetime.now(tz=UTC) - timedelta(days=days_ago)
    db.session.commit()


def table(result):
    """Rows of the failure table (without its header) as lists of cells."""
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "PID",
        "TYPE",
        "PID",
        "KEY",
        "VERSION",
        "ID",
        "EXPECTED",
        "FOUND",
    ]
    return [line.split(None, 5) for line in lines[1:-1]]


def test_command_is_registered(app):
    assert "verify" in app.cli.get_command(None, "records-files").commands


def test_batch_size_default_is_the_library_default():
    option = next(p for p in cli.verify.params if p.name == "batch_size")
    assert option.default == fixity.BATCH_SIZE


# -- outcomes ------------------------------------------------------------------


def test_intact_files(verify, db, location):
    make_record(db, "1")
    result = verify()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Verified 2 files: all intact."]
    assert checks(db) == {
        MD5_A: (True, True),
        md5(b"bb"): (True, True),
    }


def test_damaged_file_is_reported_with_the_records_pid(verify, db, location):
    record = make_record(db, "1")
    damaged = file_of(record, "a.txt")
    version_id = ObjectVersion.get(record.bucket_id, "a.txt").version_id
    overwrite(damaged)
    result = verify()
    assert result.exit_code == 1
    assert table(result) == [
        ["recid", "1", "a.txt", str(version_id), MD5_A, MD5_DAMAGED]
    ]
    assert result.stdout.splitlines()[-1] == "Verified 2 files: 1 failed."
    assert checks(db)[MD5_A] == (False, True)
    assert checks(db)[md5(b"bb")] == (True, True)


def test_size_is_shown_when_it_differs(verify, db, location):
    record = make_record(db, "1")
    overwrite(file_of(record, "a.txt"), b"longer")
    result = verify()
    found = md5(b"longer") + " (6 bytes, 1 expected)"
    assert table(result)[0][5] == found


def test_missing_bytes(verify, db, location):
    record = make_record(db, "1")
    file_of(record, "a.txt").storage().delete()
    result = verify()
    assert result.exit_code == 1
    assert [row[2:] for row in table(result)] == [
        ["a.txt", table(result)[0][3], MD5_A, "missing"]
    ]
    assert checks(db)[MD5_A] == (False, True)


def test_unreadable_bytes(verify, db, location, monkeypatch):
    record = make_record(db, "1", files=[("a.txt", b"a")])

    def broken_open(self, mode="rb"):
        raise OSError("disk on fire")

    monkeypatch.setattr(type(file_of(record, "a.txt").storage()), "open", broken_open)
    result = verify()
    assert result.exit_code == 1
    assert table(result)[0][5] == "unreadable: OSError: disk on fire"
    assert checks(db)[MD5_A] == (False, True)


def test_other_algorithms(verify, db, location):
    record = make_record(db, "1", files=[("a.txt", b"a")])
    fileinstance = file_of(record, "a.txt")
    fileinstance.checksum = "sha256:" + hashlib.sha256(b"a").hexdigest()
    db.session.commit()
    assert verify().exit_code == 0
    fileinstance.checksum = "SHA-256:" + hashlib.sha256(b"b").hexdigest()
    db.session.commit()
    result = verify("--all")
    assert result.exit_code == 1
    assert table(result)[0][5] == "SHA-256:" + hashlib.sha256(b"a").hexdigest()


@pytest.mark.parametrize(
    ("checksum", "found"),
    [
        ("crc32c:1234", "cannot verify: unknown algorithm 'crc32c'"),
        ("shake_128:1234", "cannot verify: unknown algorithm 'shake_128'"),
    ],
)
def test_unverifiable_file(verify, db, location, checksum, found):
    record = make_record(db, "1", files=[("a.txt", b"a")])
    file_of(record, "a.txt").checksum = checksum
    db.session.commit()
    result = verify()
    assert result.exit_code == 1
    assert table(result)[0][4:] == [checksum, found]
    assert checks(db)[checksum] == (None, True)


def test_file_without_checksum(db, location):
    record = make_record(db, "1", files=[("a.txt", b"a")])
    fileinstance = file_of(record, "a.txt")
    fileinstance.checksum = None
    assert fixity.check_bytes(fileinstance) == fixity.Check(
        None, "cannot verify: no checksum stored"
    )


def test_old_versions_count_and_delete_markers_do_not(verify, db, location):
    record = make_record(db, "1", files=[("a.txt", b"a")])
    old = ObjectVersion.get(record.bucket_id, "a.txt")
    record.files["a.txt"] = BytesIO(b"new")
    del record.files["a.txt"]
    record.commit()
    db.session.commit()
    assert ObjectVersion.get_versions(record.bucket_id, "a.txt").count() == 3
    overwrite(old.file)
    result = verify()
    assert result.exit_code == 1
    assert table(result) == [
        ["recid", "1", "a.txt", str(old.version_id), MD5_A, MD5_DAMAGED]
    ]
    assert result.stdout.splitlines()[-1] == "Verified 2 files: 1 failed."


def test_file_shared_by_two_records_is_read_once_and_reported_for_each(
    verify, db, location, monkeypatch
):
    first = make_record(db, "1", files=[("a.txt", b"a")])
    second = make_record(db, "2", files=[])
    shared = file_of(first, "a.txt")
    copy = ObjectVersion.create(second.bucket, "copy.txt", _file_id=shared)
    snapshot = ObjectVersion.create(Bucket.create(), "orphan.txt", _file_id=shared)
    db.session.commit()
    overwrite(shared)
    opened = []
    storage_class = type(shared.storage())
    original_open = storage_class.open

    def counting_open(self, mode="rb"):
        opened.append(self.fileurl)
        return original_open(self, mode)

    monkeypatch.setattr(storage_class, "open", counting_open)
    result = verify()
    assert result.exit_code == 1
    assert opened == [shared.uri]
    first_version = ObjectVersion.get(first.bucket_id, "a.txt").version_id
    assert table(result) == [
        ["recid", "1", "a.txt", str(first_version), MD5_A, MD5_DAMAGED],
        ["recid", "2", "copy.txt", str(copy.version_id), MD5_A, MD5_DAMAGED],
    ]
    assert str(snapshot.version_id) not in result.stdout  # no record's bucket
    assert result.stdout.splitlines()[-1] == "Verified 1 file: 1 failed."


def test_record_without_pid_is_named_by_its_id(verify, db, location):
    record = Record.create({})
    record.files["a.txt"] = BytesIO(b"a")
    record.commit()
    db.session.commit()
    overwrite(file_of(record, "a.txt"))
    assert table(verify())[0][:2] == ["-", str(record.id)]


def test_record_with_several_pids_is_named_by_the_first(verify, db, location):
    from invenio_pidstore.models import PersistentIdentifier, PIDStatus

    record = make_record(db, "1", files=[("a.txt", b"a")])
    PersistentIdentifier.create(
        "doi",
        "10.1234/x",
        object_type="rec",
        object_uuid=record.id,
        status=PIDStatus.REGISTERED,
    )
    db.session.commit()
    overwrite(file_of(record, "a.txt"))
    assert [row[:2] for row in table(verify())] == [["recid", "1"]]


def test_unprintable_key_is_escaped(verify, db, location):
    # Our APIs refuse such keys; plain Files-REST (or an older version) did not.
    record = make_record(db, "1", files=[])
    ObjectVersion.create(record.bucket, "a\tb.txt", stream=BytesIO(b"a"))
    db.session.commit()
    overwrite(file_of(record, "a\tb.txt"))
    assert table(verify())[0][2] == "a\\tb.txt"


# -- scope -------------------------------------------------------------------------


@pytest.fixture
def aged(db, location):
    """Three files: never checked, checked 10 days ago, checked 40 days ago."""
    record = make_record(
        db, "1", files=[("new.txt", b"n"), ("recent.txt", b"r"), ("old.txt", b"o")]
    )
    set_last_check(db, file_of(record, "recent.txt"), 10)
    set_last_check(db, file_of(record, "old.txt"), 40)
    return record


def checked_keys(db, record, since):
    db.session.expire_all()
    return sorted(
        obj.key
        for obj in ObjectVersion.get_by_bucket(record.bucket_id)
        if obj.file.last_check_at > since
    )


def test_default_skips_files_checked_recently(verify, db, aged):
    start = datetime.now(tz=UTC) - timedelta(seconds=1)
    result = verify()
    assert result.stdout.splitlines() == ["Verified 2 files: all intact."]
    assert checked_keys(db, aged, start) == ["new.txt", "old.txt"]


def test_older_than(verify, db, aged):
    start = datetime.now(tz=UTC) - timedelta(seconds=1)
    assert verify("--older-than", "50").stdout == "Verified 1 file: all intact.\n"
    assert checked_keys(db, aged, start) == ["new.txt"]
    assert verify("--older-than", "5").stdout == "Verified 2 files: all intact.\n"
    assert checked_keys(db, aged, start) == ["new.txt", "old.txt", "recent.txt"]
    assert verify("--older-than", "5").stdout == "Verified 0 files: all intact.\n"


def test_all(verify, db, aged):
    assert verify("--all").stdout == "Verified 3 files: all intact.\n"
    assert verify("--all").stdout == "Verified 3 files: all intact.\n"


def test_all_and_older_than_exclude_each_other(verify, db, location):
    result = verify("--all", "--older-than", "3")
    assert result.exit_code == 2
    assert "Give --all or --older-than, not both." in result.stderr


def test_limit_takes_the_least_recently_checked_first(verify, db, aged):
    start = datetime.now(tz=UTC) - timedelta(seconds=1)
    result = verify("--all", "--limit", "2", "--batch-size", "1")
    assert result.stdout == "Verified 2 files: all intact.\n"
    assert checked_keys(db, aged, start) == ["new.txt", "old.txt"]
    assert verify("--all", "--limit", "2").stdout == "Verified 2 files: all intact.\n"
    assert checked_keys(db, aged, start) == ["new.txt", "old.txt", "recent.txt"]


def test_records_given_by_pid(verify, db, location):
    make_record(db, "1")
    second = make_record(db, "2", files=[("c.txt", b"c")])
    make_record(db, "3", files=[("d.txt", b"d")])
    overwrite(file_of(second, "c.txt"))
    result = verify("--pid-type", "recid", "--pid", "1")
    assert result.stdout == "Verified 2 files: all intact.\n"
    result = verify("--pid-type", "recid", "--pid", "1", "--pid", "2")
    assert result.exit_code == 1
    assert [row[:3] for row in table(result)] == [["recid", "2", "c.txt"]]
    assert result.stdout.splitlines()[-1] == "Verified 3 files: 1 failed."
    result = verify("--pid-type", "recid", "--pid", "2", "--older-than", "1")
    assert result.stdout == "Verified 0 files: all intact.\n"


def test_unknown_pid(verify, db, location):
    make_record(db, "1")
    result = verify("--pid-type", "recid", "--pid", "1", "--pid", "9")
    assert result.exit_code == 2
    assert "no record has the PID recid:9" in result.stderr
    assert checks(db)[MD5_A] == (True, False)


@pytest.mark.parametrize(
    "args",
    [
        ("--pid", "1"),
        ("--pid-type", "recid"),
        ("--pid-type", "recid", "--pid-type", "recid", "--pid", "1"),
    ],
)
def test_pid_types_and_values_must_pair(verify, db, location, args):
    result = verify(*args)
    assert result.exit_code == 2
    assert "Give one --pid-type for all --pid options, or one for each." in (
        result.stderr
    )


def test_pid_pairs_by_position():
    assert cli._pid_pairs(("recid", "doi"), ("1", "10.1/x")) == [
        ("recid", "1"),
        ("doi", "10.1/x"),
    ]
    assert cli._pid_pairs(("recid",), ("1", "2")) == [("recid", "1"), ("recid", "2")]


def test_record_ids_of(db, location):
    first = make_record(db, "1", files=[])
    second = make_record(db, "2", files=[])
    pids = [("recid", "2"), ("recid", "1"), ("recid", "2")]
    assert fixity.record_ids_of(pids) == [second.id, first.id]
    from invenio_pidstore.errors import PIDDoesNotExistError

    with pytest.raises(PIDDoesNotExistError) as info:
        fixity.record_ids_of([("recid", "1"), ("doi", "1")])
    assert (info.value.pid_type, info.value.pid_value) == ("doi", "1")


def test_no_files(verify, db, location):
    result = verify()
    assert result.exit_code == 0
    assert result.stdout == "Verified 0 files: all intact.\n"


# -- batches, progress, commits -----------------------------------------------------


def test_progress_bar_goes_to_stderr(verify, db, location):
    make_record(db, "1")
    result = verify()
    assert "Verifying files" in result.stderr
    assert "Verifying files" not in result.stdout


def test_results_are_committed_per_batch(verify, db, location, monkeypatch):
    make_record(db, "1", files=[(f"{n}.txt", b"x") for n in range(5)])
    original = fixity.check_bytes
    calls = []

    def crash_on_the_fourth(fileinstance):
        calls.append(fileinstance.id)
        if len(calls) == 4:
            raise RuntimeError("worker killed")
        return original(fileinstance)

    monkeypatch.setattr(fixity, "check_bytes", crash_on_the_fourth)
    result = verify("--batch-size", "2")
    assert isinstance(result.exception, RuntimeError)
    db.session.rollback()
    db.session.expire_all()
    done = [f.last_check_at is not None for f in FileInstance.query]
    assert sorted(done) == [False, False, False, True, True]  # batch 1 committed


def test_verification_keeps_the_updated_timestamp(verify, db, location):
    record = make_record(db, "1", files=[("a.txt", b"a")])
    updated = file_of(record, "a.txt").updated
    assert verify().exit_code == 0
    db.session.expire_all()
    assert file_of(record, "a.txt").updated == updated
    assert file_of(record, "a.txt").last_check_at > updated


def test_library_does_not_commit(db, location):
    record = make_record(db, "1", files=[("a.txt", b"a")])
    batches = list(fixity.verify_files())
    assert [(b.checked, b.failed) for b in batches] == [(1, 0)]
    assert file_of(record, "a.txt").last_check is True
    db.session.rollback()
    db.session.expire_all()
    assert file_of(record, "a.txt").last_check_at is None


def test_batch_size_must_be_positive(db):
    with pytest.raises(ValueError, match="batch_size must be positive, not 0"):
        next(fixity.verify_files(batch_size=0))


@pytest.mark.parametrize("damaged", [False, True])
def test_constant_number_of_statements_per_batch(db, location, statements, damaged):
    def run(count):
        records = [
            make_record(db, f"{count}-{n}", files=[("f.txt", f"{count}-{n}".encode())])
            for n in range(count)
        ]
        if damaged:
            overwrite(file_of(records[0], "f.txt"))
        record_ids = [record.id for record in records]
        with statements.count():
            batches = list(fixity.verify_files(record_ids=record_ids, batch_size=50))
        db.session.commit()
        assert [(b.checked, b.failed) for b in batches] == [(count, int(damaged))]
        return statements.total

    assert run(2) == run(12) == (3 if damaged else 2)


# -- the Celery task ------------------------------------------------------------------


def test_task(app, db, location, caplog):
    record = make_record(db, "1")
    overwrite(file_of(record, "a.txt"))
    caplog.set_level(logging.INFO, logger=tasks.logger.name)
    result = tasks.verify_files.apply(kwargs={"older_than_days": 30}).get()
    assert result == {"checked": 2, "failed": 1}
    assert checks(db)[MD5_A] == (False, True)
    version_id = ObjectVersion.get(record.bucket_id, "a.txt").version_id
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"Fixity check failed: record recid:1 ({record.id}), key 'a.txt', "
        f"version {version_id}: expected {MD5_A}, found {MD5_DAMAGED}."
    ]
    assert tasks.verify_files.apply().get() == {"checked": 0, "failed": 0}
    assert tasks.verify_files.apply(kwargs={"older_than_days": None}).get() == {
        "checked": 2,
        "failed": 1,
    }
    limited = tasks.verify_files.apply(kwargs={"older_than_days": None, "limit": 1})
    assert limited.get()["checked"] == 1


def test_failure_table():
    failures = [
        fixity.Failure(
            record_id=uuid.uuid4(),
            pid_type="recid",
            pid_value="13",
            key="img.png",
            version_id=uuid.UUID("8c3f1d52-2e44-4bd8-a9e0-0d3c6f4b8f7e"),
            file_id=uuid.uuid4(),
            expected=MD5_A,
            found="missing",
        ),
        fixity.Failure(
            record_id=uuid.uuid4(),
            pid_type="recid",
            pid_value="12",
            key="data.csv",
            version_id=uuid.UUID("0f6a9a2b-5f0c-4c4b-9a43-4ad3e4c0a2f1"),
            file_id=uuid.uuid4(),
            expected=md5(b"foobar"),
            found=md5(b"hello") + " (5 bytes, 6 expected)",
        ),
    ]
    docs = (Path(__file__).parent.parent / "docs" / "consistency.rst").read_text()
    assert "\n".join(f"   {line}" for line in fixity.failure_table(failures)) in docs


def test_task_is_registered_for_invenio_celery():
    from importlib.metadata import entry_points

    modules = {e.value for e in entry_points(group="invenio_celery.tasks")}
    assert "invenio_records_files.tasks" in modules


def test_a_moment_in_the_future_verifies_each_file_once(db, location):
    make_record(db, "1")
    future = datetime.now(tz=UTC) + timedelta(days=1)
    batches = list(fixity.verify_files(future, batch_size=1))
    assert [b.checked for b in batches] == [1, 1]
