# SPDX-License-Identifier: MIT
"""Link factories for records with files."""

from flask import url_for
from invenio_db import db
from invenio_pidstore.models import PersistentIdentifier
from invenio_records_rest.links import default_links_factory
from invenio_records_rest.proxies import current_records_rest
from werkzeug.routing import BuildError

from .models import RecordsBuckets


def default_bucket_link_factory(pid: PersistentIdentifier) -> str | None:
    """Build the Files-REST URL of the record's bucket.

    :param pid: The record's persistent identifier.
    :returns: The Invenio-Files-REST URL of the record's bucket, or ``None``
        when the identifier has no record or the record has no bucket.
    """
    if pid.object_uuid is None:
        return None
    bucket_id = (
        db.session.query(RecordsBuckets.bucket_id)
        .filter(RecordsBuckets.record_id == pid.object_uuid)
        .scalar()
    )
    if bucket_id is None:
        return None
    return url_for("invenio_files_rest.bucket_api", bucket_id=bucket_id, _external=True)


def default_record_files_links_factory(pid, record=None, **kwargs) -> dict:
    """Build the links of a record with files.

    Usable as ``links_factory_imp`` of an Invenio-Records-REST endpoint.

    :param pid: A Persistent Identifier instance.
    :returns: Dictionary containing a list of useful links for the record:
        ``self`` (the record) and ``files`` (the record's files endpoint when
        ``RECORDS_FILES_REST_ENDPOINTS`` configures one for this PID type,
        else the record's bucket in Invenio-Files-REST; absent when the
        record has no bucket).
    """
    links = default_links_factory(pid, record=record, **kwargs)
    bucket_link = default_bucket_link_factory(pid)
    if bucket_link is None:
        return links
    prefix = current_records_rest.default_endpoint_prefixes.get(pid.pid_type)
    try:
        links["files"] = url_for(
            f"invenio_records_files.{prefix}_bucket_api",
            pid_value=pid.pid_value,
            _external=True,
        )
    except BuildError:
        links["files"] = bucket_link
    return links
