# SPDX-License-Identifier: MIT
"""A look inside an uploaded zip: ``?members`` and ``?member=<name>``."""

import io
import json
import random
import struct
import zipfile
from datetime import datetime
from urllib.parse import quote, urlsplit

import pytest
from invenio_files_rest.models import ObjectVersion

from invenio_records_files.zips.layout import Member, StoredZip
from invenio_records_files.zips.reader import ZipMemberError
from invenio_records_files.zips.stream import iter_range

from . import test_archive

reads = test_archive.reads  # a fixture shared with the archive tests

FILE = "/api/records/1/files/{key}"
RNG = random.Random(42)  # noqa: S311 - test data
CONTENTS = {
    "readme.txt": b"Read me.\n" * 50,
    "data/values.csv": b"x,y\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(500)),
    "photo.jpg": RNG.randbytes(2000),
    "unicode/日本.txt": "こんにちは\n".encode() * 20,
    "index.html": b"<script>alert(1)</script>",
    "big.bin": RNG.randbytes(3 * 1024 * 1024),
}
METHODS = {
    "photo.jpg": zipfile.ZIP_STORED,
    "big.bin": zipfile.ZIP_STORED,
    "unicode/日本.txt": zipfile.ZIP_BZIP2,
}


def make_zip(contents=CONTENTS, methods=METHODS, directories=("docs/",)):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for directory in directories:
            archive.writestr(zipfile.ZipInfo(directory, (2020, 1, 2, 3, 4, 6)), b"")
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, (2021, 2, 3, 4, 5, 6))
            info.compress_type = methods.get(name, zipfile.ZIP_DEFLATED)
            archive.writestr(info, data)
    return buffer.getvalue()


def upload(client, key, data):
    response = client.put(
        FILE.format(key=key),
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.data
    return json.loads(response.data)


def path(url):
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def body(response):
    return json.loads(response.data)


def members(client, key="data.zip", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get(
        FILE.format(key=key) + "?members" + (f"&{query}" if query else "")
    )


def member(client, name, key="data.zip", extra=""):
    return client.get(FILE.format(key=key) + f"?member={quote(name)}{extra}")


@pytest.fixture
def data_zip(client, record):
    data = make_zip()
    upload(client, "data.zip", data)
    return data


def error(response, status):
    assert response.status_code == status, response.data
    message = body(response)["message"]
    assert body(response)["status"] == status
    return message


# -- listing -------------------------------------------------------------------


def test_list_members(client, data_zip):
    response = members(client)
    assert response.status_code == 200
    data = body(response)
    expected = zipfile.ZipFile(io.BytesIO(data_zip)).infolist()
    assert data["key"] == "data.zip"
    assert data["total"] == len(expected) == 7
    assert data["page"] == 1
    entries = data["entries"]
    assert [e["key"] for e in entries] == [i.filename for i in expected]
    for entry, info in zip(entries, expected, strict=True):
        assert entry["size"] == info.file_size
        assert entry["compressed_size"] == info.compress_size
        assert entry["crc"] == f"{info.CRC:08x}"
        assert entry["modified"] == datetime(*info.date_time).isoformat()
        assert entry["is_dir"] == info.is_dir()
    assert entries[0]["links"] == {}  # a directory
    by_key = {e["key"]: e for e in entries}
    assert by_key["photo.jpg"]["compression"] == "stored"
    assert by_key["readme.txt"]["compression"] == "deflated"
    assert by_key["unicode/日本.txt"]["compression"] == "bzip2"
    for key, content in CONTENTS.items():
        response = client.get(path(by_key[key]["links"]["self"]))
        assert response.status_code == 200, key
        assert response.data == content
    assert data["links"] == {
        "self": "http://localhost/api/records/1/files/data.zip?page=1&size=1000&members"
    }


def test_pages(app, client, data_zip, monkeypatch):
    monkeypatch.setitem(app.config, "RECORDS_FILES_MEMBERS_PAGE_SIZE", 3)
    response = members(client)
    keys, pages = [], []
    while True:
        data = body(response)
        pages.append(data)
        keys += [entry["key"] for entry in data["entries"]]
        if "next" not in data["links"]:
            break
        response = client.get(path(data["links"]["next"]))
        assert response.status_code == 200
    assert [len(page["entries"]) for page in pages] == [3, 3, 1]
    assert keys == [
        i.filename for i in zipfile.ZipFile(io.BytesIO(data_zip)).infolist()
    ]
    assert "prev" not in pages[0]["links"]
    assert (
        client.get(path(pages[2]["links"]["prev"])).data == members(client, page=2).data
    )
    assert [e["key"] for e in body(members(client, page=2, size=2))["entries"]] == (
        keys[2:4]
    )
    assert body(members(client, page=9))["entries"] == []


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page": "x"}, {"size": 0}, {"size": 1001}]
)
def test_bad_page_arguments(client, data_zip, params):
    assert "must be a number" in error(members(client, **params), 400)


def test_default_page_size_is_1000(client, record):
    upload(client, "many.zip", make_zip({f"f{i}": b"" for i in range(1001)}, {}, ()))
    first = body(members(client, key="many.zip"))
    assert first["total"] == 1001
    assert len(first["entries"]) == 1000
    second = body(client.get(path(first["links"]["next"])))
    assert [e["key"] for e in second["entries"]] == ["f1000"]
    assert "next" not in second["links"]


def test_zip64_end_records_and_prepended_data(client, record):
    layout = StoredZip(
        [Member(f"n{i}", 1, datetime(2024, 1, 1)) for i in range(65_536)]
    )

    class Source:
        def open(self, index):
            return io.BytesIO(b"1")

        def known_crc(self, index):
            return None

        def crc(self, index):
            raise AssertionError("streamed whole")

        def computed(self, index, crc):
            pass

    data = b"#!/bin/sh\nexit 0\n" + b"".join(iter_range(layout, Source()))
    upload(client, "many.zip", data)
    listing = body(members(client, key="many.zip", page=66))
    assert listing["total"] == 65_536
    assert [e["key"] for e in listing["entries"]][-1] == "n65535"
    assert len(listing["entries"]) == 536
    assert member(client, "n65535", key="many.zip").data == b"1"


# -- one member ----------------------------------------------------------------


def test_member_download_has_safe_headers(client, data_zip):
    response = member(client, "readme.txt")
    assert response.status_code == 200
    assert response.data == CONTENTS["readme.txt"]
    headers = response.headers
    assert headers["Content-Length"] == str(len(CONTENTS["readme.txt"]))
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["Content-Disposition"] == "inline"
    assert headers["Content-Security-Policy"] == "default-src 'none';"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["ETag"].startswith('"member-')
    assert headers["Last-Modified"] == "Wed, 03 Feb 2021 04:05:06 GMT"
    html = member(client, "index.html")
    assert html.data == CONTENTS["index.html"]
    assert html.headers["Content-Type"].startswith("text/plain")  # never text/html
    download = member(client, "data/values.csv", extra="&download")
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=values.csv"
    )
    assert download.data == CONTENTS["data/values.csv"]


