# SPDX-License-Identifier: MIT
"""Who may read and change a record's files (the import path of the config).

``RECORDS_FILES_REST_PERMISSION_FACTORY =
"invenio_records_files.permissions:record_permission_factory"`` names the
factory here; everything lives in :mod:`invenio_records_files.services.access`.

.. versionadded:: 5.0.0
"""

from invenio_records_files.services.access import (
    ACTIONS,
    READ,
    READ_METHODS,
    UPDATE,
    RecordGrantsFactory,
    action_of,
    authorize,
    check,
    configured_factory,
    record_permission_factory,
    rest_endpoint,
    serving,
)

__all__ = (
    "ACTIONS",
    "READ",
    "READ_METHODS",
    "UPDATE",
    "RecordGrantsFactory",
    "action_of",
    "authorize",
    "check",
    "configured_factory",
    "record_permission_factory",
    "rest_endpoint",
    "serving",
)
