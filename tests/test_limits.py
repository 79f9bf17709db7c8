# SPDX-License-Identifier: MIT
"""How many files a record may hold (``RECORDS_FILES_MAX_FILES``), and how much.

The quota and the largest file size are Invenio-Files-REST's, set on each
bucket our records create from ``FILES_REST_DEFAULT_QUOTA_SIZE`` and
``FILES_REST_DEFAULT_MAX_FILE_SIZE``. Concurrent uploads against the limit
are in ``test_concurrency.py``.
"""

from io import BytesIO

import pytest
from invenio_files_rest.errors import FileSizeError, InvalidOperationError
from invenio_files_rest.models import (
    Bucket,
    FileInstance,
    MultipartObject,
    ObjectVersion,
)

from invenio_records_files.api import Record
from invenio_records_files.errors import TooManyFilesError
from invenio_records_files.store.limits import check_max_files

from .helpers import body, create_record, upload


def stored_files(tmp_path):
    """The files on storage (the location is ``tmp_path / "files"``)."""
    return sorted(path.read_bytes() for path in (tmp_path / "files").rglob("data"))


def read_bytes(obj):
    with obj.file.storage().open("rb") as fp:
        return fp.read()


def heads(record):
    return sorted(
        (obj.key, read_bytes(obj))
        for obj in ObjectVersion.get_by_bucket(record.bucket_id)
    )


@pytest.fixture
def max_files(app, monkeypatch):
    def set_limit(limit):
        monkeypatch.setitem(app.config, "RECORDS_FILES_MAX_FILES", limit)

    return set_limit


def test_no_limit_by_default(app, client, record):
    assert app.config["RECORDS_FILES_MAX_FILES"] is None
    for index in range(12):
        assert upload(client, f"{index}.txt", b"x").status_code == 200


def test_rest_refuses_a_new_key_beyond_the_limit(client, record, max_files, tmp_path):
    max_files(2)
    assert upload(client, "a.txt", b"a").status_code == 200
    assert upload(client, "b.txt", b"b").status_code == 200

    response = upload(client, "c.txt", b"c")

    assert response.status_code == 400
    assert body(response) == {
        "status": 400,
        "message": "A record may hold at most 2 files.",
    }
    assert heads(record) == [("a.txt", b"a"), ("b.txt", b"b")]
    assert stored_files(tmp_path) == [b"a", b"b"]


def test_rest_new_versions_are_always_allowed(client, record, max_files, tmp_path):
    max_files(2)
    upload(client, "a.txt", b"a")
    upload(client, "b.txt", b"b")
    max_files(1)  # lowered below what the record holds

    assert upload(client, "a.txt", b"a2").status_code == 200
    assert upload(client, "c.txt", b"c").status_code == 400

    assert heads(record) == [("a.txt", b"a2"), ("b.txt", b"b")]
    assert stored_files(tmp_path) == [b"a", b"a2", b"b"]
    response = body(upload(client, "b.txt", b"b2"))
    assert response["key"] == "b.txt"


def test_rest_a_deleted_file_frees_its_place(client, record, max_files):
    max_files(1)
    upload(client, "a.txt", b"a")
    assert upload(client, "b.txt", b"b").status_code == 400
    assert client.delete("/api/records/1/files/a.txt").status_code == 204
    assert upload(client, "b.txt", b"b").status_code == 200
    assert [
        f["key"] for f in body(client.get("/api/records/1"))["metadata"]["_files"]
    ] == ["b.txt"]


def test_rest_limit_of_zero(client, record, max_files, tmp_path):
    max_files(0)
    assert upload(client, "a.txt", b"a").status_code == 400
    assert stored_files(tmp_path) == []


def test_rest_multipart_upload_is_refused_at_start(client, record, max_files):
    max_files(1)
    upload(client, "a.txt", b"a")
    response = client.post("/api/records/1/files/big.bin?uploads&size=5&partSize=2")
    assert response.status_code == 400
    assert body(response)["message"] == "A record may hold at most 1 files."
    assert MultipartObject.query.count() == 0


def test_rest_multipart_upload_is_refused_at_completion(
    client, record, max_files, tmp_path
):
    max_files(1)
    files = "/api/records/1/files"
    upload_id = body(client.post(f"{files}/big.bin?uploads&size=5&partSize=2"))["id"]
    for number, part in enumerate([b"01", b"23", b"4"]):
        url = f"{files}/big.bin?uploadId={upload_id}&partNumber={number}"
        assert client.put(url, data=part).status_code == 200
    assert upload(client, "a.txt", b"a").status_code == 200  # takes the place

    response = client.post(f"{files}/big.bin?uploadId={upload_id}")

    assert response.status_code == 400
    assert body(response)["message"] == "A record may hold at most 1 files."
    assert heads(record) == [("a.txt", b"a")]
    # The upload is left as it was: it can be aborted (or completed later).
    (multipart,) = MultipartObject.query.all()
    assert multipart.completed is False
    assert client.delete(f"{files}/big.bin?uploadId={upload_id}").status_code == 204
    assert client.delete(f"{files}/a.txt").status_code == 204
    upload_id = body(client.post(f"{files}/big.bin?uploads&size=5&partSize=2"))["id"]
    for number, part in enumerate([b"01", b"23", b"4"]):
        url = f"{files}/big.bin?uploadId={upload_id}&partNumber={number}"
        client.put(url, data=part)
    assert client.post(f"{files}/big.bin?uploadId={upload_id}").status_code == 200
    assert heads(record) == [("big.bin", b"01234")]


