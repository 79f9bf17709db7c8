# SPDX-License-Identifier: MIT
"""Rows and bytes: models, locks, publication, checksums, keys, storage.

Never a request, never a record object: functions here take buckets, ids
and file instances, run inside the caller's transaction and never commit.
Imports nothing of :mod:`invenio_records_files.records`, ``services``,
``rest`` or the top-level faces.

.. versionadded:: 5.0.0
"""
