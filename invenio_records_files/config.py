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

RECORDS_FILES_REST_PERMISSION_FACTORY = None
"""Permission factory of a record's files: ``factory(record, action)``.

``None`` (the default): Invenio-Files-REST's ``FILES_REST_PERMISSION_FACTORY``
decides about the record's bucket and its objects, as in version 4.

Otherwise a callable (or an import string) taking the record and ``"read"``
or ``"update"`` and returning an object with a ``can()`` method. It then
replaces Invenio-Files-REST's checks on the record files endpoints and in
:func:`~invenio_records_files.utils.file_download_ui`: ``"read"`` for
listings (files, versions, uploads), downloads and ``HEAD``, ``"update"``
for uploads, multipart uploads, deletions and version removals. It is asked
once per request, before any byte is read from the request or from storage;
a refusal answers ``401`` (anonymous user) or ``403``.

:func:`invenio_records_files.permissions.record_permission_factory` applies
the permissions of the record's Invenio-Records-REST endpoint: whoever may
read the record may read its files, whoever may update it may change them.
See :ref:`permissions`.

.. versionadded:: 5.0.0
"""

RECORDS_FILES_MAX_FILES = None
"""The most files a record may hold (``None``: no limit).

Adding a file under a new key beyond the limit is refused (``400`` over
REST, :class:`~invenio_records_files.errors.TooManyFilesError` in Python)
and nothing is written; a new version of a file the record holds is always
allowed. The limit is checked under the record's lock, so that concurrent
uploads cannot overshoot it. See :ref:`limits`.

.. versionadded:: 5.0.0
"""
