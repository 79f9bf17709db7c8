# SPDX-License-Identifier: MIT
"""The files of a record: a mapping-like view of its bucket.

The bucket is the source of truth for which files a record has; the record's
``_files`` list holds their order and per-file metadata. Reads query the
bucket once per operation (one statement whatever the number of files);
writes change the bucket through Invenio-Files-REST inside a savepoint and
then update ``_files`` in memory, without re-reading the bucket. Nothing here
commits.
"""

from collections import OrderedDict
from copy import copy
from typing import Any

from flask import current_app
from invenio_db import db
from invenio_files_rest.errors import (
    BucketLockedError,
    InvalidKeyError,
    InvalidOperationError,
)
from invenio_files_rest.models import Bucket, ObjectVersion, ObjectVersionTag
from sqlalchemy.orm import joinedload

from .errors import KeyExistsError
from .storage import store_stream
from .utils import sorted_files_from_bucket

_DUMPED_FIELDS = ("bucket", "checksum", "file_id", "key", "size", "version_id")


class FileObject:
    """Wrapper for files.

    Wraps an :class:`~invenio_files_rest.models.ObjectVersion` (``obj``) and
    the file's metadata dictionary (``data``, the file's entry in the record's
    ``_files``). Attribute access falls through to the object
    (``fileobj.key``); item access reads object attributes first, then the
    metadata.
    """

    def __init__(self, obj: ObjectVersion, data: dict) -> None:
        """Bind to the object version ``obj`` and its metadata ``data``."""
        self.obj = obj
        self.data = data

    def __getattr__(self, key: str) -> Any:
        """Proxy to ``obj``."""
        if key in ("obj", "data"):
            raise AttributeError(key)
        return getattr(self.obj, key)

    def _is_reserved(self, key: str) -> bool:
        return hasattr(type(self.obj), key) or key in _DUMPED_FIELDS

    def __getitem__(self, key: str) -> Any:
        """Get an object attribute, or else a metadata value."""
        if hasattr(type(self.obj), key):
            return getattr(self.obj, key)
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        """Set a metadata value.

        :raises KeyError: if ``key`` is reserved: an attribute of
            :class:`~invenio_files_rest.models.ObjectVersion` or one of the
            fields :meth:`dumps` writes (``checksum``, ``size``, ...).
        """
        if self._is_reserved(key):
            raise KeyError(key)
        self.data[key] = value
        on_change = self.__dict__.get("_on_change")
        if on_change is not None:
            on_change()

    def __contains__(self, key: str) -> bool:
        """Tell whether ``key`` is an object attribute or a metadata key."""
        return hasattr(type(self.obj), key) or key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        """Get an object attribute or a metadata value, like ``self[key]``.

        :param key: Metadata key which holds the value.
        :returns: Metadata value of the specified key or default.
        """
        try:
            return self[key]
        except KeyError:
            return default

    def get_version(self, version_id=None) -> ObjectVersion | None:
        """Return specific version ``ObjectVersion`` instance or HEAD.

        :param version_id: Version ID of the object.
        :returns: :class:`~invenio_files_rest.models.ObjectVersion` instance
            or HEAD of the stored object.
        """
        return ObjectVersion.get(
            bucket=self.obj.bucket_id, key=self.obj.key, version_id=version_id
        )

    def dumps(self) -> dict:
        """Create a dump of the metadata associated to the record.

        Refreshes the file fields of ``data`` (``bucket``, ``checksum``,
        ``file_id``, ``key``, ``size``, ``version_id``) from the object and
        returns ``data`` itself, custom metadata included.
        """
        file_ = self.obj.file
        self.data.update(
            {
                "bucket": str(self.obj.bucket_id),
                "checksum": file_.checksum if file_ is not None else None,
                "file_id": str(self.obj.file_id),
                "key": self.obj.key,
                "size": file_.size if file_ is not None else None,
                "version_id": str(self.obj.version_id),
            }
        )
        return self.data


