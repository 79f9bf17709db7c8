# SPDX-License-Identifier: MIT
"""Byte layout of a stored (uncompressed) zip archive, known in advance.

Each member is a local header (CRC-32 and sizes left at zero, general purpose
bit 3 set), its bytes as they are (``ZIP_STORED``) and a data descriptor
carrying the CRC-32; the central directory and the end records follow. Every
offset depends only on the names, sizes and timestamps, so the archive's
length is known before its first byte and any byte range can be produced
directly (:func:`~invenio_records_files.zips.stream.iter_range`), without
producing what comes before it. A member's CRC-32 is needed only in its data
descriptor and its central directory entry.

ZIP64 records are written when needed: for a member of 4 GiB or more (8-byte
sizes in its local header's extra field and in its data descriptor), a
member that starts at 4 GiB or more (its offset in the central directory's
extra field), and for 65,535 members or more, or a central directory past or
over 4 GiB (ZIP64 end records).

.. versionadded:: 5.0.0
"""

import bisect
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

LIMIT32 = 0xFFFFFFFF
LIMIT16 = 0xFFFF

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
DESCRIPTOR = struct.Struct("<4sIII")
DESCRIPTOR64 = struct.Struct("<4sIQQ")
CENTRAL_HEADER = struct.Struct("<4sHHHHHHIIIHHHHHII")
END64 = struct.Struct("<4sQHHIIQQQQ")
END64_LOCATOR = struct.Struct("<4sIQI")
END = struct.Struct("<4sHHHHIIH")
EXTENDED_TIME = struct.Struct("<HHBi")  # Info-ZIP "UT": modification time

FLAG_DATA_DESCRIPTOR = 0x08
FLAG_UTF8 = 0x800
VERSION = 20
VERSION64 = 45
MADE_BY = (3 << 8) | VERSION64  # Unix, so that unzip applies the mode below
FILE_MODE = 0o100644 << 16

# Bidirectional embeddings, overrides and isolates: they make a name display
# as another one ("txt.exe" shown as "exe.txt").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe_name(key: str) -> str:
    """Make a file key a safe relative path inside an archive.

    Backslashes become ``/``; control characters (and bidirectional
    overrides, line and paragraph separators) are removed; empty, ``.`` and
    ``..`` segments are dropped, so no leading ``/`` remains. A key with
    nothing left becomes ``file``.
    """
    cleaned = "".join(
        char
        for char in key.replace("\\", "/")
        if char not in _BIDI and unicodedata.category(char) not in ("Cc", "Zl", "Zp")
    )
    parts = [part for part in cleaned.split("/") if part not in ("", ".", "..")]
    return "/".join(parts) or "file"


def _with_suffix(name: str, number: int) -> str:
    """``dir/name (n).ext``: the suffix goes before the extension."""
    head, _, last = name.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    if not stem:  # no extension, or a name like ".hidden"
        stem, dot, ext = last, "", ""
    last = f"{stem} ({number}){dot}{ext}"
    return f"{head}/{last}" if head else last


def safe_names(keys: Iterable[str]) -> list[str]:
    """Give each key a safe name (:func:`safe_name`), all of them distinct.

    A name already taken, or needed as a directory of another name, gets the
    first free suffix `` (1)``, `` (2)``, ... before its extension, in the
    order of ``keys``: the result depends only on the keys and their order.
    """
    names = [safe_name(key) for key in keys]
    taken = set()
    for name in names:
        parts = name.split("/")
        taken.update("/".join(parts[:i]) for i in range(1, len(parts)))
    result = []
    for name in names:
        candidate, number = name, 0
        while candidate in taken:
            number += 1
            candidate = _with_suffix(name, number)
        taken.add(candidate)
        result.append(candidate)
    return result


