# SPDX-License-Identifier: MIT
"""The stored-zip layout and stream: names, records, ranges, ZIP64; no database."""

import io
import random
import struct
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from invenio_records_files.zips.layout import (
    LIMIT32,
    Member,
    StoredZip,
    dos_datetime,
    safe_name,
    safe_names,
)
from invenio_records_files.zips.stream import iter_range

from .helpers import RangeReader, unzip_test

pytestmark = pytest.mark.database_independent

WHEN = datetime(2024, 5, 6, 7, 8, 10)
GIB = 1024**3


class Source:
    """Members' bytes from memory (or generated); counts what is read."""

    def __init__(self, datas, crcs=None):
        self.datas = datas
        self.crcs = crcs or {}
        self.computed_crcs = {}
        self.read = 0

    def open(self, index):
        data = self.datas[index]
        if callable(data):
            return _CountedReader(data(), self)
        return _Counted(data, self)

    def known_crc(self, index):
        return self.crcs.get(index)

    def crc(self, index):
        if index not in self.crcs:
            self.crcs[index] = zlib.crc32(self.datas[index])
        return self.crcs[index]

    def computed(self, index, crc):
        self.computed_crcs[index] = crc


class _Counted(io.BytesIO):
    def __init__(self, data, source):
        super().__init__(data)
        self.source = source

    def read(self, size=-1):
        chunk = super().read(size)
        self.source.read += len(chunk)
        return chunk


class _CountedReader(io.BufferedReader):
    def __init__(self, raw, source):
        super().__init__(raw)
        self.source = source

    def read(self, size=-1):
        chunk = super().read(size)
        self.source.read += len(chunk)
        return chunk


def build(datas, names=None):
    names = names or [f"file-{i}.bin" for i in range(len(datas))]
    layout = StoredZip(
        [Member(name, len(data), WHEN) for name, data in zip(names, datas, strict=True)]
    )
    return layout, Source(datas)


# -- names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("plain.txt", "plain.txt"),
        ("/etc/passwd", "etc/passwd"),
        ("../../x", "x"),
        ("a/./b/../c", "a/b/c"),
        ("a//b///c", "a/b/c"),
        ("C:\\Windows\\..\\evil.dll", "C:/Windows/evil.dll"),
        ("tab\there\nnew\rline\x00nul\x7fdel\x85nel", "tabherenewlinenuldelnel"),
        ("line\u2028sep", "linesep"),
        ("bidi\u202egnp.exe", "bidignp.exe"),
        ("résumé/日本.txt", "résumé/日本.txt"),
        ("dir/", "dir"),
        ("", "file"),
        ("../..", "file"),
        ("\x01", "file"),
    ],
)
def test_safe_name(key, name):
    assert safe_name(key) == name


def test_colliding_names_get_deterministic_suffixes():
    keys = ["a.txt", "/a.txt", "./a.txt", "dir", "dir/x", "x.tar.gz", "x.tar.gz/"]
    names = safe_names(keys)
    assert names == [
        "a.txt",
        "a (1).txt",
        "a (2).txt",
        "dir (1)",
        "dir/x",
        "x.tar.gz",
        "x.tar (1).gz",
    ]
    assert safe_names(keys) == names
    assert len(set(names)) == len(names)


def test_a_suffix_skips_taken_names():
    assert safe_names(["a", "a (1)", "/a", ".hidden", "/.hidden"]) == [
        "a",
        "a (1)",
        "a (2)",
        ".hidden",
        ".hidden (1)",
    ]


# -- records -------------------------------------------------------------------


def test_every_byte_and_zipfile(tmp_path):
    datas = [b"hello", b"", random.Random(1).randbytes(100_000), b"x" * 3]  # noqa: S311
    names = ["hello.txt", "empty", "random.bin", "déjà vu/x.txt"]
    layout, source = build(datas, names)
    data = b"".join(iter_range(layout, source))
    assert len(data) == layout.size
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == names
        for name, content in zip(names, datas, strict=True):
            info = archive.getinfo(name)
            assert archive.read(name) == content
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == (2024, 5, 6, 7, 8, 10)
            assert info.flag_bits & 0x08  # data descriptor
            assert bool(info.flag_bits & 0x800) == (not name.isascii())
    assert source.computed_crcs == {
        i: zlib.crc32(d) for i, d in enumerate(datas) if d
    } | {1: 0}
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    unzip_test(path)


