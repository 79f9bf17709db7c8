# SPDX-License-Identifier: MIT
"""API for manipulating files associated to a record.

The bucket is the source of truth for which files a record has; the record's
``_files`` list holds their order and per-file metadata. Reads query the
bucket once per operation (one statement whatever the number of files); writes
change the bucket through Invenio-Files-REST inside a savepoint and then update
``_files`` in memory, without re-reading the bucket. Nothing here commits: the
caller commits the session (and calls :meth:`Record.commit` to store the
record's JSON).
"""

from collections import OrderedDict
from collections.abc import Mapping
from copy import copy
from typing import Any

from flask import current_app
from invenio_db import db
from invenio_files_rest.errors import (
    BucketLockedError,
    InvalidKeyError,
    InvalidOperationError,
)
from invenio_files_rest.models import (
    Bucket,
    MultipartObject,
    ObjectVersion,
    ObjectVersionTag,
)
from invenio_records.api import Record as _Record
from invenio_records.errors import MissingModelError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import NoResultFound

from .errors import KeyExistsError
from .models import RecordsBuckets
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
        self.filesmap = OrderedDict(
            (entry["key"], entry)
            for entry in record.get("_files", [])
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
            db.session.query(ObjectVersion)
            .options(joinedload(ObjectVersion.file))
            .filter(
                ObjectVersion.bucket_id == self.bucket.id,
                ObjectVersion.key == key,
                ObjectVersion.is_head.is_(True),
                ObjectVersion.file_id.isnot(None),
            )
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
        return (
            db.session.query(ObjectVersion)
            .filter(
                ObjectVersion.bucket_id == self.bucket.id,
                ObjectVersion.is_head.is_(True),
                ObjectVersion.file_id.isnot(None),
            )
            .count()
        )

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

    def _write_record(self) -> None:
        """Write the in-memory file list to the record's ``_files``."""
        if self.filesmap or "_files" in self.record:
            self.record["_files"] = list(self.filesmap.values())

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
        self._check_key(key)
        self._check_stream(key, stream)
        self._check_writable()
        self._ensure_filesmap()
        obj = store_stream(self.bucket, key, stream)
        self.file_cls(obj, self.filesmap.setdefault(key, {})).dumps()
        self._write_record()

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


def store_stream(bucket: Bucket, key: str, stream, **kwargs) -> ObjectVersion:
    """Store ``stream`` as a new version of ``key`` in ``bucket``, atomically.

    Runs inside a savepoint; if anything fails after the bytes reached
    storage, they are removed again so no orphan file is left behind.

    :returns: The new head :class:`~invenio_files_rest.models.ObjectVersion`.
    """
    storage = None
    try:
        with db.session.begin_nested():
            obj = ObjectVersion.create(bucket, key)
            obj.set_contents(stream, **kwargs)
            storage = obj.file.storage()
    except Exception:
        if storage is not None:
            remove_quietly(storage)
        raise
    return obj


def merge_multipart(multipart: MultipartObject, version_id=None) -> ObjectVersion:
    """Turn a completed multipart upload into a new version of its object.

    Like :meth:`~invenio_files_rest.models.MultipartObject.merge_parts`:
    computes the checksum, creates the object version and deletes the upload,
    in one savepoint.

    :returns: The new head :class:`~invenio_files_rest.models.ObjectVersion`.
    """
    multipart.file.update_checksum()
    with db.session.begin_nested():
        # Passing the file instance (not its id) avoids a query that would
        # autoflush the half-built object version.
        obj = ObjectVersion.create(
            multipart.bucket,
            multipart.key,
            _file_id=multipart.file,
            version_id=version_id,
        )
        multipart.delete()
    return obj


def remove_quietly(storage) -> None:
    """Remove a file's bytes from storage, logging (not raising) failures."""
    try:
        storage.delete()
    except Exception:
        current_app.logger.exception("Could not remove %s from storage.", storage)


class FilesMixin:
    """Implement files attribute for Record models.

    .. note::

       Implement ``_create_bucket()`` in subclass to allow files property to
       automatically create a bucket in case no bucket is present.
    """

    file_cls = FileObject
    """File class used to generate the instance of files."""

    files_iter_cls = FilesIterator
    """Files iterator class used to generate the files iterator."""

    def _create_bucket(self) -> Bucket | None:
        """Create a bucket when the record has none (default: don't)."""
        return None

    def _linked_bucket(self) -> Bucket | None:
        """Get the bucket the record is linked to (cached; one query)."""
        try:
            return self.__dict__["_linked_bucket_cache"]
        except KeyError:
            pass
        bucket = (
            db.session.query(Bucket)
            .join(RecordsBuckets, RecordsBuckets.bucket_id == Bucket.id)
            .filter(RecordsBuckets.record_id == self.id)
            .first()
        )
        if bucket is not None:
            self.__dict__["_linked_bucket_cache"] = bucket
        return bucket

    @property
    def files(self) -> FilesIterator | None:
        """Get files iterator.

        :returns: Files iterator, or ``None`` if the record has no bucket.
        :raises invenio_records.errors.MissingModelError: if the record has
            no model.
        """
        if self.model is None:
            raise MissingModelError()
        bucket = self._linked_bucket()
        if bucket is None:
            bucket = self._create_bucket()
            if bucket is None:
                return None
            RecordsBuckets.create(record=self.model, bucket=bucket)
            self.__dict__["_linked_bucket_cache"] = bucket
        return self.files_iter_cls(self, bucket=bucket, file_cls=self.file_cls)

    @files.setter
    def files(self, data: Mapping) -> None:
        """Add the files of ``data`` (``{key: stream}``) to an empty bucket.

        All files are added or none (one savepoint).

        :raises RuntimeError: if the record has no bucket, or its bucket
            already holds files.
        """
        current = self.files
        if current is None:
            raise RuntimeError("The record has no bucket.")
        if len(current) > 0:
            raise RuntimeError("Cannot replace the files of a record that has files.")
        for key, stream in data.items():
            current._check_key(key)
            current._check_stream(key, stream)
        before = self.get("_files")
        written = []
        try:
            with db.session.begin_nested():
                for key, stream in data.items():
                    current[key] = stream
                    written.append(current[key].obj.file.storage())
        except Exception:
            for storage in written:
                remove_quietly(storage)
            if before is None:
                self.pop("_files", None)
            else:
                self["_files"] = before
            raise


class Record(_Record, FilesMixin):
    """Record class with associated bucket.

    The record class implements a one-to-one relationship between a bucket
    and a record. A bucket is automatically created and associated with the
    record when the record is created with :meth:`Record.create` (unless
    ``with_bucket`` is set to ``False``).

    The bucket id is stored in the record metadata (by default in the
    ``_bucket`` key). You can implement your dump/load behavior for storing
    the bucket id in the record (or possibly somewhere else). You do this by
    creating a subclass of this class, and overriding the two classmethods
    :meth:`Record.dump_bucket` and :meth:`Record.load_bucket`.
    """

    _extensions = []

    @classmethod
    def create(cls, data, id_=None, with_bucket: bool = True, **kwargs) -> "Record":
        """Create a record and the associated bucket.

        The bucket comes from :meth:`create_bucket`; its id is stored in
        ``data`` with :meth:`dump_bucket` before the record row is written,
        and a :class:`~invenio_records_files.models.RecordsBuckets` row links
        the two. Everything happens in one savepoint; nothing is committed.

        :param with_bucket: Create a bucket automatically on record creation.
        """
        with db.session.begin_nested():
            bucket = cls.create_bucket(data) if with_bucket else None
            if bucket is not None:
                cls.dump_bucket(data, bucket)
            record = super().create(data, id_=id_, **kwargs)
            if bucket is not None:
                RecordsBuckets.create(record=record.model, bucket=bucket)
                record.__dict__["_linked_bucket_cache"] = bucket
        return record

    @classmethod
    def get_record(cls, id_, with_deleted: bool = False) -> "Record":
        """Retrieve the record by id, with its linked bucket in the same query.

        :param id_: record ID.
        :param with_deleted: If ``True`` then it includes deleted records.
        :raises sqlalchemy.orm.exc.NoResultFound: if there is no such record.
        """
        with db.session.no_autoflush:
            query = (
                db.session.query(cls.model_cls, Bucket)
                .outerjoin(RecordsBuckets, RecordsBuckets.record_id == cls.model_cls.id)
                .outerjoin(Bucket, Bucket.id == RecordsBuckets.bucket_id)
                .filter(cls.model_cls.id == id_)
            )
            if not with_deleted:
                query = query.filter(cls.model_cls.is_deleted != True)  # noqa: E712
            row = query.first()
            if row is None:
                raise NoResultFound()
            model, bucket = row
            record = cls(model.data, model=model)
            if bucket is not None:
                record.__dict__["_linked_bucket_cache"] = bucket
            return record

    @classmethod
    def create_bucket(cls, data) -> Bucket | None:
        """Create a bucket for this record.

        Override this method to provide more advanced bucket creation
        capabilities. This method may return a new or existing bucket, or may
        return ``None``, in case no bucket should be created.
        """
        return Bucket.create()

    @classmethod
    def dump_bucket(cls, data, bucket: Bucket) -> None:
        """Dump the bucket id into the record metadata.

        Override this method to provide custom behavior for storing the
        bucket id in the record metadata. By default the bucket id is stored
        in the ``_bucket`` key. If you override this method, make sure you
        also override :meth:`Record.load_bucket`.

        This method is called after the bucket is created, but before the
        record is created in the database.

        :param data: A dictionary of the record metadata.
        :param bucket: The created bucket for the record.
        """
        data["_bucket"] = str(bucket.id)

    @classmethod
    def load_bucket(cls, record) -> str:
        """Load the bucket id from the record metadata.

        Override this method to provide custom behavior for retrieving the
        bucket id from the record metadata. By default the bucket id is
        retrieved from the ``_bucket`` key. If you override this method, make
        sure you also override :meth:`Record.dump_bucket`.

        :param record: A record instance.
        """
        return record.get("_bucket", "")

    @property
    def bucket_id(self) -> str:
        """Get bucket id from record metadata."""
        return self.load_bucket(self)

    @property
    def bucket(self) -> Bucket | None:
        """Get bucket instance (cached)."""
        try:
            return self.__dict__["_bucket_cache"]
        except KeyError:
            pass
        bucket_id = self.bucket_id
        linked = self.__dict__.get("_linked_bucket_cache")
        if linked is not None and str(linked.id) == str(bucket_id):
            bucket = linked
        else:
            bucket = Bucket.get(bucket_id) if bucket_id else None
        self.__dict__["_bucket_cache"] = bucket
        return bucket

    def delete(self, force: bool = False) -> "Record":
        """Delete a record and also remove the RecordsBuckets if necessary.

        :param force: True to remove also the
            :class:`~invenio_records_files.models.RecordsBuckets` object.
        :returns: Deleted record.
        """
        if self.model is None:
            raise MissingModelError()
        with db.session.begin_nested():
            if force:
                db.session.query(RecordsBuckets).filter(
                    RecordsBuckets.record_id == self.id
                ).delete(synchronize_session=False)
                self.__dict__.pop("_linked_bucket_cache", None)
            return super().delete(force=force)
