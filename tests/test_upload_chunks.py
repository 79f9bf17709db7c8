# SPDX-License-Identifier: MIT
"""Uploads read their stream ``RECORDS_FILES_UPLOAD_CHUNK_SIZE`` bytes at a time."""

import io
import os

import pytest
from invenio_files_rest.models import ObjectVersion

KIB = 1024


class RecordingStream(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.sizes = []

    def read(self, size=-1):
        self.sizes.append(size)
        return super().read(size)


def stored_bytes(record, key):
    with ObjectVersion.get(record.bucket, key).file.storage().open("rb") as fp:
        return fp.read()


def test_default_is_one_mib(app):
    assert app.config["RECORDS_FILES_UPLOAD_CHUNK_SIZE"] == 1024 * KIB


@pytest.mark.parametrize("size", [64 * KIB, 1024 * KIB])
def test_python_api_reads_in_chunks(app, record, monkeypatch, size):
    monkeypatch.setitem(app.config, "RECORDS_FILES_UPLOAD_CHUNK_SIZE", size)
    data = os.urandom(3 * size + 5)
    stream = RecordingStream(data)
    record.files["data.bin"] = stream
    record.commit()
    assert set(stream.sizes) == {size}
    assert len(stream.sizes) == 5  # 3 full chunks, the rest, the end
    assert stored_bytes(record, "data.bin") == data


def test_rest_upload_stores_the_bytes(client, record, app, monkeypatch):
    monkeypatch.setitem(app.config, "RECORDS_FILES_UPLOAD_CHUNK_SIZE", 64 * KIB)
    data = os.urandom(200 * KIB + 3)
    response = client.put(
        "/api/records/1/files/data.bin",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200
    assert response.json["size"] == len(data)
    assert stored_bytes(record, "data.bin") == data