def test_crcs_computed_in_a_helper_thread(monkeypatch):
    """The zlib fallback hands large pieces to a thread: same CRC-32s."""
    from invenio_records_files.zips import stream as zipstream

    monkeypatch.setattr(zipstream, "THREADED", 1000)
    datas = [random.Random(2).randbytes(50_000), b"y" * 10, b"z" * 3000]  # noqa: S311
    layout, source = build(datas, ["a", "b", "c"])
    data = b"".join(iter_range(layout, source, chunk_size=4096))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
    assert source.computed_crcs == {i: zlib.crc32(d) for i, d in enumerate(datas)}


def test_extended_timestamp_keeps_seconds_and_time_zone():
    moment = datetime(2024, 5, 6, 9, 8, 11, tzinfo=timezone(timedelta(hours=2)))
    layout = StoredZip([Member("a", 1, moment)])
    data = b"".join(iter_range(layout, Source([b"a"])))
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("a")
    assert info.date_time == (2024, 5, 6, 7, 8, 10)  # UTC, 2-second steps
    tag, size, flags, mtime = struct.unpack("<HHBi", info.extra[-9:])
    assert (tag, size, flags) == (0x5455, 5, 1)
    assert datetime.fromtimestamp(mtime, UTC) == moment


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(1970, 1, 1), (0 << 9 | 1 << 5 | 1, 0)),
        (datetime(2200, 1, 1), (127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29)),
    ],
)
def test_dos_time_is_clamped(moment, expected):
    assert dos_datetime(moment) == expected


def test_empty_archive():
    layout, source = build([])
    data = b"".join(iter_range(layout, source))
    assert data == b"PK\x05\x06" + bytes(18)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == []


# -- ranges --------------------------------------------------------------------


def test_every_range_is_the_slice_of_the_whole():
    rng = random.Random(7)  # noqa: S311
    datas = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(8)]
    layout, source = build(datas)
    whole = b"".join(iter_range(layout, source))
    for _ in range(300):
        start = rng.randrange(0, layout.size + 1)
        stop = rng.randrange(start, layout.size + 1)
        crcs = {i: zlib.crc32(d) for i, d in enumerate(datas)}
        part = b"".join(
            iter_range(layout, Source(datas, crcs), start, stop, chunk_size=777)
        )
        assert part == whole[start:stop], (start, stop)


def test_chunks_have_the_chunk_size():
    layout, source = build([bytes(5000), b"abc", bytes(4096)])
    chunks = list(iter_range(layout, source, chunk_size=1024))
    assert {len(chunk) for chunk in chunks[:-1]} == {1024}
    assert 0 < len(chunks[-1]) <= 1024


def test_a_range_reads_only_its_bytes():
    datas = [bytes(10_000), bytes(10_000), bytes(10_000)]
    layout, _ = build(datas)
    crcs = {i: zlib.crc32(d) for i, d in enumerate(datas)}
    source = Source(datas, dict(crcs))
    start = layout.data_offsets[1] + 100
    part = b"".join(iter_range(layout, source, start, start + 50))
    assert part == bytes(50)
    assert source.read == 50
    source = Source(datas, dict(crcs))
    tail = b"".join(iter_range(layout, source, layout.central_directory_offset))
    assert source.read == 0
    assert tail.startswith(b"PK\x01\x02")


def test_a_resumed_member_gets_its_crc_from_the_source():
    datas = [b"a" * 100, b"b" * 100]
    layout, _ = build(datas)
    source = Source(datas)
    list(iter_range(layout, source, layout.data_offsets[0] + 1))
    assert source.computed_crcs == {1: zlib.crc32(datas[1])}  # only the whole one
    assert source.crcs == {0: zlib.crc32(datas[0])}  # asked for the other


def test_a_short_member_stops_the_stream():
    layout = StoredZip([Member("a", 10, WHEN)])
    with pytest.raises(OSError, match="ended 5 bytes before its size"):
        b"".join(iter_range(layout, Source([b"12345"])))