def utc_naive(moment: datetime) -> datetime:
    """Return ``moment`` in UTC without time zone (naive means UTC already)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


DOS_FIRST = datetime(1980, 1, 1)
DOS_LAST = datetime(2107, 12, 31, 23, 59, 58)
EPOCH = datetime(1970, 1, 1)


def dos_datetime(moment: datetime) -> tuple[int, int]:
    """Return the MS-DOS (date, time) of ``moment`` (UTC), within 1980-2107."""
    moment = utc_naive(moment)
    moment = DOS_FIRST if moment < DOS_FIRST else min(moment, DOS_LAST)
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date, time


def unix_time(moment: datetime) -> int:
    """Seconds since the epoch of ``moment`` (naive: UTC), as a signed int32."""
    seconds = (utc_naive(moment) - EPOCH) // timedelta(seconds=1)
    return max(0, min(seconds, 0x7FFFFFFF))


@dataclass(frozen=True)
class Member:
    """A file to store in the archive."""

    name: str
    """Name in the archive (already safe, see :func:`safe_names`)."""

    size: int
    """Number of bytes."""

    modified: datetime
    """Modification time (naive datetimes are taken as UTC)."""


class StoredZip:
    """Layout of a stored zip archive of ``members``, in their order."""

    def __init__(self, members: Sequence[Member]) -> None:
        """Compute every offset and the archive's size."""
        self.members = list(members)
        self._names = []
        self._flags = []
        self._times = []
        self.offsets = []  # local header of each member
        self.data_offsets = []  # first byte of each member's data
        self.central_offsets = []  # central directory entry of each member
        position = 0
        for index, member in enumerate(self.members):
            if member.size < 0:
                raise ValueError(f"Member {member.name!r} has a negative size.")
            self._names.append(member.name.encode("utf-8"))
            self._flags.append(
                FLAG_DATA_DESCRIPTOR | (0 if member.name.isascii() else FLAG_UTF8)
            )
            self._times.append(
                (*dos_datetime(member.modified), unix_time(member.modified))
            )
            self.offsets.append(position)
            position += self._local_header_size(index)
            self.data_offsets.append(position)
            position += member.size + self._descriptor_size(member)
        self.central_directory_offset = position
        for index in range(len(self.members)):
            self.central_offsets.append(position)
            position += self._central_entry_size(index)
        self.central_directory_size = position - self.central_directory_offset
        self.zip64_end = (
            len(self.members) >= LIMIT16
            or self.central_directory_size >= LIMIT32
            or self.central_directory_offset >= LIMIT32
        )
        self.end_offset = position
        self.size = position + len(self.end_records())

    # -- records -------------------------------------------------------------

    @staticmethod
    def _sizes64(member: Member) -> bool:
        return member.size >= LIMIT32

    def _local_header_size(self, index: int) -> int:
        zip64 = 20 if self._sizes64(self.members[index]) else 0
        return LOCAL_HEADER.size + len(self._names[index]) + EXTENDED_TIME.size + zip64

    def _central_entry_size(self, index: int) -> int:
        fields = 2 if self._sizes64(self.members[index]) else 0
        fields += 1 if self.offsets[index] >= LIMIT32 else 0
        zip64 = 4 + 8 * fields if fields else 0
        return (
            CENTRAL_HEADER.size + len(self._names[index]) + EXTENDED_TIME.size + zip64
        )

    def _descriptor_size(self, member: Member) -> int:
        return (DESCRIPTOR64 if self._sizes64(member) else DESCRIPTOR).size

    def _version(self, index: int) -> int:
        zip64 = self._sizes64(self.members[index]) or self.offsets[index] >= LIMIT32
        return VERSION64 if zip64 else VERSION

    def local_header(self, index: int) -> bytes:
        """Return the local file header of member ``index``."""
        member, name = self.members[index], self._names[index]
        date, time, mtime = self._times[index]
        extra = EXTENDED_TIME.pack(0x5455, 5, 1, mtime)
        sizes = 0
        if self._sizes64(member):
            # Sizes follow in a ZIP64 data descriptor (8-byte sizes).
            extra += struct.pack("<HHQQ", 0x0001, 16, 0, 0)
            sizes = LIMIT32
        return (
            LOCAL_HEADER.pack(
                b"PK\x03\x04",
                self._version(index),
                self._flags[index],
                0,  # ZIP_STORED
                time,
                date,
                0,  # CRC-32: in the data descriptor
                sizes,
                sizes,
                len(name),
                len(extra),
            )
            + name
            + extra
        )

    def descriptor(self, index: int, crc: int) -> bytes:
        """Return the data descriptor of member ``index``."""
        size = self.members[index].size
        record = DESCRIPTOR64 if self._sizes64(self.members[index]) else DESCRIPTOR
        return record.pack(b"PK\x07\x08", crc, size, size)

    def central_entry(self, index: int, crc: int) -> bytes:
        """Return the central directory entry of member ``index``."""
        member, name = self.members[index], self._names[index]
        date, time, mtime = self._times[index]
        offset = self.offsets[index]
        zip64 = []
        size = member.size
        if size >= LIMIT32:
            zip64 += [size, size]
            size = LIMIT32
        if offset >= LIMIT32:
            zip64.append(offset)
            offset = LIMIT32
        extra = b""
        if zip64:
            extra = struct.pack(f"<HH{len(zip64)}Q", 0x0001, 8 * len(zip64), *zip64)
        extra += EXTENDED_TIME.pack(0x5455, 5, 1, mtime)
        return (
            CENTRAL_HEADER.pack(
                b"PK\x01\x02",
                MADE_BY,
                self._version(index),
                self._flags[index],
                0,  # ZIP_STORED
                time,
                date,
                crc,
                size,
                size,
                len(name),
                len(extra),
                0,  # comment length
                0,  # disk number
                0,  # internal attributes
                FILE_MODE,
                offset,
            )
            + name
            + extra
        )

    def end_records(self) -> bytes:
        """Return the end of the archive (ZIP64 end records when needed)."""
        count = len(self.members)
        size, offset = self.central_directory_size, self.central_directory_offset
        records = b""
        if self.zip64_end:
            records = END64.pack(
                b"PK\x06\x06", END64.size - 12, MADE_BY, VERSION64,
                0, 0, count, count, size, offset,
            ) + END64_LOCATOR.pack(b"PK\x06\x07", 0, self.end_offset, 1)  # fmt: skip
        return records + END.pack(
            b"PK\x05\x06",
            0,
            0,
            min(count, LIMIT16),
            min(count, LIMIT16),
            min(size, LIMIT32),
            min(offset, LIMIT32),
            0,
        )

    # -- finding a position ----------------------------------------------------

    def member_at(self, position: int) -> int:
        """Index of the member whose records hold ``position`` (before the CD)."""
        return bisect.bisect_right(self.offsets, position) - 1

    def central_entry_at(self, position: int) -> int:
        """Index of the central directory entry that holds ``position``."""
        return bisect.bisect_right(self.central_offsets, position) - 1
