# SPDX-License-Identifier: MIT
"""SQL statements per operation do not grow with the number of files.

Budgets from the issue, for a record loaded afresh; ``benchmarks/bench_api.py``
prints the same counts (and timings) for 10 to 3,000 files.
"""

from io import BytesIO

import pytest

from invenio_records_files.api import Record

from .helpers import create_record


def last_key(n):
    return f"file-{n - 1:03d}.txt"


def metadata_and_flush(record, key):
    files = record.files
    files[key]["description"] = "updated"
    files.flush()


OPERATIONS = {
    "add": (20, lambda r, k: r.files.__setitem__("new.txt", BytesIO(b"new"))),
    "new-version": (20, lambda r, k: r.files.__setitem__(k, BytesIO(b"v2"))),
    "dumps": (3, lambda r, k: r.files.dumps()),
    "iterate": (3, lambda r, k: [f["size"] for f in r.files]),
    "len": (3, lambda r, k: len(r.files)),
    "in": (3, lambda r, k: k in r.files),
    "getitem": (3, lambda r, k: r.files[k]["checksum"]),
    "keys": (3, lambda r, k: r.files.keys),
    "sort_by": (6, lambda r, k: r.files.sort_by(k)),
    "rename": (30, lambda r, k: r.files.rename(k, "renamed.txt")),
    "delete": (25, lambda r, k: r.files.__delitem__(k)),
    "metadata-flush": (20, metadata_and_flush),
}


def commit_budget(db) -> int:
    """Statements a record's commit may cost (Invenio-Records' own cost).

    On MariaDB, one more: SQLAlchemy takes the id of SQLAlchemy-Continuum's
    ``transaction`` row from its sequence in a statement of its own
    (``SELECT nextval(transaction_id_seq)``), where PostgreSQL calls
    ``nextval()`` inside the ``INSERT``. Invenio-Records pays it too.
    """
    return 9 + (db.engine.dialect.name == "mysql")


def record_with(n, db):
    record = Record.create({})
    record.files = {f"file-{i:03d}.txt": BytesIO(b"%d" % i) for i in range(n)}
    record.commit()
    record_id = record.id
    db.session.commit()
    db.session.expunge_all()
    return Record.get_record(record_id)


def count(statements, db, n, operation):
    record = record_with(n, db)
    with statements.count():
        operation(record, last_key(n))
    return statements.total


@pytest.mark.parametrize("name", OPERATIONS)
def test_statements_are_constant_and_within_budget(db, location, statements, name):
    budget, operation = OPERATIONS[name]
    few = count(statements, db, 2, operation)
    many = count(statements, db, 40, operation)
    assert many == few
    assert many <= budget


def rest_upload_statements(app, db, statements, n):
    from invenio_pidstore.models import PersistentIdentifier, PIDStatus

    record = record_with(n, db)
    record_id = record.id
    pid_value = f"s{n}"
    PersistentIdentifier.create(
        "recid",
        pid_value,
        object_type="rec",
        object_uuid=record_id,
        status=PIDStatus.REGISTERED,
    )
    db.session.commit()
    db.session.expunge_all()
    with app.test_client() as client, statements.count():
        response = client.put(f"/api/records/{pid_value}/files/new.txt", data=b"new")
    assert response.status_code == 200
    stored = Record.get_record(record_id)
    assert stored["_files"][-1]["key"] == "new.txt"
    assert len(stored["_files"]) == n + 1
    return statements.total


def test_rest_upload_does_not_grow_with_the_number_of_files(
    app, db, location, statements
):
    empty = rest_upload_statements(app, db, statements, 0)
    many = rest_upload_statements(app, db, statements, 40)
    assert abs(many - empty) <= 10


# -- creating and committing records: no more than the dependencies ------------


def plain_create(with_bucket):
    """The statements a record with files can't avoid: those of its parts."""
    from invenio_files_rest.models import Bucket
    from invenio_records.api import Record as PlainRecord

    from invenio_records_files.models import RecordsBuckets

    data = {"title": "x"}
    bucket = Bucket.create() if with_bucket else None
    if bucket is not None:
        data["_bucket"] = str(bucket.id)
    record = PlainRecord.create(data)
    if bucket is not None:
        db_add(RecordsBuckets(record=record.model, bucket=bucket))


def db_add(obj):
    from invenio_db import db

    db.session.add(obj)


def create_and_commit(statements, db, create):
    Record.create({"title": "warm-up"})
    db.session.commit()
    with statements.count():
        create()
        db.session.commit()
    return statements.total


@pytest.mark.parametrize("with_bucket", [True, False], ids=["bucket", "no-bucket"])
def test_create_costs_what_its_parts_cost(db, location, statements, with_bucket):
    ours = create_and_commit(
        statements, db, lambda: Record.create({"title": "x"}, with_bucket=with_bucket)
    )
    parts = create_and_commit(statements, db, lambda: plain_create(with_bucket))
    assert ours == parts


