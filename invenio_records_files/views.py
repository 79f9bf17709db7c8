# SPDX-License-Identifier: MIT
"""REST endpoints for a record's files (the 4.x path).

The blueprint factory of the ``invenio_base.api_blueprints`` entry point and
the resources, which live in :mod:`invenio_records_files.rest.resources`.
"""

from invenio_records_files.rest.resolve import (
    pass_bucket_id,
    pass_record,
    resolve_import_source,
    resolve_record,
)
from invenio_records_files.rest.resources import (
    FileKeyConverter,
    RecordArchiveResource,
    RecordBucketResource,
    RecordFilesResourceMixin,
    RecordObjectResource,
    add_record_files_rules,
    check_archive_permission,
    check_import_permissions,
    create_blueprint_from_app,
)

__all__ = (
    "FileKeyConverter",
    "RecordArchiveResource",
    "RecordBucketResource",
    "RecordFilesResourceMixin",
    "RecordObjectResource",
    "add_record_files_rules",
    "check_archive_permission",
    "check_import_permissions",
    "create_blueprint_from_app",
    "pass_bucket_id",
    "pass_record",
    "resolve_import_source",
    "resolve_record",
)
