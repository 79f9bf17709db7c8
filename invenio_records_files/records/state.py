# SPDX-License-Identifier: MIT
"""What a record knows about its files, and every lock writers take.

Each record object with files owns one :class:`FilesState` (see
:attr:`FilesMixin._files_state <invenio_records_files.api.FilesMixin>`). It
is the only place that holds:

* the bucket linked to the record (loaded once);
* whether this transaction holds the record's row lock and its bucket's;
* the ``_files`` entries as stored (``base``), to tell what the caller
  changed in ``record["_files"]`` when the record is committed;
* the record's JSON as loaded, to tell a concurrent change of the files
  (harmless) from a concurrent change of the metadata (a conflict).

What it knows about the database lasts as long as the transaction or
savepoint it was learnt in (:func:`invenio_records_files.store.transactions.stands`):
after a rollback the state forgets the lock, and a bucket created in the
rolled back savepoint.

The lock order is the same for every writer: the record's row, then the
bucket's row, then an upload (:mod:`invenio_records_files.store.locks`
holds the order and every ``SELECT ... FOR UPDATE``).

.. versionadded:: 5.0.0
"""

from copy import deepcopy
from types import SimpleNamespace
from typing import TYPE_CHECKING
from uuid import UUID
from weakref import WeakKeyDictionary

from invenio_db import db
from invenio_files_rest.models import Bucket
from invenio_records.errors import MissingModelError
from sqlalchemy import event, inspect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm.attributes import set_committed_value

from invenio_records_files.errors import (
    InvalidFileKeyError,
    RecordGoneError,
    UnknownFileEntryError,
)
from invenio_records_files.store import entries
from invenio_records_files.store.keys import check_key, is_storable
from invenio_records_files.store.locks import check_writable, lock_row
from invenio_records_files.store.models import RecordsBuckets
from invenio_records_files.store.transactions import before_commit, current, stands

if TYPE_CHECKING:
    from invenio_records_files.records.record import FilesMixin

_UNKNOWN = object()
_STATES: WeakKeyDictionary = WeakKeyDictionary()
_BUCKET_FIELDS: dict[type, tuple[str, ...]] = {}


def state_of(record: "FilesMixin") -> "FilesState":
    """Return the files state of ``record``.

    The state belongs to the record's model (its database row in this
    session), so that record objects made from the same model, such as the
    one :meth:`~invenio_records.api.Record.revert` returns, share it.
    """
    model = record.model
    if model is None:
        return FilesState()
    state = _STATES.get(model)
    if state is None:
        state = _STATES[model] = FilesState()
    return state


def bucket_fields(record_class: type) -> tuple[str, ...]:
    """Return the fields ``record_class.dump_bucket()`` writes (``_bucket``)."""
    fields = _BUCKET_FIELDS.get(record_class)
    if fields is None:
        dump = getattr(record_class, "dump_bucket", None)
        probe: dict = {}
        if dump is not None:
            try:
                dump(probe, SimpleNamespace(id=UUID(int=0)))
            except Exception:
                probe = {"_bucket": None}
        fields = _BUCKET_FIELDS[record_class] = tuple(probe)
    return fields


def metadata_of(record_class: type, json: dict | None) -> dict:
    """Return ``json`` without the fields managed by the server."""
    managed = {"_files", *bucket_fields(record_class)}
    return {key: value for key, value in (json or {}).items() if key not in managed}


_NO_FILES: tuple = ()


def legacy_files(record: "FilesMixin") -> list | tuple:
    """Return the ``_files`` list an older version stored in the JSON (or ``()``)."""
    listed = (record.model.json or {}).get("_files") if record.model else None
    return listed if isinstance(listed, list) and listed else _NO_FILES


def refuse_unstorable_key(key: str) -> None:
    """Refuse a key of ``_files`` that no row can have (NUL, a lone surrogate).

    Other keys the bucket does not have are dropped; these would fail in the
    database (``500``) before they could be looked up.

    :raises invenio_records_files.errors.InvalidFileKeyError: (``400``).
    """
    if not is_storable(key):
        check_key(key)  # raises with the reason
        raise InvalidFileKeyError(key, "Filename cannot be stored.")


def record_identity(model):
    """Return the id of ``model`` without loading it."""
    identity = inspect(model).identity
    return identity[0] if identity else None


