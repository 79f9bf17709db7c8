# SPDX-License-Identifier: MIT
"""The record extension that keeps a record's files in step with the record.

Invenio-Records calls it at its documented extension points; it delegates to
the record's :class:`~invenio_records_files.records.state.FilesState`:

* ``pre_commit``: keep the server-managed fields, store the per-file
  metadata and order changed in ``record["_files"]``;
* ``post_commit``: remember the JSON just stored;
* ``pre_delete``: lock the record, then, for a hard delete, remove its file
  entries and its link to the bucket (and the bucket itself with
  ``delete(force=True, remove_bucket=True)``);
* ``post_revert``: give the reverted record its current files (``_files``
  describes the bucket as it is now, it is not reverted).

.. versionadded:: 5.0.0
"""

from invenio_db import db
from invenio_records.extensions import RecordExtension

from invenio_records_files.records.state import state_of
from invenio_records_files.store import entries
from invenio_records_files.store.models import RecordsBuckets
from invenio_records_files.store.storage import remove_bucket


class FilesExtension(RecordExtension):
    """Keep ``_bucket`` and ``_files`` managed by the server (see module)."""

    def pre_commit(self, record, **kwargs) -> None:
        """Restore the managed fields; store changed per-file metadata."""
        if record.model is not None:
            state_of(record).before_commit(record)

    def post_commit(self, record) -> None:
        """Remember the stored JSON (to tell concurrent changes apart)."""
        state_of(record).loaded_json = record.model.json

    def pre_delete(self, record, force: bool = False) -> None:
        """Lock the record; on a hard delete remove its entries and link."""
        state = state_of(record)
        bucket = state.bucket(record) if state.removing_bucket else None
        state.lock(record, bucket, reload=True, check=False)
        if not force:
            return
        entries.remove(record.id)
        db.session.query(RecordsBuckets).filter(
            RecordsBuckets.record_id == record.id
        ).delete(synchronize_session=False)
        if state.removing_bucket and bucket is not None and not _is_linked(bucket):
            remove_bucket(bucket)
        state.forget()

    def post_revert(self, record, revision) -> None:
        """Give the reverted record the current ``_files``."""
        state = state_of(record)
        if state.base is None:
            state.load(record)
        else:
            state.loaded(record, list(state.base.values()))


def _is_linked(bucket) -> bool:
    """Tell whether a record links to ``bucket``."""
    return (
        db.session.query(RecordsBuckets.record_id)
        .filter(RecordsBuckets.bucket_id == bucket.id)
        .first()
        is not None
    )