def test_commit_without_file_changes_costs_what_invenio_records_costs(
    db, location, statements
):
    from invenio_records.api import Record as PlainRecord

    counts = []
    for record_class in (Record, PlainRecord):
        record_id = record_class.create({"title": "x"}).id
        db.session.commit()
        db.session.expunge_all()
        record = record_class.get_record(record_id)
        record["title"] = "y"
        with statements.count():
            record.commit()
            db.session.commit()
        counts.append(statements.total)
    assert counts[0] == counts[1] <= commit_budget(db)


def test_commit_of_a_record_with_files_does_not_grow(db, location, statements):
    counts = []
    for n in (2, 40):
        record = record_with(n, db)
        record["title"] = "changed"
        with statements.count():
            record.commit()
            db.session.commit()
        counts.append(statements.total)
    assert counts[0] == counts[1] <= commit_budget(db)


def test_get_record_is_two_queries(db, location, statements):
    counts = []
    for n in (2, 40):
        record_id = record_with(n, db).id
        db.session.expunge_all()
        with statements.count():
            record = Record.get_record(record_id)
        assert len(record["_files"]) == n
        counts.append(len([s for s in statements.statements if s != "BEGIN"]))
    assert counts == [2, 2]


# -- REST writes to records with many files (issue: 10,000+ files) --------------


def record_with_many(n, db, pid_value):
    files = {f"file-{i:05d}.txt": BytesIO(b"%d" % i) for i in range(n)}
    create_record(pid_value, {"title": f"{n} files"}, files=files)


# -- copying a record's files (new versions) ------------------------------------


def record_with_bulk(n, db):
    record = Record.create({})
    record.files = {f"file-{i:04d}.txt": BytesIO(b"%d" % i) for i in range(n)}
    record.commit()
    db.session.commit()
    return record.id


REST_WRITES = {
    "upload": ("put", "new.txt", b"new"),
    "new-version": ("put", "file-00000.txt", b"v2"),
    "delete": ("delete", "file-00001.txt", None),
}


def test_rest_writes_cost_the_same_at_10_and_1000_files(app, db, location, statements):
    counts = {}
    for n in (10, 1000):
        record_with_many(n, db, f"many{n}")
        for name, (method, key, data) in REST_WRITES.items():
            db.session.expunge_all()
            with app.test_client() as client, statements.count():
                response = getattr(client, method)(
                    f"/api/records/many{n}/files/{key}", data=data
                )
            assert response.status_code in (200, 204), response.data
            counts[name, n] = statements.total
    for name in REST_WRITES:
        assert counts[name, 10] == counts[name, 1000], name


def database_size(db):
    from sqlalchemy import text

    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return connection.execute(
            text("SELECT pg_database_size(current_database())")
        ).scalar()
    pages = connection.execute(text("PRAGMA page_count")).scalar()
    return pages * connection.execute(text("PRAGMA page_size")).scalar()


def test_database_grows_by_at_most_16_kib_per_upload(app, db, location):
    if db.engine.dialect.name == "mysql":
        pytest.skip(
            "MariaDB reports table sizes as estimates (information_schema), "
            "refreshed by ANALYZE TABLE, which would commit the test's "
            "transaction: measured on PostgreSQL and SQLite"
        )
    record_with_many(1000, db, "growth")
    uploads = 50
    with app.test_client() as client:
        client.put("/api/records/growth/files/warm-up.txt", data=b"12345")
        before = database_size(db)
        for i in range(uploads):
            response = client.put(f"/api/records/growth/files/g-{i}.txt", data=b"12345")
            assert response.status_code == 200
    growth = (database_size(db) - before) / uploads
    assert growth <= 16 * 1024, growth


def copy_statements(statements, db, n):
    from invenio_files_rest.models import ObjectVersionTag

    source_id = record_with_bulk(n, db)
    for fileobj in Record.get_record(source_id).files:  # tags cost one insert
        ObjectVersionTag.create(fileobj.obj, "color", "red")
    target_id = Record.create({}).id
    db.session.commit()
    db.session.expunge_all()
    source = Record.get_record(source_id)
    target = Record.get_record(target_id)
    with statements.count():
        created = target.files.copy_from(source.files)
    assert len(created) == n
    assert all(obj.tags[0].value == "red" for obj in created)
    return statements.total


def test_copy_from_is_constant_and_within_budget(db, location, statements):
    one = copy_statements(statements, db, 1)
    many = copy_statements(statements, db, 300)
    assert many <= 15
    assert many - one <= 2


def rest_import_statements(app, db, statements, n):
    from invenio_pidstore.models import PersistentIdentifier, PIDStatus

    pids = []
    for record_id in (record_with_bulk(n, db), Record.create({}).id):
        pids.append(f"i{n}-{len(pids)}")
        PersistentIdentifier.create(
            "recid",
            pids[-1],
            object_type="rec",
            object_uuid=record_id,
            status=PIDStatus.REGISTERED,
        )
    db.session.commit()
    db.session.expunge_all()
    source, target = pids
    with app.test_client() as client, statements.count():
        response = client.post(f"/api/records/{target}/files?import={source}")
    assert response.status_code == 200
    assert len(response.json["contents"]) == n
    return statements.total


def test_rest_import_does_not_grow_with_the_number_of_files(
    app, db, location, statements
):
    few = rest_import_statements(app, db, statements, 2)
    many = rest_import_statements(app, db, statements, 40)
    assert many == few
