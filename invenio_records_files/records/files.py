# SPDX-License-Identifier: MIT
"""The files of a record: a mapping-like view of its bucket.

The bucket is the source of truth for which files a record has; the record's
``_files`` (stored as one row per file, see
:class:`~invenio_records_files.models.FileEntry`) holds their order and
per-file metadata. Reads query the bucket once per operation, whatever the
number of files. Writes store the bytes first, then lock the record and its
bucket (:meth:`FilesState.lock <invenio_records_files.records.state.FilesState.lock>`),
change the bucket and the file's entry in a savepoint, and update
``record["_files"]`` in memory. Per-file metadata set through
:class:`FileObject` (or in ``record["_files"]``) is stored when the record is
committed. Nothing here commits.
"""

from collections import OrderedDict
from collections.abc import Iterable, KeysView, Mapping
from copy import copy
from typing import Any
from uuid import UUID

from invenio_db import db
from invenio_files_rest.models import Bucket, ObjectVersion, ObjectVersionTag
from sqlalchemy.orm import joinedload

from invenio_records_files.errors import (
    DeletedBucketError,
    KeyExistsError,
    LockedBucketError,
    MissingFileError,
)
from invenio_records_files.store import copying, entries
from invenio_records_files.store import keys as file_keys
from invenio_records_files.store.entries import MANAGED_FIELDS, describe
from invenio_records_files.store.keys import check_key
from invenio_records_files.store.publish import NewFile, publish, unpublish
from invenio_records_files.store.storage import (
    Destination,
    remove_quietly,
    write_file,
    written_file,
)


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
        return hasattr(type(self.obj), key) or key in MANAGED_FIELDS

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
        self.data.update(describe(self.obj))
        return self.data


