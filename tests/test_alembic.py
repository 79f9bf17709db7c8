# SPDX-License-Identifier: MIT
"""Alembic migrations of the invenio_records_files branch.

Each test migrates a database of its own (never the session's test database),
through invenio-db's Flask-Alembic (``app.extensions["invenio-db"].alembic``).
Flask-Alembic passes revision ids and Alembic's ``branch@revision`` notation
through to Alembic unchanged. Our branch is labelled ``invenio_records_files``
(the ``branch_labels`` of its root, inherited by its descendants): the label
alone names the root, ``invenio_records_files@head`` its head, and
``invenio_records_files@base`` the state before the root (downgrading to it
removes the whole branch).
"""

import uuid

import pytest
import sqlalchemy as sa
from invenio_db import db
from sqlalchemy_utils.types import UUIDType

from invenio_records_files.models import FileCRC32, FileEntry, RecordsBuckets

from .helpers import create_app, database_backend, new_database

BRANCH = "invenio_records_files"
ROOT, CREATE_TABLE, ADD_INDEX = "2da9a03b0833", "1ba76da94103", "4a5d5b4d4c2f"
ADD_ENTRIES, CRC_CACHE = "8f3a6c1d2e4b", "7c3e91a4d2b6"
TABLE = "records_buckets"
ENTRIES = "records_files_entries"
CRC_TABLE = "records_files_crc32"
TABLES = (TABLE, ENTRIES, CRC_TABLE)

pytestmark = pytest.mark.filterwarnings(
    # Flask-Alembic 3.1 joins version_locations with "," and sets no
    # path_separator; Alembic >= 1.16 warns on that legacy format, and no
    # path_separator value splits on "," (only space, newline, os, ":", ";").
    "ignore:No path_separator found in configuration:DeprecationWarning"
)


@pytest.fixture
def migration_uri(database_uri, tmp_path):
    """URI of an empty database for one test, dropped afterwards."""
    if database_backend(database_uri) == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    with new_database(database_uri, f"irf_alembic_{uuid.uuid4().hex[:12]}") as uri:
        yield uri


@pytest.fixture
def migration_app(migration_uri):
    app = create_app(migration_uri)
    with app.app_context():
        engine = db.engine
        yield app
    # Popping the context closed Alembic's connection; close the pool's too
    # so that the database can be dropped.
    engine.dispose()


@pytest.fixture
def alembic(migration_app):
    return migration_app.extensions["invenio-db"].alembic


@pytest.fixture
def other_branches_ready(alembic, migration_uri):
    """Bring every branch but ours to its head.

    On PostgreSQL nothing is needed: ``alembic.upgrade()`` runs all the
    branches. On SQLite invenio-db's own ``dbdbc1b19cf2`` (a dependency of our
    root) fails (``op.create_primary_key`` is an ALTER that SQLite does not
    support), so the other modules' tables are created from the models and
    their branches stamped at their heads; only our migrations then run.
    """
    if not migration_uri.startswith("sqlite"):
        return
    db.metadata.create_all(
        db.engine,
        tables=[t for name, t in db.metadata.tables.items() if name not in TABLES],
    )
    alembic.stamp(
        [h.revision for h in alembic.heads() if BRANCH not in h.branch_labels]
    )


@pytest.fixture
def upgraded(alembic, other_branches_ready):
    alembic.upgrade()
    return alembic


def our_revision(alembic):
    """Current revision of our branch in the database, or None."""
    ours = [r.revision for r in alembic.current() if BRANCH in r.branch_labels]
    assert len(ours) <= 1
    return ours[0] if ours else None


def describe_table(name):
    """Reflect a table: columns, primary key, foreign keys and indexes."""
    inspector = sa.inspect(db.engine)
    pk = inspector.get_pk_constraint(name)
    return {
        "columns": [
            (c["name"], str(c["type"]), c["nullable"])
            for c in inspector.get_columns(name)
        ],
        "primary_key": pk["constrained_columns"],
        "foreign_keys": sorted(
            (fk["name"], *fk["constrained_columns"], fk["referred_table"])
            for fk in inspector.get_foreign_keys(name)
        ),
        "indexes": sorted(
            (ix["name"], *ix["column_names"], ix["unique"])
            for ix in inspector.get_indexes(name)
        ),
    }


def diff_table(diff):
    """Name of the table an Alembic autogenerate diff is about."""
    if isinstance(diff, list):  # modify_* ops come grouped per column
        return diff_table(diff[0])
    kind = diff[0]
    if kind.startswith("modify_") or kind in ("add_column", "remove_column"):
        return diff[2]
    obj = diff[1]
    return obj.name if isinstance(obj, sa.Table) else obj.table.name


def is_sqlite_uuid_reflection(diff):
    """Whether a diff is SQLite reflecting UUIDType's BINARY(16) as NUMERIC(16).

    SQLAlchemy's SQLite dialect does not know the BINARY type name and maps it
    to NUMERIC by SQLite's affinity rules, so Alembic reports a type change on
    every UUIDType column, including tables made by ``create_all()``.
    """
    diff = diff[0] if isinstance(diff, list) else diff
    return (
        diff[0] == "modify_type"
        and db.engine.dialect.name == "sqlite"
        and isinstance(diff[-2], sa.NUMERIC)
        and diff[-2].precision == 16
        and isinstance(diff[-1], UUIDType)
    )


