# SPDX-License-Identifier: MIT
"""The bytes of a stored zip archive, any range of them, in chunks.

:func:`iter_range` walks a :class:`~invenio_records_files.zips.layout.StoredZip`
from any byte to any other: headers and end records come from the layout,
members' bytes and CRC-32s from a :class:`MemberSource`. A member read from
its first to its last byte has its CRC-32 computed on the way (in a helper
thread, while the previous chunk is sent); a range that starts later asks
the source for it.

.. versionadded:: 5.0.0
"""

import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Protocol

from invenio_records_files.zips.layout import StoredZip

CRC32 = Callable[[bytes, int], int]
"""A CRC-32 function: ``crc32(data, value)``, as :func:`zlib.crc32`."""

THREADED = 256 * 1024
"""With :func:`zlib.crc32`, pieces this large have their CRC-32 computed in a
helper thread (zlib releases the GIL); any other function (ISA-L's, tens of
GB/s) runs inline, where a hand-off to a thread would cost more."""


class MemberSource(Protocol):
    """Where :func:`iter_range` gets the bytes and CRC-32 of members."""

    def open(self, index: int) -> BinaryIO:
        """Open member ``index`` for reading (binary, seekable)."""

    def known_crc(self, index: int) -> int | None:
        """Return the CRC-32 of member ``index`` if it is known without reading."""

    def crc(self, index: int) -> int:
        """Return the CRC-32 of member ``index``, reading it if need be."""

    def computed(self, index: int, crc: int) -> None:
        """Take note of the CRC-32 computed while streaming member ``index``."""


def iter_range(
    layout: StoredZip,
    source: MemberSource,
    start: int = 0,
    stop: int | None = None,
    chunk_size: int = 1024 * 1024,
    crc32: CRC32 = zlib.crc32,
) -> Iterator[bytes]:
    """Yield the bytes ``start`` to ``stop`` (excluded) of the archive.

    Chunks are ``chunk_size`` bytes long (the last one may be shorter). The
    members' bytes are read from ``source``, seeking to the first one needed;
    a member read from its first to its last byte whose CRC-32 is not known
    yet has it computed on the way (and reported to ``source.computed``);
    any other CRC-32 needed comes from ``source.crc``.

    :raises OSError: if a member's stream ends before its size.
    """
    stop = layout.size if stop is None else min(stop, layout.size)
    if not 0 <= start <= stop:
        raise ValueError(f"Invalid range {start}-{stop} of {layout.size} bytes.")
    writer = _Chunks(chunk_size)
    crcs: dict[int, int] = {}
    running = _RunningCRC(crc32)
    try:
        yield from _iter_range(layout, source, start, stop, writer, crcs, running)
    finally:
        running.close()


def _iter_range(layout, source, start, stop, writer, crcs, running):
    """Do :func:`iter_range` (``running`` computes the CRC-32s)."""

    def crc_of(index: int) -> int:
        if index in crcs:
            return crcs[index]
        return source.crc(index) if layout.members[index].size else 0

    def piece(offset: int, data: bytes) -> Iterator[bytes]:
        """Emit the part of ``data`` (which starts at ``offset``) in range."""
        end = offset + len(data)
        if end > start and offset < stop:
            yield from writer.add(data[max(start - offset, 0) : stop - offset])

    position = start
    if start < layout.central_directory_offset:
        for index in range(max(layout.member_at(start), 0), len(layout.members)):
            offset = layout.offsets[index]
            if offset >= stop:
                break
            yield from piece(offset, layout.local_header(index))
            data_start = layout.data_offsets[index]
            data_end = data_start + layout.members[index].size
            if data_end > start and data_start < stop:
                position = max(start, data_start)
                compute = (
                    position == data_start
                    and stop >= data_end
                    and source.known_crc(index) is None
                )
                yield from _member_bytes(
                    writer,
                    source,
                    index,
                    position - data_start,
                    min(stop, data_end) - position,
                    running if compute else None,
                )
                if compute:
                    crcs[index] = running.pop()
                    source.computed(index, crcs[index])
            if data_end < stop:
                yield from piece(data_end, layout.descriptor(index, crc_of(index)))
    if stop > layout.central_directory_offset:
        first = max(layout.central_entry_at(start), 0)
        for index in range(first, len(layout.members)):
            offset = layout.central_offsets[index]
            if offset >= stop:
                break
            yield from piece(offset, layout.central_entry(index, crc_of(index)))
        yield from piece(layout.end_offset, layout.end_records())
    yield from writer.flush()


def _member_bytes(writer, source, index, skip, length, crc):
    """Emit ``length`` bytes of member ``index`` from byte ``skip`` on."""
    with source.open(index) as fp:
        if skip:
            fp.seek(skip)
        remaining = length
        while remaining:
            data = fp.read(min(writer.room, remaining))
            if not data:
                raise OSError(
                    f"Member {index} ended {remaining} bytes before its size."
                )
            if crc is not None:
                crc.add(data)
            remaining -= len(data)
            yield from writer.add(data)


class _RunningCRC:
    """CRC-32 of consecutive pieces; with zlib's, large ones in a helper thread.

    zlib's ``crc32`` releases the GIL on large buffers: the helper computes
    the CRC-32 of a chunk while the caller sends it and reads the next one.
    One chunk at most is in flight, so memory stays bounded. ISA-L's is so
    fast that handing a chunk to a thread costs more than computing it.
    """

    def __init__(self, crc32: CRC32 = zlib.crc32) -> None:
        self.crc32 = crc32
        self.threshold = THREADED if crc32 is zlib.crc32 else None
        self.value = 0
        self._executor = None
        self._pending = None

    def _update(self, data: bytes) -> None:
        self.value = self.crc32(data, self.value)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def add(self, data: bytes) -> None:
        """Add the next piece."""
        self._wait()
        if self.threshold is None or len(data) < self.threshold:
            self._update(data)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="zip-crc32")
        self._pending = self._executor.submit(self._update, data)

    def pop(self) -> int:
        """Return the CRC-32 of the pieces so far; start again from zero."""
        self._wait()
        value, self.value = self.value, 0
        return value

    def close(self) -> None:
        """Stop the helper thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)


class _Chunks:
    """Gather pieces into chunks of ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buffer = bytearray()

    @property
    def room(self) -> int:
        """Bytes that fill the current chunk."""
        return self.size - len(self.buffer)

    def add(self, data: bytes) -> Iterator[bytes]:
        """Add ``data``; yield every chunk it completes."""
        if not self.buffer and len(data) == self.size:
            yield data  # a whole chunk: no copy
            return
        view = memoryview(data)
        while view:
            taken = view[: self.room]
            self.buffer += taken
            view = view[len(taken) :]
            if len(self.buffer) == self.size:
                yield bytes(self.buffer)
                self.buffer.clear()

    def flush(self) -> Iterator[bytes]:
        """Yield what is left."""
        if self.buffer:
            yield bytes(self.buffer)
            self.buffer.clear()
