# SPDX-License-Identifier: MIT
"""API for manipulating files associated to a record.

:class:`Record` owns a bucket; its :attr:`~FilesMixin.files` is a
:class:`FilesIterator` of :class:`FileObject` items (both defined in
:mod:`invenio_records_files.records.files`, and importable from here). Nothing here
commits: the caller commits the session (after :meth:`Record.commit`, which
stores the record's JSON).

The record's ``_files`` is stored as one row per file
(:class:`~invenio_records_files.models.FileEntry`) and filled in when the
record is loaded; the record's JSON column does not repeat it, so that a
change to one file writes one small row, whatever the number of files.
"""

from collections.abc import Mapping

from invenio_db import db
from invenio_files_rest.models import Bucket
from invenio_records.api import Record as _Record
from invenio_records.errors import MissingModelError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import NoResultFound, StaleDataError

from invenio_records_files.errors import FilesExistError, NoBucketError
from invenio_records_files.records.extension import FilesExtension
from invenio_records_files.records.files import FileObject, FilesIterator
from invenio_records_files.records.state import FilesState, attached_model, state_of
from invenio_records_files.store import entries
from invenio_records_files.store.keys import listed_entries
from invenio_records_files.store.models import RecordsBuckets

__all__ = ("FilesMixin", "Record")

_EXTENSION = FilesExtension()


class _Uncopied(list):
    """A list that :func:`copy.deepcopy` returns as it is."""

    def __deepcopy__(self, memo):
        return self


