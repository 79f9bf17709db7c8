# SPDX-License-Identifier: MIT
"""Serializers of the record files endpoints (the 4.x path).

They live in :mod:`invenio_records_files.rest.serializer`.
"""

from invenio_records_files.rest.serializer import (
    RecordBucketSchema,
    RecordMultipartObjectSchema,
    RecordObjectVersionSchema,
    RecordPartSchema,
    archive_url,
    bucket_url,
    json_serializer,
    object_url,
    serializer_mapping,
)

__all__ = (
    "RecordBucketSchema",
    "RecordMultipartObjectSchema",
    "RecordObjectVersionSchema",
    "RecordPartSchema",
    "archive_url",
    "bucket_url",
    "json_serializer",
    "object_url",
    "serializer_mapping",
)
