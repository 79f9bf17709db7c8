# SPDX-License-Identifier: MIT
"""The main paths with the files on S3 (Invenio-S3, moto's server on loopback).

The application is configured like production: the S3 settings come from
``examples/deployment_config.py``, the file ``docs/deployment.rst`` shows.
"""

import hashlib
import importlib.metadata
import re
from io import BytesIO
from pathlib import Path

import pytest
import requests
from invenio_files_rest.models import FileInstance, Location, ObjectVersion

from invenio_records_files.api import Record

from .helpers import body, upload
from .s3 import DEPLOYMENT_CONFIG, key_of, keys


def s3_bytes(s3, fileinstance):
    bucket = fileinstance.uri.split("/")[2]
    return s3.get_object(Bucket=bucket, Key=key_of(fileinstance))["Body"].read()


def download(client, url):
    """Follow the redirect to S3 (a presigned URL) with a real HTTP client."""
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    location = response.headers["Location"]
    assert location.startswith("http://127.0.0.1:")
    s3_response = requests.get(location, timeout=10)
    assert s3_response.status_code == 200
    return s3_response.content


def test_application_is_configured_like_production(s3_app, s3_location, s3_bucket):
    assert (
        s3_app.config["FILES_REST_STORAGE_FACTORY"] == "invenio_s3.s3fs_storage_factory"
    )
    assert s3_app.config["S3_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert "invenio-s3" in s3_app.extensions
    assert s3_location.uri == f"s3://{s3_bucket}"


def test_docs_show_the_tested_settings():
    docs = (Path(__file__).parent.parent / "docs" / "deployment.rst").read_text()
    config = DEPLOYMENT_CONFIG.read_text()
    includes = re.findall(
        r"\.\. literalinclude:: \.\./examples/deployment_config\.py\n"
        r"\s+:language: python\n"
        r"\s+:start-after: (.*)\n\s+:end-before: (.*)\n",
        docs,
    )
    assert len(includes) == 2
    for start, end in includes:
        assert config.count(start) == 1
        assert config.count(end) == 1
        assert config.index(start) < config.index(end)


# -- Python API -----------------------------------------------------------------


def test_python_api(s3_db, s3_record, s3, s3_bucket):
    record = s3_record
    record.files["a.txt"] = BytesIO(b"hello")
    record.commit()
    s3_db.session.commit()
    fileinstance = record.files["a.txt"].obj.file
    assert fileinstance.uri.startswith(f"s3://{s3_bucket}/")
    assert keys(s3, s3_bucket) == [key_of(fileinstance)]
    assert s3_bytes(s3, fileinstance) == b"hello"
    assert (
        fileinstance.checksum
        == "md5:" + hashlib.md5(b"hello", usedforsecurity=False).hexdigest()
    )

    with record.files["a.txt"].obj.file.storage().open("rb") as fp:
        assert fp.read() == b"hello"

    record.files.rename("a.txt", "b.txt")
    record.commit()
    s3_db.session.commit()
    assert list(record.files.keys) == ["b.txt"]
    assert record.files["b.txt"].obj.file_id == fileinstance.id
    assert keys(s3, s3_bucket) == [key_of(fileinstance)]  # bytes not copied

    record.files["c.txt"] = BytesIO(b"other")
    del record.files["b.txt"]
    record.commit()
    s3_db.session.commit()
    assert list(record.files.keys) == ["c.txt"]
    assert [e["key"] for e in Record.get_record(record.id)["_files"]] == ["c.txt"]
    # A deletion leaves a delete marker; the versions keep their bytes.
    assert len(keys(s3, s3_bucket)) == 2


def test_failed_write_leaves_nothing_on_s3(s3_db, s3_record, s3, s3_bucket):
    s3_record.bucket.quota_size = 3
    with pytest.raises(Exception, match="quota"):
        s3_record.files["big.txt"] = BytesIO(b"too big")
    s3_db.session.rollback()
    assert keys(s3, s3_bucket) == []


# -- REST --------------------------------------------------------------------------


def test_rest_upload_download_delete(s3_client, s3_record, s3, s3_bucket):
    response = upload(s3_client, "a.txt", b"first")
    assert response.status_code == 200
    first = body(response)["version_id"]
    upload(s3_client, "a.txt", b"second")
    obj = ObjectVersion.get(s3_record.bucket_id, "a.txt")
    assert s3_bytes(s3, obj.file) == b"second"
    assert len(keys(s3, s3_bucket)) == 2

    assert download(s3_client, "/api/records/1/files/a.txt") == b"second"
    assert download(s3_client, f"/api/records/1/files/a.txt?versionId={first}") == (
        b"first"
    )
    assert download(s3_client, "/records/1/files/a.txt?download") == b"second"

    response = s3_client.delete(f"/api/records/1/files/a.txt?versionId={first}")
    assert response.status_code == 204
    url = f"/api/records/1/files/a.txt?versionId={first}"
    assert s3_client.get(url).status_code == 404
    assert download(s3_client, "/api/records/1/files/a.txt") == b"second"

    assert s3_client.delete("/api/records/1/files/a.txt").status_code == 204
    assert s3_client.get("/api/records/1/files/a.txt").status_code == 404
    assert key_of(obj.file) in keys(s3, s3_bucket)  # behind a delete marker
    assert Record.get_record(s3_record.id)["_files"] == []


def test_rest_multipart_upload(s3_client, s3_record, s3, s3_bucket):
    response = s3_client.post("/api/records/1/files/big.bin?uploads&size=10&partSize=4")
    assert response.status_code == 200
    upload_id = body(response)["id"]
    for number, part in enumerate([b"0123", b"4567", b"89"]):
        response = s3_client.put(
            f"/api/records/1/files/big.bin?uploadId={upload_id}&partNumber={number}",
            data=part,
        )
        assert response.status_code == 200
    response = s3_client.post(f"/api/records/1/files/big.bin?uploadId={upload_id}")
    assert response.status_code == 200
    assert body(response)["completed"] is True
    obj = ObjectVersion.get(s3_record.bucket_id, "big.bin")
    assert s3_bytes(s3, obj.file) == b"0123456789"
    assert (
        obj.file.checksum
        == "md5:" + hashlib.md5(b"0123456789", usedforsecurity=False).hexdigest()
    )
    assert keys(s3, s3_bucket) == [key_of(obj.file)]
    assert download(s3_client, "/api/records/1/files/big.bin") == b"0123456789"
    assert [e["key"] for e in Record.get_record(s3_record.id)["_files"]] == ["big.bin"]


# -- removing a record with its bucket ----------------------------------------------


@pytest.fixture
def s3_full_record(s3_db, s3_record, s3, s3_bucket):
    s3_record.files["a.txt"] = BytesIO(b"a")
    s3_record.files["b.txt"] = BytesIO(b"bb")
    s3_record.commit()
    s3_db.session.commit()
    assert len(keys(s3, s3_bucket)) == 2
    return s3_record


def test_remove_bucket_removes_the_objects_after_commit(
    s3_db, s3_full_record, s3, s3_bucket
):
    s3_full_record.delete(force=True, remove_bucket=True)
    assert len(keys(s3, s3_bucket)) == 2
    s3_db.session.commit()
    assert keys(s3, s3_bucket) == []
    assert FileInstance.query.count() == 0


def test_remove_bucket_rolled_back_keeps_the_objects(
    s3_db, s3_full_record, s3, s3_bucket
):
    before = keys(s3, s3_bucket)
    s3_full_record.delete(force=True, remove_bucket=True)
    s3_db.session.rollback()
    s3_db.session.commit()
    assert keys(s3, s3_bucket) == before
    assert FileInstance.query.count() == 2


# -- fixity -------------------------------------------------------------------------


def test_verify_detects_an_object_changed_behind_our_back(
    s3_app, s3_db, s3_full_record, s3, s3_bucket
):
    runner = s3_app.test_cli_runner()
    result = runner.invoke(args=["records-files", "verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Verified 2 files: all intact.\n"

    damaged = s3_full_record.files["a.txt"].obj
    s3.put_object(Bucket=s3_bucket, Key=key_of(damaged.file), Body=b"X")
    gone = s3_full_record.files["b.txt"].obj
    s3.delete_object(Bucket=s3_bucket, Key=key_of(gone.file))

    result = runner.invoke(args=["records-files", "verify", "--all"])
    assert result.exit_code == 1
    rows = [line.split(None, 5) for line in result.stdout.splitlines()[1:-1]]
    assert rows == [
        [
            "recid",
            "1",
            "a.txt",
            str(damaged.version_id),
            damaged.file.checksum,
            "md5:" + hashlib.md5(b"X", usedforsecurity=False).hexdigest(),
        ],
        ["recid", "1", "b.txt", str(gone.version_id), gone.file.checksum, "missing"],
    ]
    s3_db.session.expire_all()
    assert [f.last_check for f in FileInstance.query] == [False, False]


def test_beat_schedule_runs_the_verify_task(
    s3_app, s3_db, s3_full_record, s3, s3_bucket
):
    damaged = s3_full_record.files["a.txt"].obj.file
    s3.put_object(Bucket=s3_bucket, Key=key_of(damaged), Body=b"X")
    celery = s3_app.extensions["flask-celeryext"].celery
    # A worker (Invenio-Celery) loads the tasks of this entry point.
    (ours,) = importlib.metadata.entry_points(
        group="invenio_celery.tasks", name="invenio_records_files"
    )
    ours.load()
    schedule = s3_app.config["CELERY_BEAT_SCHEDULE"]
    assert list(schedule) == ["records-files-verify"]
    for entry in schedule.values():
        task = celery.tasks[entry["task"]]
        assert task.apply(kwargs=entry["kwargs"]).get() == {"checked": 2, "failed": 1}
    s3_db.session.expire_all()
    assert sorted(f.last_check for f in FileInstance.query) == [False, True]


def test_documented_location_command(s3_app, s3_db, s3, s3_bucket):
    runner = s3_app.test_cli_runner()
    result = runner.invoke(
        args=[
            "files",
            "location",
            "create",
            "--default",
            "s3-default",
            f"s3://{s3_bucket}",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "files location create --default s3-default s3://" in (
        (Path(__file__).parent.parent / "docs" / "deployment.rst").read_text()
    )
    location = Location.get_default()
    assert (location.name, location.uri) == ("s3-default", f"s3://{s3_bucket}")
    record = Record.create({})
    record.files["a.txt"] = BytesIO(b"a")
    s3_db.session.commit()
    assert keys(s3, s3_bucket) == [key_of(record.files["a.txt"].obj.file)]


# -- the archive and zip members ------------------------------------------------


def test_archive_and_members_read_from_s3(s3_client, s3_db, s3_record):
    import io
    import zipfile

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inside.txt", b"inside " * 100)
    files = {"a.txt": b"hello", "data.zip": inner.getvalue()}
    for key, data in files.items():
        assert upload(s3_client, key, data).status_code == 200

    response = s3_client.get("/api/records/1/files-archive")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == files

    half = len(response.data) // 2
    rest = s3_client.get(
        "/api/records/1/files-archive",
        headers={"Range": f"bytes={half}-", "If-Range": response.headers["ETag"]},
    )
    assert rest.status_code == 206
    assert response.data[:half] + rest.data == response.data

    listing = s3_client.get("/api/records/1/files/data.zip?members")
    assert listing.status_code == 200
    member = s3_client.get("/api/records/1/files/data.zip?member=inside.txt")
    assert member.status_code == 200
    assert member.data == b"inside " * 100


# -- new versions share the bytes -------------------------------------------------


def read_all(record):
    """The bytes of each file of the record, through the storage API."""
    contents = {}
    for fileobj in record.files:
        with fileobj.obj.file.storage().open("rb") as fp:
            contents[fileobj.key] = fp.read()
    return contents


@pytest.mark.parametrize("first", ["old", "new"])
def test_copy_from_shares_the_bytes_on_s3(s3_db, s3_full_record, s3, s3_bucket, first):
    before = keys(s3, s3_bucket)
    new = Record.create({"title": "new version"})
    new.files.copy_from(s3_full_record.files)
    new.commit()
    s3_db.session.commit()
    assert keys(s3, s3_bucket) == before  # nothing copied on S3
    assert FileInstance.query.count() == 2
    assert read_all(new) == read_all(s3_full_record) == {"a.txt": b"a", "b.txt": b"bb"}

    removed, kept = (s3_full_record, new) if first == "old" else (new, s3_full_record)
    kept_id = kept.id
    removed.delete(force=True, remove_bucket=True)
    s3_db.session.commit()
    assert keys(s3, s3_bucket) == before
    assert read_all(Record.get_record(kept_id)) == {"a.txt": b"a", "b.txt": b"bb"}

    Record.get_record(kept_id).delete(force=True, remove_bucket=True)
    s3_db.session.commit()
    assert keys(s3, s3_bucket) == []
    assert FileInstance.query.count() == 0
