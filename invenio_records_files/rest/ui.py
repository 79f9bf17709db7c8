# SPDX-License-Identifier: MIT
"""The download view of ``RECORDS_UI_ENDPOINTS`` (``file_download_ui``)."""

from flask import abort, current_app, request
from invenio_records.errors import MissingModelError

from invenio_records_files.rest.download import send_object
from invenio_records_files.services.access import READ, authorize
from invenio_records_files.store.keys import is_storable


def refuse_unstorable_url_values(endpoint: str | None, values: dict | None) -> None:
    """Answer ``404`` when a download view's URL has a value no row can have.

    Invenio-Records-UI resolves the PID before :func:`file_download_ui` is
    called; a PID value (or a file name) with NUL would reach PostgreSQL and
    fail there. Registered by the extension as a URL value preprocessor; it
    looks only at the ``RECORDS_UI_ENDPOINTS`` whose view is
    :func:`file_download_ui`.

    .. versionadded:: 5.0.0
    """
    if not endpoint or not values or not endpoint.startswith("invenio_records_ui."):
        return
    options = current_app.config.get("RECORDS_UI_ENDPOINTS", {}).get(
        endpoint.split(".", 1)[1], {}
    )
    view = options.get("view_imp")
    name = view if isinstance(view, str) else getattr(view, "__name__", "")
    if not str(name).endswith("file_download_ui"):
        return
    if not all(is_storable(v) for v in values.values() if isinstance(v, str)):
        abort(404)


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

    The same decision as every read path
    (:func:`~invenio_records_files.services.access.authorize`): with
    ``RECORDS_FILES_REST_PERMISSION_FACTORY`` set, the record's factory
    decides whether the file may be read (before the file is looked up:
    ``401``/``403`` whether it exists or not); then Invenio-Files-REST's
    ``object-read`` permission of the file (``404``). The file is sent as
    Invenio-Files-REST sends it (checksum, safe headers, conditional and
    range requests), streamed in fixed-size chunks
    (:func:`~invenio_records_files.rest.download.send_object`). If
    ``download`` is passed as a querystring argument, the file is sent as an
    attachment.

    :param pid: The :class:`invenio_pidstore.models.PersistentIdentifier`
        instance.
    :param record: The record metadata.
    :param _record_file_factory: Function returning the file of a record
        (default: :func:`record_file_factory`).
    """
    authorize(record, READ, pid=pid, whole_bucket=False)
    _record_file_factory = _record_file_factory or record_file_factory
    fileobj = _record_file_factory(pid, record, kwargs.get("filename"))
    if not fileobj:
        abort(404)
    obj = fileobj.obj
    authorize(record, READ, objects=[obj], pid=pid, whole_bucket=False)
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