class FilesMixin:
    """Implement files attribute for Record models.

    .. note::

       Implement ``_create_bucket()`` in subclass to allow files property to
       automatically create a bucket in case no bucket is present.

    A record class with files runs the record extension
    :class:`~invenio_records_files.records.extension.FilesExtension`; a subclass
    that sets its own ``_extensions`` gets it put first in its list.
    """

    file_cls = FileObject
    """File class used to generate the instance of files."""

    files_iter_cls = FilesIterator
    """Files iterator class used to generate the files iterator."""

    def __init_subclass__(cls, **kwargs) -> None:
        """Make sure the files extension runs on every subclass."""
        super().__init_subclass__(**kwargs)
        extensions = getattr(cls, "_extensions", None)
        if isinstance(extensions, list) and _EXTENSION not in extensions:
            cls._extensions = [_EXTENSION, *extensions]

    @property
    def _files_state(self) -> FilesState:
        """The state of this record's files (:mod:`.state`)."""
        return state_of(self)

    def _create_bucket(self) -> Bucket | None:
        """Create a bucket when the record has none (default: don't)."""
        return None

    @property
    def files(self) -> FilesIterator | None:
        """Get files iterator.

        :returns: Files iterator, or ``None`` if the record has no bucket.
        :raises invenio_records.errors.MissingModelError: if the record has
            no model.
        """
        attached_model(self)  # a model of an earlier session is merged
        state = self._files_state
        bucket = state.bucket(self)
        if bucket is None:
            bucket = self._create_bucket()
            if bucket is None:
                return None
            RecordsBuckets.create(record=self.model, bucket=bucket)
            state.know_bucket(bucket, linked_now=True)
            state.base = {}
        if state.base is None:
            state.load(self)
        elif "_files" not in self and state.base:
            state.loaded(self, list(state.base.values()))
        state.check_entries(self)
        return self.files_iter_cls(self, bucket=bucket, file_cls=self.file_cls)

    @files.setter
    def files(self, data: Mapping) -> None:
        """Add the files of ``data`` (``{key: stream}``) to an empty bucket.

        All files are added or none (one savepoint).

        :raises invenio_records_files.errors.NoBucketError: if the record has
            no bucket (a ``TypeError``, as version 4 raised).
        :raises invenio_records_files.errors.FilesExistError: (a
            ``RuntimeError``) if the record already has files.
        """
        current = self.files
        if current is None:
            raise NoBucketError(self.id)
        if len(current) > 0:
            raise FilesExistError(self.id)
        current.update_all(data)


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

    _extensions = [_EXTENSION]

    @classmethod
    def create(cls, data, id_=None, with_bucket: bool = True, **kwargs) -> "Record":
        """Create a record and the associated bucket.

        The bucket comes from :meth:`create_bucket`; its id is stored in
        ``data`` with :meth:`dump_bucket` before the record row is written,
        and a :class:`~invenio_records_files.models.RecordsBuckets` row links
        the two. Nothing is committed.

        A bucket that already holds files (from a :meth:`create_bucket`
        override) gives the record a ``_files`` entry for each; the caller's
        ``data["_files"]`` provides their metadata and order (the fields the
        bucket provides are taken from the bucket).

        Entries of ``data["_files"]`` for files the bucket does not hold (or
        all of them, for a record created without a bucket) are kept too:
        the bucket may be linked after ``create()`` returns, as
        invenio-deposit links the snapshot it publishes
        (``RecordsBuckets.create(record=record.model, bucket=snapshot)``).
        They are checked when the record's files are first read, when the
        record is committed, or when the session commits, whichever comes
        first: a key the linked bucket lacks then raises
        :class:`~invenio_records_files.errors.UnknownFileEntryError` (a
        ``ValueError``).

        :param with_bucket: Create a bucket automatically on record creation.

        .. versionchanged:: 5.0.0
           ``_files`` is checked once the bucket is known, not in ``create()``.
        """
        given = data.pop("_files", None)
        bucket = cls.create_bucket(data) if with_bucket else None
        listed, unknown = [], []
        try:
            if bucket is not None:
                cls.dump_bucket(data, bucket)
                if given is not None or _overrides(cls, "create_bucket"):
                    listed, unknown = _describe(bucket, given)
            elif given is not None:
                unknown = list(listed_entries(given).values())
            record = super().create(data, id_=id_, **kwargs)
        except Exception:
            if bucket is not None and not _overrides(cls, "create_bucket"):
                db.session.delete(bucket)  # ours: nothing else refers to it
            raise
        state = record._files_state
        state.loaded_json = record.model.json
        if listed or unknown:
            entries.add_many(
                record.id,
                (
                    (e["key"], entries.custom(e))
                    for e in _in_given_order(given, listed, unknown)
                ),
            )
        state.expect_entries(record, [e["key"] for e in unknown])
        if bucket is None:
            if unknown:
                # The bucket is linked later (invenio-deposit's publish): the
                # caller's entries are kept, and checked once it is known.
                dict.__setitem__(record, "_files", [dict(e) for e in unknown])
                state.forget()
            else:
                state.know_bucket(None)
                state.base = {}
            return record
        db.session.add(RecordsBuckets(record=record.model, bucket=bucket))
        state.know_bucket(bucket, linked_now=True)
        if listed or given is not None:
            dict.__setitem__(record, "_files", [])
        state.loaded(record, listed)
        return record

    @classmethod
    def get_record(cls, id_, with_deleted: bool = False) -> "Record":
        """Retrieve the record by id, with its bucket and its ``_files``.

        Two queries: the record with its linked bucket, then its files.

        :param id_: record ID.
        :param with_deleted: If ``True`` then it includes deleted records.
        :raises sqlalchemy.orm.exc.NoResultFound: if there is no such record.
        """
        (record,) = cls._load([id_], with_deleted=with_deleted, one=True)
        return record

    @classmethod
    def get_records(cls, ids, with_deleted: bool = False) -> list["Record"]:
        """Retrieve several records by id, with their buckets and ``_files``.

        Three queries at most, whatever the number of records and files.
        """
        return cls._load(list(ids), with_deleted=with_deleted)

    @classmethod
    def _load(
        cls, ids: list, with_deleted: bool = False, one: bool = False, files=True
    ) -> list:
        with db.session.no_autoflush:
            query = (
                db.session.query(cls.model_cls, Bucket)
                .outerjoin(RecordsBuckets, RecordsBuckets.record_id == cls.model_cls.id)
                .outerjoin(Bucket, Bucket.id == RecordsBuckets.bucket_id)
                .filter(cls.model_cls.id.in_(ids))
            )
            if not with_deleted:
                query = query.filter(cls.model_cls.is_deleted != True)  # noqa: E712
            if not files:  # for writers: where new files go
                query = query.options(joinedload(Bucket.location))
            rows = query.all()
            if one and not rows:
                raise NoResultFound()
            records, seen = [], set()
            for model, bucket in rows:
                if model.id in seen:
                    continue  # linked to several buckets: the first one
                seen.add(model.id)
                record = cls(model.data, model=model)
                state = record._files_state
                state.know_bucket(bucket)
                state.loaded_json = model.json
                records.append(record)
            if not files:
                return records
            linked = {
                r.id: r._files_state.bucket(r).id
                for r in records
                if r._files_state.bucket(r) is not None
            }
            stored = entries.load_many(linked)
            for record in records:
                record._files_state.loaded(record, stored.get(record.id, []))
        return records

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
        """Get bucket instance (the linked one, when the ids agree: no query)."""
        bucket_id = self.bucket_id
        if not bucket_id:
            return None
        linked = self._files_state.bucket(self) if self.model is not None else None
        if linked is not None and str(linked.id) == str(bucket_id):
            return linked
        return Bucket.get(bucket_id)

    def _validate(self, format_checker=None, validator=None, use_model=False):
        """Validate the record, ``_files`` included; store it without ``_files``.

        ``_files`` lives in its own rows (see the module's documentation);
        the JSON keeps ``"_files": []`` only for a record whose files were
        all removed, so that it still reads as a record without files.
        """
        files = dict.get(self, "_files")
        uncopied = isinstance(files, list) and files and not self.model_cls.encoder
        if use_model or not uncopied:
            json = super()._validate(
                format_checker=format_checker, validator=validator, use_model=use_model
            )
        else:
            # Invenio-Records deep-copies the record to validate it; ``_files``
            # is validated as it is (it is not stored in the JSON), without a
            # copy of every entry.
            dict.__setitem__(self, "_files", _Uncopied(files))
            try:
                json = super()._validate(
                    format_checker=format_checker, validator=validator
                )
            finally:
                dict.__setitem__(self, "_files", files)
        if isinstance(json, dict) and json.get("_files", []) != []:
            json = {key: value for key, value in json.items() if key != "_files"}
        return json

    def commit(self, **kwargs) -> "Record":
        """Store changes of the record, keeping the server-managed fields.

        The bucket fields (:meth:`dump_bucket`) and, in ``_files``, the keys
        and the fields the bucket provides are managed by the server: a
        change to them is not stored (see
        :meth:`~invenio_records_files.records.state.FilesState.before_commit`). The
        per-file metadata and the order of ``_files`` are stored.

        When another transaction changed only the record's files since it
        was loaded, the commit is retried once on the new version (the
        ``before_record_update`` signal is then sent again); a concurrent
        change of the metadata raises ``StaleDataError``, as in
        Invenio-Records.

        .. versionchanged:: 5.0.0
        """
        try:
            return super().commit(**kwargs)
        except StaleDataError:
            if self.model is None or not self._files_state.catch_up_after_conflict(
                self
            ):
                raise
        return super().commit(**kwargs)

    def delete(self, force: bool = False, remove_bucket: bool = False) -> "Record":
        """Delete a record and also remove the RecordsBuckets if necessary.

        :param force: True to remove also the
            :class:`~invenio_records_files.models.RecordsBuckets` object.
        :param remove_bucket: With ``force``, also remove the bucket and its
            objects, unless another record links to the bucket; the stored
            bytes are removed after the transaction commits.
        :returns: Deleted record.
        :raises ValueError: if ``remove_bucket`` is given without ``force``.

        .. versionchanged:: 5.0.0
           ``remove_bucket``.
        """
        if self.model is None:
            raise MissingModelError()
        if remove_bucket and not force:
            raise ValueError("remove_bucket=True needs force=True.")
        self._files_state.removing_bucket = remove_bucket
        try:
            return super().delete(force=force)
        finally:
            self._files_state.removing_bucket = False


