# SPDX-License-Identifier: MIT
"""Code written for invenio-records-files 4.0.1 runs unchanged.

Each test is written the way an application, a Celery task or a CLI script
of an application did it against version 4.
"""

import importlib.metadata
import json
from io import BytesIO

import pytest
from flask import Blueprint
from invenio_files_rest.models import Bucket
from invenio_pidstore.models import PersistentIdentifier
from packaging.version import Version

from invenio_records_files.api import Record

from .helpers import body, create_record, upload

SERVER = "repository.example.org"


@pytest.fixture
def server_name(app, monkeypatch):
    monkeypatch.setitem(app.config, "SERVER_NAME", SERVER)
    return SERVER


class DuckPID:
    """A PID as application code may hand one over: just the three names."""

    def __init__(self, pid_type, pid_value, object_uuid):
        self.pid_type = pid_type
        self.pid_value = pid_value
        self.object_uuid = object_uuid

    def get_assigned_object(self):
        return self.object_uuid


# -- 1. links factories work anywhere ------------------------------------------------


def expected_links(host, pid_value="1"):
    return {
        "self": f"http://{host}/api/records/{pid_value}",
        "files": f"http://{host}/api/records/{pid_value}/files",
    }


def test_record_files_links_in_a_celery_task_or_cli(app, record, server_name):
    from invenio_records_files.links import default_record_files_links_factory

    pid = PersistentIdentifier.get("recid", "1")
    with app.app_context():  # as a Celery task or a CLI command runs
        assert default_record_files_links_factory(pid) == expected_links(SERVER)
        duck = DuckPID("recid", "1", record.id)
        assert default_record_files_links_factory(duck) == expected_links(SERVER)


def test_record_files_links_in_a_request_to_another_view(app, record):
    from invenio_records_files.links import default_record_files_links_factory

    pid = PersistentIdentifier.get("recid", "1")
    with app.test_request_context("/some/other/view"):
        assert default_record_files_links_factory(pid) == expected_links("localhost")
        assert default_record_files_links_factory(
            pid, record=record, links_factory_kwargs={}
        ) == expected_links("localhost")


def test_record_files_links_in_a_records_rest_request(client, record):
    assert body(client.get("/api/records/1"))["links"] == expected_links("localhost")


def test_bucket_link_in_a_celery_task_or_cli(app, record, server_name):
    from invenio_records_files.links import default_bucket_link_factory

    duck = DuckPID("recid", "1", record.id)
    with app.app_context():
        assert default_bucket_link_factory(duck) == (
            f"http://{SERVER}/api/files/{record.bucket.id}"
        )


def test_bucket_link_is_none_and_never_raises(app, db, record, server_name):
    from invenio_records_files.links import default_bucket_link_factory

    without_bucket = create_record("2", with_bucket=False)
    assert default_bucket_link_factory(None) is None
    assert default_bucket_link_factory(DuckPID("recid", "x", None)) is None
    assert default_bucket_link_factory(DuckPID("recid", "2", without_bucket.id)) is None


def test_bucket_link_without_a_server_name_is_none(app, record):
    from invenio_records_files.links import default_bucket_link_factory

    assert default_bucket_link_factory(DuckPID("recid", "1", record.id)) is None


# -- 2. and 3. version and extras ----------------------------------------------------


def test_version_orders_after_4_0_1():
    import invenio_records_files

    version = Version(invenio_records_files.__version__)
    assert version > Version("4.0.1")
    assert version.major == 5
    assert version.is_prerelease
    assert importlib.metadata.version("invenio-records-files") == str(version)


def test_packaging_extras_of_version_4():
    extras = set(
        importlib.metadata.metadata("invenio-records-files").get_all("Provides-Extra")
    )
    assert {
        "postgresql",
        "mysql",
        "sqlite",
        "opensearch2",
        "elasticsearch7",
        "tests",
        "docs",
    } <= extras


# -- 4. Record.create() keeps the caller's per-file metadata -------------------------


class ImportedRecord(Record):
    """Migration: the bucket already holds the record's files."""

    existing = None

    @classmethod
    def create_bucket(cls, data):
        return cls.existing


