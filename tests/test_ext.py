# SPDX-License-Identifier: MIT
"""Extension, configuration, entry points, JSON schema and package exports."""

import json
import re
from importlib import import_module
from importlib.metadata import entry_points
from importlib.resources import files
from io import BytesIO

import pytest
from flask import Flask
from jsonschema import Draft4Validator

import invenio_records_files
from invenio_records_files import InvenioRecordsFiles, config
from invenio_records_files.api import Record

SCHEMA_PATH = ("records-files", "records-files-v1.0.0.json")


def init_in_constructor(app):
    return InvenioRecordsFiles(app)


def init_with_init_app(app):
    ext = InvenioRecordsFiles()
    ext.init_app(app)
    return ext


@pytest.fixture(params=[init_in_constructor, init_with_init_app])
def make_app(request):
    def make_app(**config):
        app = Flask("testapp")
        app.config.update(config)
        request.param(app)
        return app

    return make_app


@pytest.fixture
def schema():
    path = files("invenio_records_files.jsonschemas").joinpath(*SCHEMA_PATH)
    return json.loads(path.read_text())


# -- extension and configuration -----------------------------------------------


def test_extension_is_registered(make_app):
    app = make_app()
    assert isinstance(app.extensions["invenio-records-files"], InvenioRecordsFiles)


def test_extension_registered_on_the_test_app(app):
    assert isinstance(app.extensions["invenio-records-files"], InvenioRecordsFiles)


def test_rest_endpoints_default_to_empty(make_app):
    assert make_app().config["RECORDS_FILES_REST_ENDPOINTS"] == {}


def test_rest_endpoints_default_is_a_copy_per_app(make_app):
    first, second = make_app(), make_app()
    first.config["RECORDS_FILES_REST_ENDPOINTS"]["recid"] = "/files"
    assert second.config["RECORDS_FILES_REST_ENDPOINTS"] == {}
    assert config.RECORDS_FILES_REST_ENDPOINTS == {}
    assert (
        first.config["RECORDS_FILES_REST_ENDPOINTS"]
        is not config.RECORDS_FILES_REST_ENDPOINTS
    )


def test_rest_endpoints_from_the_app_are_kept(make_app):
    endpoints = {"RECORDS_REST_ENDPOINTS": {"recid": "/files"}}
    app = make_app(RECORDS_FILES_REST_ENDPOINTS=endpoints)
    assert app.config["RECORDS_FILES_REST_ENDPOINTS"] is endpoints
    assert endpoints == {"RECORDS_REST_ENDPOINTS": {"recid": "/files"}}


# -- entry points --------------------------------------------------------------


def our_entry_point(group):
    (entry_point,) = entry_points(group=group, name="invenio_records_files")
    assert entry_point.dist.name == "invenio-records-files"
    return entry_point


@pytest.mark.parametrize(
    ("group", "target"),
    [
        ("invenio_base.apps", InvenioRecordsFiles),
        ("invenio_base.api_apps", InvenioRecordsFiles),
        ("invenio_db.models", import_module("invenio_records_files.models")),
        (
            "invenio_jsonschemas.schemas",
            import_module("invenio_records_files.jsonschemas"),
        ),
    ],
)
def test_entry_point_loads(group, target):
    assert our_entry_point(group).load() is target


def test_alembic_entry_point_names_the_migrations_directory():
    # invenio-db does not load this entry point: it resolves
    # files(module) / attr to the directory of revision files.
    entry_point = our_entry_point("invenio_db.alembic")
    directory = files(entry_point.module) / entry_point.attr
    assert directory.is_dir()
    revision_files = [
        path.name
        for path in directory.iterdir()
        if re.fullmatch(r"[0-9a-f]{12}_\w+\.py", path.name)
    ]
    assert {name[:12] for name in revision_files} == {
        "2da9a03b0833",
        "1ba76da94103",
        "4a5d5b4d4c2f",
        "8f3a6c1d2e4b",
        "7c3e91a4d2b6",
    }


def test_alembic_entry_point_is_in_invenio_db_config(app):
    locations = dict(
        item
        for item in app.config["ALEMBIC"]["version_locations"]
        if not isinstance(item, str)
    )
    entry_point = our_entry_point("invenio_db.alembic")
    assert locations["invenio_records_files"] == str(
        files(entry_point.module) / entry_point.attr
    )


# -- JSON schema ---------------------------------------------------------------


def test_schema_is_valid_draft4(schema):
    Draft4Validator.check_schema(schema)


def test_schema_validates_a_record_with_files(schema, db, location):
    record = Record.create({"title": "A record"})
    record.files["a.txt"] = BytesIO(b"a")
    record.files["a.txt"]["type"] = "txt"  # custom per-file metadata
    record.commit()
    data = dict(record)
    assert data["_bucket"] == str(record.bucket.id)
    assert [f["key"] for f in data["_files"]] == ["a.txt"]
    Draft4Validator(schema).validate(data)


@pytest.mark.parametrize(
    ("data", "path", "validator"),
    [
        ({"_bucket": 5}, ["_bucket"], "type"),
        ({"_files": [{"size": 1}]}, ["_files", 0], "required"),
    ],
    ids=["bucket-not-a-string", "file-without-key"],
)
def test_schema_rejects(schema, data, path, validator):
    (error,) = Draft4Validator(schema).iter_errors(data)
    assert list(error.path) == path
    assert error.validator == validator


# -- package exports -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("Record", "api"),
        ("FilesIterator", "api"),
        ("FileObject", "api"),
        ("FilesMixin", "api"),
        ("RecordsBuckets", "models"),
        ("KeyExistsError", "errors"),
    ],
)
def test_lazy_export(name, module):
    exported = getattr(invenio_records_files, name)
    assert exported is getattr(import_module(f"invenio_records_files.{module}"), name)
    assert name in invenio_records_files.__all__


def test_from_import_of_the_exports():
    from invenio_records_files import (
        FileObject,
        FilesIterator,
        FilesMixin,
        KeyExistsError,
        Record,
        RecordsBuckets,
        api,
        errors,
        models,
    )

    assert (Record, FilesIterator, FileObject, FilesMixin) == (
        api.Record,
        api.FilesIterator,
        api.FileObject,
        api.FilesMixin,
    )
    assert RecordsBuckets is models.RecordsBuckets
    assert KeyExistsError is errors.KeyExistsError


def test_every_name_in_all_is_importable():
    for name in invenio_records_files.__all__:
        assert getattr(invenio_records_files, name) is not None


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        invenio_records_files.NoSuchThing