def test_member_conditional_and_head(client, data_zip):
    etag = member(client, "photo.jpg").headers["ETag"]
    response = client.get(
        FILE.format(key="data.zip") + "?member=photo.jpg",
        headers={"If-None-Match": etag},
    )
    assert response.status_code == 304
    head = client.head(FILE.format(key="data.zip") + "?member=photo.jpg")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "2000"


def test_every_compression_method(client, data_zip):
    for name, content in CONTENTS.items():
        assert member(client, name).data == content, name


def test_missing_member(client, data_zip):
    assert "no such member" in error(member(client, "nope.txt"), 404)


def test_directory_member(client, data_zip):
    assert "directory" in error(member(client, "docs/"), 400)


def test_missing_file(client, record):
    assert members(client, key="nope.zip").status_code == 404
    assert member(client, "a", key="nope.zip").status_code == 404


@pytest.mark.parametrize("data", [b"just text, not a zip", b"PK", b"PK\x05\x06"])
def test_not_a_zip(client, record, data):
    upload(client, "data.zip", data)
    assert "not a readable zip" in error(members(client), 400)
    assert "not a readable zip" in error(member(client, "a"), 400)


def test_member_larger_than_the_limit(app, client, data_zip, monkeypatch):
    monkeypatch.setitem(app.config, "RECORDS_FILES_MEMBER_MAX_SIZE", 100)
    assert "the limit is 100" in error(member(client, "readme.txt"), 413)
    assert member(client, "index.html").status_code == 200


def test_zip_bomb_is_refused(app, client, record, monkeypatch):
    bomb = make_zip({"bomb.bin": bytes(20 * 1024 * 1024)}, {}, ())
    assert len(bomb) < 100 * 1024
    upload(client, "bomb.zip", bomb)
    response = member(client, "bomb.bin", key="bomb.zip")
    assert "compressed 1" in error(response, 413)
    monkeypatch.setitem(app.config, "RECORDS_FILES_MEMBER_MAX_RATIO", 10_000)
    response = member(client, "bomb.bin", key="bomb.zip")
    assert response.status_code == 200
    assert response.data == bytes(20 * 1024 * 1024)


def patched(data, name, **fields):
    """Change fields of ``name``'s central directory entry and local header."""
    data = bytearray(data)
    offsets = {"crc": (16, 14), "size": (24, 22), "flags": (8, 6), "method": (10, 8)}
    formats = {"crc": "<I", "size": "<I", "flags": "<H", "method": "<H"}
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(name)
    central = data.index(b"PK\x01\x02" + data[info.header_offset + 4 : 0][:0])
    encoded = name.encode()
    while data[central + 46 : central + 46 + len(encoded)] != encoded:
        central = data.index(b"PK\x01\x02", central + 4)
    for field, value in fields.items():
        central_offset, local_offset = offsets[field]
        struct.pack_into(formats[field], data, central + central_offset, value)
        struct.pack_into(formats[field], data, info.header_offset + local_offset, value)
    return bytes(data)


