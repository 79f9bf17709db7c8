# SPDX-License-Identifier: MIT
"""Link factories for records with files.

Both work wherever URLs can be built: in a request to any view, in a
records-rest request, and in a plain application context with
``SERVER_NAME`` set (a Celery task, a CLI command). They use only the PID's
``pid_type``, ``pid_value`` and ``get_assigned_object()``.
"""

from flask import url_for
from invenio_db import db
from invenio_records_rest.proxies import current_records_rest
from werkzeug.routing import BuildError

from invenio_records_files.store.models import RecordsBuckets

_URL_ERRORS = (BuildError, RuntimeError)
"""What ``url_for`` raises for an unknown endpoint, or without a request
and without ``SERVER_NAME``."""


def _bucket_id(pid):
    """Return the id of the bucket of the PID's record, or ``None``."""
    if pid is None:
        return None
    record_id = pid.get_assigned_object()
    if record_id is None:
        return None
    return (
        db.session.query(RecordsBuckets.bucket_id)
        .filter(RecordsBuckets.record_id == record_id)
        .order_by(RecordsBuckets.bucket_id)
        .limit(1)
        .scalar()
    )


def default_bucket_link_factory(pid) -> str | None:
    """Build the Files-REST link of the record's bucket (factory).

    :param pid: The record's persistent identifier (or ``None``).
    :returns: The Invenio-Files-REST URL of the record's bucket, or ``None``
        when there is no PID, no record assigned to it, no bucket, or no
        URL can be built. It never raises.
    """
    try:
        bucket_id = _bucket_id(pid)
        if bucket_id is None:
            return None
        return url_for(
            "invenio_files_rest.bucket_api", bucket_id=bucket_id, _external=True
        )
    except _URL_ERRORS:
        return None


def default_record_files_links_factory(pid, record=None, **kwargs) -> dict:
    """Build the links of a record with files (factory).

    Usable as ``links_factory_imp`` of an Invenio-Records-REST endpoint.

    :param pid: A Persistent Identifier instance.
    :returns: Dictionary containing a list of useful links for the record:
        ``self``, the records-rest URL of the record
        (``invenio_records_rest.<prefix>_item``), and ``files``, the URL of
        its files (``invenio_records_files.<prefix>_bucket_api``, or the
        Files-REST bucket URL when no record files endpoint is configured for
        the PID type; left out when the record has no bucket).
    """
    prefix = current_records_rest.default_endpoint_prefixes[pid.pid_type]
    links = {
        "self": url_for(
            f"invenio_records_rest.{prefix}_item",
            pid_value=pid.pid_value,
            _external=True,
        )
    }
    bucket_id = _bucket_id(pid)
    if bucket_id is None:
        return links
    try:
        links["files"] = url_for(
            f"invenio_records_files.{prefix}_bucket_api",
            pid_value=pid.pid_value,
            _external=True,
        )
    except BuildError:
        links["files"] = url_for(
            "invenio_files_rest.bucket_api", bucket_id=bucket_id, _external=True
        )
    return links
