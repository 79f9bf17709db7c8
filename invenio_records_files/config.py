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

RECORDS_FILES_REST_UPDATE_RECORD = True
"""Keep the record's ``_files`` in step with uploads and deletions over REST.

When ``True`` (the default), every change made through the record files
endpoints (upload, new version, delete, completion of a multipart upload)
also updates the record's ``_files`` and commits the record (a new revision,
with Invenio-Records' signals), in the same database transaction as the
change of the bucket. Set it to ``False`` to leave the record untouched, as
Invenio-Records-Files 1.x did.

.. versionadded:: 5.0.0
"""

RECORDS_FILES_DOWNLOAD_CHUNK_SIZE = 1024 * 1024
"""Bytes read from storage and written to the client at a time (downloads).

Every download the record files endpoints and ``file_download_ui`` serve is
streamed in chunks of this size (Invenio-Files-REST lets the WSGI server
iterate the file line by line). Memory per download stays near one chunk.

.. versionadded:: 5.0.0
"""

RECORDS_FILES_UPLOAD_CHUNK_SIZE = 1024 * 1024
"""Bytes read from the request (or stream) and written to storage at a time.

Used by uploads through the record files endpoints and by the Python API
(``record.files[key] = stream``). Invenio-Files-REST reads 5 MiB at a time,
which uploads about a quarter slower than 1 MiB over loopback
(``benchmarks/bench_rest.py``). ``None`` keeps Invenio-Files-REST's default.

.. versionadded:: 5.0.0
"""

RECORDS_FILES_MEMBERS_PAGE_SIZE = 1000
"""Entries per page of a zip's member listing (``<file URL>?members``).

A client may ask for fewer with ``&size=``, never for more.

.. versionadded:: 5.0.0
"""

RECORDS_FILES_MEMBER_MAX_SIZE = 1024**3
"""Largest zip member served by ``<file URL>?member=<name>``, in bytes.

A member that declares more is refused with ``413`` before anything is
decompressed; decompression never produces more than the declared size.

.. versionadded:: 5.0.0
"""

RECORDS_FILES_MEMBER_MAX_RATIO = 100
"""Largest compression ratio (size / compressed size) of a served member.

A member compressed more than that (a zip bomb: kilobytes that expand to
gigabytes) is refused with ``413`` before anything is decompressed. 100 is
Apache POI's limit for zip-based documents; raise it for archives of very
repetitive data.

.. versionadded:: 5.0.0
"""
