# SPDX-License-Identifier: MIT
"""Files follow their record's permissions (``RECORDS_FILES_REST_PERMISSION_FACTORY``).

Three records: an open one (anyone reads, its owner changes it), a restricted
one (only its owner reads or changes it) and a frozen one (open, its bucket
locked). Every operation of the record files endpoints and the download view
is tried by an anonymous user, an authenticated stranger and the owner,
through a custom factory and through ``record_permission_factory`` (the
records-rest endpoint's own factories). Files-REST's factory denies
everything meanwhile: on these endpoints the record's factory replaces it.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

import pytest
from flask_login import current_user
from invenio_files_rest.models import MultipartObject, ObjectVersion, Part
from invenio_files_rest.signals import file_downloaded
from invenio_files_rest.storage import PyFSFileStorage
from invenio_pidstore.models import PersistentIdentifier

from invenio_records_files import permissions
from invenio_records_files.api import Record
from invenio_records_files.errors import PermissionDeniedError
from invenio_records_files.permissions import record_permission_factory

from .helpers import (
    allow_all,
    as_user,
    body,
    create_record,
    create_users,
    deny_all,
    forget_user,
)

OWNER = 1
STRANGER = 2
USERS = (None, STRANGER, OWNER)  # the owner's write comes last
SECRETS = ("a.txt", "big.bin", "abort.bin", "first secret", "second secret")


class Permission:
    def __init__(self, allowed):
        self.allowed = allowed

    def can(self):
        return self.allowed()


def may(record, action):
    """The tests' policy: anyone reads an open record; owners do the rest."""
    if action == "read" and record.get("access") != "restricted":
        return True
    return current_user.is_authenticated and current_user.id in record.get("owners", [])


def files_factory(record, action):
    return Permission(lambda: may(record, action))


def read_factory(record=None, **kwargs):
    return Permission(lambda: may(record, "read"))


def update_factory(record=None, **kwargs):
    return Permission(lambda: may(record, "update"))


@contextmanager
def request_as(app, user=None):
    """A request context of ``user`` (``None``: anonymous)."""
    with app.test_request_context("/", headers=as_user(user)):
        forget_user()
        yield


@dataclass
class Files:
    pid: str
    kind: str
    record: Record
    old: str  # version id of the first version of a.txt
    big: str  # upload id of a multipart upload with all its parts
    abort: str  # upload id of a multipart upload without parts

    def url(self, template):
        return template.format(
            files=f"/api/records/{self.pid}/files",
            pid=self.pid,
            old=self.old,
            big=self.big,
            abort=self.abort,
        )


def make_files(client, db, pid, kind):
    access = "restricted" if kind == "restricted" else "open"
    record = create_record(pid, {"title": kind, "access": access, "owners": [OWNER]})
    files = f"/api/records/{pid}/files"
    old = body(client.put(f"{files}/a.txt", data=b"first secret"))["version_id"]
    assert client.put(f"{files}/a.txt", data=b"second secret").status_code == 200
    big = body(client.post(f"{files}/big.bin?uploads&size=5&partSize=2"))["id"]
    for number, part in enumerate([b"01", b"23", b"4"]):
        url = f"{files}/big.bin?uploadId={big}&partNumber={number}"
        assert client.put(url, data=part).status_code == 200
    abort = body(client.post(f"{files}/abort.bin?uploads&size=5&partSize=2"))["id"]
    if kind == "frozen":
        record.bucket.locked = True
        db.session.commit()
    return Files(pid, kind, record, old, big, abort)


@pytest.fixture
def records(client, db):
    """Open, restricted and frozen records, set up while everything is allowed."""
    create_users(OWNER, STRANGER)
    return [
        make_files(client, db, pid, kind)
        for pid, kind in (("1", "open"), ("2", "restricted"), ("3", "frozen"))
    ]


@pytest.fixture
def files_rest_denies(app, monkeypatch):
    """Files-REST's own factory denies everything."""
    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", deny_all)
    return state


def use_custom_factory(app, monkeypatch):
    monkeypatch.setitem(
        app.config, "RECORDS_FILES_REST_PERMISSION_FACTORY", files_factory
    )


def use_record_permission_factory(app, monkeypatch, read=None, update=None):
    endpoint = app.config["RECORDS_REST_ENDPOINTS"]["recid"]
    monkeypatch.setitem(endpoint, "read_permission_factory_imp", read or read_factory)
    monkeypatch.setitem(
        endpoint, "update_permission_factory_imp", update or update_factory
    )
    monkeypatch.setitem(
        app.config,
        "RECORDS_FILES_REST_PERMISSION_FACTORY",
        "invenio_records_files.permissions:record_permission_factory",
    )