@pytest.fixture
def existing_bucket(db, location):
    owner = Record.create({})
    owner.files["a.pdf"] = BytesIO(b"%PDF")
    owner.files["b.csv"] = BytesIO(b"x,y")
    bucket = owner.bucket
    owner.delete(force=True)
    db.session.commit()
    ImportedRecord.existing = bucket
    return bucket


def test_create_keeps_per_file_metadata_from_files(existing_bucket, db):
    record = ImportedRecord.create(
        {
            "title": "Imported",
            "_files": [
                {"key": "b.csv", "type": "csv", "description": "Data"},
                {"key": "a.pdf", "type": "pdf", "size": 999, "checksum": "md5:0"},
            ],
        }
    )
    assert record.revision_id == 0
    db.session.commit()
    stored = Record.get_record(record.id)
    assert stored.revision_id == 0
    listed = stored["_files"]
    assert [entry["key"] for entry in listed] == ["b.csv", "a.pdf"]
    assert listed[0]["type"] == "csv"
    assert listed[0]["description"] == "Data"
    assert listed[1]["type"] == "pdf"
    assert listed[1]["size"] == 4
    assert listed[1]["checksum"] == stored.files["a.pdf"].obj.file.checksum
    assert listed[1]["bucket"] == str(existing_bucket.id)


def test_create_refuses_files_not_in_the_bucket(existing_bucket, db):
    from invenio_records.models import RecordMetadata

    record = ImportedRecord.create({"_files": [{"key": "missing.txt"}]})
    with pytest.raises(ValueError, match=r"missing\.txt"):
        record.files  # first read, or else the commit, checks _files
    with pytest.raises(ValueError, match=r"missing\.txt"):
        db.session.commit()
    db.session.rollback()
    assert RecordMetadata.query.count() == 0


# -- 5. trusted code edits per-file metadata through the dict ------------------------


def test_per_file_metadata_edited_through_the_dict(db, location):
    rec = Record.create({"title": "x"})
    rec.files["a.pdf"] = BytesIO(b"%PDF")
    rec.commit()
    db.session.commit()

    rec = Record.get_record(rec.id)
    rec["_files"][0]["type"] = "pdf"
    rec.commit()
    db.session.commit()

    assert rec.files["a.pdf"]["type"] == "pdf"
    db.session.expire_all()
    assert Record.get_record(rec.id).files["a.pdf"]["type"] == "pdf"


@pytest.mark.parametrize(
    "change",
    [
        lambda rec: rec["_files"][0].update(checksum="md5:0", size=1, version_id="x"),
        lambda rec: rec["_files"][0].update(key="forged.pdf"),
        lambda rec: rec["_files"].append({"key": "forged.pdf"}),
        lambda rec: rec["_files"].clear(),
        lambda rec: rec.pop("_files"),
        lambda rec: rec.update(_bucket="elsewhere"),
    ],
    ids=["managed-fields", "key", "new-key", "no-entries", "no-files", "bucket"],
)
def test_managed_fields_are_restored_not_stored(db, location, change):
    rec = Record.create({"title": "x"})
    rec.files["a.pdf"] = BytesIO(b"%PDF")
    rec.files["a.pdf"]["type"] = "pdf"
    rec.commit()
    db.session.commit()
    before = dict(Record.get_record(rec.id))

    rec = Record.get_record(rec.id)
    change(rec)
    rec.commit()
    db.session.commit()

    db.session.expire_all()
    assert dict(Record.get_record(rec.id)) == before
    assert dict(rec) == before


