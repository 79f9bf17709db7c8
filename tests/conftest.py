# SPDX-License-Identifier: MIT
"""Pytest fixtures.

Tests run against ``SQLALCHEMY_DATABASE_URI`` when it is set (PostgreSQL and
MariaDB in CI), else against a SQLite file. On PostgreSQL and MariaDB, a
database of the session's own is created on that server and dropped
afterwards (the URI's database is never touched). Each test runs in a
transaction that is rolled back at its end; code under test may commit (the
commits become savepoints).
"""

import uuid
from contextlib import contextmanager

import pytest
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from invenio_db import db as db_
from invenio_files_rest.models import Location
from invenio_s3 import InvenioS3
from sqlalchemy.engine import make_url

from . import s3 as s3_helpers
from .helpers import (
    BufferedClient,
    StatementCounter,
    create_app,
    create_record,
    database_backend,
    default_database_uri,
    new_database,
)

PASS_MARKERS = {
    # marker: (the backends it runs on, why it is skipped on the others)
    "database_independent": (
        {"sqlite"},
        "does not depend on the database: runs in the SQLite pass",
    ),
    "row_locks": (
        {"postgresql", "mysql"},
        "needs row locks (SELECT ... FOR UPDATE): runs on PostgreSQL and MariaDB",
    ),
    "postgresql": (
        {"postgresql"},
        "runs once, in the PostgreSQL pass (processes of its own on a real "
        "database: set SQLALCHEMY_DATABASE_URI to a PostgreSQL URI)",
    ),
}


def pytest_collection_modifyitems(config, items):
    """Skip, visibly, the tests that run in another database's pass."""
    backend = database_backend(default_database_uri("<tmp>"))
    for item in items:
        for marker, (backends, reason) in PASS_MARKERS.items():
            if item.get_closest_marker(marker) and backend not in backends:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_report_header(config):
    """Say which database the tests run on."""
    uri = default_database_uri("<tmp>")
    return f"database: {make_url(uri).render_as_string(hide_password=True)}"


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    """URI of a database of this test session's own."""
    uri = default_database_uri(str(tmp_path_factory.mktemp("db")))
    if database_backend(uri) == "sqlite":
        yield uri
        return
    with new_database(uri, f"irf_test_{uuid.uuid4().hex[:12]}") as uri:
        yield uri


@pytest.fixture(scope="session")
def backend(database_uri):
    """The database of the tests: ``sqlite``, ``postgresql`` or ``mysql``."""
    return database_backend(database_uri)


@pytest.fixture(scope="session")
def is_postgresql(backend):
    """True when the tests run on PostgreSQL."""
    return backend == "postgresql"


@pytest.fixture(scope="session")
def is_mysql(backend):
    """True when the tests run on MariaDB (or MySQL)."""
    return backend == "mysql"


@pytest.fixture(scope="session")
def app_config():
    """Extra configuration of the test application."""
    return {}


@pytest.fixture(scope="session")
def base_app(database_uri, app_config):
    """Application with records, files and records-files."""
    return create_app(database_uri, **app_config)


@pytest.fixture(scope="session")
def database(base_app):
    """Create the tables once per session."""
    with base_app.app_context():
        db_.create_all()
        yield db_
        db_.session.remove()
        db_.drop_all()


@pytest.fixture
def app(base_app, database):
    """Application with a pushed application context."""
    with base_app.app_context():
        yield base_app


@contextmanager
def rolled_back(database):
    """Bind the session to a transaction rolled back at the end of the block.

    Works on the engine of the current application.
    """
    connection = database.engine.connect()
    transaction = connection.begin()

    class ConnectionBoundSession(FlaskSQLAlchemySession):
        # Flask-SQLAlchemy's get_bind() returns the engine; the connection
        # (already in a transaction) makes commits become savepoints.
        def get_bind(self, *args, **kwargs):
            return connection

    session = database._make_scoped_session(
        options=dict(
            bind=connection,
            binds={},
            join_transaction_mode="create_savepoint",
            class_=ConnectionBoundSession,
        )
    )
    original = database.session
    database.session = session
    try:
        yield database
    finally:
        session.remove()
        transaction.rollback()
        connection.close()
        database.session = original


