# SPDX-License-Identifier: MIT
"""JSON serialization of a record's files, with links in the record's URLs.

The bodies are Invenio-Files-REST's (same schemas, same fields); only the
links change: they point at the record's files endpoints
(``/records/1/files``, ``/records/1/files/a.txt``) instead of
``/files/<bucket_id>``.
"""

from functools import partial

from flask import request, url_for
from invenio_files_rest.models import Bucket, MultipartObject, ObjectVersion, Part
from invenio_files_rest.serializer import (
    BucketSchema,
    MultipartObjectSchema,
    ObjectVersionSchema,
    PartSchema,
    json_serializer,
)
from marshmallow import fields, post_dump
from marshmallow_utils.context import context_schema


def _endpoint(kind: str) -> str:
    """Name of the current record files endpoint of ``kind`` (bucket/object)."""
    prefix = request.endpoint.rsplit("_", 2)[0]
    return f"{prefix}_{kind}_api"


def bucket_url(**params) -> str:
    """URL of the current record's files (its bucket)."""
    return url_for(
        _endpoint("bucket"),
        pid_value=request.view_args["pid_value"].value,
        _external=True,
        **params,
    )


def archive_url() -> str:
    """URL of the zip archive of the current record's files."""
    return url_for(
        _endpoint("archive"),
        pid_value=request.view_args["pid_value"].value,
        _external=True,
    )


def object_url(key: str, **params) -> str:
    """URL of the current record's file ``key``."""
    return url_for(
        _endpoint("object"),
        pid_value=request.view_args["pid_value"].value,
        key=key,
        _external=True,
        **params,
    )


class RecordBucketSchema(BucketSchema):
    """Bucket, linked in the record's URL space."""

    def dump_links(self, o):
        """Dump links."""
        url = bucket_url()
        return {
            "self": url,
            "versions": f"{url}?versions",
            "uploads": f"{url}?uploads",
            "archive": archive_url(),
        }


class RecordObjectVersionSchema(ObjectVersionSchema):
    """Object version, linked in the record's URL space."""

    def dump_links(self, o):
        """Dump links."""
        version = {"versionId": o.version_id}
        current = o.is_head and not o.deleted
        links = {
            "self": object_url(o.key, **({} if current else version)),
            "version": object_url(o.key, **version),
        }
        if current:
            links["uploads"] = f"{object_url(o.key)}?uploads"
        return links

    @post_dump(pass_many=True)
    def wrap(self, data, many, **kwargs):
        """Wrap a listing in an envelope with the bucket's fields and links."""
        if not many:
            return data
        data = {"contents": data}
        bucket = context_schema.get().get("bucket")
        if bucket is not None:
            data.update(RecordBucketSchema().dump(bucket))
        return data


class RecordMultipartObjectSchema(MultipartObjectSchema):
    """Multipart upload, linked in the record's URL space.

    ``last_part_number`` is the number of the last part the client sends
    (parts are numbered from 0) and ``last_part_size`` its size in bytes:
    for a size that is a multiple of the part size, a whole part (Files-REST
    reports ``0``, but the record files endpoints take a whole last part).
    """

    last_part_size = fields.Method("dump_last_part_size", dump_only=True)

    def dump_last_part_size(self, o) -> int:
        """Size of the last part the client sends."""
        return max(0, o.size - max(0, o.last_part_number) * o.chunk_size)

    def dump_links(self, o):
        """Dump links."""
        links = {
            "self": object_url(o.key, uploadId=o.upload_id),
            "object": object_url(o.key),
        }
        version_id = context_schema.get().get("object_version_id")
        if version_id:
            links["object_version"] = object_url(o.key, versionId=version_id)
        if context_schema.get().get("bucket"):
            links["bucket"] = bucket_url()
        return links


class RecordPartSchema(PartSchema):
    """Part of a multipart upload; its listing is wrapped in the upload."""

    @post_dump(pass_many=True)
    def wrap(self, data, many, **kwargs):
        """Wrap a listing of parts in an envelope with the upload's fields."""
        if not many:
            return data
        data = {"parts": data}
        multipart = context_schema.get().get("multipart")
        if multipart is not None:
            data.update(
                RecordMultipartObjectSchema().dump(
                    multipart, context={"bucket": multipart.bucket}
                )
            )
        return data


serializer_mapping = {
    Bucket: RecordBucketSchema,
    ObjectVersion: RecordObjectVersionSchema,
    MultipartObject: RecordMultipartObjectSchema,
    Part: RecordPartSchema,
}
"""Model to schema mapping used by the record files endpoints."""

json_serializer = partial(json_serializer, serializer_mapping=serializer_mapping)
"""Invenio-Files-REST's JSON serializer with the schemas above."""

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
