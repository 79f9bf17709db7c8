# SPDX-License-Identifier: MIT
"""The zip archive of a record's files: ``GET /api/records/<pid>/files-archive``."""

import io
import itertools
import json
import zipfile
import zlib
from datetime import UTC, datetime
from io import BytesIO

import pytest
from invenio_files_rest.models import FileInstance, ObjectVersion
from invenio_pidstore.models import PersistentIdentifier

from invenio_records_files.models import FileCRC32
from invenio_records_files.rest.archive import RecordArchive

from . import helpers
from .helpers import create_record, unzip_test

ARCHIVE = "/api/records/{pid}/files-archive"


def upload(client, key, data, pid="1"):
    response = helpers.upload(client, key, data, pid=pid)
    assert response.status_code == 200, response.data
    return response


def get_archive(client, pid="1", **headers):
    return client.get(ARCHIVE.format(pid=pid), headers=headers)


def check_zip(data, expected):
    """The zip is valid, has exactly ``expected`` (name -> bytes) in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == list(expected)
        for name, content in expected.items():
            info = archive.getinfo(name)
            assert info.compress_type == zipfile.ZIP_STORED
            assert archive.read(name) == content
    return data


@pytest.fixture
def three_files(client, record):
    files = {"b.txt": b"bee\n", "a/data.csv": b"x,y\n1,2\n" * 1000, "z.bin": bytes(300)}
    for key, data in files.items():
        upload(client, key, data)
    return files


@pytest.fixture
def reads(monkeypatch):
    """Bytes read through the storage API, per file instance uri."""
    counts = {}
    original = FileInstance.storage

    class Counting(io.RawIOBase):
        def __init__(self, fp, uri):
            self.fp, self.uri = fp, uri

        def readable(self):
            return True

        def seekable(self):
            return True

        def seek(self, offset, whence=0):
            return self.fp.seek(offset, whence)

        def tell(self):
            return self.fp.tell()

        def read(self, size=-1):
            data = self.fp.read(size)
            counts[self.uri] = counts.get(self.uri, 0) + len(data)
            return data

        def readinto(self, buffer):
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)

        def close(self):
            self.fp.close()
            super().close()

    def storage(self, **kwargs):
        backend = original(self, **kwargs)
        uri, open_ = self.uri, backend.open
        backend.open = lambda mode="rb": (
            Counting(open_(mode), uri) if mode.startswith("r") else open_(mode)
        )
        return backend

    monkeypatch.setattr(FileInstance, "storage", storage)
    return counts


# -- the archive ---------------------------------------------------------------


def test_archive_has_the_files_in_record_order(client, record, three_files):
    response = get_archive(client)
    assert response.status_code == 200
    check_zip(response.data, three_files)
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=record-1-files.zip"
    )
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"].startswith('"zip-')


def test_archive_follows_the_record_order(client, record, three_files, db):
    record = record.get_record(record.id)
    record.files.sort_by("z.bin", "b.txt")
    record.commit()
    db.session.commit()
    names = zipfile.ZipFile(io.BytesIO(get_archive(client).data)).namelist()
    assert names == ["z.bin", "b.txt", "a/data.csv"]


def test_entry_timestamps_are_the_objects_updated(client, record, three_files):
    data = get_archive(client).data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for key in three_files:
            updated = ObjectVersion.get(record.bucket, key).updated
            updated = updated.astimezone(UTC).replace(tzinfo=None)
            expected = updated.replace(second=updated.second // 2 * 2, microsecond=0)
            assert datetime(*archive.getinfo(key).date_time) == expected


def test_unzip_accepts_the_archive(client, record, three_files, tmp_path):
    path = tmp_path / "archive.zip"
    path.write_bytes(get_archive(client).data)
    output = unzip_test(path)
    for key in three_files:
        assert f"testing: {key} " in output


def test_only_current_files(client, record):
    upload(client, "a.txt", b"first")
    upload(client, "a.txt", b"second")
    upload(client, "gone.txt", b"gone")
    assert client.delete("/api/records/1/files/gone.txt").status_code == 204
    check_zip(get_archive(client).data, {"a.txt": b"second"})


def test_empty_record_gives_a_valid_empty_zip(client, record):
    response = get_archive(client)
    assert response.status_code == 200
    assert len(response.data) == 22
    check_zip(response.data, {})


def test_head(client, record, three_files):
    full = get_archive(client)
    response = client.head(ARCHIVE.format(pid=1))
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(full.data))
    assert response.headers["ETag"] == full.headers["ETag"]


# -- names ---------------------------------------------------------------------


HOSTILE = {
    "../../etc/passwd": "etc/passwd",
    "/absolute/path.txt": "absolute/path.txt",
    "a/./b/../c.txt": "a/b/c.txt",
    "back\\..\\slash.txt": "back/slash.txt",
    "bell\x07\x1b[31mred.txt": "bell[31mred.txt",
    "rtl\u202etxt.exe": "rtltxt.exe",
    "..": "file",
    "a/b/c.txt": "a/b/c (1).txt",
    "a//b/c.txt": "a/b/c (2).txt",
    "etc": "etc (1)",
}


def test_hostile_keys_get_safe_distinct_names(client, record, db, tmp_path):
    record = record.get_record(record.id)
    for index, key in enumerate(HOSTILE):
        # Keys with control characters are refused by our APIs; plain
        # Files-REST (or an older version) stored them.
        ObjectVersion.create(record.bucket, key, stream=BytesIO(b"%d" % index))
    record.files.flush()
    record.files.sort_by(*HOSTILE)
    record.commit()
    db.session.commit()
    data = get_archive(client).data
    expected = {name: b"%d" % i for i, name in enumerate(HOSTILE.values())}
    check_zip(data, expected)
    target = tmp_path / "out"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
    extracted = sorted(
        str(path.relative_to(target)) for path in target.rglob("*") if path.is_file()
    )
    assert extracted == sorted(expected)


# -- ETag ----------------------------------------------------------------------


def test_etag_changes_whenever_the_files_change(client, record, db):
    upload(client, "a.txt", b"a")
    upload(client, "b.txt", b"b")
    etags = [get_archive(client).headers["ETag"]]
    assert get_archive(client).headers["ETag"] == etags[0]

    def changed():
        etag = get_archive(client).headers["ETag"]
        assert etag != etags[-1]
        etags.append(etag)

    upload(client, "a.txt", b"A")  # same size, new content
    changed()
    upload(client, "c.txt", b"c")
    changed()
    client.delete("/api/records/1/files/c.txt")
    changed()
    assert etags[-1] == etags[1]  # the same files again: the same bytes
    fresh = record.get_record(record.id)
    fresh.files.sort_by("b.txt")
    fresh.commit()
    db.session.commit()
    changed()
    assert len(set(etags)) == 4


def test_if_none_match(client, record, three_files):
    etag = get_archive(client).headers["ETag"]
    response = get_archive(client, **{"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""


# -- ranges and resuming ---------------------------------------------------------


def archive_of(record):
    """The archive of the record as stored now (the fixture's copy is stale)."""
    record = record.get_record(record.id)
    return RecordArchive.of(record, record.bucket)


def cut_points(archive):
    """Offsets inside a local header, a member's bytes, a data descriptor,
    the central directory and the end record."""
    layout = archive.layout
    data_start = layout.data_offsets[1]
    return {
        "start": 0,
        "inside local header": layout.offsets[1] + 7,
        "first data byte": data_start,
        "inside member bytes": data_start + 1234,
        "inside data descriptor": data_start + layout.members[1].size + 5,
        "central directory start": layout.central_directory_offset,
        "inside central directory": layout.central_offsets[1] + 20,
        "inside end record": layout.end_offset + 10,
        "last byte": layout.size - 1,
    }


def test_resume_at_every_kind_of_offset(client, record, three_files):
    full = get_archive(client)
    etag = full.headers["ETag"]
    archive = archive_of(record)
    assert archive.size == len(full.data)
    for what, offset in cut_points(archive).items():
        response = get_archive(client, Range=f"bytes={offset}-", **{"If-Range": etag})
        assert response.status_code == 206, what
        assert response.headers["Content-Range"] == (
            f"bytes {offset}-{len(full.data) - 1}/{len(full.data)}"
        )
        assert response.headers["Content-Length"] == str(len(full.data) - offset)
        assert response.data == full.data[offset:], what
        check_zip(full.data[:offset] + response.data, three_files)


def test_bounded_ranges(client, record, three_files):
    full = get_archive(client).data
    archive = archive_of(record)
    points = sorted(cut_points(archive).values())
    for start, end in itertools.pairwise(points):
        response = get_archive(client, Range=f"bytes={start}-{end}")
        assert response.status_code == 206
        assert response.data == full[start : end + 1]
    response = get_archive(client, Range="bytes=-100")
    assert response.data == full[-100:]


def test_resume_without_cached_crcs_reads_the_members_again(
    client, record, three_files, db
):
    full = get_archive(client).data
    FileCRC32.query.delete()
    db.session.commit()
    archive = archive_of(record)
    for offset in cut_points(archive).values():
        response = get_archive(client, Range=f"bytes={offset}-")
        assert response.data == full[offset:]


def test_if_range_with_another_etag_sends_everything(client, record, three_files):
    full = get_archive(client)
    upload(client, "b.txt", b"changed\n")
    current = get_archive(client)
    assert current.headers["ETag"] != full.headers["ETag"]
    response = get_archive(
        client, Range="bytes=100-", **{"If-Range": full.headers["ETag"]}
    )
    assert response.status_code == 200
    assert response.data == current.data


def test_unsatisfiable_range(client, record, three_files):
    size = len(get_archive(client).data)
    response = get_archive(client, Range=f"bytes={size}-")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert json.loads(response.data)["status"] == 416


def test_several_ranges_get_the_whole_archive(client, record, three_files):
    full = get_archive(client).data
    response = get_archive(client, Range="bytes=0-10,20-30")
    assert response.status_code == 200
    assert response.data == full


def test_interrupted_download_caches_crcs_and_resumes(
    app, client, record, three_files, monkeypatch
):
    monkeypatch.setitem(app.config, "RECORDS_FILES_DOWNLOAD_CHUNK_SIZE", 256)
    archive = archive_of(record)
    response = client.get(ARCHIVE.format(pid=1), buffered=False)
    received = b""
    chunks = iter(response.response)
    while len(received) < archive.layout.data_offsets[2] + 10:  # in z.bin
        chunk = next(chunks)
        assert len(chunk) == 256
        received += chunk
    response.close()  # the client goes away
    cached = {row.file_id for row in FileCRC32.query}
    assert cached == {archive.files[0].file_id, archive.files[1].file_id}
    rest = get_archive(client, Range=f"bytes={len(received)}-").data
    assert len(received) + len(rest) == archive.size
    check_zip(received + rest, three_files)
    assert FileCRC32.query.count() == 3


def test_crcs_are_cached_and_used(client, record, three_files, reads):
    data = get_archive(client).data
    rows = {str(row.file_id): row.crc32 for row in FileCRC32.query}
    for key, content in three_files.items():
        obj = ObjectVersion.get(record.bucket, key)
        assert rows[str(obj.file_id)] == zlib.crc32(content)
    reads.clear()
    archive = archive_of(record)
    offset = archive.layout.central_directory_offset
    response = get_archive(client, Range=f"bytes={offset}-")
    assert response.data == data[offset:]
    assert reads == {}  # the central directory needs no file read


def test_a_range_reads_only_the_bytes_it_needs(client, record, three_files, reads):
    get_archive(client)  # caches the CRC-32s
    archive = archive_of(record)
    start = archive.layout.data_offsets[1] + 1000
    stop = start + 99
    reads.clear()
    response = get_archive(client, Range=f"bytes={start}-{stop}")
    assert len(response.data) == 100
    uri = ObjectVersion.get(record.bucket, "a/data.csv").file.uri
    assert reads == {uri: 100}


# -- records and permissions ---------------------------------------------------


def test_missing_record(client, record):
    response = get_archive(client, pid="404")
    assert response.status_code == 404
    assert json.loads(response.data)["message"] == "PID does not exist."


def test_deleted_record(client, record, three_files, db):
    PersistentIdentifier.get("recid", "1").delete()
    record.delete()
    db.session.commit()
    response = get_archive(client)
    assert response.status_code == 410
    assert json.loads(response.data)["message"] == "The record has been deleted."


def test_record_without_bucket(client, db, location):
    create_record("3", with_bucket=False)
    response = get_archive(client, pid="3")
    assert response.status_code == 404
    assert json.loads(response.data)["message"] == "The record has no files."


def test_deleted_bucket(client, record, three_files, db):
    fresh = record.get_record(record.id)
    fresh.bucket.deleted = True
    db.session.commit()
    assert get_archive(client).status_code == 404
    assert client.get("/api/records/1/files").status_code == 404


def test_unreadable_file(client, record, three_files, db):
    ObjectVersion.get(record.bucket, "b.txt").file.readable = False
    db.session.commit()
    assert get_archive(client).status_code == 503


def test_bucket_read_permission(client, record, three_files, permissions):
    permissions.add("bucket-read")
    assert get_archive(client).status_code == 404


def test_bucket_listing_links_to_the_archive(client, record, three_files):
    links = json.loads(client.get("/api/records/1/files").data)["links"]
    assert links["archive"] == "http://localhost/api/records/1/files-archive"
    record_links = json.loads(client.get("/api/records/1").data)["links"]
    assert set(record_links) == {"self", "files"}


# -- cost ----------------------------------------------------------------------


def archive_statements(client, statements, db, pid, n):
    record = create_record(pid)
    for i in range(n):
        record.files[f"file-{i:03d}.txt"] = BytesIO(b"%d" % i)
    record.commit()
    db.session.commit()
    db.session.expunge_all()
    counts = []
    for _ in range(2):  # computing (and caching) the CRC-32s, then cached
        with statements.count():
            response = get_archive(client, pid=pid)
        assert response.status_code == 200
        assert len(zipfile.ZipFile(io.BytesIO(response.data)).namelist()) == n
        counts.append(statements.total)
    return counts


def test_statements_do_not_grow_with_the_number_of_files(
    client, location, statements, db
):
    one = archive_statements(client, statements, db, "10", 1)
    many = archive_statements(client, statements, db, "11", 200)
    assert abs(many[0] - one[0]) <= 2, (one, many)
    assert abs(many[1] - one[1]) <= 2, (one, many)
    assert many[1] <= many[0]  # cached CRC-32s are not written again


# -- ZIP64 ---------------------------------------------------------------------

HUGE = 4 * 1024**3 + 1000


@pytest.fixture(scope="module")
def huge_zeros_crc():
    block, crc = bytes(64 * 1024 * 1024), 0
    for _ in range(HUGE // len(block)):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(bytes(HUGE % len(block)), crc)


class RangeFile(helpers.RangeReader):
    """The archive read with Range requests, a few bytes at a time."""

    def __init__(self, client, size, etag):
        super().__init__(size)
        self.client, self.etag = client, etag

    def fetch(self, start, stop):
        response = get_archive(
            self.client, Range=f"bytes={start}-{stop - 1}", **{"If-Range": self.etag}
        )
        assert response.status_code == 206
        return response.data


def test_zip64_archive_of_a_huge_sparse_file(
    client, record, db, tmp_path, huge_zeros_crc
):
    upload(client, "small.txt", b"small")
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as fp:
        fp.truncate(HUGE)  # a hole: no disk space used
    fresh = record.get_record(record.id)
    instance = FileInstance.create()
    instance.set_uri(str(path), HUGE, "md5:not-computed")
    ObjectVersion.create(fresh.bucket, "huge.bin", _file_id=instance)
    db.session.add(
        FileCRC32(file_id=instance.id, crc32=huge_zeros_crc, size=HUGE, checksum=None)
    )
    fresh.files.flush()
    fresh.commit()
    db.session.commit()
    # Cached for a file instance whose checksum is "md5:not-computed": unused.
    assert archive_of(record).files[1].cached_crc is None
    FileCRC32.query.filter_by(file_id=instance.id).update(
        {"checksum": "md5:not-computed"}
    )
    db.session.commit()
    upload(client, "after.txt", b"after")

    head = client.head(ARCHIVE.format(pid=1))
    size = int(head.headers["Content-Length"])
    archive = archive_of(record)
    assert size == archive.size > HUGE
    assert archive.layout.zip64_end
    assert archive.layout.offsets[2] > 0xFFFFFFFF
    reader = RangeFile(client, size, head.headers["ETag"])
    with zipfile.ZipFile(io.BufferedReader(reader, 64 * 1024)) as zipped:
        infos = zipped.infolist()
        assert [(i.filename, i.file_size) for i in infos] == [
            ("small.txt", 5),
            ("huge.bin", HUGE),
            ("after.txt", 5),
        ]
        assert huge_zeros_crc == infos[1].CRC
        assert infos[2].header_offset == archive.layout.offsets[2]
        assert zipped.read("small.txt") == b"small"
        assert zipped.read("after.txt") == b"after"
        with zipped.open("huge.bin") as member:
            assert member.read(1000) == bytes(1000)
    assert reader.received < 1024 * 1024
    # The huge member's data descriptor, right after its last byte.
    end = archive.layout.data_offsets[1] + HUGE
    response = get_archive(client, Range=f"bytes={end - 2}-{end + 23}")
    assert (
        response.data
        == bytes(2)
        + b"PK\x07\x08"
        + huge_zeros_crc.to_bytes(4, "little")
        + HUGE.to_bytes(8, "little") * 2
    )


@pytest.mark.parametrize("change", ["delete", "reorder", "remove-head"])
def test_if_range_proves_nothing_but_the_current_strong_etag(
    client, record, three_files, db, change
):
    if change == "remove-head":
        head = helpers.body(upload(client, "b.txt", b"second bee\n"))["version_id"]
    old = get_archive(client)
    if change == "delete":
        assert client.delete("/api/records/1/files/b.txt").status_code == 204
    elif change == "reorder":
        current = record.get_record(record.id)
        current.files.sort_by("z.bin", "b.txt")
        current.commit()
        db.session.commit()
    else:
        url = f"/api/records/1/files/b.txt?versionId={head}"
        assert client.delete(url).status_code == 204
    current = get_archive(client)
    assert current.data != old.data
    assert current.headers["ETag"] != old.headers["ETag"]
    # Within the same second, Last-Modified does not move forward.
    for if_range in (
        old.headers["Last-Modified"],
        current.headers["Last-Modified"],
        old.headers["ETag"],
        "W/" + current.headers["ETag"],
    ):
        response = get_archive(client, Range="bytes=100-", **{"If-Range": if_range})
        assert response.status_code == 200, if_range
        assert response.data == current.data
        assert "Content-Range" not in response.headers
    response = get_archive(
        client, Range="bytes=100-", **{"If-Range": current.headers["ETag"]}
    )
    assert response.status_code == 206
    assert response.data == current.data[100:]
    assert (
        response.headers["Content-Range"]
        == f"bytes 100-{len(current.data) - 1}/{len(current.data)}"
    )
