# SPDX-License-Identifier: MIT
"""Invenio-Records-Files configuration."""

RECORDS_FILES_REST_ENDPOINTS = {}
"""REST endpoints configuration.

You can configure the REST API endpoint to access the record's files as
follows:

.. code-block:: python

    RECORDS_FILES_REST_ENDPOINTS = {
        '<*_REST_ENDPOINTS>': {
            '<endpoint-prefix>': '<endpoint-suffix>',
        }
    }

* ``<*_REST_ENDPOINTS>`` is the name of an Invenio-Records-REST endpoint
  configuration defined in your application (for example
  ``RECORDS_REST_ENDPOINTS``).
* ``<endpoint-prefix>`` is the name of an endpoint in that configuration (for
  example ``recid``); it must exist there.
* ``<endpoint-suffix>`` is the path, appended to the endpoint's
  ``item_route``, under which the record's files are served.

``{'recid': '/myawesomefiles'}`` gives ``/records/1/myawesomefiles``.
"""
