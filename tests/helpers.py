# SPDX-License-Identifier: MIT
"""Test and benchmark helpers: an application factory and a statement counter."""

import gc
import io
import json
import os
import subprocess
import uuid
from contextlib import contextmanager

from flask import Flask, g
from flask.testing import FlaskClient
from flask_login import UserMixin
from invenio_db import db
from invenio_files_rest.storage import PyFSFileStorage
from invenio_pidstore.models import PersistentIdentifier, PIDStatus
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy_utils import create_database, drop_database

from examples.app import create_app as create_example_app
from invenio_records_files.api import Record


def allow_all(*args, **kwargs):
    """Permission factory that allows everything."""
    return type("Allow", (), {"can": lambda self: True})()


def deny_all(*args, **kwargs):
    """Permission factory that denies everything."""
    return type("Deny", (), {"can": lambda self: False})()


TEST_USER_HEADER = "X-Test-User"
"""Request header with the id of the user a test request is sent as."""


class LoggedInUser(UserMixin):
    """An authenticated user known by id only.

    Ids are integers: SQLAlchemy-Continuum records the user of each
    transaction in an integer column.
    """

    def __init__(self, user_id: int) -> None:
        self.id = user_id


def load_test_user(request):
    """Flask-Login request loader: the user of ``X-Test-User``, if any."""
    user_id = request.headers.get(TEST_USER_HEADER)
    return LoggedInUser(int(user_id)) if user_id else None


def create_users(*user_ids: int) -> None:
    """Create accounts rows for these user ids (Continuum's transactions need them)."""
    from invenio_accounts.models import User
    from sqlalchemy import insert

    db.session.execute(
        insert(User.__table__),
        [
            {
                "id": user_id,
                "email": f"user{user_id}@example.org",
                "active": True,
                "version_id": 1,
            }
            for user_id in user_ids
        ],
    )
    db.session.commit()


def forget_user() -> None:
    """Forget the user of an earlier request (``g`` outlives test requests)."""
    g.pop("_login_user", None)


def as_user(user_id: int | None) -> dict:
    """Headers of a request sent as user ``user_id`` (``None``: anonymous)."""
    return {TEST_USER_HEADER: str(user_id)} if user_id is not None else {}


def sqlite_savepoint_recipe(engine) -> None:
    """Let pysqlite use SAVEPOINTs (SQLAlchemy's documented recipe)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")


def default_database_uri(tmp_dir: str) -> str:
    """Database from ``SQLALCHEMY_DATABASE_URI``, else SQLite in ``tmp_dir``."""
    return os.environ.get("SQLALCHEMY_DATABASE_URI") or (
        f"sqlite:///{os.path.join(tmp_dir, 'test.db')}"
    )


# -- mariadb timestamps --
# MariaDB and MySQL: store Invenio's timestamps with microseconds. Invenio-DB's
# UTCDateTime columns are plain DATETIME there, which keeps whole seconds:
# Files-REST could not tell which of two versions of a key written within a
# second is the newer, nor "verify" which files it checked a moment ago.
# Import this before the tables are created (invenio db create, alembic).
from sqlalchemy import DateTime  # noqa: E402
from sqlalchemy.ext.compiler import compiles  # noqa: E402


@compiles(DateTime, "mysql")
def _datetime_with_microseconds(type_, compiler, **kw):
    return "DATETIME(6)"


# -- end of mariadb timestamps --


def database_backend(uri: str) -> str:
    """The backend of a database URI: ``sqlite``, ``postgresql`` or ``mysql``."""
    return make_url(uri).get_backend_name()


MYSQL_CHARSET = "utf8mb4"
MYSQL_COLLATION = "utf8mb4_nopad_bin"
"""Collation of the MariaDB test databases (see ``docs/deployment.rst``).

Keys compare byte for byte, as on PostgreSQL: with MariaDB's default
``utf8mb4_general_ci``, ``A.txt`` and ``a.txt`` would be one key, and with
any ``PAD SPACE`` collation (``utf8mb4_bin`` too), ``a`` and ``a `` would.
"""


@contextmanager
def new_database(uri: str, name: str):
    """Create the database ``name`` on the server of ``uri``; drop it afterwards.

    Yields the new database's URI. On SQLite, ``name`` is a file path.
    """
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{name}"
        return
    new = url.set(database=name).render_as_string(hide_password=False)
    if url.get_backend_name() == "mysql":
        create_mysql_database(new)
    else:
        create_database(new)
    try:
        yield new
    finally:
        drop_database(new)


def create_mysql_database(uri: str) -> None:
    """Create a MariaDB/MySQL database whose keys compare byte for byte."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = make_url(uri)
    engine = create_engine(url._replace(database=None), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    f"CREATE DATABASE `{url.database}` CHARACTER SET "
                    f"{MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}"
                )
            )
    finally:
        engine.dispose()