def test_records_rest_put_and_patch_of_per_file_metadata(client, record, db):
    upload(client, "a.pdf", b"%PDF")
    stored = body(client.get("/api/records/1"))["metadata"]
    stored["_files"][0]["type"] = "pdf"
    stored["_files"][0]["checksum"] = "md5:0"
    response = client.put(
        "/api/records/1",
        data=json.dumps(stored),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    entry = body(response)["metadata"]["_files"][0]
    assert entry["type"] == "pdf"
    assert entry["checksum"] != "md5:0"

    response = client.patch(
        "/api/records/1",
        data=json.dumps([{"op": "replace", "path": "/_files/0/type", "value": "doc"}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200
    assert Record.get_record(record.id)["_files"][0]["type"] == "doc"

    response = client.put(
        "/api/records/1",
        data=json.dumps({"title": "no _files given"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert body(response)["metadata"]["_files"][0]["type"] == "doc"


# -- 6. exceptions subclass those version 4 raised -----------------------------------


def test_renaming_onto_an_existing_key_is_an_assertion_error(record):
    record.files["a.txt"] = BytesIO(b"a")
    record.files["b.txt"] = BytesIO(b"b")
    try:
        record.files.rename("a.txt", "b.txt")
    except AssertionError:
        pass
    else:
        pytest.fail("no AssertionError")


@pytest.mark.parametrize(
    "write",
    [
        lambda files: files.__setitem__("new.txt", BytesIO(b"n")),
        lambda files: files.__delitem__("a.txt"),
        lambda files: files.rename("a.txt", "z.txt"),
    ],
    ids=["add", "delete", "rename"],
)
def test_locked_bucket_writes_are_invalid_operations(record, write):
    from invenio_files_rest.errors import InvalidOperationError

    record.files["a.txt"] = BytesIO(b"a")
    record.bucket.locked = True
    with pytest.raises(InvalidOperationError):
        write(record.files)


def test_unknown_endpoint_prefix_is_a_key_error(app, monkeypatch):
    from invenio_records_files.views import create_blueprint_from_app

    monkeypatch.setitem(
        app.config,
        "RECORDS_FILES_REST_ENDPOINTS",
        {"RECORDS_REST_ENDPOINTS": {"nope": "/files"}},
    )
    with pytest.raises(KeyError):
        create_blueprint_from_app(app)


def test_files_setter_without_bucket_is_a_type_error(db, location):
    record = Record.create({}, with_bucket=False)
    with pytest.raises(TypeError):
        record.files = {"a.txt": BytesIO(b"a")}


def test_files_setter_with_files_is_a_runtime_error(record):
    record.files["a.txt"] = BytesIO(b"a")
    with pytest.raises(RuntimeError):
        record.files = {"b.txt": BytesIO(b"b")}


@pytest.mark.parametrize(
    "read",
    [
        lambda files: files["missing.txt"],
        lambda files: files.__delitem__("missing.txt"),
        lambda files: files.rename("missing.txt", "z.txt"),
        lambda files: files.sort_by("missing.txt"),
    ],
    ids=["getitem", "delete", "rename", "sort_by"],
)
def test_missing_files_are_key_errors(record, read):
    with pytest.raises(KeyError) as error:
        read(record.files)
    assert error.value.args == ("missing.txt",)


def test_files_of_a_record_without_model(db):
    from invenio_records.errors import MissingModelError

    with pytest.raises(MissingModelError):
        Record({}).files


# -- 7. keys is a set-like, ordered view ---------------------------------------------


def test_keys_is_a_set_like_ordered_view(record, statements):
    for key in ("b.txt", "a.txt", "c.txt"):
        record.files[key] = BytesIO(key.encode())
    files = record.files
    with statements.count():
        keys = files.keys
        assert keys & {"a.txt", "z.txt"} == {"a.txt"}
        assert list(keys) == ["b.txt", "a.txt", "c.txt"]
        assert "c.txt" in keys
        assert len(keys) == 3
    assert statements.total == 0


# -- 8. names applications import or mock.patch --------------------------------------


def test_names_are_importable():
    from invenio_records_files.api import (  # noqa: F401
        FileObject,
        FilesIterator,
        FilesMixin,
        InvalidOperationError,
        ObjectVersion,
        Record,
        sorted_files_from_bucket,
    )
    from invenio_records_files.views import pass_bucket_id, pass_record  # noqa: F401


def test_mock_patch_of_api_names(record, monkeypatch):
    from invenio_records_files import api

    calls = []

    def recording(bucket, keys=None):
        calls.append(keys)
        return []

    monkeypatch.setattr(api, "sorted_files_from_bucket", recording)
    assert api.sorted_files_from_bucket(record.bucket) == []
    assert calls == [None]


def test_resource_methods_are_overridden_with_pid_and_record(app, record, db):
    from invenio_records_files.serializer import json_serializer
    from invenio_records_files.views import RecordBucketResource, RecordObjectResource

    seen = []

    class AuditedObjects(RecordObjectResource):
        def get(self, pid, record, **kwargs):
            seen.append(("get", pid.pid_value, record["title"], kwargs["key"]))
            return super().get(pid, record, **kwargs)

        def put(self, pid, record, **kwargs):
            seen.append(("put", pid.pid_value, record["title"], kwargs["key"]))
            return super().put(pid, record, **kwargs)

        def delete(self, pid, record, **kwargs):
            seen.append(("delete", pid.pid_value, record["title"], kwargs["key"]))
            return super().delete(pid, record, **kwargs)

    class AuditedBucket(RecordBucketResource):
        def head(self, pid, record, **kwargs):
            seen.append(("head", pid.pid_value, record["title"]))
            return super().head(pid, record, **kwargs)

    record_class = "invenio_records_files.api:Record"
    route = f'/audited/<pid(recid,record_class="{record_class}"):pid_value>'
    blueprint = Blueprint(f"audited_{id(seen)}", __name__)
    options = {"serializers": {"application/json": json_serializer}}
    blueprint.add_url_rule(
        f"{route}/files", view_func=AuditedBucket.as_view("recid_bucket_api", **options)
    )
    blueprint.add_url_rule(
        f"{route}/files/<path:key>",
        view_func=AuditedObjects.as_view("recid_object_api", **options),
    )
    audited = type(app)(app.import_name)
    audited.config.update(app.config)
    for name, extension in app.extensions.items():
        audited.extensions[name] = extension
    audited.url_map.converters.update(app.url_map.converters)
    audited.register_blueprint(blueprint)
    client = audited.test_client()
    assert client.put("/audited/1/files/a.txt", data=b"a").status_code == 200
    assert client.get("/audited/1/files/a.txt").data == b"a"
    assert client.head("/audited/1/files").status_code == 200
    assert client.delete("/audited/1/files/a.txt").status_code == 204
    title = record["title"]
    assert seen == [
        ("put", "1", title, "a.txt"),
        ("get", "1", title, "a.txt"),
        ("head", "1", title),
        ("delete", "1", title, "a.txt"),
    ]


def test_bucket_is_a_files_rest_bucket(record):
    assert isinstance(record.bucket, Bucket)


@pytest.mark.database_independent
def test_only_the_links_need_a_search_client():
    import subprocess
    import sys

    code = (
        "import sys; import invenio_records_files.api, invenio_records_files.views, "
        "invenio_records_files.maintenance.cli, invenio_records_files.utils; "
        "print('invenio_search' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- deposit flows (invenio-deposit, as Zenodo, CDS-Videos and B2SHARE run it) ------

# Files-REST's Bucket.snapshot() autoflushes a half-built ObjectVersion
# (SQLAlchemy warns); not our code.
files_rest_snapshot = pytest.mark.filterwarnings(
    "ignore:Object of type <ObjectVersion> not in session:sqlalchemy.exc.SAWarning"
)


@files_rest_snapshot
@pytest.mark.parametrize("as_", [lambda b: b, lambda b: b.id, lambda b: str(b.id)])
def test_files_dumps_takes_a_bucket_or_its_id(db, location, as_):
    rec = Record.create({"title": "x"})
    rec.files["a.txt"] = BytesIO(b"a")
    rec.files["a.txt"]["type"] = "txt"
    rec.commit()
    db.session.commit()
    snapshot = rec.files.bucket.snapshot(lock=True)
    db.session.commit()

    dumped = rec.files.dumps(bucket=as_(snapshot))
    assert [(e["key"], e["bucket"], e["type"]) for e in dumped] == [
        ("a.txt", str(snapshot.id), "txt")
    ]
    assert [e["bucket"] for e in rec.files.dumps(bucket=as_(rec.bucket))] == [
        str(rec.bucket.id)
    ]


class PublishedRecord(Record):
    """Deposit's record class: publishing links the snapshot itself."""

    @classmethod
    def create_bucket(cls, data):
        return None


def deposit_publish(draft, record_class=PublishedRecord, by_ids=False, **kwargs):
    """invenio-deposit's publish: snapshot, create, link, commit."""
    from invenio_records_files.models import RecordsBuckets

    snapshot = draft.files.bucket.snapshot(lock=True)
    data = {key: value for key, value in draft.items() if key != "_bucket"}
    data["_files"] = draft.files.dumps(bucket=snapshot.id)
    record = record_class.create(data, **kwargs)
    if by_ids:
        db_session().add(RecordsBuckets(record_id=record.id, bucket_id=snapshot.id))
    else:
        RecordsBuckets.create(record=record.model, bucket=snapshot)
    db_session().commit()
    return record, snapshot


def db_session():
    from invenio_db import db

    return db.session


def draft_with_files(db):
    draft = Record.create({"title": "Draft"})
    draft.files["b.csv"] = BytesIO(b"x,y")
    draft.files["a.pdf"] = BytesIO(b"%PDF")
    draft.files["a.pdf"]["type"] = "pdf"
    draft.files.sort_by("a.pdf", "b.csv")
    draft.commit()
    db.session.commit()
    return draft


def read(fileobj):
    with fileobj.obj.file.storage().open() as fp:
        return fp.read()


def files_of(record):
    return [(f["key"], f.get("type"), read(f)) for f in record.files]


@files_rest_snapshot
@pytest.mark.parametrize("by_ids", [False, True], ids=["create", "ids"])
@pytest.mark.parametrize("kwargs", [{}, {"with_bucket": False}])
def test_deposit_publish_links_the_snapshot_after_create(db, location, kwargs, by_ids):
    draft = draft_with_files(db)
    cls = PublishedRecord if not kwargs else Record
    record, snapshot = deposit_publish(draft, cls, by_ids=by_ids, **kwargs)
    expected = [("a.pdf", "pdf", b"%PDF"), ("b.csv", None, b"x,y")]
    assert record.files.bucket.id == snapshot.id
    assert files_of(record) == expected
    assert [e["bucket"] for e in record["_files"]] == [str(snapshot.id)] * 2

    db.session.expire_all()
    stored = Record.get_record(record.id)
    assert files_of(stored) == expected
    assert stored.files.bucket.locked


@files_rest_snapshot
def test_deposit_publish_of_a_file_the_snapshot_lacks_fails_at_commit(db, location):
    from invenio_records_files.errors import UnknownFileEntryError
    from invenio_records_files.models import RecordsBuckets

    draft = draft_with_files(db)
    snapshot = draft.files.bucket.snapshot(lock=True)
    data = {"title": "x", "_files": draft.files.dumps(bucket=snapshot.id)}
    data["_files"].append({"key": "gone.txt"})
    record = PublishedRecord.create(data)
    RecordsBuckets.create(record=record.model, bucket=snapshot)
    with pytest.raises(UnknownFileEntryError, match=r"gone\.txt"):
        db.session.commit()
    db.session.rollback()


@files_rest_snapshot
def test_sort_by_on_a_locked_bucket_reorders_files(db, location):
    from invenio_files_rest.models import ObjectVersion

    record, snapshot = deposit_publish(draft_with_files(db))
    versions = ObjectVersion.query.filter_by(bucket_id=snapshot.id).count()
    record.files.sort_by("b.csv")
    record["_files"][1]["description"] = "The paper"
    record.commit()
    db.session.commit()

    db.session.expire_all()
    stored = Record.get_record(record.id)
    assert [f["key"] for f in stored["_files"]] == ["b.csv", "a.pdf"]
    assert stored.files["a.pdf"]["description"] == "The paper"
    assert stored.files.bucket.locked
    assert ObjectVersion.query.filter_by(bucket_id=snapshot.id).count() == versions


@pytest.mark.parametrize(
    "reattach",
    [
        lambda session, record: session.add(record.model),
        lambda session, record: session.merge(record.model),
        lambda session, record: setattr(record, "model", session.merge(record.model)),
        lambda session, record: session.expire_all(),  # not reattached at all
    ],
    ids=["add", "merge", "merge-and-keep", "detached"],
)
def test_record_loaded_in_an_earlier_session_gets_files(app, db, location, reattach):
    rec = Record.create({"title": "x"})
    rec.files["a.txt"] = BytesIO(b"a")
    rec.commit()
    db.session.commit()
    record_id = rec.id
    record = Record.get_record(record_id)
    assert record.files["a.txt"]  # the bucket is known, from this session
    db.session.remove()  # the request, task or app context ended

    reattach(db.session, record)
    record.files["b.txt"] = BytesIO(b"b")
    record.files["a.txt"]["type"] = "txt"
    record.commit()
    db.session.commit()

    db.session.remove()
    stored = Record.get_record(record_id)
    assert files_of(stored) == [("a.txt", "txt", b"a"), ("b.txt", None, b"b")]


def deposit_discard(draft, record):
    """invenio-deposit's discard, then the line docs/compatibility.rst adds."""
    from copy import deepcopy

    from invenio_db import db
    from sqlalchemy.orm.attributes import flag_modified

    with db.session.begin_nested():
        draft.model.json = deepcopy(record.model.json)
        flag_modified(draft.model, "json")
        db.session.merge(draft.model)
    discarded = Record(draft.model.json, model=draft.model)
    discarded["_files"] = deepcopy(record["_files"])  # the line to add
    discarded.commit()
    db.session.commit()
    return discarded


@files_rest_snapshot
def test_deposit_discard_restores_files_order_and_metadata(db, location):
    draft = draft_with_files(db)
    record, _ = deposit_publish(draft)
    draft.files.sort_by("b.csv")
    draft.files["a.pdf"]["type"] = "draft-type"
    draft["title"] = "Edited"
    draft.commit()
    db.session.commit()

    discarded = deposit_discard(draft, record)
    expected = [("a.pdf", "pdf", b"%PDF"), ("b.csv", None, b"x,y")]
    assert discarded["title"] == "Draft"
    assert files_of(discarded) == expected
    assert discarded.bucket.id == draft.files.bucket.id
    db.session.expire_all()
    stored = Record.get_record(draft.id)
    assert files_of(stored) == expected
    assert stored["_bucket"] == str(draft.files.bucket.id)
    assert {e["bucket"] for e in stored["_files"]} == {str(draft.files.bucket.id)}


@files_rest_snapshot
def test_deposit_flow_publish_edit_publish_discard(db, location):
    """invenio-deposit's whole flow, with plain Invenio-Records and this module."""
    # A draft with files.
    draft = draft_with_files(db)
    first = [("a.pdf", "pdf", b"%PDF"), ("b.csv", None, b"x,y")]
    assert files_of(draft) == first

    # Publish: snapshot, create, link, commit.
    record, snapshot = deposit_publish(draft)
    draft.files.bucket.locked = True
    db.session.commit()
    assert files_of(record) == first
    db.session.expire_all()
    assert files_of(Record.get_record(record.id)) == first
    assert Record.get_record(record.id).files.bucket.id == snapshot.id

    # Edit: unlock the draft's bucket, reorder, add a file, set metadata.
    draft = Record.get_record(draft.id)
    draft.files.bucket.locked = False
    draft.files["c.txt"] = BytesIO(b"notes")
    draft.files.sort_by("c.txt", "b.csv")
    draft.files["b.csv"]["type"] = "csv"
    draft["title"] = "Second version"
    draft.commit()
    db.session.commit()
    second = [
        ("c.txt", None, b"notes"),
        ("b.csv", "csv", b"x,y"),
        ("a.pdf", "pdf", b"%PDF"),
    ]
    assert files_of(draft) == second
    assert files_of(Record.get_record(record.id)) == first  # published unchanged

    # Publish again: sync the draft's files into the record's bucket.
    record = Record.get_record(record.id)
    record.files.bucket.locked = False
    draft.files.bucket.sync(record.files.bucket)
    record["title"] = draft["title"]
    record["_files"] = draft.files.dumps(bucket=record.files.bucket.id)
    record.commit()
    record.files.bucket.locked = True
    draft.files.bucket.locked = True
    db.session.commit()
    db.session.expire_all()
    record = Record.get_record(record.id)
    assert record["title"] == "Second version"
    assert files_of(record) == second
    assert {e["bucket"] for e in record["_files"]} == {str(snapshot.id)}

    # Edit again, then discard: the draft is the published record again.
    draft = Record.get_record(draft.id)
    draft.files.bucket.locked = False
    draft.files.sort_by("a.pdf")
    draft.files["a.pdf"]["type"] = "changed"
    draft["title"] = "Discarded edit"
    draft.commit()
    db.session.commit()
    discarded = deposit_discard(draft, record)
    assert discarded["title"] == "Second version"
    assert files_of(discarded) == second
    db.session.expire_all()
    assert files_of(Record.get_record(draft.id)) == second
    assert files_of(Record.get_record(record.id)) == second


# -- REST answers ------------------------------------------------------------------


def zip_of(**members):
    import zipfile

    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "query",
    ["versionId=x", "versionId=x&members", "versionId=x&member=one.txt"],
    ids=["download", "members", "member"],
)
@pytest.mark.parametrize("method", ["get", "head", "delete"])
def test_a_bad_version_id_is_one_400_everywhere(client, record, query, method):
    upload(client, "data.zip", zip_of(**{"one.txt": b"1"}))
    url = f"/api/records/1/files/data.zip?{query}"
    response = getattr(client, method)(url)
    assert response.status_code == 400
    if method != "head":
        assert body(response) == {"status": 400, "message": "Invalid versionId."}


def test_multipart_init_describes_the_parts_to_send(client, record):
    mib = 1024 * 1024
    response = client.post(
        f"/api/records/1/files/big.bin?uploads&size={12 * mib}&partSize={6 * mib}"
    )
    assert response.status_code == 200
    multipart = body(response)
    assert (multipart["last_part_number"], multipart["last_part_size"]) == (1, 6 * mib)
    upload_id = multipart["id"]
    parts = [b"a" * (6 * mib), b"b" * (6 * mib)]
    for number in range(multipart["last_part_number"] + 1):
        size = multipart["last_part_size"] if number == 1 else multipart["part_size"]
        assert len(parts[number]) == size
        response = client.put(
            f"/api/records/1/files/big.bin?uploadId={upload_id}&partNumber={number}",
            data=parts[number],
        )
        assert response.status_code == 200
    response = client.post(f"/api/records/1/files/big.bin?uploadId={upload_id}")
    assert response.status_code == 200
    assert client.get("/api/records/1/files/big.bin").data == b"".join(parts)

    response = client.post("/api/records/1/files/odd.bin?uploads&size=10&partSize=4")
    assert (body(response)["last_part_number"], body(response)["last_part_size"]) == (
        2,
        2,
    )


def test_a_bucket_linked_after_create_without_files_is_seen(db, location):
    from invenio_files_rest.models import Bucket

    from invenio_records_files.models import RecordsBuckets

    for link in (
        lambda rec, bucket: RecordsBuckets.create(record=rec.model, bucket=bucket),
        lambda rec, bucket: db.session.add(
            RecordsBuckets(record_id=rec.id, bucket_id=bucket.id)
        ),
    ):
        rec = Record.create({}, with_bucket=False)
        assert rec.files is None
        bucket = Bucket.create()
        link(rec, bucket)
        db.session.flush()
        assert rec.files.bucket.id == bucket.id
        rec.files["a.txt"] = BytesIO(b"a")
        rec.commit()
        db.session.commit()
        assert files_of(Record.get_record(rec.id)) == [("a.txt", None, b"a")]
