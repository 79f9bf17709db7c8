# SPDX-License-Identifier: MIT
"""Read a zip file's members through a seekable stream, never all of it.

:class:`ZipDirectory` reads the end records and the central directory of a
zip file through a seekable stream (the storage API's ``open()``), a window
at a time, so listing a page of members or finding one reads only the
central directory; :func:`iter_member` then reads that one member's local
header and data. Nothing else of the file is read, nothing is written to
disk, and memory does not grow with the file or the number of members.

Zip bombs are refused before the first byte (:func:`check_member`: a
declared size or compression ratio over the limits), and decompression
never produces more than the declared size: a member whose data does not
match its declared size or CRC-32 is refused when that shows in its first
chunk, else its stream fails before its last chunk.

.. versionadded:: 5.0.0
"""

import bz2
import hashlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from invenio_records_files.errors import ZipMemberError
from invenio_records_files.zips.stream import CRC32

END = struct.Struct("<4sHHHHIIH")
END64 = struct.Struct("<4sQHHIIQQQQ")
END64_LOCATOR = struct.Struct("<4sIQI")
CENTRAL_HEADER = struct.Struct("<4sHHHHHHIIIHHHHHII")
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LIMIT32 = 0xFFFFFFFF
MAX_TAIL = END.size + 0xFFFF  # end record + the longest comment
WINDOW = 64 * 1024

STORED, DEFLATED, BZIP2 = 0, 8, 12
METHODS = {STORED: "stored", DEFLATED: "deflated", BZIP2: "bzip2"}
OTHER_METHODS = {1: "shrunk", 6: "imploded", 9: "deflate64", 14: "lzma", 93: "zstd"}


def not_a_zip(reason: str) -> ZipMemberError:
    """400: the file is not a zip archive (or a damaged one)."""
    return ZipMemberError(400, f"The file is not a readable zip archive: {reason}.")


@dataclass(frozen=True)
class ZipEntry:
    """An entry of a zip's central directory."""

    name: str
    size: int
    compressed_size: int
    crc: int
    modified: datetime
    method: int
    flags: int
    header_offset: int
    """Offset of the local header in the file (prepended data included)."""

    @property
    def is_dir(self) -> bool:
        """Tell whether the entry is a directory."""
        return self.name.endswith("/")

    @property
    def compression(self) -> str:
        """Name of the compression method."""
        method = self.method
        return METHODS.get(method) or OTHER_METHODS.get(method, f"method {method}")

    def dumps(self) -> dict:
        """Serialize the entry (``key``, ``size``, ``compressed_size``, ...)."""
        return {
            "key": self.name,
            "size": self.size,
            "compressed_size": self.compressed_size,
            "crc": f"{self.crc:08x}",
            "modified": self.modified.isoformat(),
            "compression": self.compression,
            "is_dir": self.is_dir,
        }


class _Window:
    """Sequential reads of ``length`` bytes from ``start``, a window at a time."""

    def __init__(self, fp: BinaryIO, start: int, length: int) -> None:
        fp.seek(start)
        self.fp = fp
        self.remaining = length
        self.buffer = b""
        self.position = 0

    def read(self, size: int) -> bytes:
        if len(self.buffer) - self.position < size:
            self.buffer = self.buffer[self.position :]
            self.position = 0
            while len(self.buffer) < size and self.remaining:
                data = self.fp.read(min(max(WINDOW, size), self.remaining))
                if not data:
                    break
                self.remaining -= len(data)
                self.buffer += data
            if len(self.buffer) < size:
                raise not_a_zip("the central directory is truncated")
        data = self.buffer[self.position : self.position + size]
        self.position += size
        return data


def _dos_datetime(date: int, time: int) -> datetime:
    try:
        return datetime(
            (date >> 9) + 1980,
            (date >> 5) & 0xF,
            date & 0x1F,
            time >> 11,
            (time >> 5) & 0x3F,
            min((time & 0x1F) * 2, 59),
        )
    except ValueError:
        return datetime(1980, 1, 1)


def _extra_fields(extra: bytes) -> dict[int, bytes]:
    fields, position = {}, 0
    while position + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, position)
        fields.setdefault(tag, extra[position + 4 : position + 4 + size])
        position += 4 + size
    return fields


