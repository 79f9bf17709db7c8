# SPDX-License-Identifier: MIT
"""Copy a record's files into another record: the bytes are shared.

A new version of a published record starts with the files of the old one.
Copying them makes, in the new record's bucket, new object versions that
point at the same file instances: no byte is copied and no
:class:`~invenio_files_rest.models.FileInstance` row is made. The file
entries (per-file metadata, order) are copied too, after the new record's
own files. Used by :meth:`FilesIterator.copy_from()
<invenio_records_files.records.files.FilesIterator.copy_from>` and, over REST, by
:func:`invenio_records_files.services.files.import_files`.

Everything is checked before anything is written: the keys asked for exist
in the source, none exists in the target, the target's quota. The writes are
a constant number of statements whatever the number of files (see
:mod:`~invenio_records_files.store.objects` and
:mod:`~invenio_records_files.store.entries`). The source is only read: it is not
locked, and a locked (published) source is the usual case.

Shared bytes are removed only when no object version uses them any more
(:func:`~invenio_records_files.store.storage.remove_unused_files`): removing either
record, or a version of one of its files, leaves the other's files readable.

.. versionadded:: 5.0.0
"""

from uuid import UUID

from invenio_files_rest.models import Bucket, ObjectVersion

from invenio_records_files.store import objects
from invenio_records_files.store.publish import NewFile, publish


def copy_files(
    record_id: UUID | None,
    bucket: Bucket,
    files: list[tuple[ObjectVersion, dict]],
) -> list[ObjectVersion]:
    """Add ``files`` (source versions with their metadata) to ``bucket``.

    All or none, through :func:`~invenio_records_files.store.publish.publish`
    (``exclusive``: a copy never replaces a file). Each file gets a new head
    version in ``bucket`` that points at the source's file instance, with
    its MIME type and tags. With a ``record_id``, the record lists the files
    last, in this order, with their metadata (an entry left over for a key
    the bucket no longer has is replaced). The caller holds the lock of the
    record and of ``bucket``; nothing commits.

    :returns: The new object versions, in order.
    :raises invenio_records_files.errors.KeyExistsError: (409) if a key is
        already a file of ``bucket``; nothing is written.
    :raises invenio_files_rest.errors.FileSizeError: if the bucket's quota
        would be exceeded; nothing is written.
    :raises invenio_records_files.errors.TooManyFilesError: if the files
        would take the record past ``RECORDS_FILES_MAX_FILES``.
    """
    tags = objects.tags_of([obj.version_id for obj, _ in files])
    return publish(
        bucket,
        [
            NewFile(
                obj.key,
                file=obj.file,
                mimetype=obj._mimetype,
                tags=tags.get(obj.version_id, ()),
                data=dict(data) if record_id is not None else None,
            )
            for obj, data in files
        ],
        record_id,
        exclusive=True,
    )