class FilesIterator:
    """Iterator for files.

    A mapping-like view of the files in a record's bucket, in the record's
    file order. Every read runs a single query, whatever the number of files;
    every write goes through Invenio-Files-REST inside a savepoint and updates
    the record's ``_files`` in memory (the caller commits).
    """

    def __init__(self, record, bucket: Bucket | None = None, file_cls=None) -> None:
        """Initialize iterator."""
        self._it = None
        self.record = record
        self.model = record.model
        self.file_cls = file_cls or FileObject
        self.bucket = bucket if bucket is not None else getattr(record, "bucket", None)
        entries = record.get("_files")
        self.filesmap = OrderedDict(
            (entry["key"], entry)
            for entry in (entries if isinstance(entries, list) else [])
            if isinstance(entry, dict) and isinstance(entry.get("key"), str)
        )

    # -- reading ------------------------------------------------------------

    def _objects(self, bucket: Bucket | None = None) -> list[ObjectVersion]:
        """Load the bucket's files (one query), in the record's order."""
        return sorted_files_from_bucket(
            bucket if bucket is not None else self.bucket, list(self.filesmap)
        )

    def _get_object(self, key: str) -> ObjectVersion | None:
        if not isinstance(key, str):
            return None
        return (
            ObjectVersion.get_by_bucket(self.bucket)
            .options(joinedload(ObjectVersion.file))
            .filter(ObjectVersion.key == key)
            .one_or_none()
        )

    def _wrap(self, obj: ObjectVersion, attach: bool = True) -> FileObject:
        """Wrap ``obj`` with its metadata entry.

        A file missing from ``_files`` gets a new entry, filled by
        :meth:`FileObject.dumps` (and kept in ``filesmap`` when ``attach``).
        """
        data = self.filesmap.get(obj.key)
        if data is None:
            data = {}
            if attach:
                self.filesmap[obj.key] = data
            fileobj = self.file_cls(obj, data)
            fileobj.dumps()
        else:
            fileobj = self.file_cls(obj, data if attach else dict(data))
        if attach:
            # Metadata edits through the file object count as changes of the
            # record's files (see Record.commit()).
            fileobj.__dict__["_on_change"] = self._mark_changed
        return fileobj

    def __len__(self) -> int:
        """Get number of files."""
        return ObjectVersion.get_by_bucket(self.bucket).order_by(None).count()

    def __iter__(self) -> "FilesIterator":
        """Get an iterator over the files (one query), in the record's order.

        Each call returns an independent iterator, so nested loops over the
        same ``files`` work.
        """
        iterator = copy(self)
        iterator._it = iter(self._objects())
        return iterator

    def __next__(self) -> FileObject:
        """Get next file item."""
        if self._it is None:
            self._it = iter(self._objects())
        return self._wrap(next(self._it))

    def next(self) -> FileObject:
        """Python 2.7 compatibility."""
        return self.__next__()

    def __contains__(self, key: str) -> bool:
        """Test if file exists."""
        return self._get_object(key) is not None

    def __getitem__(self, key: str) -> FileObject:
        """Get a specific file.

        :raises KeyError: if the bucket has no file ``key``.
        """
        obj = self._get_object(key)
        if obj is None:
            raise KeyError(key)
        return self._wrap(obj)

    @property
    def keys(self) -> list[str]:
        """Return file keys."""
        return [obj.key for obj in self._objects()]

    def dumps(self, bucket: Bucket | None = None) -> list[dict]:
        """Serialize files from a bucket.

        :param bucket: Instance of files
            :class:`~invenio_files_rest.models.Bucket`. (Default:
            ``self.bucket``)
        :returns: List of serialized files.
        """
        attach = bucket is None or bucket.id == self.bucket.id
        return [self._wrap(obj, attach=attach).dumps() for obj in self._objects(bucket)]

    # -- writing ------------------------------------------------------------

    def flush(self) -> None:
        """Flush changes to record.

        Rewrite the record's ``_files`` from the bucket, keeping the order and
        the per-file metadata. A record that never had files gets no
        ``_files`` key. The record itself is not committed.
        """
        files = self.dumps()
        self.filesmap = OrderedDict((entry["key"], entry) for entry in files)
        if files or "_files" in self.record:
            self.record["_files"] = files
            self._mark_changed()

    def sync(self, key: str) -> FileObject | None:
        """Bring the ``_files`` entry of ``key`` in line with the bucket.

        One query: a file that exists gets its file fields refreshed (new
        keys go to the end, known keys keep their position and metadata); a
        key without a file any more loses its entry.

        :returns: The file, or ``None`` if the bucket has no file ``key``.

        .. versionadded:: 2.0.0
        """
        self._ensure_filesmap()
        obj = self._get_object(key)
        if obj is None:
            self.filesmap.pop(key, None)
            self._write_record()
            return None
        fileobj = self._wrap(obj)
        fileobj.dumps()
        self._write_record()
        return fileobj

    def _mark_changed(self) -> None:
        """Remember that the record's files were changed through this API."""
        self.record.__dict__["_files_changed"] = True

    def _write_record(self) -> None:
        """Write the in-memory file list to the record's ``_files``."""
        if self.filesmap or "_files" in self.record:
            self.record["_files"] = list(self.filesmap.values())
            self._mark_changed()

    def _ensure_filesmap(self) -> None:
        """Load the bucket's files into ``_files`` if the record has none yet.

        A record linked to a bucket that already holds files but has no
        ``_files`` (created with a custom bucket, or by an older version) gets
        them all before the first incremental change.
        """
        if "_files" not in self.record:
            for obj in self._objects():
                self._wrap(obj)

    def _check_writable(self) -> None:
        if self.bucket.locked:
            raise BucketLockedError()
        if self.bucket.deleted:
            raise InvalidOperationError(description="Bucket is deleted.")

    @staticmethod
    def _check_key(key: str) -> None:
        if not isinstance(key, str):
            raise TypeError(f"File key must be a string, not {type(key).__name__}.")
        if not key:
            raise InvalidKeyError(description="Filename must not be empty.")
        if len(key) > current_app.config["FILES_REST_OBJECT_KEY_MAX_LEN"]:
            raise InvalidKeyError()

    def __setitem__(self, key: str, stream) -> None:
        """Add a file, or a new version of an existing one.

        The bytes are stored through Invenio-Files-REST. A new key goes to
        the end of the record's file order; a new version of an existing key
        keeps its position and its metadata.

        :raises TypeError: if ``stream`` is not a readable binary stream or
            ``key`` is not a string.
        :raises invenio_files_rest.errors.InvalidKeyError: if ``key`` is
            empty or longer than ``FILES_REST_OBJECT_KEY_MAX_LEN``.
        :raises invenio_files_rest.errors.InvalidOperationError: if the bucket
            is locked or deleted.
        """
        self._add(key, stream)

    def _add(self, key: str, stream) -> ObjectVersion:
        """Do ``self[key] = stream``; return the new object version."""
        self._check_key(key)
        self._check_stream(key, stream)
        self._check_writable()
        self._ensure_filesmap()
        obj = store_stream(self.bucket, key, stream)
        self.file_cls(obj, self.filesmap.setdefault(key, {})).dumps()
        self._write_record()
        return obj

    @staticmethod
    def _check_stream(key: str, stream) -> None:
        if not callable(getattr(stream, "read", None)):
            raise TypeError(
                f"File {key!r} needs a readable binary stream, "
                f"not {type(stream).__name__}."
            )

    def __delitem__(self, key: str) -> None:
        """Delete a file (Files-REST keeps its history as a delete marker).

        :raises KeyError: if the bucket has no file ``key``.
        :raises invenio_files_rest.errors.InvalidOperationError: if the bucket
            is locked or deleted.
        """
        self._check_writable()
        obj = self._get_object(key)
        if obj is None:
            raise KeyError(key)
        self._ensure_filesmap()
        with db.session.begin_nested():
            ObjectVersion.delete(self.bucket, key)
        self.filesmap.pop(key, None)
        self._write_record()

    def rename(self, old_key: str, new_key: str) -> ObjectVersion:
        """Rename a file.

        The bytes are not copied: the new object version points at the same
        file instance. The file keeps its metadata and its position.

        :param old_key: Old key that holds the object.
        :param new_key: New key that will hold the object.
        :returns: The object that has been renamed.
        :raises KeyError: if there is no file ``old_key``.
        :raises invenio_records_files.errors.KeyExistsError: if a file
            ``new_key`` exists.
        :raises invenio_files_rest.errors.InvalidKeyError: if ``new_key`` is
            empty or too long.
        """
        self._check_key(new_key)
        self._check_writable()
        obj = self._get_object(old_key)
        if obj is None:
            raise KeyError(old_key)
        if self._get_object(new_key) is not None:
            raise KeyExistsError(new_key)
        self._ensure_filesmap()
        with db.session.begin_nested():
            # Like ObjectVersion.copy(), but passing the file instance itself
            # avoids a query (and an autoflush of the half-built object).
            new_obj = ObjectVersion.create(self.bucket, new_key, _file_id=obj.file)
            for tag in obj.tags:
                ObjectVersionTag.create(new_obj, tag.key, tag.value)
            ObjectVersion.delete(self.bucket, old_key)
        data = self.filesmap.get(old_key, {})
        self.filesmap = OrderedDict(
            (new_key if key == old_key else key, entry)
            for key, entry in self.filesmap.items()
        )
        self.file_cls(new_obj, self.filesmap.setdefault(new_key, data)).dumps()
        self._write_record()
        return new_obj

    def sort_by(self, *ids) -> None:
        """Update files order.

        Files named in ``ids`` come first, in that order; the others follow
        in their current order.

        :param ids: Keys or file ids (``file_id``) of the files.
        :raises KeyError: if an id names no file of the record.
        :raises ValueError: if a file is named twice.
        """
        objects = self._objects()
        by_key = {obj.key: obj for obj in objects}
        by_file_id = {str(obj.file_id): obj.key for obj in objects}
        order: list[str] = []
        seen: set[str] = set()
        for id_ in ids:
            key = id_ if isinstance(id_, str) and id_ in by_key else None
            key = key or by_file_id.get(str(id_))
            if key is None:
                raise KeyError(id_)
            if key in seen:
                raise ValueError(f"File {id_!r} is listed twice.")
            seen.add(key)
            order.append(key)
        order.extend(obj.key for obj in objects if obj.key not in seen)
        entries = [self._wrap(by_key[key]).data for key in order]
        self.filesmap = OrderedDict((entry["key"], entry) for entry in entries)
        self._write_record()