def _overrides(cls: type, name: str) -> bool:
    """Tell whether ``cls`` overrides :class:`Record`'s classmethod ``name``."""
    return getattr(cls, name).__func__ is not getattr(Record, name).__func__


def _describe(bucket: Bucket, given) -> tuple[list[dict], list[dict]]:
    """Return ``_files`` for a new record on ``bucket`` (its current files).

    :param given: The caller's ``_files`` (metadata and order), or ``None``.
    :returns: The entries of the bucket's files, and those of ``given`` whose
        key the bucket lacks (checked later, see
        :meth:`~invenio_records_files.records.state.FilesState.check_entries`).
    """
    heads = entries.heads(bucket.id)
    listed, unknown = {}, []
    for key, entry in listed_entries(given).items():
        if key in heads:
            listed[key] = {**entries.custom(entry), **heads[key]}
        else:
            unknown.append(entry)
    listed.update((key, head) for key, head in heads.items() if key not in listed)
    return list(listed.values()), unknown


def _in_given_order(given, listed: list[dict], unknown: list[dict]) -> list[dict]:
    """Return the entries of ``listed`` and ``unknown`` in ``given``'s order."""
    by_key = {e["key"]: e for e in [*listed, *unknown]}
    order = [key for key in listed_entries(given) if key in by_key]
    order += [key for key in by_key if key not in set(order)]
    return [by_key[key] for key in order]