class ZipDirectory:
    """The central directory of a zip file read through ``fp``.

    :param fp: A seekable binary stream of the file.
    :param size: The file's size.
    :raises ZipMemberError: (400) if the file is not a zip archive.
    """

    def __init__(self, fp: BinaryIO, size: int) -> None:
        """Read the end records."""
        self.fp = fp
        self.size = size
        if size < END.size:
            raise not_a_zip("it is too short")
        tail_start = max(size - MAX_TAIL, 0)
        fp.seek(tail_start)
        tail = fp.read(size - tail_start)
        position = tail.rfind(b"PK\x05\x06")
        while position >= 0:
            if position + END.size <= len(tail):
                comment = struct.unpack_from("<H", tail, position + END.size - 2)[0]
                if position + END.size + comment <= len(tail):
                    break
            position = tail.rfind(b"PK\x05\x06", 0, position)
        if position < 0:
            raise not_a_zip("no end of central directory record")
        _sig, disk, _, _, count, cd_size, cd_offset, _ = END.unpack_from(tail, position)
        end = tail_start + position
        locator = position - END64_LOCATOR.size
        if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            end = tail_start + locator - END64.size
            if end < 0:
                raise not_a_zip("damaged ZIP64 end records")
            fp.seek(end)
            record = fp.read(END64.size)
            if len(record) != END64.size or record[:4] != b"PK\x06\x06":
                raise not_a_zip("damaged ZIP64 end records")
            _sig, _, _, _, disk, _, _, count, cd_size, cd_offset = END64.unpack(record)
        if disk:
            raise not_a_zip("multi-disk archives are not supported")
        self.count = count
        """Number of entries the end record declares."""
        self.central_directory_size = cd_size
        self.concat = end - cd_size - cd_offset
        """Bytes before the archive (e.g. a self-extracting stub)."""
        if self.concat < 0:
            raise not_a_zip("the central directory is outside the file")
        self.central_directory_offset = cd_offset + self.concat

    def entries(self) -> Iterator[ZipEntry]:
        """Yield the entries of the central directory, in order."""
        reader = _Window(
            self.fp, self.central_directory_offset, self.central_directory_size
        )
        for _ in range(self.count):
            header = reader.read(CENTRAL_HEADER.size)
            (
                signature, _made, _needed, flags, method, time, date, crc,
                compressed_size, size, name_length, extra_length, comment_length,
                _disk, _internal, _external, offset,
            ) = CENTRAL_HEADER.unpack(header)  # fmt: skip
            if signature != b"PK\x01\x02":
                raise not_a_zip("damaged central directory")
            raw_name = reader.read(name_length)
            extra = _extra_fields(reader.read(extra_length))
            reader.read(comment_length)
            values = {"size": size, "compressed_size": compressed_size}
            values["offset"] = offset
            zip64 = extra.get(0x0001, b"")
            position = 0
            for field in ("size", "compressed_size", "offset"):
                if values[field] == LIMIT32 and position + 8 <= len(zip64):
                    values[field] = struct.unpack_from("<Q", zip64, position)[0]
                    position += 8
            modified = _dos_datetime(date, time)
            times = extra.get(0x5455, b"")
            if len(times) >= 5 and times[0] & 1:
                seconds = struct.unpack_from("<i", times, 1)[0]
                modified = datetime.fromtimestamp(seconds, UTC)
            yield ZipEntry(
                name=raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace"),
                size=values["size"],
                compressed_size=values["compressed_size"],
                crc=crc,
                modified=modified,
                method=method,
                flags=flags,
                header_offset=values["offset"] + self.concat,
            )

    def find(self, name: str) -> ZipEntry:
        """Return the entry ``name`` (the last one, if the name repeats).

        :raises ZipMemberError: (404) if there is none.
        """
        found = None
        for entry in self.entries():
            if entry.name == name:
                found = entry
        if found is None:
            raise ZipMemberError(404, "The zip archive has no such member.")
        return found


def check_member(entry: ZipEntry, max_size: int, max_ratio: float) -> None:
    """Refuse a member that cannot or must not be extracted.

    :raises ZipMemberError: 400 for a directory, an encrypted member or an
        unsupported compression method; 413 for a member larger than
        ``max_size`` or compressed more than ``max_ratio`` times.
    """
    if entry.is_dir:
        raise ZipMemberError(400, "The member is a directory.")
    if entry.flags & 0x1:
        raise ZipMemberError(400, "Encrypted members are not supported.")
    if entry.method not in METHODS:
        raise ZipMemberError(
            400, f"Compression method {entry.compression!r} is not supported."
        )
    if entry.size > max_size:
        raise ZipMemberError(
            413, f"The member has {entry.size} bytes; the limit is {max_size}."
        )
    if entry.size > max(entry.compressed_size, 1) * max_ratio:
        raise ZipMemberError(
            413,
            f"The member is compressed {entry.size / max(entry.compressed_size, 1):.0f}"
            f" times; the limit is {max_ratio:g}.",
        )
    if entry.method == STORED and entry.size != entry.compressed_size:
        raise not_a_zip("a stored member whose sizes differ")