@pytest.fixture(params=["custom", "records-rest"])
def factory(request, app, records, files_rest_denies, monkeypatch):
    """One of the two record factories, configured once the records are set up."""
    if request.param == "custom":
        use_custom_factory(app, monkeypatch)
    else:
        use_record_permission_factory(app, monkeypatch)
    return request.param


@dataclass(frozen=True)
class Operation:
    name: str
    action: str
    method: str
    url: str
    status: int
    data: bytes | None = None

    def send(self, client, files, user):
        return client.open(
            files.url(self.url),
            method=self.method,
            data=self.data,
            headers=as_user(user),
        )


READS = [
    Operation("list", "read", "GET", "{files}", 200),
    Operation("list versions", "read", "GET", "{files}?versions", 200),
    Operation("list uploads", "read", "GET", "{files}?uploads", 200),
    Operation("head bucket", "read", "HEAD", "{files}", 200),
    Operation("download", "read", "GET", "{files}/a.txt", 200),
    Operation("download attachment", "read", "GET", "{files}/a.txt?download", 200),
    Operation("download version", "read", "GET", "{files}/a.txt?versionId={old}", 200),
    Operation("head object", "read", "HEAD", "{files}/a.txt", 200),
    Operation("list parts", "read", "GET", "{files}/big.bin?uploadId={big}", 200),
    Operation("download view", "read", "GET", "/records/{pid}/files/a.txt", 200),
    Operation("archive", "read", "GET", "/api/records/{pid}/files-archive", 200),
]
WRITES = [
    Operation("upload", "update", "PUT", "{files}/new.txt", 200, b"new"),
    Operation("new version", "update", "PUT", "{files}/a.txt", 200, b"third"),
    Operation(
        "multipart init",
        "update",
        "POST",
        "{files}/c.bin?uploads&size=5&partSize=2",
        200,
    ),
    Operation(
        "multipart part",
        "update",
        "PUT",
        "{files}/big.bin?uploadId={big}&partNumber=0",
        200,
        b"99",
    ),
    Operation(
        "multipart complete", "update", "POST", "{files}/big.bin?uploadId={big}", 200
    ),
    Operation(
        "multipart abort", "update", "DELETE", "{files}/abort.bin?uploadId={abort}", 204
    ),
    Operation(
        "remove version", "update", "DELETE", "{files}/a.txt?versionId={old}", 204
    ),
    Operation("delete", "update", "DELETE", "{files}/a.txt", 204),
]


def allowed(kind, user, action):
    if action == "read" and kind != "restricted":
        return True
    return user == OWNER


def stored(files):
    """The bucket's object versions, uploads and parts, as stored."""
    bucket_id = files.record.bucket_id
    return (
        sorted(
            (str(o.version_id), o.key, o.is_head, str(o.file_id))
            for o in ObjectVersion.query.filter_by(bucket_id=bucket_id)
        ),
        sorted(
            (str(m.upload_id), m.completed)
            for m in MultipartObject.query.filter_by(bucket_id=bucket_id)
        ),
        sorted(
            (str(p.upload_id), p.part_number, p.checksum)
            for p in Part.query.join(MultipartObject).filter(
                MultipartObject.bucket_id == bucket_id
            )
        ),
    )


def assert_leaks_nothing(response):
    data = response.get_data()
    headers = str(response.headers)
    for secret in SECRETS:
        assert secret.encode() not in data, secret
        assert secret not in headers, secret


def try_operation(client, files, operation):
    """Send ``operation`` as each user; check each answer and what changed."""
    before = stored(files)
    for user in USERS:
        response = operation.send(client, files, user)
        what = (operation.name, files.kind, user)
        if not allowed(files.kind, user, operation.action):
            expected = 401 if user is None else 403
            assert response.status_code == expected, what
            assert_leaks_nothing(response)
            assert stored(files) == before, what
            if operation.method != "HEAD":
                assert body(response) == {
                    "status": expected,
                    "message": "You must be logged in for this action."
                    if user is None
                    else "You do not have a permission for this action.",
                }, what
        elif files.kind == "frozen" and operation.action == "update":
            assert response.status_code == 403, what
            assert body(response)["message"] == "Bucket is locked for modifications."
            assert stored(files) == before, what
        else:
            assert response.status_code == operation.status, (
                *what,
                response.get_data(as_text=True),
            )
    if operation.action == "update" and files.kind != "frozen":
        assert stored(files) != before, operation.name  # the owner's write


