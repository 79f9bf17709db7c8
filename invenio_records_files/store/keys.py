# SPDX-License-Identifier: MIT
"""File keys: which keys may be stored, and the order of a record's files.

Two rules live here and nowhere else:

* :func:`check_key`: a key (or a tag) that cannot be stored or served is
  refused: not a string, empty, too long, or with a control character;
* the order of a record's files is the order of ``_files``
  (:func:`listed_keys`: the first entry of a key counts, entries that are
  not ``{"key": <str>, ...}`` are ignored); files that ``_files`` does not
  list follow, in key order (:func:`in_files_order`).

.. versionadded:: 5.0.0
"""

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from invenio_records_files import settings
from invenio_records_files.errors import InvalidFileKeyError

if TYPE_CHECKING:
    from invenio_files_rest.models import Bucket

T = TypeVar("T")

CONTROL_CHARACTERS = frozenset(map(chr, [*range(0x20), 0x7F]))
"""Characters refused in file keys and tags (U+0000-U+001F, U+007F)."""


def check_key(key: Any, max_length: int | None = None) -> None:
    """Refuse a file key that cannot be stored or served.

    :param max_length: Longest key; ``FILES_REST_OBJECT_KEY_MAX_LEN`` by
        default (tags pass 255, the length of their column).
    :raises TypeError: if ``key`` is not a string.
    :raises invenio_records_files.errors.InvalidFileKeyError: if it is empty,
        too long, contains a control character, or cannot be encoded in
        UTF-8 (a lone surrogate).
    """
    if not isinstance(key, str):
        raise TypeError(f"File key must be a string, not {type(key).__name__}.")
    if not key:
        raise InvalidFileKeyError(key, "Filename must not be empty.")
    if max_length is None:
        max_length = settings.key_max_length()
    if len(key) > max_length:
        raise InvalidFileKeyError(key, "Filename is too long.")
    if not CONTROL_CHARACTERS.isdisjoint(key):
        raise InvalidFileKeyError(key, "Filename must not contain control characters.")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidFileKeyError(
            key, "Filename must be valid Unicode (no lone surrogates)."
        ) from error


def is_storable(value: Any) -> bool:
    """Tell whether the database can store and compare the string ``value``.

    PostgreSQL refuses NUL in text and a lone surrogate cannot be encoded:
    such a value (a key, a PID value of a URL) names nothing, and is refused
    before any query.
    """
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_valid_key(key: Any) -> bool:
    """Tell whether :func:`check_key` accepts ``key``."""
    try:
        check_key(key)
    except (TypeError, InvalidFileKeyError):
        return False
    return True


def listed_keys(files: Any) -> list[str]:
    """Return the keys ``_files`` lists, in its order, each once (the first).

    :param files: The value of ``record["_files"]`` (anything: only a list of
        ``{"key": <str>}`` entries lists keys).
    """
    if not isinstance(files, list):
        return []
    return list(
        dict.fromkeys(
            entry["key"]
            for entry in files
            if isinstance(entry, dict) and isinstance(entry.get("key"), str)
        )
    )


def listed_entries(files: Any) -> dict[str, dict]:
    """Return the entries of ``_files`` by key, in order (the first of a key)."""
    listed: dict[str, dict] = {}
    if isinstance(files, list):
        for entry in files:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                listed.setdefault(entry["key"], entry)
    return listed


def in_files_order(
    items: Iterable[T], keys: Sequence[str], key: Callable[[T], str]
) -> list[T]:
    """Sort ``items`` in the order of ``keys``; unlisted ones follow, in key order.

    :param keys: The record's order (:func:`listed_keys`); a key listed twice
        takes its first place.
    :param key: Gives an item's file key.
    """
    position: dict[str, int] = {}
    for index, name in enumerate(keys):
        position.setdefault(name, index)
    unlisted = len(position)
    return sorted(
        items, key=lambda item: (position.get(key(item), unlisted), key(item))
    )


def sorted_files_from_bucket(bucket: "Bucket", keys: Iterable[str] | None = None):
    """Return the bucket's files in the order of ``keys`` (:func:`in_files_order`).

    One query loads the bucket's files (head versions that are not delete
    markers) with their file instances.

    :param bucket: :class:`~invenio_files_rest.models.Bucket` containing the
        files.
    :param keys: Keys order to be used. Files whose key is not listed follow,
        in key order.
    :returns: Sorted list of bucket items
        (:class:`~invenio_files_rest.models.ObjectVersion`).
    """
    # Imported here: the extension imports this module before the models.
    from invenio_files_rest.models import ObjectVersion
    from sqlalchemy.orm import joinedload

    objects = (
        ObjectVersion.get_by_bucket(bucket)
        .options(joinedload(ObjectVersion.file))
        .all()
    )
    return in_files_order(objects, list(keys or []), key=lambda obj: obj.key)