def test_api_refuses_a_new_key_beyond_the_limit(db, record, max_files, tmp_path):
    max_files(2)
    record.files["a.txt"] = BytesIO(b"a")
    record.files["b.txt"] = BytesIO(b"b")
    record.commit()
    db.session.commit()

    with pytest.raises(TooManyFilesError) as refused:
        record.files["c.txt"] = BytesIO(b"c")

    error = refused.value
    assert isinstance(error, InvalidOperationError)
    assert (error.limit, error.keys, error.code) == (2, ("c.txt",), 400)
    assert str(error.description) == "A record may hold at most 2 files."
    assert record.files.keys == {"a.txt", "b.txt"}
    assert stored_files(tmp_path) == [b"a", b"b"]
    record.files["a.txt"] = BytesIO(b"a2")  # a new version
    record.commit()
    db.session.commit()
    assert heads(Record.get_record(record.id)) == [("a.txt", b"a2"), ("b.txt", b"b")]


def test_api_files_setter_adds_all_or_nothing(db, location, max_files, tmp_path):
    max_files(2)
    record = Record.create({"title": "three files"})
    with pytest.raises(TooManyFilesError) as refused:
        record.files = {key: BytesIO(key.encode()) for key in ("a", "b", "c")}
    assert refused.value.keys == ("a", "b", "c")
    assert len(record.files) == 0
    assert stored_files(tmp_path) == []
    assert FileInstance.query.count() == 0
    record.files = {key: BytesIO(key.encode()) for key in ("a", "b")}
    assert heads(record) == [("a", b"a"), ("b", b"b")]


def test_copy_from_and_import_respect_the_limit(client, db, record, max_files):
    source = create_record("2")
    source.files = {key: BytesIO(key.encode()) for key in ("x", "y", "z")}
    source.commit()
    db.session.commit()
    max_files(2)
    with pytest.raises(TooManyFilesError):
        record.files.copy_from(source.files)
    assert len(record.files) == 0
    response = client.post("/api/records/1/files?import=2")
    assert response.status_code == 400
    assert "at most 2 files" in response.get_data(as_text=True)
    record.files.copy_from(source.files, keys=["x", "y"])
    assert sorted(record.files.keys) == ["x", "y"]


def test_check_max_files_counts_in_one_query(db, record, max_files, statements):
    record.files["a.txt"] = BytesIO(b"a")
    db.session.commit()
    bucket = record.bucket
    with statements.count():
        check_max_files(bucket, ["b.txt"])  # no limit: nothing to count
    assert statements.total == 0
    max_files(2)
    with statements.count():
        check_max_files(bucket, ["a.txt", "b.txt"])
    assert statements.total == 1
    with pytest.raises(TooManyFilesError):
        check_max_files(bucket, ["b.txt", "c.txt"])


@pytest.mark.parametrize("limit", [-1, "5", 2.0, True])
def test_invalid_limit(db, record, max_files, limit):
    max_files(limit)
    with pytest.raises(ValueError, match="RECORDS_FILES_MAX_FILES"):
        record.files["a.txt"] = BytesIO(b"a")


# -- Files-REST's quota and largest file size ----------------------------------


@pytest.fixture
def files_rest_limits(app, monkeypatch):
    monkeypatch.setitem(app.config, "FILES_REST_DEFAULT_QUOTA_SIZE", 10)
    monkeypatch.setitem(app.config, "FILES_REST_DEFAULT_MAX_FILE_SIZE", 6)


def test_buckets_of_new_records_get_the_default_limits(
    client, db, location, files_rest_limits
):
    record = create_record("api")
    assert (record.bucket.quota_size, record.bucket.max_file_size) == (10, 6)
    response = client.post("/api/records/", json={"title": "over REST"})
    bucket = Bucket.get(body(response)["metadata"]["_bucket"])
    assert (bucket.quota_size, bucket.max_file_size) == (10, 6)


def test_rest_quota_and_largest_file(client, db, location, files_rest_limits, tmp_path):
    create_record("1")
    too_big = upload(client, "a.txt", b"1234567")
    assert upload(client, "a.txt", b"123456").status_code == 200
    over_quota = upload(client, "b.txt", b"12345")

    assert too_big.status_code == 400
    assert body(too_big)["message"] == "Maximum file size exceeded."
    assert over_quota.status_code == 400
    assert body(over_quota)["message"] == "Bucket quota exceeded."
    assert stored_files(tmp_path) == [b"123456"]
    assert upload(client, "b.txt", b"1234").status_code == 200


def test_api_quota_and_largest_file(db, location, files_rest_limits, tmp_path):
    record = create_record("1")
    with pytest.raises(FileSizeError, match="Maximum file size exceeded"):
        record.files["a.txt"] = BytesIO(b"1234567")
    record.files["a.txt"] = BytesIO(b"123456")
    with pytest.raises(FileSizeError, match="Bucket quota exceeded"):
        record.files["b.txt"] = BytesIO(b"12345")
    assert stored_files(tmp_path) == [b"123456"]
    assert record.files.keys == {"a.txt"}