def test_every_read_follows_the_record(client, records, factory):
    for operation in READS:
        for files in records:
            try_operation(client, files, operation)


def test_every_write_follows_the_record(client, records, factory):
    # In this order each write finds what it needs (the parts of big.bin
    # before its completion, the old version of a.txt before a.txt goes).
    for operation in WRITES:
        for files in records:
            try_operation(client, files, operation)


def test_downloads_send_the_bytes(client, records, factory):
    files = records[1]  # restricted
    for url in ["{files}/a.txt", "/records/{pid}/files/a.txt"]:
        response = client.get(files.url(url), headers=as_user(OWNER))
        assert response.data == b"second secret"
        assert client.get(files.url(url)).status_code == 401


def test_denied_upload_reads_no_byte(client, records, factory, files_rest_denies):
    # Only the record's permissions stand between the request and its body.
    files_rest_denies.permission_factory = allow_all

    class Stream(BytesIO):
        read_calls = 0

        def read(self, *args):
            Stream.read_calls += 1
            return super().read(*args)

    files = records[1]
    for user, status in [(None, 401), (STRANGER, 403)]:
        response = client.put(
            files.url("{files}/new.txt"),
            input_stream=Stream(b"never read"),
            headers={"Content-Length": "10", **as_user(user)},
        )
        assert response.status_code == status
    assert Stream.read_calls == 0
    assert ObjectVersion.query.filter_by(key="new.txt").count() == 0


@pytest.mark.parametrize(
    "url", ["{files}/a.txt", "{files}/a.txt?download", "/records/{pid}/files/a.txt"]
)
def test_denied_download_opens_no_file(
    client, records, factory, files_rest_denies, monkeypatch, url
):
    # Only the record's permissions stand between the request and the file.
    files_rest_denies.permission_factory = allow_all
    opened, downloaded = [], []
    original = PyFSFileStorage.open

    def open_(self, *args, **kwargs):
        opened.append(self.fileurl)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PyFSFileStorage, "open", open_)
    files = records[1]

    def receiver(sender, obj=None, **kwargs):
        downloaded.append(obj.key)

    with file_downloaded.connected_to(receiver):
        assert client.get(files.url(url)).status_code == 401
        assert client.get(files.url(url), headers=as_user(STRANGER)).status_code == 403
        assert opened == []
        assert downloaded == []
        assert client.get(files.url(url), headers=as_user(OWNER)).status_code == 200
    assert len(opened) == 1
    assert downloaded == ["a.txt"]


def test_download_view_hides_whether_a_file_exists(client, records, factory):
    files = records[1]
    for key in ["a.txt", "missing.txt"]:
        response = client.get(f"/records/2/files/{key}")
        assert response.status_code == 401
        assert key.encode() not in response.data
    assert (
        client.get("/records/2/files/missing.txt", headers=as_user(OWNER)).status_code
        == 404
    )
    assert files.kind == "restricted"


def test_files_rest_endpoint_keeps_its_own_factory(client, records, factory):
    files = records[0]
    bucket_id = files.record.bucket_id
    assert client.get(files.url("{files}/a.txt")).status_code == 200
    # The record's permission applies to its files' URLs only, and to one
    # request: Files-REST's own URL of the same bucket still asks Files-REST.
    assert client.get(f"/api/files/{bucket_id}/a.txt").status_code == 404
    assert client.get(f"/api/files/{bucket_id}").status_code == 404


def test_without_the_setting_files_rest_decides(client, records, app, monkeypatch):
    asked = []

    def files_rest(obj, action):
        asked.append(action)
        return allow_all()

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", files_rest)
    monkeypatch.setitem(app.config, "RECORDS_FILES_REST_PERMISSION_FACTORY", None)
    # A restricted record's files are Files-REST's business, as in version 4.
    assert client.get("/api/records/2/files/a.txt").data == b"second secret"
    assert asked == ["object-read"]
    monkeypatch.setitem(state.__dict__, "permission_factory", deny_all)
    assert client.get("/api/records/2/files/a.txt").status_code == 404


