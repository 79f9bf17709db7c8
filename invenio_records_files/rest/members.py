# SPDX-License-Identifier: MIT
"""A look inside an uploaded zip: ``?members`` and ``?member=<name>``.

``GET <files URL>/<key>?members`` lists the entries of the zip file ``key``
(a page of ``RECORDS_FILES_MEMBERS_PAGE_SIZE`` at a time) and
``GET <files URL>/<key>?member=<name>`` streams one member, decompressed,
with Invenio-Files-REST's safe download headers. Both read only the zip's
central directory (and that one member's data) through the storage API; see
:mod:`~invenio_records_files.zips.reader`. Files-REST's ``object-read``
permission applies, as for a download.

.. versionadded:: 5.0.0
"""

from collections.abc import Mapping
from datetime import UTC
from itertools import islice

from flask import Response, jsonify, request
from invenio_files_rest.errors import FileInstanceUnreadableError
from invenio_files_rest.helpers import send_stream
from invenio_files_rest.models import Bucket, ObjectVersion
from invenio_files_rest.views import ObjectResource

from invenio_records_files import settings
from invenio_records_files.rest.archive import chunk_size
from invenio_records_files.rest.download import header_filename
from invenio_records_files.rest.resolve import uuid_arg
from invenio_records_files.rest.serializer import object_url
from invenio_records_files.store.checksums import crc32
from invenio_records_files.zips.reader import (
    MemberStream,
    ZipDirectory,
    ZipEntry,
    ZipMemberError,
    check_member,
    member_etag,
)


def wants_members(args: Mapping) -> bool:
    """Tell whether a request on a file asks for its members."""
    return "members" in args or "member" in args


def members_response(bucket: Bucket, key: str) -> Response:
    """Answer ``?members`` (a JSON page of entries) or ``?member=<name>``.

    :raises ZipMemberError: 400 for bad arguments or a file that is not a
        zip, 404 for a missing member, 413 for a member over the limits.
    """
    version_id = uuid_arg("versionId")
    obj = ObjectResource.get_object(bucket, key, version_id)
    if obj.file is None:  # a delete marker
        raise ZipMemberError(404, "Object does not exists.")
    if not obj.file.readable:
        raise FileInstanceUnreadableError()
    name = request.args.get("member")
    if name is not None:
        return send_member(obj, name)
    return list_members(obj)


def _int_arg(name: str, default: int, maximum: int | None = None) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or (maximum is not None and number > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise ZipMemberError(400, f"{name} must be a number from 1{limit}.")
    return number


def _listing_url(obj: ObjectVersion, **params) -> str:
    if not obj.is_head:
        params["versionId"] = str(obj.version_id)
    url = object_url(obj.key, **params)
    return url + ("&" if "?" in url else "?") + "members"


def list_members(obj: ObjectVersion) -> Response:
    """Answer a page of the entries of the zip file ``obj``."""
    limit = settings.members_page_size()
    page = _int_arg("page", 1)
    size = _int_arg("size", limit, maximum=limit)
    with obj.file.storage().open("rb") as fp:
        directory = ZipDirectory(fp, obj.file.size)
        start = (page - 1) * size
        entries = list(islice(directory.entries(), start, start + size))
    version = {} if obj.is_head else {"versionId": str(obj.version_id)}
    links = {"self": _listing_url(obj, page=page, size=size)}
    if page > 1:
        links["prev"] = _listing_url(obj, page=page - 1, size=size)
    if start + size < directory.count:
        links["next"] = _listing_url(obj, page=page + 1, size=size)
    return jsonify(
        {
            "key": obj.key,
            "total": directory.count,
            "page": page,
            "size": size,
            "entries": [
                {
                    **entry.dumps(),
                    "links": (
                        {}
                        if entry.is_dir
                        else {"self": object_url(obj.key, member=entry.name, **version)}
                    ),
                }
                for entry in entries
            ],
            "links": links,
        }
    )


def send_member(obj: ObjectVersion, name: str) -> Response:
    """Stream the member ``name`` of the zip file ``obj``, decompressed."""
    fp = obj.file.storage().open("rb")
    try:
        entry = ZipDirectory(fp, obj.file.size).find(name)
        check_member(
            entry,
            settings.member_max_size(),
            settings.member_max_ratio(),
        )
    except BaseException:
        fp.close()
        raise
    stream = MemberStream(fp, obj.file.size, entry, chunk_size(), crc32)
    return send_stream(
        stream,
        header_filename(entry.name.rsplit("/", 1)[-1]),
        entry.size,
        _timestamp(entry),
        restricted=True,
        as_attachment="download" in request.args,
        etag=member_etag(obj.file.checksum, obj.version_id, entry.name),
        chunk_size=chunk_size(),
    )


def _timestamp(entry: ZipEntry) -> float:
    modified = entry.modified
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return modified.timestamp()


__all__ = (
    "ZipMemberError",
    "list_members",
    "members_response",
    "send_member",
    "wants_members",
)