def test_member_longer_than_declared_is_cut_at_the_declared_size(client, record, reads):
    zip_ = patched(make_zip({"a.bin": bytes(1024 * 1024)}, {}, ()), "a.bin", size=5)
    upload(client, "lie.zip", zip_)
    reads.clear()
    assert "longer than its declared size" in error(
        member(client, "a.bin", key="lie.zip"), 400
    )
    assert sum(reads.values()) < 2 * len(zip_)


def test_member_with_a_wrong_crc(client, record):
    zip_ = patched(make_zip({"a.txt": b"hello"}, {}, ()), "a.txt", crc=1234)
    upload(client, "crc.zip", zip_)
    assert "CRC-32" in error(member(client, "a.txt", key="crc.zip"), 400)


def test_a_damaged_large_member_never_downloads_whole(app, client, record, monkeypatch):
    monkeypatch.setitem(app.config, "RECORDS_FILES_DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    data = CONTENTS["big.bin"]
    zip_ = patched(make_zip({"big.bin": data}, {}, ()), "big.bin", crc=1234)
    upload(client, "crc.zip", zip_)
    response = client.get(
        FILE.format(key="crc.zip") + "?member=big.bin", buffered=False
    )
    assert response.status_code == 200
    chunks = []
    with pytest.raises(ZipMemberError, match="CRC-32"):
        chunks.extend(response.response)
    received = b"".join(chunks)
    assert received == data[: len(received)]
    assert len(received) < len(data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"flags": 1}, "Encrypted"), ({"method": 14}, "'lzma' is not supported")],
)
def test_unsupported_members(client, record, fields, message):
    upload(client, "odd.zip", patched(make_zip({"a": b"a"}, {}, ()), "a", **fields))
    assert message in error(member(client, "a", key="odd.zip"), 400)


# -- what is read ----------------------------------------------------------------


def test_only_the_central_directory_and_one_member_are_read(client, data_zip, reads):
    uri = ObjectVersion.query.filter_by(key="data.zip").one().file.uri
    archive = zipfile.ZipFile(io.BytesIO(data_zip))
    central = len(data_zip) - archive.start_dir
    tail = 22 + 0xFFFF

    reads.clear()
    assert members(client).status_code == 200
    assert reads[uri] <= tail + central
    assert reads[uri] < len(data_zip) / 20

    reads.clear()
    assert member(client, "readme.txt").status_code == 200
    info = archive.getinfo("readme.txt")
    local = 30 + len(info.filename) + len(info.extra)
    assert reads[uri] <= tail + central + local + info.compress_size
    assert reads[uri] < len(data_zip) / 20


# -- permissions and versions --------------------------------------------------


def test_object_read_permission(client, data_zip, permissions):
    permissions.add("object-read")
    assert members(client).status_code == 404
    assert member(client, "readme.txt").status_code == 404


def test_an_older_version(client, record):
    first = upload(client, "v.zip", make_zip({"one.txt": b"1"}, {}, ()))
    upload(client, "v.zip", make_zip({"two.txt": b"2"}, {}, ()))
    version = first["version_id"]
    listing = body(members(client, key="v.zip", versionId=version))
    assert [e["key"] for e in listing["entries"]] == ["one.txt"]
    link = listing["entries"][0]["links"]["self"]
    assert f"versionId={version}" in link
    assert client.get(path(link)).data == b"1"
    assert [e["key"] for e in body(members(client, key="v.zip"))["entries"]] == [
        "two.txt"
    ]
    assert "Invalid versionId" in error(
        members(client, key="v.zip", versionId="x"), 400
    )


def test_a_delete_marker(client, data_zip):
    assert client.delete(FILE.format(key="data.zip")).status_code == 204
    marker = ObjectVersion.query.filter_by(key="data.zip", is_head=True).one()
    response = members(client, versionId=marker.version_id)
    assert response.status_code == 404


def test_a_plain_download_is_unchanged(client, data_zip):
    response = client.get(FILE.format(key="data.zip"))
    assert response.status_code == 200
    assert response.data == data_zip


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("a\r\nSet-Cookie: x=1.bin", "a__Set-Cookie: x=1.bin"),
        ("dir/line\nbreak.txt", "line_break.txt"),
        ("bell\x07\x1f\x7f.csv", "bell___.csv"),
        ("sep\u2028.bin", "sep_.bin"),
        ("\r\n", "__"),
    ],
)
def test_member_names_with_control_characters(client, record, name, filename):
    upload(client, "data.zip", make_zip({name: b"payload"}, directories=()))
    inline = member(client, name)
    assert inline.status_code == 200, inline.data
    assert inline.data == b"payload"
    download = member(client, name, extra="&download")
    assert download.status_code == 200, download.data
    assert download.data == b"payload"
    for response in (inline, download):
        disposition = response.headers["Content-Disposition"]
        assert not any(c in disposition for c in "\r\n\x00\x07\x1f\x7f\u2028")
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename={filename}"
        if " " not in filename
        else f'attachment; filename="{filename}"'
    )