class FilesIterator:
    """Iterator for files.

    A mapping-like view of the files in a record's bucket, in the record's
    file order. Every read runs a single query, whatever the number of files;
    every write runs a constant number of statements and updates the record's
    ``_files`` in memory (the caller commits).
    """

    def __init__(self, record, bucket: Bucket | None = None, file_cls=None) -> None:
        """Initialize iterator."""
        self._it = None
        self.record = record
        self.model = record.model
        self.file_cls = file_cls or FileObject
        self.bucket = bucket if bucket is not None else getattr(record, "bucket", None)
        self.filesmap = OrderedDict(file_keys.listed_entries(record.get("_files")))

    # -- reading ------------------------------------------------------------

    def _objects(self, bucket: Bucket | None = None) -> list[ObjectVersion]:
        """Load the bucket's files (one query), in the record's order."""
        return file_keys.sorted_files_from_bucket(
            bucket if bucket is not None else self.bucket, list(self.filesmap)
        )

    def _get_object(self, key: str) -> ObjectVersion | None:
        if not file_keys.is_storable(key):
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
            return fileobj
        return self.file_cls(obj, data if attach else dict(data))

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
    def keys(self) -> KeysView:
        """Return file keys: an ordered, set-like view.

        Read from the record's ``_files`` (no query); a record without
        ``_files`` gets the bucket's keys (one query).
        """
        if "_files" in self.record:
            return self.filesmap.keys()
        return dict.fromkeys(obj.key for obj in self._objects()).keys()

    def dumps(self, bucket: Bucket | None = None) -> list[dict]:
        """Serialize files from a bucket.

        :param bucket: A :class:`~invenio_files_rest.models.Bucket`, or its
            id (a UUID or a string), as version 4 took (default:
            ``self.bucket``).
        :returns: List of serialized files.

        .. versionchanged:: 5.0.0
           ``bucket`` may be an id again, as in version 4.0.1.
        """
        if bucket is not None and not isinstance(bucket, Bucket):
            bucket_id = UUID(str(bucket))
            bucket = (
                self.bucket
                if self.bucket.id == bucket_id
                else db.session.get(Bucket, bucket_id)
            )
            if bucket is None:
                return []  # no such bucket: no files, as version 4
        attach = bucket is None or bucket.id == self.bucket.id
        return [self._wrap(obj, attach=attach).dumps() for obj in self._objects(bucket)]

    def current_files(
        self, keys: Iterable[str] | None = None
    ) -> list[tuple[ObjectVersion, dict]]:
        """Return the current files with their per-file metadata, in order.

        One query (the head versions with their file instances); the order
        and the metadata come from ``_files``. Used to copy these files into
        another record (:meth:`copy_from`).

        :param keys: Only these files (still in this record's order).
        :raises KeyError: if a key of ``keys`` is not a current file.

        .. versionadded:: 5.0.0
        """
        current = self._objects()
        if keys is not None:
            by_key = {obj.key: obj for obj in current}
            wanted = dict.fromkeys(keys)
            for key in wanted:
                if key not in by_key:
                    raise KeyError(key)
            current = [obj for obj in current if obj.key in wanted]
        return [
            (obj, entries.custom(self.filesmap.get(obj.key, {}))) for obj in current
        ]

    # -- writing ------------------------------------------------------------

    def flush(self) -> None:
        """Flush changes to record.

        Rewrite the record's ``_files`` from the bucket, keeping the order and
        the per-file metadata. A record that never had files gets no
        ``_files`` key. The record's commit stores it.
        """
        files = self.dumps()
        self.filesmap = OrderedDict((entry["key"], entry) for entry in files)
        if files or "_files" in self.record:
            self._write_record()

    def _write_record(self) -> None:
        """Write the in-memory file list to the record's ``_files``."""
        dict.__setitem__(self.record, "_files", list(self.filesmap.values()))

    def _check_writable(self) -> None:
        if self.bucket.locked:
            raise LockedBucketError(self.bucket.id)
        if self.bucket.deleted:
            raise DeletedBucketError(self.bucket.id)

    def _lock(self) -> None:
        """Lock the record, then the bucket (:mod:`.state`)."""
        self.record._files_state.lock(self.record, self.bucket)

    def _stored(self, key: str, entry: dict | None) -> None:
        self.record._files_state.stored(self.record, key, entry)

    @staticmethod
    def _check_key(key: str) -> None:
        check_key(key)

    @staticmethod
    def _check_stream(key: str, stream) -> None:
        if not callable(getattr(stream, "read", None)):
            raise TypeError(
                f"File {key!r} needs a readable binary stream, "
                f"not {type(stream).__name__}."
            )

    def __setitem__(self, key: str, stream) -> None:
        """Add a file, or a new version of an existing one.

        The bytes are stored through Invenio-Files-REST. A new key goes to
        the end of the record's file order; a new version of an existing key
        keeps its position and its metadata.

        :raises TypeError: if ``stream`` is not a readable binary stream or
            ``key`` is not a string.
        :raises invenio_records_files.errors.InvalidFileKeyError: if ``key``
            is empty, too long or contains a control character.
        :raises invenio_files_rest.errors.InvalidOperationError: if the bucket
            is locked or deleted.
        :raises invenio_records_files.errors.TooManyFilesError: if ``key`` is
            new and the record holds ``RECORDS_FILES_MAX_FILES`` files.
        :raises invenio_files_rest.errors.FileSizeError: if the file exceeds
            the bucket's quota or largest file size.
        """
        self._add(key, stream)

    def _add(self, key: str, stream) -> ObjectVersion:
        """Do ``self[key] = stream``; return the new object version."""
        self._check_key(key)
        self._check_stream(key, stream)
        self._check_writable()
        destination = Destination.of(self.bucket)
        with written_file(
            destination, stream, size_limit=self.bucket.size_limit
        ) as fileinstance:
            self._lock()
            with db.session.begin_nested():
                (obj,) = publish(
                    self.bucket, [NewFile(key, file=fileinstance)], self.record.id
                )
        data = self.filesmap.setdefault(key, {})
        self.file_cls(obj, data).dumps()
        self._write_record()
        self._stored(key, data)
        return obj

    def update_all(self, data: Mapping) -> list[ObjectVersion]:
        """Add the files of ``data`` (``{key: stream}``), all or none.

        The bytes are written first; then one statement per table creates
        every file, whatever their number. Used by the ``files`` setter of a
        record without files.

        .. versionadded:: 5.0.0
        """
        for key, stream in data.items():
            self._check_key(key)
            self._check_stream(key, stream)
        self._check_writable()
        destination = Destination.of(self.bucket)
        written = []
        try:
            for key, stream in data.items():
                written.append(
                    (
                        key,
                        write_file(
                            destination, stream, size_limit=self.bucket.size_limit
                        ),
                    )
                )
            self._lock()
            with db.session.begin_nested():
                created = publish(
                    self.bucket,
                    [NewFile(key, file=fileinstance) for key, fileinstance in written],
                    self.record.id,
                )
        except BaseException:
            for _, fileinstance in written:
                remove_quietly(fileinstance.storage())
            raise
        for obj in created:
            data = self.filesmap.setdefault(obj.key, {})
            data.update(describe(obj))
            self._stored(obj.key, data)
        self._write_record()
        return created

    def copy_from(
        self, source: "FilesIterator", keys: Iterable[str] | None = None
    ) -> list[ObjectVersion]:
        """Add the current files of another record, sharing their bytes.

        Each file of ``source`` (all of them, or those of ``keys``, in the
        source's order) gets a new object version in this record's bucket
        that points at the same file instance: nothing is copied on storage.
        The files keep their metadata, MIME type and tags, and follow this
        record's files. A constant number of statements, whatever the number
        of files (see :mod:`invenio_records_files.store.copying`); nothing commits.

        A locked source is fine (a published record, typically); the source
        is only read.

        :param source: The ``files`` of another record.
        :param keys: Copy only these files.
        :returns: The new object versions.
        :raises invenio_records_files.errors.KeyExistsError: (409) if a key
            is already a file of this record; nothing is written.
        :raises KeyError: if a key of ``keys`` is not a file of ``source``.
        :raises invenio_files_rest.errors.InvalidOperationError: if this
            record's bucket is locked or deleted.

        .. versionadded:: 5.0.0
        """
        if not isinstance(source, FilesIterator):
            raise TypeError(
                f"copy_from() needs the files of a record, not {type(source).__name__}."
            )
        if isinstance(keys, str):
            raise TypeError("keys must be a collection of keys, not a string.")
        self._check_writable()
        self._lock()
        files = source.current_files(keys)
        with db.session.begin_nested():
            created = copying.copy_files(self.record.id, self.bucket, files)
        for obj, (_, data) in zip(created, files, strict=True):
            self.filesmap.pop(obj.key, None)
            entry = self.filesmap[obj.key] = dict(data)
            entry.update(describe(obj))
            self._stored(obj.key, entry)
        if created:
            self._write_record()
        return created

    def __delitem__(self, key: str) -> None:
        """Delete a file (Files-REST keeps its history as a delete marker).

        :raises KeyError: if the bucket has no file ``key``.
        :raises invenio_files_rest.errors.InvalidOperationError: if the bucket
            is locked or deleted.
        """
        self._check_writable()
        self._lock()
        try:
            with db.session.begin_nested():
                unpublish(self.bucket, key, record_id=self.record.id)
        except MissingFileError as error:
            raise KeyError(key) from error
        self.filesmap.pop(key, None)
        self._write_record()
        self._stored(key, None)

    def rename(self, old_key: str, new_key: str) -> ObjectVersion:
        """Rename a file.

        The bytes are not copied: the new object version points at the same
        file instance. The file keeps its metadata, its tags and its
        position.

        :param old_key: Old key that holds the object.
        :param new_key: New key that will hold the object.
        :returns: The object that has been renamed.
        :raises KeyError: if there is no file ``old_key``.
        :raises invenio_records_files.errors.KeyExistsError: (an
            ``AssertionError``) if a file ``new_key`` exists.
        :raises invenio_records_files.errors.InvalidFileKeyError: if
            ``new_key`` is empty, too long or contains a control character.
        """
        self._check_key(new_key)
        self._check_writable()
        self._lock()
        obj = self._get_object(old_key)
        if obj is None:
            raise KeyError(old_key)
        if self._get_object(new_key) is not None:
            raise KeyExistsError(new_key)
        with db.session.begin_nested():
            # Like ObjectVersion.copy(), but passing the file instance itself
            # avoids a query (and an autoflush of the half-built object).
            new_obj = ObjectVersion.create(self.bucket, new_key, _file_id=obj.file)
            for tag in obj.tags:
                ObjectVersionTag.create(new_obj, tag.key, tag.value)
            ObjectVersion.delete(self.bucket, old_key)
            entries.rename(self.record.id, old_key, new_key)
        data = self.filesmap.get(old_key, {})
        self.filesmap = OrderedDict(
            (new_key if key == old_key else key, entry)
            for key, entry in self.filesmap.items()
        )
        self.file_cls(new_obj, self.filesmap.setdefault(new_key, data)).dumps()
        self._write_record()
        state = self.record._files_state
        if state.base is not None and old_key in state.base:
            state.base = {
                (new_key if key == old_key else key): entry
                for key, entry in state.base.items()
            }
        self._stored(new_key, self.filesmap[new_key])
        return new_obj

    def sort_by(self, *ids) -> None:
        """Update files order.

        Files named in ``ids`` come first, in that order; the others follow
        in their current order. The bucket may be locked: only the record's
        ``_files`` changes.

        :param ids: Keys or file ids (``file_id``) of the files.
        :raises KeyError: if an id names no file of the record.
        :raises ValueError: if a file is named twice.
        :raises invenio_records_files.errors.DeletedBucketError: if the
            bucket was deleted.
        """
        objects_ = self._objects()
        by_key = {obj.key: obj for obj in objects_}
        by_file_id = {str(obj.file_id): obj.key for obj in objects_}
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
        order.extend(obj.key for obj in objects_ if obj.key not in seen)
        if self.bucket.deleted:
            raise DeletedBucketError(self.bucket.id)
        # Only the order changes (no object is written): a locked bucket, a
        # published record's, may be reordered, as in version 4.
        self.record._files_state.lock(self.record, self.bucket, check=False)
        state = self.record._files_state
        unlisted = [key for key in order if state.base is None or key not in state.base]
        if unlisted:
            entries.add_many(
                self.record.id,
                ((key, entries.custom(self.filesmap.get(key, {}))) for key in unlisted),
            )
        entries.set_order(self.record.id, order)
        listed = [self._wrap(by_key[key]).data for key in order]
        self.filesmap = OrderedDict((entry["key"], entry) for entry in listed)
        self._write_record()
        for entry in listed:
            if entry["key"] in unlisted:
                self._stored(entry["key"], entry)
        self.record._files_state.stored_order(order)