def attached_model(record: "FilesMixin"):
    """Return the record's model, in the current session.

    A model loaded in an earlier session (an app context, request or task
    that ended) is merged into this one, as Invenio-Records' ``commit()``
    merges it; the record then uses the merged model (it keeps its files
    state).

    :raises invenio_records.errors.MissingModelError: without a model.
    """
    model = record.model
    if model is None:
        raise MissingModelError()
    if not inspect(model).detached:
        return model
    session = db.session()
    merged = session.identity_map.get(inspect(model).key)  # merged by the caller
    if merged is None:
        merged = session.merge(model)
    state = _STATES.get(model)
    if state is not None and merged not in _STATES:
        _STATES[merged] = state
    record.model = merged
    return merged


def restore_bucket_fields(record: "FilesMixin") -> None:
    """Put back the bucket fields of ``record`` as they are stored."""
    stored = record.model.json or {}
    for field in bucket_fields(type(record)):
        if field in stored:
            dict.__setitem__(record, field, deepcopy(stored[field]))
        else:
            dict.pop(record, field, None)


class FilesState:
    """The state of one record object's files within the current transaction."""

    def __init__(self) -> None:
        """Start knowing nothing."""
        self._bucket = _UNKNOWN
        self._bucket_learnt_in = None
        self._locked_in = None
        self._locked_bucket = None
        self.base: dict[str, dict] | None = None
        """Entries of ``_files`` as stored, by key in order (``None``: not
        loaded)."""
        self.loaded_json = None
        """The record's JSON as loaded or last committed."""
        self.removing_bucket = False
        """Set by ``delete(remove_bucket=True)`` for the delete hooks."""
        self.unchecked: list[str] = []
        """Keys ``Record.create()`` was given in ``_files`` whose files were
        not yet found in the bucket (see :meth:`check_entries`)."""

    # -- the bucket ----------------------------------------------------------

    def bucket(self, record: "FilesMixin") -> Bucket | None:
        """Return the bucket linked to ``record`` (one query, then cached).

        A bucket learnt in another session (the record was loaded in an
        earlier app context or request) is looked up again in this one.
        """
        session = db.session()
        if (
            self._bucket is not _UNKNOWN
            and (
                self._bucket_learnt_in is None
                or stands(session, self._bucket_learnt_in)
            )
            and (self._bucket is None or inspect(self._bucket).session is session)
        ):
            return self._bucket
        bucket = None
        if record.id is not None:
            bucket = (
                db.session.query(Bucket)
                .join(RecordsBuckets, RecordsBuckets.bucket_id == Bucket.id)
                .filter(RecordsBuckets.record_id == record.id)
                .first()
            )
        self.know_bucket(bucket)
        return bucket

    def know_bucket(self, bucket: Bucket | None, linked_now: bool = False) -> None:
        """Remember the linked bucket (``linked_now``: linked in this transaction)."""
        self._bucket = bucket
        self._bucket_learnt_in = current(db.session()) if linked_now else None

    def linked(self, bucket: Bucket | None) -> None:
        """Learn that the record was just linked to ``bucket`` (files unread)."""
        self.know_bucket(bucket, linked_now=True)
        self.base = None

    def forget(self) -> None:
        """Forget the bucket and the files (after the record lost its bucket)."""
        self._bucket = _UNKNOWN
        self.base = None
        self._locked_bucket = None

    # -- locks ---------------------------------------------------------------

    def holds_lock(self, bucket: Bucket | None = None) -> bool:
        """Tell whether this transaction holds the record's (and bucket's) lock."""
        if not stands(db.session(), self._locked_in):
            return False
        return bucket is None or self._locked_bucket is bucket

    def lock(
        self,
        record: "FilesMixin",
        bucket: Bucket | None = None,
        reload: bool = False,
        check: bool = True,
    ) -> None:
        """Lock the record's row, then ``bucket``'s, and reload both.

        The record's version is brought up to date when another transaction
        changed only its files meanwhile; after a concurrent change of the
        metadata the version is left as it was, so that committing the
        record raises ``StaleDataError`` as Invenio-Records does. With
        ``reload``, the record's dictionary is replaced by the stored
        metadata (for writers that change only the files).

        :param check: Refuse a locked or deleted bucket.
        :raises invenio_records_files.errors.RecordGoneError: if the record
            was deleted.
        :raises invenio_records_files.errors.LockedBucketError: if the bucket
            is locked.
        :raises invenio_records_files.errors.DeletedBucketError: if the
            bucket was deleted.
        """
        if not self.holds_lock(bucket):
            session = db.session()
            if not stands(session, self._locked_in):
                self._lock_record(record, reload)
            if bucket is not None:
                lock_row(bucket)
            self._locked_in = current(session)
            self._locked_bucket = bucket
        if check and bucket is not None:
            check_writable(bucket)

    def _lock_record(self, record: "FilesMixin", reload: bool) -> None:
        model = attached_model(record)
        known = inspect(model).dict.get("version_id")
        before = self.loaded_json if self.loaded_json is not None else model.json
        try:
            lock_row(model)
        except InvalidRequestError as error:
            raise RecordGoneError(record_identity(model)) from error
        if model.json is None:
            raise RecordGoneError(model.id)
        if reload:
            dict.clear(record)
            dict.update(record, model.data)
            self.base = None
        elif (
            known is not None
            and known != model.version_id
            and metadata_of(type(record), model.json)
            != metadata_of(type(record), before)
        ):
            # A concurrent change of the metadata: commit() will say so.
            set_committed_value(model, "version_id", known)
            return
        self.loaded_json = model.json

    def catch_up_after_conflict(self, record: "FilesMixin") -> bool:
        """Take a concurrent change that touched only the files into account.

        Called when committing ``record`` failed with ``StaleDataError``:
        locks and reloads the record's row and, if its metadata is still the
        one this record started from, keeps the new version so that the
        commit can be retried.

        :returns: Whether the commit can be retried.
        """
        before = self.loaded_json
        if before is None:
            return False
        model = attached_model(record)
        try:
            lock_row(model)
        except InvalidRequestError:
            return False
        if model.json is None or metadata_of(type(record), model.json) != metadata_of(
            type(record), before
        ):
            return False
        self.loaded_json = model.json
        self._locked_in = current(db.session())
        return True

    # -- the files -----------------------------------------------------------

    def load(self, record: "FilesMixin") -> None:
        """Fill ``record["_files"]`` from the stored entries and the bucket."""
        bucket = self.bucket(record)
        if bucket is None:
            self.check_entries(record)
            self.base = {}
            return
        self.loaded(record, entries.load(record.id, bucket.id))
        self.check_entries(record)

    def loaded(self, record: "FilesMixin", stored: list[dict]) -> None:
        """Set ``record["_files"]`` to ``stored`` (entries loaded for it).

        A record without entries has ``_files`` only if its JSON says so
        (``[]``, once all its files were removed). A record whose JSON still
        has a ``_files`` list (written by an older version) keeps the
        entries of that list that have no row yet; they are stored as rows
        when the record is next committed.
        """
        self.base = {entry["key"]: entry for entry in stored}
        listed = [entries.copy_json(entry) for entry in stored]
        legacy = legacy_files(record)
        seen = set(self.base)
        for entry in legacy:
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("key"), str)
                and entry["key"] not in seen
            ):
                seen.add(entry["key"])
                listed.append(entries.copy_json(entry))
        if listed or "_files" in record or legacy is not _NO_FILES:
            dict.__setitem__(record, "_files", listed)

    # -- entries given to Record.create() ----------------------------------

    def expect_entries(self, record: "FilesMixin", keys: list[str]) -> None:
        """Check ``keys`` (given to ``create()``) once the bucket is known.

        They are checked when the record's files are first read, when the
        record is committed, or else when the session commits.
        """
        if not keys:
            return
        self.unchecked = list(keys)
        before_commit(db.session(), lambda: self.check_entries(record))

    def check_entries(self, record: "FilesMixin") -> None:
        """Refuse keys given to ``create()`` that the linked bucket lacks.

        :raises invenio_records_files.errors.UnknownFileEntryError: naming
            the first such key.
        """
        if not self.unchecked:
            return
        bucket = self.bucket(record)
        if bucket is None:
            missing = self.unchecked
        else:
            present = (
                self.base
                if self.base is not None
                else entries.heads(bucket.id, self.unchecked)
            )
            missing = [key for key in self.unchecked if key not in present]
        if missing:
            raise UnknownFileEntryError(record.id, missing[0])
        self.unchecked = []

    def stored(self, record: "FilesMixin", key: str, entry: dict | None) -> None:
        """Record that the entry of ``key`` is now stored as ``entry``."""
        if self.base is None:
            return
        if entry is None:
            self.base.pop(key, None)
        else:
            self.base[key] = entries.copy_json(entry)

    def stored_order(self, keys: list[str]) -> None:
        """Record that the stored entries are now in the order of ``keys``."""
        if self.base is not None:
            self.base = {key: self.base[key] for key in keys if key in self.base}

    def before_commit(self, record: "FilesMixin") -> None:
        """Keep the managed fields and store what changed in ``_files``.

        The bucket fields (:meth:`~invenio_records_files.api.Record.dump_bucket`)
        are dumped again from the linked bucket. In ``record["_files"]``, the
        per-file metadata and the order are the caller's to change; the
        fields the bucket provides and the set of keys are not: they are
        restored (an entry for a key the bucket does not have is dropped, a
        missing entry is put back). Entries whose metadata changed are
        written, after locking the record then the bucket.
        """
        bucket = self.bucket(record)
        self.check_entries(record)
        if bucket is not None and hasattr(record, "dump_bucket"):
            record.dump_bucket(record, bucket)
        else:
            restore_bucket_fields(record)
        if self.base is None:
            given = record.get("_files")
            if legacy_files(record) is _NO_FILES and (given is None or given == []):
                return  # not loaded, not changed: nothing to store
            if bucket is None:
                return
            self.load(record)
            if given is not None:
                dict.__setitem__(record, "_files", given)
        if bucket is None:
            return
        self._store_files(record, bucket)

    def _store_files(self, record: "FilesMixin", bucket: Bucket) -> None:
        base = self.base
        given = record.get("_files")
        if not isinstance(given, list):
            if base or "_files" in record:
                dict.__setitem__(
                    record, "_files", [entries.copy_json(e) for e in base.values()]
                )
            return
        listed: dict[str, dict] = {}
        for entry in given:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                listed.setdefault(entry["key"], entry)
        new_keys = [key for key in listed if key not in base]
        for key in new_keys:
            refuse_unstorable_key(key)
        heads = entries.heads(bucket.id, new_keys) if new_keys else {}
        added = [key for key in new_keys if key in heads]
        present = [key for key in listed if key in base or key in heads]
        natural = [*base, *added]
        if present == [key for key in natural if key in listed]:
            order = natural  # the relative order is unchanged: nothing moves
        else:
            order = [*present, *(key for key in base if key not in listed)]
        # An entry equal to its stored copy (the usual case) is unchanged.
        edited = [key for key in listed if key in base and listed[key] != base[key]]
        changed = {
            key: entries.custom(listed[key])
            for key in edited
            if entries.custom(listed[key]) != entries.custom(base[key])
        }
        if changed or added or order != natural:
            # Only entries are written: a locked bucket's may change.
            self.lock(record, bucket, check=False)
            entries.set_data(record.id, changed)
            entries.add_many(
                record.id, [(key, entries.custom(listed[key])) for key in added]
            )
            if order != natural:
                entries.set_order(record.id, order)
        final, stored = [], {}
        for key in order:
            entry = listed.get(key)
            if key in base and entry is not None and entry == base[key]:
                final.append(entry)  # unchanged: its stored copy stays
                stored[key] = base[key]
                continue
            managed = base[key] if key in base else heads[key]
            entry = entries.custom(managed if entry is None else entry)
            entry.update((field, managed[field]) for field in entries.MANAGED_FIELDS)
            final.append(entry)
            stored[key] = entries.copy_json(entry)
        dict.__setitem__(record, "_files", final)
        self.base = stored


@event.listens_for(RecordsBuckets, "init")
def _on_link(target, args, kwargs) -> None:
    """Tell the state of a record linked to a bucket after it was loaded.

    ``RecordsBuckets.create(record=record.model, bucket=...)`` after
    ``Record.create(..., with_bucket=False)`` (as invenio-deposit publishes)
    gives the record's ``files`` that bucket; a link made with ids
    (``RecordsBuckets(record_id=..., bucket_id=...)``) makes the record look
    its bucket up again.
    """
    model = kwargs.get("record")
    if model is not None:
        state = _STATES.get(model)
        if state is not None:
            state.linked(kwargs.get("bucket"))
        return
    record_id = kwargs.get("record_id")
    if record_id is None:
        return
    for known, state in list(_STATES.items()):
        if str(record_identity(known)) == str(record_id):
            state.forget()
