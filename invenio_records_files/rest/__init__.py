# SPDX-License-Identifier: MIT
"""HTTP in, HTTP out: resources, PID resolution, downloads, archive, members.

Views parse the request, ask :func:`~invenio_records_files.services.access.authorize`,
call a service and shape the response. The 4.x paths
:mod:`invenio_records_files.views` and :mod:`invenio_records_files.serializer`
re-export from here.

.. versionadded:: 5.0.0
"""
