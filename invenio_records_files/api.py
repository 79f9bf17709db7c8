# SPDX-License-Identifier: MIT
"""API for manipulating files associated to a record.

:class:`Record` owns a bucket; its :attr:`~FilesMixin.files` is a
:class:`FilesIterator` of :class:`FileObject` items (both defined in
:mod:`invenio_records_files.files`, and importable from here). Nothing here
commits: the caller commits the session (after :meth:`Record.commit`, which
stores the record's JSON).
"""

from collections.abc import Mapping
from copy import deepcopy

from flask import current_app
from invenio_db import db
from invenio_files_rest.models import Bucket
from invenio_records.api import Record as _Record
from invenio_records.errors import MissingModelError
from invenio_records.signals import after_record_revert, before_record_revert
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import NoResultFound

from .files import FileObject, FilesIterator
from .models import RecordsBuckets
from .storage import remove_bucket as remove_bucket_and_files
from .storage import remove_quietly
from .sync import MANAGED_FIELDS, keep_managed_fields

__all__ = ("FileObject", "FilesIterator", "FilesMixin", "Record")


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
                    written.append(current._add(key, stream).file.storage())
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
        # The file list describes the bucket: never taken from the caller.
        data.pop("_files", None)
        with db.session.begin_nested():
            bucket = cls.create_bucket(data) if with_bucket else None
            if bucket is not None:
                cls.dump_bucket(data, bucket)
            record = super().create(data, id_=id_, **kwargs)
            if bucket is not None:
                RecordsBuckets.create(record=record.model, bucket=bucket)
                record.__dict__["_linked_bucket_cache"] = bucket
                if bucket.size:  # an existing bucket with files
                    record.files.flush()
                    record.commit()
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

    def commit(self, **kwargs) -> "Record":
        """Store changes of the record, keeping the server-managed fields.

        ``_bucket`` and ``_files`` cannot be removed or changed through the
        record's dictionary: they are restored from the stored record (see
        :func:`~invenio_records_files.sync.keep_managed_fields`), unless the
        files were changed through :attr:`files` of this record object. The
        record row is locked until the end of the transaction.

        .. versionchanged:: 2.0.0
           ``_bucket`` and ``_files`` are managed by the server.
        """
        if self.model is None or self.model.is_deleted:
            raise MissingModelError()
        with db.session.begin_nested():
            keep_managed_fields(self)
            super().commit(**kwargs)
        self.__dict__.pop("_files_changed", None)
        return self

    def revert(self, revision_id: int) -> "Record":
        """Revert the record's metadata to a revision, keeping its files.

        ``_bucket`` and ``_files`` describe the bucket as it is now, so they
        are kept rather than reverted. Signals and extensions run as in
        Invenio-Records.

        .. versionchanged:: 2.0.0
        """
        if self.model is None:
            raise MissingModelError()
        revision = self.revisions[revision_id]
        json = {
            field: value
            for field, value in (revision.model.json or {}).items()
            if field not in MANAGED_FIELDS
        }
        json.update(
            (field, deepcopy(value))
            for field, value in (self.model.json or {}).items()
            if field in MANAGED_FIELDS
        )
        app = current_app._get_current_object()
        with db.session.begin_nested():
            if self.send_signals:
                before_record_revert.send(app, record=self)
            for extension in self._extensions:
                extension.pre_revert(self, revision)
            self.model.json = json
            flag_modified(self.model, "json")
            db.session.merge(self.model)
        if self.send_signals:
            after_record_revert.send(app, record=self)
        record = self.__class__(self.model.data, model=self.model)
        for extension in self._extensions:
            extension.post_revert(record, revision)
        return record

    def delete(self, force: bool = False, remove_bucket: bool = False) -> "Record":
        """Delete a record and also remove the RecordsBuckets if necessary.

        :param force: True to remove also the
            :class:`~invenio_records_files.models.RecordsBuckets` object.
        :param remove_bucket: With ``force``, also remove the bucket and its
            objects, unless another record links to the bucket; the stored
            bytes are removed after the transaction commits.
        :returns: Deleted record.
        :raises ValueError: if ``remove_bucket`` is given without ``force``.

        .. versionchanged:: 2.0.0
           ``remove_bucket``.
        """
        if self.model is None:
            raise MissingModelError()
        if remove_bucket and not force:
            raise ValueError("remove_bucket=True needs force=True.")
        with db.session.begin_nested():
            bucket = self._linked_bucket() if remove_bucket else None
            if force:
                db.session.query(RecordsBuckets).filter(
                    RecordsBuckets.record_id == self.id
                ).delete(synchronize_session=False)
                self.__dict__.pop("_linked_bucket_cache", None)
            result = super().delete(force=force)
            if bucket is not None and not _is_linked(bucket):
                remove_bucket_and_files(bucket)
        return result


def _is_linked(bucket: Bucket) -> bool:
    """Tell whether a record links to ``bucket``."""
    return (
        db.session.query(RecordsBuckets.record_id)
        .filter(RecordsBuckets.bucket_id == bucket.id)
        .first()
        is not None
    )