def test_files_rest_checks_are_answered_by_the_record_factory(
    client, records, app, monkeypatch
):
    asked = []

    def files_rest(obj, action):
        asked.append(action)
        return deny_all()

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", files_rest)
    use_custom_factory(app, monkeypatch)
    files = records[1]
    response = client.delete(
        files.url("{files}/a.txt?versionId={old}"), headers=as_user(OWNER)
    )
    assert response.status_code == 204
    response = client.get(files.url("{files}?versions"), headers=as_user(OWNER))
    assert response.status_code == 200
    assert asked == []  # Files-REST's factory was never asked


# -- the public check (for other endpoints, e.g. an import) ---------------------


def test_check_raises_with_what_was_refused(
    app, records, files_rest_denies, monkeypatch
):
    use_custom_factory(app, monkeypatch)
    restricted = records[1].record
    with request_as(app), pytest.raises(PermissionDeniedError) as denied:
        permissions.check(restricted, "read")
    error = denied.value
    assert (error.code, error.record_id, error.action) == (401, restricted.id, "read")
    assert error.authenticated is False
    with request_as(app, STRANGER):
        with pytest.raises(PermissionDeniedError) as denied:
            permissions.check(restricted, "update")
        assert denied.value.code == 403
        permissions.check(records[0].record, "read")
    with request_as(app, OWNER):
        permissions.check(restricted, "update")
    with request_as(app), pytest.raises(ValueError):
        permissions.check(restricted, "delete")


def test_check_without_the_setting_asks_files_rest_about_the_bucket(
    app, records, monkeypatch
):
    asked = []

    def files_rest(obj, action):
        asked.append((obj, action))
        return Permission(lambda: action == "bucket-read")

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", files_rest)
    record = records[1].record
    with request_as(app):
        permissions.check(record, "read")
        with pytest.raises(PermissionDeniedError):
            permissions.check(record, "update")
    assert asked == [(record.bucket, "bucket-read"), (record.bucket, "bucket-update")]


def test_check_grants_nothing_beyond_its_bucket_and_request(
    app, records, files_rest_denies, monkeypatch
):
    use_custom_factory(app, monkeypatch)
    open_, restricted = records[0].record, records[1].record
    with request_as(app):
        permissions.check(open_, "read")
        factory = files_rest_denies.permission_factory
        assert factory(open_.bucket, "bucket-read").can()
        assert not factory(open_.bucket, "bucket-update").can()
        assert not factory(restricted.bucket, "bucket-read").can()
    with request_as(app):
        assert not files_rest_denies.permission_factory(
            open_.bucket, "bucket-read"
        ).can()


# -- record_permission_factory ---------------------------------------------------


def test_record_factory_uses_the_records_rest_defaults(app, records, monkeypatch):
    endpoint = app.config["RECORDS_REST_ENDPOINTS"]["recid"]
    monkeypatch.setitem(endpoint, "read_permission_factory_imp", None)
    monkeypatch.setitem(endpoint, "update_permission_factory_imp", None)
    state = app.extensions["invenio-records-rest"]
    monkeypatch.setitem(state.__dict__, "read_permission_factory", read_factory)
    monkeypatch.setitem(state.__dict__, "update_permission_factory", deny_all)
    open_, restricted = records[0].record, records[1].record
    with request_as(app, STRANGER):
        assert record_permission_factory(open_, "read").can()
        assert not record_permission_factory(restricted, "read").can()
        assert not record_permission_factory(open_, "update").can()
    # Neither the endpoint nor the defaults name one: records-rest checks
    # nothing, neither does this.
    monkeypatch.setitem(state.__dict__, "update_permission_factory", None)
    with request_as(app):
        assert record_permission_factory(restricted, "update").can()


def test_record_factory_finds_the_endpoint_of_the_pid_type(app, records, statements):
    endpoint = app.config["RECORDS_REST_ENDPOINTS"]["recid"]
    restricted = records[1].record
    assert restricted.id  # loaded (the test's commits expired it)
    with statements.count():
        assert permissions.rest_endpoint(restricted) is endpoint
    assert statements.total == 1, statements.statements
    pid = PersistentIdentifier.get("recid", "2")
    with request_as(app):
        permissions.serving(restricted, pid)
        with statements.count():
            assert permissions.rest_endpoint(restricted) is endpoint
        assert statements.total == 0
        other = {"read_permission_factory_imp": deny_all}
        permissions.serving(restricted, pid, other)
        assert permissions.rest_endpoint(restricted) is other
        assert not record_permission_factory(restricted, "read").can()
        # Another record of the same request: found by its PID type.
        assert permissions.rest_endpoint(records[0].record) is endpoint


