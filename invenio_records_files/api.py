# SPDX-License-Identifier: MIT
"""API for manipulating files associated to a record.

:class:`Record` owns a bucket; its :attr:`~FilesMixin.files` is a
:class:`FilesIterator` of :class:`FileObject` items (both defined in
:mod:`invenio_records_files.files`, and importable from here). Nothing here
commits: the caller commits the session (after :meth:`Record.commit`, which
stores the record's JSON).
"""

from collections.abc import Mapping

from invenio_db import db
from invenio_files_rest.models import Bucket
from invenio_records.api import Record as _Record
from invenio_records.errors import MissingModelError
from sqlalchemy.orm.exc import NoResultFound

from .files import FileObject, FilesIterator
from .models import RecordsBuckets
from .storage import remove_quietly

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