@pytest.mark.parametrize(("start", "stop"), [(-1, 10), (10, 5)])
def test_invalid_range(start, stop):
    layout, source = build([b"abc"])
    with pytest.raises(ValueError, match="Invalid range"):
        list(iter_range(layout, source, start, stop))


# -- ZIP64 ---------------------------------------------------------------------


def test_zip64_for_65535_members_and_more(tmp_path):
    datas = [b"%d" % (i % 10) for i in range(65_536)]
    layout, source = build(datas)
    assert layout.zip64_end
    data = b"".join(iter_range(layout, source))
    assert data[-98:-94] == b"PK\x06\x06"  # ZIP64 end record, locator, end record
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.infolist()) == 65_536
        assert archive.testzip() is None
        assert archive.read("file-65535.bin") == b"5"
    path = tmp_path / "many.zip"
    path.write_bytes(data)
    unzip_test(path)


def test_no_zip64_below_the_limits():
    layout, source = build([b"x"] * 10)
    assert not layout.zip64_end
    data = b"".join(iter_range(layout, source))
    assert b"PK\x06\x06" not in data


PATTERN = bytes(range(256)) * 4096  # 1 MiB


class Generated(io.RawIOBase):
    """``size`` bytes of a repeated pattern, generated on demand (seekable)."""

    def __init__(self, size):
        self.size, self.position = size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        self.position = {0: 0, 1: self.position, 2: self.size}[whence] + offset
        return self.position

    def readinto(self, buffer):
        count = max(0, min(len(buffer), self.size - self.position))
        offset = self.position % len(PATTERN)
        buffer[:count] = (PATTERN[offset:] + PATTERN)[:count]
        self.position += count
        return count


class VirtualZip(RangeReader):
    """A zip read by ranges from :func:`iter_range`, never produced whole."""

    def __init__(self, layout, source):
        super().__init__(layout.size)
        self.layout, self.source = layout, source

    def fetch(self, start, stop):
        return b"".join(iter_range(self.layout, self.source, start, stop))


def pattern_crc(size):
    crc = 0
    for _ in range(size // len(PATTERN)):
        crc = zlib.crc32(PATTERN, crc)
    return zlib.crc32(PATTERN[: size % len(PATTERN)], crc)


@pytest.fixture(scope="module")
def huge_crc():
    return pattern_crc(4 * GIB + 1000)


def test_zip64_for_a_member_of_4_gib_and_one_after_it(huge_crc):
    huge = 4 * GIB + 1000
    members = [
        Member("small.txt", 3, WHEN),
        Member("huge.bin", huge, WHEN),
        Member("after.txt", 5, WHEN),
    ]
    layout = StoredZip(members)
    assert layout.offsets[2] > LIMIT32
    source = Source(
        {0: b"abc", 1: lambda: Generated(huge), 2: b"hello"},
        crcs={0: zlib.crc32(b"abc"), 1: huge_crc, 2: zlib.crc32(b"hello")},
    )
    virtual = VirtualZip(layout, source)
    with zipfile.ZipFile(io.BufferedReader(virtual, 64 * 1024)) as archive:
        infos = archive.infolist()
        assert [(i.filename, i.file_size) for i in infos] == [
            ("small.txt", 3),
            ("huge.bin", huge),
            ("after.txt", 5),
        ]
        assert huge_crc == infos[1].CRC
        assert infos[2].header_offset == layout.offsets[2]  # a ZIP64 offset
        assert archive.read("small.txt") == b"abc"
        assert archive.read("after.txt") == b"hello"
        with archive.open("huge.bin") as member:
            assert member.read(300) == PATTERN[:300]
    assert layout.size > huge
    assert virtual.received < 1024 * 1024  # never the whole archive
    # The huge member's local header announces ZIP64 sizes, its data
    # descriptor has 8-byte sizes.
    header = b"".join(
        iter_range(layout, source, layout.offsets[1], layout.offsets[1] + 30)
    )
    assert struct.unpack_from("<II", header, 18) == (LIMIT32, LIMIT32)
    end = layout.data_offsets[1] + huge
    descriptor = b"".join(iter_range(layout, source, end, end + 24))
    assert descriptor == struct.pack("<4sIQQ", b"PK\x07\x08", huge_crc, huge, huge)