@pytest.fixture
def db(app, database):
    """Database whose changes are rolled back after the test."""
    with rolled_back(database) as db:
        yield db


@pytest.fixture
def location(db, tmp_path):
    """Default files location in a temporary directory."""
    loc = Location(name="testloc", uri=str(tmp_path / "files"), default=True)
    db.session.add(loc)
    db.session.commit()
    return loc


@pytest.fixture
def client(app, db, location):
    """HTTP test client of the example application."""
    app.test_client_class = BufferedClient
    with app.test_client() as client:
        yield client


@pytest.fixture
def record(db, location):
    """A record with a bucket and the PID ``recid:1``."""
    return create_record("1")


@pytest.fixture
def statements(db):
    """Statement counter on the test database."""
    counter = StatementCounter(db.engine)
    yield counter
    counter.close()


@pytest.fixture
def foreign_keys_enforced(backend):
    """Skip, visibly, a test of foreign keys on SQLite (which does not enforce them)."""
    if backend == "sqlite":
        pytest.skip(
            "SQLite enforces no foreign key here: needs PostgreSQL or MariaDB "
            "(set SQLALCHEMY_DATABASE_URI)"
        )


# -- files on S3 (moto's server on loopback) ------------------------------------


@pytest.fixture(scope="session")
def s3_settings():
    """Production S3 settings (``examples/deployment_config.py``) for a server.

    The server (moto, on loopback) runs for the rest of the test session.
    """
    with s3_helpers.s3_server() as endpoint_url:
        yield s3_helpers.deployment_settings(endpoint_url)


@pytest.fixture(scope="session")
def s3_base_app(database_uri, app_config, s3_settings):
    """The test application with its files on S3, through Invenio-S3."""
    app = create_app(database_uri, **{**app_config, **s3_settings})
    InvenioS3(app)
    yield app
    with app.app_context():
        db_.engine.dispose()


@pytest.fixture
def s3_app(s3_base_app, database):
    """Application with files on S3, with a pushed application context."""
    with s3_base_app.app_context():
        yield s3_base_app


@pytest.fixture
def s3_db(s3_app, database):
    """Database of the S3 application, rolled back after the test."""
    with rolled_back(database) as db:
        yield db


@pytest.fixture
def s3(s3_settings):
    """boto3 client of the S3 server."""
    return s3_helpers.client(s3_settings)


@pytest.fixture
def s3_bucket(s3):
    """An S3 bucket of this test's own (deleted afterwards, with its objects)."""
    name = s3_helpers.create_bucket(s3)
    yield name
    s3_helpers.delete_bucket(s3, name)


@pytest.fixture
def s3_location(s3_db, s3_bucket):
    """Default files location in the test's S3 bucket."""
    loc = Location(name="s3", uri=f"s3://{s3_bucket}", default=True)
    s3_db.session.add(loc)
    s3_db.session.commit()
    return loc


@pytest.fixture
def s3_client(s3_app, s3_db, s3_location):
    """HTTP test client of the application with files on S3."""
    s3_app.test_client_class = BufferedClient
    with s3_app.test_client() as client:
        yield client


@pytest.fixture
def s3_record(s3_db, s3_location):
    """A record with its bucket on S3 and the PID ``recid:1``."""
    return create_record("1")


@pytest.fixture
def permissions(app, monkeypatch):
    """Files-REST permissions: everything allowed unless an action is denied."""
    denied = set()

    def factory(obj, action):
        return type("Permission", (), {"can": lambda self: action not in denied})()

    state = app.extensions["invenio-files-rest"]
    monkeypatch.setitem(state.__dict__, "permission_factory", factory)
    return denied
