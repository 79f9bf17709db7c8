# SPDX-License-Identifier: MIT
"""Every ``RECORDS_FILES_*`` setting, read in one place.

Each setting has one reader here, which validates it and applies its default
(:mod:`invenio_records_files.config` documents them); the rest of the package
calls the reader, never ``current_app.config`` directly. Readers need an
application context.

.. versionadded:: 5.0.0
"""

from collections.abc import Callable
from typing import Any

from flask import current_app
from werkzeug.utils import import_string

from invenio_records_files import config as _defaults


def _get(name: str) -> Any:
    return current_app.config.get(name, getattr(_defaults, name))


def _positive_int(name: str, fallback: int) -> int:
    value = _get(name)
    if value is None:
        return fallback
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer: {value!r}")
    return value


def obj_or_import_string(value: Any) -> Any:
    """Import ``value`` if it is a string; return it otherwise (``None`` if empty)."""
    return import_string(value) if isinstance(value, str) else value or None


def rest_endpoints() -> dict:
    """``RECORDS_FILES_REST_ENDPOINTS``: ``{config_name: {prefix: suffix}}``."""
    return _get("RECORDS_FILES_REST_ENDPOINTS") or {}


def update_record() -> bool:
    """``RECORDS_FILES_REST_UPDATE_RECORD``: REST writes update the record."""
    return bool(_get("RECORDS_FILES_REST_UPDATE_RECORD"))


def download_chunk_size() -> int:
    """``RECORDS_FILES_DOWNLOAD_CHUNK_SIZE``: bytes per chunk of a download."""
    return _positive_int("RECORDS_FILES_DOWNLOAD_CHUNK_SIZE", 1024 * 1024)


def upload_chunk_size() -> int | None:
    """``RECORDS_FILES_UPLOAD_CHUNK_SIZE``: bytes read at a time from an upload.

    ``None`` keeps Invenio-Files-REST's own chunk size.
    """
    value = _get("RECORDS_FILES_UPLOAD_CHUNK_SIZE")
    return (
        None if value is None else _positive_int("RECORDS_FILES_UPLOAD_CHUNK_SIZE", 0)
    )


def members_page_size() -> int:
    """``RECORDS_FILES_MEMBERS_PAGE_SIZE``: most zip members listed per page."""
    return _positive_int("RECORDS_FILES_MEMBERS_PAGE_SIZE", 1000)


def member_max_size() -> int:
    """``RECORDS_FILES_MEMBER_MAX_SIZE``: largest zip member sent, in bytes."""
    return _get("RECORDS_FILES_MEMBER_MAX_SIZE")


def member_max_ratio() -> float:
    """``RECORDS_FILES_MEMBER_MAX_RATIO``: largest compression ratio sent."""
    return _get("RECORDS_FILES_MEMBER_MAX_RATIO")


def permission_factory() -> Callable[[Any, str], Any] | None:
    """``RECORDS_FILES_REST_PERMISSION_FACTORY``: the record's factory, or ``None``."""
    return obj_or_import_string(_get("RECORDS_FILES_REST_PERMISSION_FACTORY"))


def max_files() -> int | None:
    """``RECORDS_FILES_MAX_FILES``: the most files a record may hold (``None``).

    :raises ValueError: if it is neither ``None`` nor an integer >= 0.
    """
    limit = _get("RECORDS_FILES_MAX_FILES")
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(
            f"RECORDS_FILES_MAX_FILES must be None or an integer >= 0: {limit!r}"
        )
    return limit


def key_max_length() -> int:
    """Invenio-Files-REST's ``FILES_REST_OBJECT_KEY_MAX_LEN`` (file keys)."""
    return current_app.config["FILES_REST_OBJECT_KEY_MAX_LEN"]