def server_connect_args(uri: str, lock_timeout_ms: int) -> dict:
    """Connection arguments of a live test server's engine.

    A lock wait longer than ``lock_timeout_ms`` fails (a deadlock becomes a
    server error with a traceback, not a hung client), and sessions are in
    UTC (invenio-db sets it on PostgreSQL only when no engine option is set).
    MariaDB counts its ``innodb_lock_wait_timeout`` in whole seconds.
    """
    if database_backend(uri) == "mysql":
        seconds = max(1, lock_timeout_ms // 1000)
        return {
            "init_command": (
                f"SET SESSION innodb_lock_wait_timeout = {seconds}, "
                "time_zone = '+00:00'"
            )
        }
    return {"options": f"-c timezone=UTC -c lock_timeout={lock_timeout_ms}"}


def as_uuid(value) -> uuid.UUID | None:
    """A UUID read by a raw SQL query (MariaDB's BINARY(16) gives bytes)."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    return uuid.UUID(str(value))


def as_json(value):
    """A JSON column read by a raw SQL query (MariaDB's gives its text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def create_app(database_uri: str, **config) -> Flask:
    """Create the example application (``examples/app.py``) for tests.

    Everything is allowed unless a test says otherwise; multipart parts may
    be tiny; SQLite gets SAVEPOINT support so that tests can be rolled back.
    A request with an ``X-Test-User: <id>`` header is sent by an
    authenticated user with that id (:func:`as_user`); others by an
    anonymous one.
    """
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "FILES_REST_PERMISSION_FACTORY": allow_all,
        "FILES_REST_MULTIPART_CHUNKSIZE_MIN": 2,
        "FILES_REST_TASK_WAIT_INTERVAL": 0.01,
    }
    settings.update(config)
    app = create_example_app(**settings)
    app.login_manager.request_loader(load_test_user)
    # Test requests share the test's application context, hence ``g``, where
    # Flask-Login keeps the user: load each request's own.
    app.before_request(forget_user)
    if database_uri.startswith("sqlite"):
        with app.app_context():
            sqlite_savepoint_recipe(db.engine)
    return app


class BufferedClient(FlaskClient):
    """Test client that reads and closes every response (file downloads too)."""

    def open(self, *args, **kwargs):
        """Send a request; buffer its response unless told otherwise."""
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def create_record(
    pid_value: str, data: dict | None = None, files: dict | None = None, **kwargs
):
    """Create a record (with a bucket) and register its ``recid`` PID; commit.

    :param files: Streams by key, given to the record at once (bulk).
    """
    record = Record.create(data or {"title": f"Record {pid_value}"}, **kwargs)
    if files:
        record.files = files
        record.commit()
    PersistentIdentifier.create(
        "recid",
        pid_value,
        object_type="rec",
        object_uuid=record.id,
        status=PIDStatus.REGISTERED,
    )
    db.session.commit()
    return record


class StatementCounter:
    """Count the SQL statements an engine executes inside ``count()``."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self._active = False
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn, cursor, statement, parameters, context, many):
        if self._active:
            self.statements.append(statement)

    @contextmanager
    def count(self):
        """Count the statements run in the block (garbage collector paused)."""
        self.statements = []
        gc.collect()
        gc.disable()
        self._active = True
        try:
            yield self
        finally:
            self._active = False
            gc.enable()

    @property
    def total(self) -> int:
        """Number of statements counted by the last ``count()`` block."""
        return len(self.statements)

    def close(self) -> None:
        """Stop listening."""
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


def unzip_test(path) -> str:
    """Run ``unzip -t`` on ``path``; skip the test visibly without unzip."""
    import shutil
    import subprocess

    import pytest

    unzip = shutil.which("unzip")
    if unzip is None:
        pytest.skip("unzip is not installed (apt-get install unzip)")
    result = subprocess.run(
        [unzip, "-t", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout
    return result.stdout


def body(response) -> dict:
    """The JSON body of ``response``."""
    return json.loads(response.get_data(as_text=True))


def upload(client, key: str, data: bytes, pid: str = "1", **params):
    """PUT ``data`` as ``key`` of record ``pid`` (``params``: query string)."""
    return client.put(
        f"/api/records/{pid}/files/{key}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        query_string=params,
    )


class RecordingStorage(PyFSFileStorage):
    """Local storage that remembers the files it opened for reading."""

    opened: list = []

    def open(self, mode="rb"):
        """Open the file; remember it when read."""
        fp = super().open(mode)
        if mode == "rb":
            RecordingStorage.opened.append(fp)
        return fp


class CustomKeyRecord(Record):
    """A record keeping its bucket id under ``storage.bucket``."""

    @classmethod
    def dump_bucket(cls, data, bucket):
        """Store the bucket id under ``storage.bucket``."""
        data.setdefault("storage", {})["bucket"] = str(bucket.id)

    @classmethod
    def load_bucket(cls, record):
        """Read the bucket id from ``storage.bucket``."""
        return record.get("storage", {}).get("bucket", "")


class RangeReader(io.RawIOBase):
    """A seekable binary file of ``size`` bytes read by ranges.

    Subclasses implement :meth:`fetch`; ``received`` counts the bytes fetched.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.received = 0

    def fetch(self, start: int, stop: int) -> bytes:
        """Return the bytes ``start`` to ``stop`` (excluded)."""
        raise NotImplementedError

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=0):
        base = {0: 0, 1: self.position, 2: self.size}[whence]
        self.position = base + offset
        return self.position

    def readinto(self, buffer):
        stop = min(self.position + len(buffer), self.size)
        if stop <= self.position:
            return 0
        data = self.fetch(self.position, stop)
        buffer[: len(data)] = data
        self.position += len(data)
        self.received += len(data)
        return len(data)


def stop_process(process) -> None:
    """Terminate a child process; kill it if it does not stop within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
