# SPDX-License-Identifier: MIT
"""The records_buckets table: its schema, create() and relationships."""

import uuid

import pytest
import sqlalchemy as sa
from invenio_files_rest.models import Bucket
from invenio_records.api import Record as PlainRecord
from invenio_records.models import RecordMetadata
from sqlalchemy.exc import IntegrityError

from invenio_records_files.models import RecordsBuckets

TABLE = RecordsBuckets.__table__


@pytest.fixture
def record(db):
    return PlainRecord.create({"title": "A record"})


@pytest.fixture
def bucket(db, location):
    return Bucket.create()


@pytest.fixture
def link(db, record, bucket):
    link = RecordsBuckets.create(record, bucket)
    db.session.commit()
    return link


@pytest.fixture
def inspector(db):
    return sa.inspect(db.session.connection())


# -- schema in the metadata ---------------------------------------------------


def test_table_name():
    assert RecordsBuckets.__tablename__ == "records_buckets"
    assert TABLE.name == "records_buckets"


def test_metadata_primary_key_is_record_and_bucket():
    assert [c.name for c in TABLE.primary_key.columns] == ["record_id", "bucket_id"]
    assert all(not c.nullable for c in TABLE.primary_key.columns)


def test_metadata_foreign_keys():
    assert {(fk.parent.name, fk.target_fullname) for fk in TABLE.foreign_keys} == {
        ("record_id", "records_metadata.id"),
        ("bucket_id", "files_bucket.id"),
    }


def test_metadata_index_on_bucket_id():
    assert [(ix.name, [c.name for c in ix.columns]) for ix in TABLE.indexes] == [
        ("ix_records_buckets_bucket_id", ["bucket_id"])
    ]


# -- schema in the database ---------------------------------------------------


def test_database_primary_key(inspector):
    assert inspector.get_pk_constraint("records_buckets")["constrained_columns"] == [
        "record_id",
        "bucket_id",
    ]


def test_database_foreign_keys(inspector):
    fks = inspector.get_foreign_keys("records_buckets")
    assert sorted(
        (
            fk["name"],
            fk["constrained_columns"],
            fk["referred_table"],
            fk["referred_columns"],
        )
        for fk in fks
    ) == [
        (
            "fk_records_buckets_bucket_id_files_bucket",
            ["bucket_id"],
            "files_bucket",
            ["id"],
        ),
        (
            "fk_records_buckets_record_id_records_metadata",
            ["record_id"],
            "records_metadata",
            ["id"],
        ),
    ]


def test_database_index_on_bucket_id(inspector):
    indexes = inspector.get_indexes("records_buckets")
    assert [(ix["name"], ix["column_names"], ix["unique"]) for ix in indexes] == [
        ("ix_records_buckets_bucket_id", ["bucket_id"], False)
    ]


# -- create() ------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_argument",
    [lambda record: record, lambda record: record.model],
    ids=["record-api-object", "record-metadata"],
)
def test_create_links_record_and_bucket(db, record, bucket, as_argument):
    link = RecordsBuckets.create(as_argument(record), bucket)
    assert isinstance(link, RecordsBuckets)
    assert link in db.session
    assert link.record is record.model
    assert link.bucket is bucket
    db.session.flush()
    assert db.session.get(RecordsBuckets, (record.id, bucket.id)) is link
    assert (link.record_id, link.bucket_id) == (record.id, bucket.id)


def test_create_does_not_commit(db, record, bucket):
    db.session.commit()
    RecordsBuckets.create(record, bucket)
    db.session.rollback()
    assert RecordsBuckets.query.count() == 0
    # What was committed before create() is still there.
    assert db.session.get(RecordMetadata, record.id) is not None
    assert db.session.get(Bucket, bucket.id) is not None


def test_create_inside_caller_savepoint_is_rolled_back_with_it(db, record, bucket):
    db.session.commit()
    savepoint = db.session.begin_nested()
    RecordsBuckets.create(record, bucket)
    savepoint.rollback()
    assert RecordsBuckets.query.count() == 0


def test_a_record_can_have_several_buckets(db, record, location):
    buckets = [Bucket.create(), Bucket.create()]
    for bucket in buckets:
        RecordsBuckets.create(record, bucket)
    db.session.commit()
    rows = RecordsBuckets.query.filter_by(record_id=record.id).all()
    assert {row.bucket_id for row in rows} == {b.id for b in buckets}


# -- relationships -------------------------------------------------------------


def test_relationships_load_the_linked_rows(db, location):
    expected = {}
    for n in range(2):
        record, bucket = PlainRecord.create({"n": n}), Bucket.create()
        RecordsBuckets.create(record, bucket)
        expected[record.id] = (bucket.id, {"n": n})
    db.session.commit()
    db.session.expunge_all()
    for record_id, (bucket_id, json) in expected.items():
        link = RecordsBuckets.query.filter_by(record_id=record_id).one()
        assert isinstance(link.record, RecordMetadata)
        assert (link.record.id, link.record.json) == (record_id, json)
        assert isinstance(link.bucket, Bucket)
        assert link.bucket.id == bucket_id


# -- foreign keys are enforced (PostgreSQL, MariaDB) ------------------------------


@pytest.mark.parametrize("missing", ["record", "bucket"])
def test_link_to_missing_row_is_refused(
    db, foreign_keys_enforced, record, bucket, missing
):
    db.session.commit()
    ids = {"record_id": record.id, "bucket_id": bucket.id}
    ids[f"{missing}_id"] = uuid.uuid4()
    with pytest.raises(IntegrityError) as excinfo, db.session.begin_nested():
        db.session.add(RecordsBuckets(**ids))
    assert f"fk_records_buckets_{missing}_id" in str(excinfo.value)
    assert RecordsBuckets.query.count() == 0


@pytest.mark.parametrize(
    ("model", "key"),
    [(Bucket, "bucket_id"), (RecordMetadata, "record_id")],
    ids=["bucket", "record"],
)
def test_deleting_a_linked_row_is_refused(db, foreign_keys_enforced, link, model, key):
    with pytest.raises(IntegrityError) as excinfo, db.session.begin_nested():
        db.session.execute(sa.delete(model).where(model.id == getattr(link, key)))
    assert f"fk_records_buckets_{key}" in str(excinfo.value)
    db.session.expire_all()
    assert db.session.get(RecordsBuckets, (link.record_id, link.bucket_id))
    assert db.session.get(model, getattr(link, key)) is not None