def test_record_factory_of_a_record_without_endpoint(app, db, location):
    record = Record.create({"title": "no PID"})
    state = app.extensions["invenio-records-rest"]
    assert permissions.rest_endpoint(record) is None
    default = state.read_permission_factory
    with request_as(app):
        assert (
            record_permission_factory(record, "read").can()
            == default(record=record).can()
        )
    with pytest.raises(ValueError):
        record_permission_factory(record, "delete")


def test_record_factory_with_records_rest_check_search(app, records, monkeypatch):
    from invenio_records_rest.utils import check_search

    class Search:
        indexed = {str(records[0].record.id)}

        def get_record(self, id_):
            return type("Hits", (), {"count": lambda s: int(id_ in self.indexed)})()

    endpoint = app.config["RECORDS_REST_ENDPOINTS"]["recid"]
    monkeypatch.setitem(endpoint, "read_permission_factory_imp", check_search)
    monkeypatch.setitem(endpoint, "search_class", Search)
    with request_as(app):
        assert record_permission_factory(records[0].record, "read").can()
    with request_as(app):
        assert not record_permission_factory(records[1].record, "read").can()


def test_record_factory_uses_the_endpoint_being_served(tmp_path):
    from invenio_db import db
    from invenio_files_rest.models import Location

    from examples.app import RECORD_CLASS, records_rest_endpoints

    from .helpers import create_app

    deposits = {
        **records_rest_endpoints()["recid"],
        "item_route": f'/deposits/<pid(recid,record_class="{RECORD_CLASS}"):pid_value>',
        "read_permission_factory_imp": deny_all,
    }
    app = create_app(
        f"sqlite:///{tmp_path}/served.db",
        DEPOSIT_REST_ENDPOINTS={"depid": deposits},
        RECORDS_FILES_REST_ENDPOINTS={
            "RECORDS_REST_ENDPOINTS": {"recid": "/files"},
            "DEPOSIT_REST_ENDPOINTS": {"depid": "/files"},
        },
        RECORDS_FILES_REST_PERMISSION_FACTORY=record_permission_factory,
    )
    with app.app_context():
        db.create_all()
        db.session.add(
            Location(name="served", uri=str(tmp_path / "files"), default=True)
        )
        create_record("1")
        with app.test_client() as client:
            # The same record, through two endpoints: each one's permissions.
            assert client.get("/api/records/1/files").status_code == 200
            assert client.get("/api/deposits/1/files").status_code == 401
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_factory_as_import_string_and_callable(app, records, monkeypatch, client):
    files_rest_denies = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(files_rest_denies.__dict__, "permission_factory", deny_all)
    monkeypatch.setitem(
        app.config,
        "RECORDS_FILES_REST_PERMISSION_FACTORY",
        "tests.test_permissions:files_factory",
    )
    assert client.get("/api/records/2/files").status_code == 401
    assert client.get("/api/records/2/files", headers=as_user(OWNER)).status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("GET", "/api/records/1/files", None),
        ("GET", "/api/records/1/files/a.txt", None),
        ("PUT", "/api/records/1/files/a.txt", b"again"),
        ("GET", "/records/1/files/a.txt", None),
    ],
)
def test_record_permissions_cost_no_statement(
    app, client, records, monkeypatch, statements, method, url, data
):
    def cost():
        with statements.count():
            response = client.open(
                url, method=method, data=data, headers=as_user(OWNER)
            )
        assert response.status_code == 200
        return statements.total

    monkeypatch.setitem(app.config, "RECORDS_FILES_REST_PERMISSION_FACTORY", None)
    cost()  # warm up (first request of the kind)
    without = cost()
    use_record_permission_factory(app, monkeypatch)
    cost()
    assert cost() == without


def test_import_needs_read_on_the_source_and_update_on_the_target(
    client, db, records, factory
):
    target = create_record(
        "9", {"title": "mine", "access": "open", "owners": [STRANGER]}
    )
    url = "/api/records/9/files?import=2"  # 2: restricted, owned by OWNER
    for user, status in ((None, 401), (STRANGER, 403)):
        response = client.post(url, headers=as_user(user))
        assert response.status_code == status
        assert_leaks_nothing(response)
    assert ObjectVersion.query.filter_by(bucket_id=target.bucket_id).count() == 0
    response = client.post("/api/records/9/files?import=1", headers=as_user(STRANGER))
    assert response.status_code == 200, response.data
    assert [o["key"] for o in body(response)["contents"]] == ["a.txt"]
