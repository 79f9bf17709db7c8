# SPDX-License-Identifier: MIT
"""Atomic writes to a bucket through Invenio-Files-REST's storage API.

Each helper works in a savepoint and never commits; when a write fails after
its bytes reached storage, the bytes are removed again, so no orphan file is
left behind.
"""

from flask import current_app
from invenio_db import db
from invenio_files_rest.models import Bucket, MultipartObject, ObjectVersion


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
