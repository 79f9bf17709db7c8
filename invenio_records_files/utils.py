# SPDX-License-Identifier: MIT
"""Implementation of various utility functions."""

from collections.abc import Iterable

from flask import abort, request
from invenio_files_rest.models import Bucket, ObjectVersion
from invenio_files_rest.views import ObjectResource
from invenio_records.errors import MissingModelError
from sqlalchemy.orm import joinedload

from . import permissions
from .download import send_object


def sorted_files_from_bucket(bucket: Bucket, keys: Iterable[str] | None = None):
    """Return files from bucket sorted by given keys.

    One query loads the bucket's files (head versions that are not delete
    markers) with their file instances.

    :param bucket: :class:`~invenio_files_rest.models.Bucket` containing the
        files.
    :param keys: Keys order to be used. Files whose key is not listed follow,
        in key order.
    :returns: Sorted list of bucket items
        (:class:`~invenio_files_rest.models.ObjectVersion`).
    """
    keys = list(keys or [])
    position = {key: index for index, key in enumerate(keys)}
    total = len(keys)
    objects = (
        ObjectVersion.get_by_bucket(bucket)
        .options(joinedload(ObjectVersion.file))
        .all()
    )
    return sorted(objects, key=lambda obj: position.get(obj.key, total))


def record_file_factory(pid, record, filename: str):
    """Get file from a record.

    :param pid: Not used. It keeps the function signature.
    :param record: Record which contains the files.
    :param filename: Name of the file to be returned.
    :returns: File object or ``None`` if not found (also when the record has
        no ``files`` property, no bucket or no model).
    """
    try:
        files = getattr(record, "files", None)
    except MissingModelError:
        return None
    if files is None:
        return None
    try:
        return files[filename]
    except KeyError:
        return None


def file_download_ui(pid, record, _record_file_factory=None, **kwargs):
    """File download view for a given record.

    Plug this method into your ``RECORDS_UI_ENDPOINTS`` configuration:

    .. code-block:: python

        RECORDS_UI_ENDPOINTS = dict(
            recid=dict(
                # ...
                route='/records/<pid_value>/files/<filename>',
                view_imp='invenio_records_files.utils:file_download_ui',
                record_class='invenio_records_files.api:Record',
            )
        )

    With ``RECORDS_FILES_REST_PERMISSION_FACTORY`` set, the record's factory
    decides whether the file may be read (``"read"``, before the file is
    looked up: ``401``/``403`` whether it exists or not); otherwise
    Invenio-Files-REST's ``object-read`` permission does. The file is sent as
    Invenio-Files-REST sends it (checksum, safe headers, conditional and
    range requests), streamed in fixed-size chunks
    (:func:`~invenio_records_files.download.send_object`). If ``download``
    is passed as a querystring argument, the file is sent as an attachment.

    :param pid: The :class:`invenio_pidstore.models.PersistentIdentifier`
        instance.
    :param record: The record metadata.
    :param _record_file_factory: Function returning the file of a record
        (default: :func:`record_file_factory`).
    """
    if permissions.configured_factory() is not None:
        permissions.serving(record, pid)
        permissions.check(record, permissions.READ)
    _record_file_factory = _record_file_factory or record_file_factory
    fileobj = _record_file_factory(pid, record, kwargs.get("filename"))
    if not fileobj:
        abort(404)
    obj = fileobj.obj
    ObjectResource.check_object_permission(obj)
    return send_object(
        obj.bucket,
        obj,
        expected_chksum=fileobj.get("checksum"),
        logger_data={
            "bucket_id": str(obj.bucket_id),
            "pid_type": pid.pid_type,
            "pid_value": pid.pid_value,
        },
        as_attachment="download" in request.args,
    )


__all__ = ("file_download_ui", "record_file_factory", "sorted_files_from_bucket")