def table_diffs(alembic):
    # Only our tables: the other modules' migrations are theirs to check.
    return [
        diff
        for diff in alembic.compare_metadata()
        if diff_table(diff) in TABLES and not is_sqlite_uuid_reflection(diff)
    ]


def test_revision_graph(alembic):
    script = alembic.script_directory
    root, create_table, add_index, crc_cache = (
        script.get_revision(rev) for rev in (ROOT, CREATE_TABLE, ADD_INDEX, CRC_CACHE)
    )
    assert script.get_revision(BRANCH) is root  # the label is on the root
    assert ROOT in script.get_bases()
    entries = script.get_revision(ADD_ENTRIES)
    assert entries.down_revision == ADD_INDEX
    assert script.get_revision(f"{BRANCH}@head") is crc_cache
    assert crc_cache.down_revision == ADD_ENTRIES
    assert root.branch_labels == {BRANCH}
    assert root.down_revision is None
    assert root.dependencies == "dbdbc1b19cf2"
    assert create_table.down_revision == ROOT
    assert set(create_table.dependencies) == {"862037093962", "2e97565eba72"}
    assert add_index.down_revision == CREATE_TABLE
    assert BRANCH in add_index.branch_labels


def test_upgrade_creates_table_and_index(upgraded):
    assert our_revision(upgraded) == CRC_CACHE
    table = describe_table(TABLE)
    # Column types are the dialect's (UUID on PostgreSQL, BINARY on SQLite).
    columns = table.pop("columns")
    assert [(name, nullable) for name, _, nullable in columns] == [
        ("record_id", False),
        ("bucket_id", False),
    ]
    assert table == {
        "primary_key": ["record_id", "bucket_id"],
        "foreign_keys": [
            ("fk_records_buckets_bucket_id_files_bucket", "bucket_id", "files_bucket"),
            (
                "fk_records_buckets_record_id_records_metadata",
                "record_id",
                "records_metadata",
            ),
        ],
        "indexes": [("ix_records_buckets_bucket_id", "bucket_id", False)],
    }


def test_migrated_table_matches_models(upgraded):
    assert table_diffs(upgraded) == []


def test_upgrade_creates_the_entries_table(upgraded):
    table = describe_table(ENTRIES)
    columns = table.pop("columns")
    assert [(name, nullable) for name, _, nullable in columns] == [
        ("id", False),
        ("record_id", False),
        ("key", False),
        ("position", True),
        ("data", False),
    ]
    assert table["primary_key"] == ["id"]
    assert table["foreign_keys"] == [
        (
            "fk_records_files_entries_record_id_records_metadata",
            "record_id",
            "records_metadata",
        )
    ]


@pytest.mark.parametrize("model", [RecordsBuckets, FileEntry, FileCRC32], ids=TABLES)
def test_migrated_table_matches_create_all(upgraded, model):
    name = model.__tablename__
    migrated = describe_table(name)
    upgraded.downgrade(ROOT)
    tables = (RecordsBuckets.__table__, FileEntry.__table__, FileCRC32.__table__)
    for table in tables:
        table.create(db.engine)
    try:
        assert describe_table(name) == migrated
    finally:
        for table in reversed(tables):
            table.drop(db.engine)


def test_upgrade_creates_the_crc_cache(upgraded):
    table = describe_table(CRC_TABLE)
    columns = table.pop("columns")
    assert [(name, nullable) for name, _, nullable in columns] == [
        ("file_id", False),
        ("crc32", False),
        ("size", False),
        ("checksum", True),
    ]
    assert table == {
        "primary_key": ["file_id"],
        "foreign_keys": [
            ("fk_records_files_crc32_file_id_files_files", "file_id", "files_files")
        ],
        "indexes": [],
    }


def test_downgrade_removes_only_the_crc_cache(upgraded):
    upgraded.downgrade(ADD_ENTRIES)
    assert our_revision(upgraded) == ADD_ENTRIES
    assert not sa.inspect(db.engine).has_table(CRC_TABLE)
    assert sa.inspect(db.engine).has_table(ENTRIES)


def test_downgrade_to_root_then_base_and_upgrade_again(upgraded):
    upgraded.downgrade(ADD_INDEX)
    assert not sa.inspect(db.engine).has_table(ENTRIES)
    assert sa.inspect(db.engine).has_table(TABLE)
    upgraded.downgrade(ROOT)
    assert our_revision(upgraded) == ROOT
    assert not sa.inspect(db.engine).has_table(TABLE)
    assert not sa.inspect(db.engine).has_table(CRC_TABLE)

    upgraded.downgrade(f"{BRANCH}@base")
    assert our_revision(upgraded) is None
    # The other branches are untouched.
    assert sa.inspect(db.engine).has_table("files_bucket")

    upgraded.upgrade()
    assert our_revision(upgraded) == CRC_CACHE
    assert sa.inspect(db.engine).has_table(TABLE)
    assert sa.inspect(db.engine).has_table(ENTRIES)
    assert sa.inspect(db.engine).has_table(CRC_TABLE)
    assert table_diffs(upgraded) == []