class _Decompressor:
    """Bounded decompression of one member's data (``max_length`` per call)."""

    def __init__(self, method: int) -> None:
        self.method = method
        self.tail = b""
        if method == DEFLATED:
            self.engine = zlib.decompressobj(-15)
        elif method == BZIP2:
            self.engine = bz2.BZ2Decompressor()
        else:
            self.engine = None

    @property
    def finished(self) -> bool:
        """Tell whether the compressed stream ended (never for stored data)."""
        return self.engine is not None and self.engine.eof

    @property
    def complete(self) -> bool:
        """Tell whether the data may end here (compressed: its end was read)."""
        return self.engine is None or self.engine.eof

    def feed(self, data: bytes, max_length: int) -> Iterator[bytes]:
        """Yield the output of ``data``, ``max_length`` bytes at most at once."""
        if self.engine is None:
            yield data
            return
        try:
            while True:
                if self.engine.eof:
                    return
                if self.method == DEFLATED:
                    out = self.engine.decompress(data, max_length)
                    data = self.engine.unconsumed_tail
                    more = bool(data) or len(out) == max_length
                else:
                    out = self.engine.decompress(data, max_length)
                    data = b""
                    more = not self.engine.needs_input
                if out:
                    yield out
                if not more:
                    return
        except (zlib.error, OSError, EOFError) as error:
            raise not_a_zip(f"damaged member data ({error})") from error


class MemberStream:
    """The decompressed bytes of one member, verified, as an iterable.

    The local header and the first chunk are read when it is created, so
    most damage is reported before a response starts; the last chunk is
    held back until the size and CRC-32 are checked, so a damaged member
    never downloads as complete. :meth:`close` closes ``fp``.
    """

    def __init__(
        self,
        fp: BinaryIO,
        file_size: int,
        entry: ZipEntry,
        chunk_size: int,
        crc32: CRC32 = zlib.crc32,
    ) -> None:
        """Read the local header, start decompressing (``crc32`` checks it)."""
        self.fp = fp
        self.crc32 = crc32
        self.entry = entry
        self.chunk_size = chunk_size
        try:
            self._chunks = self._generate(file_size)
            self._first = next(self._chunks, None)
        except BaseException:
            fp.close()
            raise

    def _data_start(self, file_size: int) -> int:
        entry = self.entry
        self.fp.seek(entry.header_offset)
        header = self.fp.read(LOCAL_HEADER.size)
        if len(header) != LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise not_a_zip("damaged local header")
        name_length, extra_length = struct.unpack_from("<HH", header, 26)
        start = entry.header_offset + LOCAL_HEADER.size + name_length + extra_length
        if start + entry.compressed_size > file_size:
            raise not_a_zip("member data past the end of the file")
        return start

    def _generate(self, file_size: int) -> Iterator[bytes]:
        entry = self.entry
        self.fp.seek(self._data_start(file_size))
        decompressor = _Decompressor(entry.method)
        remaining, produced, crc = entry.compressed_size, 0, 0
        held = None
        while remaining and not decompressor.finished:
            data = self.fp.read(min(self.chunk_size, remaining))
            if not data:
                raise not_a_zip("member data past the end of the file")
            remaining -= len(data)
            room = min(self.chunk_size, entry.size - produced + 1)
            for out in decompressor.feed(data, room):
                produced += len(out)
                if produced > entry.size:
                    raise not_a_zip("member data longer than its declared size")
                crc = self.crc32(out, crc)
                if held is not None:
                    yield held
                held = out
                room = min(self.chunk_size, entry.size - produced + 1)
        if produced != entry.size or not decompressor.complete:
            raise not_a_zip("member data shorter than its declared size")
        if crc != entry.crc:
            raise not_a_zip("member data does not match its CRC-32")
        if held is not None:
            yield held

    def __iter__(self) -> Iterator[bytes]:
        """Yield the member's bytes."""
        try:
            if self._first is not None:
                yield self._first
            yield from self._chunks
        finally:
            self.close()

    def close(self) -> None:
        """Close the underlying file."""
        self._chunks.close()
        self.fp.close()


def member_etag(checksum: str | None, version_id, name: str) -> str:
    """Entity tag of a member of one version of a zip file."""
    digest = hashlib.sha256(f"{checksum}\0{version_id}\0{name}".encode())
    return f"member-{digest.hexdigest()[:40]}"


__all__ = (
    "MemberStream",
    "ZipDirectory",
    "ZipEntry",
    "ZipMemberError",
    "check_member",
    "member_etag",
)
