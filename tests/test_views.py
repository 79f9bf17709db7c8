# SPDX-License-Identifier: MIT
"""REST endpoints: every Files-REST operation through a record's URLs."""

import json
import uuid
from urllib.parse import urlsplit

import pytest
from flask import Flask
from invenio_files_rest.models import Bucket, MultipartObject, ObjectVersion, Part
from invenio_pidstore.models import PersistentIdentifier
from invenio_records.models import RecordMetadata

from invenio_records_files.views import create_blueprint_from_app

from .helpers import body, create_app, create_record, upload

FILES = "http://localhost/api/records/{pid}/files"


def read_bytes(obj):
    with obj.file.storage().open("rb") as fp:
        return fp.read()


def path(url):
    """Path and query of an absolute link, for the test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def other_record(db, location):
    return create_record("2")


# -- blueprint ---------------------------------------------------------------


def make_app(files_endpoints, rest_endpoints):
    app = Flask("blueprint-test")
    app.config["RECORDS_REST_ENDPOINTS"] = rest_endpoints
    app.config["DEPOSIT_REST_ENDPOINTS"] = {
        "depid": {"item_route": "/deposits/<pid(depid):pid_value>"}
    }
    app.config["RECORDS_FILES_REST_ENDPOINTS"] = files_endpoints
    return app


REST_ENDPOINTS = {
    "recid": {"item_route": "/records/<pid(recid):pid_value>"},
    "docid": {"item_route": "/documents/<pid(docid):pid_value>"},
}


def rules(blueprint):
    app = Flask("rules")
    from invenio_records_rest.utils import PIDConverter

    app.url_map.converters["pid"] = PIDConverter
    app.register_blueprint(blueprint)
    return {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("invenio_records_files.")
    }


def test_blueprint_routes_from_configuration():
    app = make_app(
        {
            "RECORDS_REST_ENDPOINTS": {"recid": "/files", "docid": "doc-files"},
            "DEPOSIT_REST_ENDPOINTS": {"depid": "/deposit-files/"},
        },
        REST_ENDPOINTS,
    )
    blueprint = create_blueprint_from_app(app)
    assert blueprint.name == "invenio_records_files"
    assert rules(blueprint) == {
        "invenio_records_files.recid_bucket_api": (
            "/records/<pid(recid):pid_value>/files"
        ),
        "invenio_records_files.recid_object_api": (
            "/records/<pid(recid):pid_value>/files/<filekey:key>"
        ),
        "invenio_records_files.recid_archive_api": (
            "/records/<pid(recid):pid_value>/files-archive"
        ),
        "invenio_records_files.docid_bucket_api": (
            "/documents/<pid(docid):pid_value>/doc-files"
        ),
        "invenio_records_files.docid_object_api": (
            "/documents/<pid(docid):pid_value>/doc-files/<filekey:key>"
        ),
        "invenio_records_files.docid_archive_api": (
            "/documents/<pid(docid):pid_value>/doc-files-archive"
        ),
        "invenio_records_files.depid_bucket_api": (
            "/deposits/<pid(depid):pid_value>/deposit-files"
        ),
        "invenio_records_files.depid_object_api": (
            "/deposits/<pid(depid):pid_value>/deposit-files/<filekey:key>"
        ),
        "invenio_records_files.depid_archive_api": (
            "/deposits/<pid(depid):pid_value>/deposit-files-archive"
        ),
    }


def test_blueprint_without_configuration():
    blueprint = create_blueprint_from_app(make_app({}, REST_ENDPOINTS))
    assert rules(blueprint) == {}


@pytest.mark.parametrize(
    "files_endpoints",
    [
        {"RECORDS_REST_ENDPOINTS": {"nope": "/files"}},
        {"MISSING_REST_ENDPOINTS": {"nope": "/files"}},
    ],
)
def test_blueprint_unknown_endpoint_prefix(files_endpoints):
    app = make_app(files_endpoints, REST_ENDPOINTS)
    with pytest.raises(ValueError, match="nope") as exc:
        create_blueprint_from_app(app)
    assert next(iter(files_endpoints)) in str(exc.value)


def test_blueprint_needs_a_pid_converter():
    app = make_app(
        {"RECORDS_REST_ENDPOINTS": {"recid": "/files"}},
        {"recid": {"item_route": "/records/<pid_value>"}},
    )
    with pytest.raises(ValueError, match="PID converter"):
        create_blueprint_from_app(app)


def test_blueprint_entry_point():
    from importlib.metadata import entry_points

    (entry_point,) = entry_points(
        group="invenio_base.api_blueprints", name="invenio_records_files"
    )
    assert entry_point.load() is create_blueprint_from_app


# -- upload, list, download ------------------------------------------------


def test_upload(client, record):
    response = upload(client, "hello.txt", b"Hello, World")
    assert response.status_code == 200
    data = body(response)
    obj = ObjectVersion.get(record.bucket, "hello.txt")
    assert read_bytes(obj) == b"Hello, World"
    assert data["key"] == "hello.txt"
    assert data["size"] == 12
    assert data["checksum"] == "md5:82bb413746aee42f89dea2b59614f9ef"
    assert data["version_id"] == str(obj.version_id)
    assert data["is_head"] is True
    assert data["delete_marker"] is False
    files = FILES.format(pid=1)
    assert data["links"] == {
        "self": f"{files}/hello.txt",
        "version": f"{files}/hello.txt?versionId={obj.version_id}",
        "uploads": f"{files}/hello.txt?uploads",
    }
    assert response.headers["ETag"] == '"md5:82bb413746aee42f89dea2b59614f9ef"'


def test_upload_with_tags(client, record):
    response = client.put(
        "/api/records/1/files/a.txt",
        data=b"a",
        headers={"X-Invenio-File-Tags": "color=red&size=big"},
    )
    assert response.status_code == 200
    assert body(response)["tags"] == {"color": "red", "size": "big"}
    assert ObjectVersion.get(record.bucket, "a.txt").get_tags() == {
        "color": "red",
        "size": "big",
    }


def test_upload_nested_key(client, record):
    assert upload(client, "dir/sub/a.txt", b"nested").status_code == 200
    response = client.get("/api/records/1/files/dir/sub/a.txt")
    assert response.data == b"nested"


def test_list(client, record):
    upload(client, "b.txt", b"bb")
    upload(client, "a.txt", b"a")
    response = client.get("/api/records/1/files")
    assert response.status_code == 200
    data = body(response)
    files = FILES.format(pid=1)
    assert [c["key"] for c in data["contents"]] == ["a.txt", "b.txt"]
    assert [c["size"] for c in data["contents"]] == [1, 2]
    assert data["id"] == str(record.bucket.id)
    assert data["size"] == 3
    assert data["links"] == {
        "self": files,
        "versions": f"{files}?versions",
        "uploads": f"{files}?uploads",
        "archive": f"{files}-archive",
    }
    first = data["contents"][0]
    assert first["links"]["self"] == f"{files}/a.txt"
    assert first["links"]["uploads"] == f"{files}/a.txt?uploads"


def test_follow_every_link(client, record):
    upload(client, "a.txt", b"first")
    upload(client, "a.txt", b"second")
    listing = body(client.get("/api/records/1/files"))
    for name in ("self", "versions", "uploads", "archive"):
        response = client.get(path(listing["links"][name]))
        assert response.status_code == 200, name
    versions = body(client.get(path(listing["links"]["versions"])))
    assert len(versions["contents"]) == 2
    for item in versions["contents"]:
        assert client.get(path(item["links"]["self"])).status_code == 200
        response = client.get(path(item["links"]["version"]))
        assert response.status_code == 200
        assert response.data == (b"second" if item["is_head"] else b"first")
    head = listing["contents"][0]
    response = client.post(path(head["links"]["uploads"]) + "&size=10&partSize=4")
    assert response.status_code == 200
    multipart = body(response)
    for name in ("self", "object", "bucket"):
        assert client.get(path(multipart["links"][name])).status_code == 200, name


def test_list_versions_and_delete_markers(client, record):
    upload(client, "a.txt", b"1")
    upload(client, "a.txt", b"22")
    client.delete("/api/records/1/files/a.txt")
    data = body(client.get("/api/records/1/files?versions"))
    contents = data["contents"]
    # Like Files-REST: versions with bytes, no delete markers; none is head.
    assert [c["size"] for c in contents] == [2, 1]
    assert [c["is_head"] for c in contents] == [False, False]
    for item in contents:
        assert "?versionId=" in item["links"]["self"]
        assert "uploads" not in item["links"]
    assert body(client.get("/api/records/1/files"))["contents"] == []


def test_download(client, record):
    upload(client, "a.txt", b"Hello")
    response = client.get("/api/records/1/files/a.txt")
    assert response.status_code == 200
    assert response.data == b"Hello"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-MD5"] == "8b1a9953c4611296a827abf8c47804d7"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in response.headers.get("Content-Disposition", "")
    response = client.get("/api/records/1/files/a.txt?download")
    assert response.headers["Content-Disposition"].startswith("attachment")
    response = client.head("/api/records/1/files/a.txt")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == "5"


def test_download_old_version(client, record):
    first = body(upload(client, "a.txt", b"first"))["version_id"]
    upload(client, "a.txt", b"second")
    response = client.get(f"/api/records/1/files/a.txt?versionId={first}")
    assert response.status_code == 200
    assert response.data == b"first"


def test_conditional_download(client, record):
    upload(client, "a.txt", b"Hello")
    etag = client.get("/api/records/1/files/a.txt").headers["ETag"]
    response = client.get("/api/records/1/files/a.txt", headers={"If-None-Match": etag})
    assert response.status_code == 304


def test_bucket_head(client, record):
    assert client.head("/api/records/1/files").status_code == 200


def test_missing_file(client, record):
    response = client.get("/api/records/1/files/nope.txt")
    assert response.status_code == 404
    assert body(response)["message"] == "Object does not exists."


# -- delete ------------------------------------------------------------------


def test_delete(client, record):
    upload(client, "a.txt", b"a")
    response = client.delete("/api/records/1/files/a.txt")
    assert response.status_code == 204
    assert client.get("/api/records/1/files/a.txt").status_code == 404
    versions = ObjectVersion.get_versions(record.bucket, "a.txt").all()
    assert [v.deleted for v in versions] == [True, False]


def test_delete_version_permanently(client, record):
    first = body(upload(client, "a.txt", b"first"))["version_id"]
    upload(client, "a.txt", b"second")
    response = client.delete(f"/api/records/1/files/a.txt?versionId={first}")
    assert response.status_code == 204
    assert ObjectVersion.get(record.bucket, "a.txt", version_id=first) is None
    assert client.get("/api/records/1/files/a.txt").data == b"second"
    assert [
        v.file.size for v in ObjectVersion.get_versions(record.bucket, "a.txt")
    ] == [6]


# -- multipart uploads -------------------------------------------------------


def test_multipart_upload(client, record):
    response = client.post("/api/records/1/files/big.bin?uploads&size=10&partSize=4")
    assert response.status_code == 200
    multipart = body(response)
    upload_id = multipart["id"]
    files = FILES.format(pid=1)
    assert multipart["links"] == {
        "self": f"{files}/big.bin?uploadId={upload_id}",
        "object": f"{files}/big.bin",
        "bucket": files,
    }
    assert multipart["last_part_number"] == 2
    for number, part in enumerate([b"0123", b"4567", b"89"]):
        response = client.put(
            f"/api/records/1/files/big.bin?uploadId={upload_id}&partNumber={number}",
            data=part,
        )
        assert response.status_code == 200
        assert body(response)["part_number"] == number
    parts = body(client.get(f"/api/records/1/files/big.bin?uploadId={upload_id}"))
    assert [p["part_number"] for p in parts["parts"]] == [0, 1, 2]
    assert parts["links"]["self"] == f"{files}/big.bin?uploadId={upload_id}"
    uploads = body(client.get("/api/records/1/files?uploads"))
    assert [u["id"] for u in uploads] == [upload_id]
    assert uploads[0]["links"]["bucket"] == files

    response = client.post(f"/api/records/1/files/big.bin?uploadId={upload_id}")
    assert response.status_code == 200
    completed = body(response)
    assert completed["completed"] is True
    obj = ObjectVersion.get(record.bucket, "big.bin")
    assert read_bytes(obj) == b"0123456789"
    assert completed["links"]["object_version"].startswith(
        f"{files}/big.bin?versionId="
    )
    assert client.get(path(completed["links"]["object_version"])).data == (
        b"0123456789"
    )
    assert MultipartObject.query.count() == 0
    assert client.get("/api/records/1/files/big.bin").data == b"0123456789"


def test_multipart_abort(client, record, tmp_path):
    multipart = body(
        client.post("/api/records/1/files/big.bin?uploads&size=10&partSize=4")
    )
    upload_id = multipart["id"]
    client.put(
        f"/api/records/1/files/big.bin?uploadId={upload_id}&partNumber=0", data=b"0123"
    )
    response = client.delete(f"/api/records/1/files/big.bin?uploadId={upload_id}")
    assert response.status_code == 204
    assert MultipartObject.query.count() == 0
    assert Part.query.count() == 0
    assert list((tmp_path / "files").rglob("data")) == []
    assert db_bucket_size(record) == 0


def db_bucket_size(record):
    from invenio_db import db

    return db.session.get(Bucket, record.bucket.id).size


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("post", "/api/records/1/files/a.txt?uploads", 400),
        ("post", "/api/records/1/files/a.txt?uploads&size=10", 400),
        ("post", "/api/records/1/files/a.txt?uploads&size=10&partSize=1", 400),
        ("post", "/api/records/1/files/a.txt", 403),
        ("post", f"/api/records/1/files/a.txt?uploadId={uuid.uuid4()}", 404),
        (
            "put",
            f"/api/records/1/files/a.txt?uploadId={uuid.uuid4()}&partNumber=0",
            404,
        ),
        ("get", f"/api/records/1/files/a.txt?uploadId={uuid.uuid4()}", 404),
        ("delete", f"/api/records/1/files/a.txt?uploadId={uuid.uuid4()}", 404),
        ("get", "/api/records/1/files/a.txt?versionId=not-a-uuid", 400),
        ("delete", "/api/records/1/files/a.txt?versionId=not-a-uuid", 400),
        ("post", "/api/records/1/files/a.txt?uploadId=not-a-uuid", 400),
        ("get", "/api/records/1/files/a.txt?uploads", 405),
        ("delete", "/api/records/1/files/nope.txt", 404),
    ],
)
def test_bad_requests_are_client_errors(client, record, method, url, status):
    response = getattr(client, method)(url, data=b"abcd")
    assert response.status_code == status
    assert body(response)["status"] == status


# -- the record decides ------------------------------------------------------


def test_unknown_pid(client, record):
    response = client.get("/api/records/404/files")
    assert response.status_code == 404
    assert body(response)["message"] == "PID does not exist."
    assert client.get("/api/records/404/files/a.txt").status_code == 404
    assert upload(client, "a.txt", b"a", pid="404").status_code == 404


def test_deleted_pid(client, record, db):
    upload(client, "a.txt", b"a")
    PersistentIdentifier.get("recid", "1").delete()
    record.delete()
    db.session.commit()
    for response in (
        client.get("/api/records/1/files"),
        client.get("/api/records/1/files/a.txt"),
        upload(client, "b.txt", b"b"),
    ):
        assert response.status_code == 410
        assert body(response)["message"] == "The record has been deleted."


def test_soft_deleted_record_with_registered_pid(client, record, db):
    record.delete()
    db.session.commit()
    response = client.get("/api/records/1/files")
    assert response.status_code == 410


def test_record_without_bucket(client, db, location):
    create_record("3", with_bucket=False)
    for response in (
        client.get("/api/records/3/files"),
        client.get("/api/records/3/files/a.txt"),
        upload(client, "a.txt", b"a", pid="3"),
    ):
        assert response.status_code == 404
        assert body(response)["message"] == "The record has no files."


def test_redirected_pid(client, record, other_record, db):
    upload(client, "a.txt", b"from two", pid="2")
    PersistentIdentifier.get("recid", "1").redirect(
        PersistentIdentifier.get("recid", "2")
    )
    db.session.commit()
    response = client.get("/api/records/1/files/a.txt?download")
    assert response.status_code == 301
    assert path(response.headers["Location"]) == "/api/records/2/files/a.txt?download"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("put", "/api/records/1/files/new.txt"),
        ("put", "/api/records/1/files/a.txt"),
        ("delete", "/api/records/1/files/a.txt"),
        ("post", "/api/records/1/files/big.bin?uploads&size=10&partSize=4"),
    ],
)
def test_locked_bucket_refuses_writes(client, record, db, method, url):
    upload(client, "a.txt", b"a")
    record.bucket.locked = True
    db.session.commit()
    response = getattr(client, method)(url, data=b"data")
    assert response.status_code == 403
    assert body(response)["message"] == "Bucket is locked for modifications."
    assert ObjectVersion.query.filter_by(bucket_id=record.bucket.id).count() == 1
    assert client.get("/api/records/1/files/a.txt").data == b"a"


def test_locked_bucket_refuses_multipart_parts(client, record, db):
    multipart = body(
        client.post("/api/records/1/files/big.bin?uploads&size=10&partSize=4")
    )
    record.bucket.locked = True
    db.session.commit()
    url = f"/api/records/1/files/big.bin?uploadId={multipart['id']}"
    assert client.put(f"{url}&partNumber=0", data=b"0123").status_code == 403
    assert client.post(url).status_code == 403
    assert client.delete(url).status_code == 403
    assert Part.query.count() == 0


@pytest.mark.parametrize(
    ("action", "method", "url", "status"),
    [
        ("bucket-read", "get", "/api/records/1/files", 404),
        ("bucket-read-versions", "get", "/api/records/1/files?versions", 401),
        ("bucket-listmultiparts", "get", "/api/records/1/files?uploads", 404),
        ("object-read", "get", "/api/records/1/files/a.txt", 404),
        ("bucket-update", "put", "/api/records/1/files/b.txt", 404),
        ("object-delete", "delete", "/api/records/1/files/a.txt", 401),
    ],
)
def test_files_rest_permissions_apply(
    client, record, permissions, action, method, url, status
):
    upload(client, "a.txt", b"a")
    permissions.add(action)
    response = getattr(client, method)(url, data=b"b")
    assert response.status_code == status
    assert ObjectVersion.query.filter_by(bucket_id=record.bucket.id).count() == 1


# -- isolation between records ----------------------------------------------


def test_files_of_one_record_are_not_reachable_through_another(
    client, record, other_record
):
    a_version = body(upload(client, "a.txt", b"secret of one"))["version_id"]
    multipart = body(
        client.post("/api/records/1/files/big.bin?uploads&size=10&partSize=4")
    )
    other_bucket = str(other_record.bucket.id)
    assert client.get("/api/records/2/files/a.txt").status_code == 404
    assert (
        client.get(f"/api/records/2/files/a.txt?versionId={a_version}").status_code
        == 404
    )
    assert (
        client.delete(f"/api/records/2/files/a.txt?versionId={a_version}").status_code
        == 404
    )
    assert (
        client.get(
            f"/api/records/2/files/big.bin?uploadId={multipart['id']}"
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/api/records/2/files/big.bin?uploadId={multipart['id']}"
        ).status_code
        == 404
    )
    assert body(client.get("/api/records/2/files"))["contents"] == []
    response = client.get(f"/api/records/1/files?bucket_id={other_bucket}")
    assert body(response)["id"] == str(record.bucket.id)
    response = client.put(
        f"/api/records/2/files/b.txt?bucket_id={record.bucket.id}",
        data=b"b",
        headers={"bucket_id": str(record.bucket.id)},
    )
    assert response.status_code == 200
    assert ObjectVersion.get(other_record.bucket, "b.txt") is not None
    assert ObjectVersion.get(record.bucket, "b.txt") is None
    assert client.get("/api/records/1/files/a.txt").data == b"secret of one"


# -- records-rest links ------------------------------------------------------


def test_record_links(client, record):
    response = client.get("/api/records/1")
    assert response.status_code == 200
    links = body(response)["links"]
    assert links == {
        "self": "http://localhost/api/records/1",
        "files": FILES.format(pid=1),
    }
    assert client.get(path(links["files"])).status_code == 200


def test_record_links_without_bucket(client, db, location):
    create_record("3", with_bucket=False)
    assert body(client.get("/api/records/3"))["links"] == {
        "self": "http://localhost/api/records/3"
    }


def test_bucket_link_factory(app, record):
    from invenio_records_files.links import default_bucket_link_factory

    pid = PersistentIdentifier.get("recid", "1")
    with app.test_request_context():
        assert default_bucket_link_factory(pid) == (
            f"http://localhost/api/files/{record.bucket.id}"
        )
        pid.object_uuid = None
        assert default_bucket_link_factory(pid) is None


def test_record_files_links_fall_back_to_files_rest(database_uri, record):
    from invenio_records_files.links import default_record_files_links_factory

    pid = PersistentIdentifier.get("recid", "1")
    without_files_endpoints = create_app(database_uri, RECORDS_FILES_REST_ENDPOINTS={})
    with without_files_endpoints.test_request_context():
        links = default_record_files_links_factory(pid, record=record)
    assert links == {
        "self": "http://localhost/api/records/1",
        "files": f"http://localhost/api/files/{record.bucket.id}",
    }


def test_create_record_over_rest_creates_its_bucket(client, db):
    response = client.post(
        "/api/records/",
        data=json.dumps({"title": "Created over REST"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    created = body(response)
    files_url = created["links"]["files"]
    assert upload(client, "a.txt", b"a", pid=created["id"]).status_code == 200
    assert [c["key"] for c in body(client.get(path(files_url)))["contents"]] == [
        "a.txt"
    ]
    model = db.session.get(
        RecordMetadata, PersistentIdentifier.get("recid", created["id"]).object_uuid
    )
    assert "_bucket" in model.json
