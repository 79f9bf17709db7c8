# SPDX-License-Identifier: MIT
"""Checksums: algorithm names, the ``algo:hex`` form, hashers and headers.

Invenio-Files-REST stores a file's checksum as ``<algorithm>:<hex digest>``
(``md5:...`` for the files it writes). Everything that reads, compares or
sends checksums goes through this module: downloads (``Digest``,
``Content-MD5``), uploads (``Content-MD5``), fixity checks, the archive's
CRC-32s.

.. versionadded:: 5.0.0
"""

import base64
import binascii
import hashlib
from typing import Any, NamedTuple

from invenio_records_files.errors import ChecksumMismatchError

try:  # ISA-L's CRC-32 runs at tens of GB/s, zlib's at a few
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - isal is installed with this package
    from zlib import crc32

__all__ = (
    "DIGEST_NAMES",
    "Checksum",
    "check_content_md5",
    "crc32",
    "digest_header",
    "hasher",
    "md5_hex",
    "parse",
)

DIGEST_NAMES = {
    "md5": "md5",
    "sha1": "sha",
    "sha256": "sha-256",
    "sha512": "sha-512",
}
"""RFC 3230 / RFC 5843 ``Digest`` names of hashlib's algorithms."""

_ALIASES = {"sha-1": "sha1", "sha": "sha1", "sha-256": "sha256", "sha-512": "sha512"}


class Checksum(NamedTuple):
    """A parsed ``<algorithm>:<hex>`` checksum (algorithm in hashlib's name)."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        """Return the ``algo:hex`` form."""
        return f"{self.algorithm}:{self.hex}"


def algorithm_name(name: str) -> str:
    """Return hashlib's name of an algorithm (``SHA-256`` -> ``sha256``)."""
    name = name.strip().lower()
    return _ALIASES.get(name, name)


def parse(checksum: Any) -> Checksum | None:
    """Parse ``<algorithm>:<hex>``; ``None`` for anything else.

    The algorithm is normalized to hashlib's name and the digest to lower
    case; an empty algorithm or a digest that is not hexadecimal gives
    ``None``.
    """
    if not isinstance(checksum, str):
        return None
    algorithm, sep, value = checksum.partition(":")
    value = value.strip().lower()
    if not sep or not algorithm.strip() or not value:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        return None
    return Checksum(algorithm_name(algorithm), value)


def hasher(algorithm: str) -> Any:
    """Return a new hash object for ``algorithm`` (``None`` if unknown).

    Variable-length digests (SHAKE) are not checksums here.
    """
    name = algorithm_name(algorithm)
    for candidate in dict.fromkeys((name, name.replace("-", ""))):
        try:
            digest = hashlib.new(candidate, usedforsecurity=False)
        except (ValueError, TypeError):
            continue
        if digest.digest_size:
            return digest
    return None


def md5_hex(checksum: str | None) -> str | None:
    """Return the hex digest of an ``md5:`` checksum (``None`` for others)."""
    parsed = parse(checksum)
    return parsed.hex if parsed is not None and parsed.algorithm == "md5" else None


def digest_header(checksum: str | None) -> str | None:
    """Return the RFC 3230 ``Digest`` value of a stored checksum, if it has one.

    ``md5:<hex>`` gives ``md5=<base64>``; SHA-1, SHA-256 and SHA-512 get
    their RFC 3230 / RFC 5843 names; other algorithms give ``None``.
    """
    parsed = parse(checksum)
    if parsed is None or parsed.algorithm not in DIGEST_NAMES:
        return None
    value = base64.b64encode(bytes.fromhex(parsed.hex)).decode()
    return f"{DIGEST_NAMES[parsed.algorithm]}={value}"


def check_content_md5(checksum: str | None, content_md5: str | None) -> None:
    """Compare a stored ``md5:`` checksum with a ``Content-MD5`` header value.

    Accepts the base64 form of RFC 1864 and the hexadecimal form. Nothing is
    compared when either is missing or the stored checksum is not MD5.

    :raises invenio_records_files.errors.ChecksumMismatchError: if they differ.
    """
    actual = md5_hex(checksum)
    if not content_md5 or actual is None:
        return
    expected = content_md5.strip()
    try:
        expected_hex = base64.b64decode(expected, validate=True).hex()
    except (binascii.Error, ValueError):
        expected_hex = expected.lower()
    if len(expected_hex) != 32:
        expected_hex = expected.lower()
    if expected_hex != actual:
        raise ChecksumMismatchError(expected=content_md5, actual=f"md5:{actual}")
