# SPDX-License-Identifier: MIT
"""REST endpoints for a record's files.

For each ``RECORDS_FILES_REST_ENDPOINTS`` entry, the record's bucket is
served under the record's URL with Invenio-Files-REST's own resources: the
views resolve the record from the URL (:func:`pass_record`), inject its
bucket (:func:`pass_bucket_id`) and delegate. The injected bucket is the only
one they touch (the bucket id is never read from the request), so one
record's files are never reachable through another.

The resources' HTTP methods take ``(self, pid, record, **kwargs)``:
subclasses override them to add their own checks and call ``super()``.
:func:`pass_record` and :func:`pass_bucket_id` (from
:mod:`invenio_records_files.rest.resolve`) stay importable from here.
"""

import re
import uuid
from contextlib import contextmanager

from flask import Blueprint, Flask, current_app, request
from flask.views import MethodView
from invenio_db import db
from invenio_files_rest.models import MultipartObject, ObjectVersion, Part
from invenio_files_rest.proxies import current_files_rest, current_permission_factory
from invenio_files_rest.signals import file_deleted, file_uploaded
from invenio_files_rest.views import (
    BucketResource,
    ObjectResource,
    check_permission,
    need_permissions,
    pass_multipart,
)
from marshmallow import missing
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.routing import PathConverter
from werkzeug.utils import import_string

from invenio_records_files import settings
from invenio_records_files.errors import (
    LockedBucketError,
    MissingFileError,
    NoBucketError,
    UnknownEndpointError,
)
from invenio_records_files.records.record import FilesMixin, Record
from invenio_records_files.records.state import state_of
from invenio_records_files.rest import archive, download
from invenio_records_files.rest import members as zipmembers
from invenio_records_files.rest.resolve import (
    RecordFilesRESTError,
    check_uuid_arguments,
    pass_bucket_id,
    pass_record,
    resolve_import_source,
    resolve_record,
)
from invenio_records_files.rest.serializer import json_serializer
from invenio_records_files.services import access
from invenio_records_files.services import files as sync
from invenio_records_files.services.access import READ_METHODS
from invenio_records_files.store.keys import is_storable
from invenio_records_files.store.storage import Destination, written_file

PID_CONVERTER = re.compile(r"<pid(path)?\(")


@contextmanager
def rolled_back_on_error():
    """Roll the request's transaction back if the block fails."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise


class RecordFilesResourceMixin:
    """Resolve the record of the URL and inject its bucket into the resource."""

    def __init__(
        self,
        *args,
        record_class: type[FilesMixin] = Record,
        rest_endpoint: dict | None = None,
        **kwargs,
    ):
        """Initialize the resource.

        :param record_class: Wraps resolved records.
        :param rest_endpoint: The Invenio-Records-REST endpoint configuration
            of the record (for
            :func:`~invenio_records_files.permissions.record_permission_factory`).
        """
        super().__init__(*args, **kwargs)
        self.record_class = record_class
        self.rest_endpoint = rest_endpoint

    @pass_record
    def dispatch_request(self, pid, record, **kwargs):
        """Resolve the record, check permissions and bucket, call the handler.

        With ``RECORDS_FILES_REST_PERMISSION_FACTORY`` set, the record's
        factory is asked here, for every operation, before anything is read
        (:func:`invenio_records_files.permissions.check`).
        """
        self.pid, self.record = pid, record
        key = kwargs.get("key")
        if (
            key is not None
            and request.method not in ("PUT", "POST")  # check_key answers 400
            and not is_storable(key)
        ):
            raise MissingFileError(key)  # before any query (NUL on PostgreSQL)
        bucket = state_of(record).bucket(record)
        access.authorize(
            record,
            access.action_of(request.method),
            bucket,
            pid=pid,
            endpoint=self.rest_endpoint,
            whole_bucket=False,  # Files-REST's resources ask the bucket's
        )
        if bucket is None:
            raise NoBucketError(record.id)
        if request.method not in READ_METHODS and bucket.locked:
            raise LockedBucketError(bucket.id)
        return super().dispatch_request(pid=pid, record=record, **kwargs)

    @property
    def update_record(self) -> bool:
        """Tell whether writes update the record (``_files``, revision)."""
        return settings.update_record()


class RecordBucketResource(RecordFilesResourceMixin, BucketResource):
    """A record's bucket: listing of its files, versions and uploads."""

    @pass_bucket_id
    def get(self, pid, record, **kwargs):
        """List the files (``?versions``: every version; ``?uploads``)."""
        return super().get(**kwargs)

    @pass_bucket_id
    def head(self, pid, record, **kwargs):
        """Check that the bucket exists and may be read."""
        return super().head(**kwargs)

    def post(self, pid, record, **kwargs):
        """Import the current files of another record (``?import=<pid_value>``).

        The source is a record of the same endpoint (same PID type). Its
        files are copied as :meth:`FilesIterator.copy_from()
        <invenio_records_files.records.files.FilesIterator.copy_from>` does (the
        bytes are shared), the record's ``_files`` follows and the record is
        committed, in one transaction
        (:func:`~invenio_records_files.services.files.import_files`). The answer is the
        listing of the record's files.

        .. versionadded:: 5.0.0
        """
        value = request.args.get("import")
        if not value:
            raise RecordFilesRESTError(
                400,
                "POST to a record's files imports the files of another record: "
                "give its PID value as ?import=<pid_value>.",
            )
        bucket = state_of(record).bucket(record)
        _, source = resolve_import_source(value, self.record_class)
        source_bucket = state_of(source).bucket(source)
        if source_bucket is None:
            raise RecordFilesRESTError(
                404, f"Cannot import from {value!r}: the record has no files."
            )
        files = source.files
        check_import_permissions(source, source_bucket, record, bucket, files)
        with rolled_back_on_error():
            created = sync.import_files(
                record, bucket, files, update_record=self.update_record
            )
            db.session.commit()
        if access.can(record, access.READ, bucket):
            return self.list_objects(bucket)
        # Who may not read the record sees the files it brought, not the others.
        return self.make_response(
            data=created,
            context={"class": ObjectVersion, "bucket": bucket, "many": True},
        )

    @need_permissions(lambda self, bucket, versions: bucket, "bucket-read")
    def listobjects(self, bucket, versions):
        """List the objects of the bucket (files and tags loaded eagerly)."""
        if versions is not missing:
            check_permission(
                current_permission_factory(bucket, "bucket-read-versions"),
                hidden=False,
            )
        return self.list_objects(bucket, versions=versions is not missing)

    def list_objects(self, bucket, versions: bool = False):
        """Answer with the listing of the bucket (no permission check)."""
        objects = (
            ObjectVersion.get_by_bucket(bucket.id, versions=versions)
            .options(joinedload(ObjectVersion.file), selectinload(ObjectVersion.tags))
            .limit(1000)
            .all()
        )
        return self.make_response(
            data=objects,
            context={"class": ObjectVersion, "bucket": bucket, "many": True},
        )


def check_import_permissions(
    source_record, source_bucket, target_record, target_bucket, source_files=None
) -> None:
    """Check that the user may import the source's files into the target.

    :func:`~invenio_records_files.services.access.authorize`: ``update`` on
    the target record, ``read`` on the source record and on each of its
    files (Files-REST's ``object-read``, as for their downloads). Without
    ``RECORDS_FILES_REST_PERMISSION_FACTORY`` a refusal answers ``404``, as
    Files-REST's own checks of these actions do.

    :param source_files: The source's ``files`` (their objects are checked).

    .. versionadded:: 5.0.0
    """
    access.authorize(target_record, access.UPDATE, target_bucket)
    objects = [obj for obj, _ in source_files.current_files()] if source_files else ()
    access.authorize(source_record, access.READ, source_bucket, objects=objects)


class RecordObjectResource(RecordFilesResourceMixin, ObjectResource):
    """A file of a record: download, upload, delete, multipart uploads.

    Writes go through :mod:`invenio_records_files.services.files`, which locks the
    record and its bucket, changes the bucket, updates the record's
    ``_files`` (``RECORDS_FILES_REST_UPDATE_RECORD``) and commits the record,
    all in one transaction committed here.
    """

    send_object = staticmethod(download.send_object)
    """Send downloads in fixed-size chunks (see :mod:`.download`)."""

    @pass_bucket_id
    def get(self, pid, record, **kwargs):
        """Download a file (``?versionId``, ``?download``), list upload parts.

        ``?members`` and ``?member=<name>`` look inside a zip file (see
        :mod:`invenio_records_files.rest.members`).
        """
        check_uuid_arguments()
        if zipmembers.wants_members(request.args):
            bucket = state_of(record).bucket(record)
            return zipmembers.members_response(bucket, kwargs["key"])
        return super().get(**kwargs)

    def head(self, pid, record, **kwargs):
        """Send the headers of a download."""
        return self.get(pid, record, **kwargs)

    @pass_bucket_id
    def put(self, pid, record, **kwargs):
        """Upload a file (a new version of it), or a part of an upload."""
        check_uuid_arguments()
        return super().put(**kwargs)

    @pass_bucket_id
    def post(self, pid, record, **kwargs):
        """Start (``?uploads``) or complete (``?uploadId``) a multipart upload."""
        check_uuid_arguments()
        return super().post(**kwargs)

    @pass_bucket_id
    def delete(self, pid, record, **kwargs):
        """Delete a file, remove a version, or abort a multipart upload."""
        check_uuid_arguments()
        return super().delete(**kwargs)

    def create_object(self, bucket, key):
        """Upload a new object (or a new version of it).

        The bytes are received with no database connection held: the record
        and the bucket are read and the permissions checked first, then the
        transaction ends, the bytes go to storage, and a new transaction
        publishes them (:func:`~invenio_records_files.services.files.upload`).
        """
        stream, content_length, content_md5, tags = current_files_rest.upload_factory()
        sync.check_upload(bucket, key, content_length, tags)
        destination = Destination.of(bucket)
        size_limit = bucket.size_limit
        db.session.commit()  # no connection held during the transfer
        with (
            written_file(
                destination, stream, size=content_length, size_limit=size_limit
            ) as fileinstance,
            rolled_back_on_error(),
        ):
            obj = sync.upload(
                self.record,
                bucket,
                key,
                fileinstance,
                content_md5=content_md5,
                tags=tags,
                update_record=self.update_record,
            )
            db.session.commit()
        file_uploaded.send(current_app._get_current_object(), obj=obj)
        return self.make_response(
            data=obj,
            context={"class": ObjectVersion, "bucket": bucket},
            etag=obj.file.checksum,
        )

    @need_permissions(
        lambda self, bucket, obj, *args: obj,
        "object-delete",
        hidden=False,  # Because get_object permission check has already run
    )
    def delete_object(self, bucket, obj, version_id):
        """Delete an object (delete marker) or one of its versions."""
        if version_id is not None:
            check_permission(
                current_permission_factory(bucket, "object-delete-version"),
                hidden=False,
            )
        with rolled_back_on_error():
            deleted = sync.delete(
                self.record,
                bucket,
                obj.key,
                version_id=version_id,
                update_record=self.update_record,
            )
            db.session.commit()
        file_deleted.send(current_app._get_current_object(), obj=deleted)
        return self.make_response("", 204)

    @pass_multipart(with_completed=True)
    def multipart_uploadpart(self, multipart):
        """Upload a part of a multipart upload.

        Like a whole upload, the part's bytes are received with no database
        connection held: the upload is checked first, the transaction ends,
        the bytes go to their place in the upload's file, then a new
        transaction records the part (and answers 404 or 409 if the upload
        was aborted or completed meanwhile). The last part of an upload
        whose size is a multiple of the part size is a whole part
        (Files-REST expects it empty).
        """
        (content_length, part_number, stream, _, _, _) = (
            current_files_rest.multipart_partfactory()
        )
        start, size = sync.part_range(multipart, part_number, content_length)
        storage = multipart.file.storage()
        upload_id = multipart.upload_id
        db.session.commit()  # no connection held during the transfer
        checksum = sync.write_part(storage, upload_id, stream, start, size)
        with rolled_back_on_error():
            part = sync.record_part(self.record, upload_id, part_number, checksum)
            db.session.commit()
        return self.make_response(data=part, context={"class": Part}, etag=checksum)

    @pass_multipart(with_completed=True)
    def multipart_complete(self, multipart):
        """Complete a multipart upload and merge it into a new object version.

        Files-REST merges in a Celery task and streams whitespace while it
        waits; here the merge runs in the request, so completion needs no
        worker and the new version exists when the response is sent. Of
        several concurrent completions (or abortions) one goes through, the
        others answer 404 or 409.
        """
        version_id = uuid.uuid4()
        with rolled_back_on_error():
            obj = sync.complete_multipart(
                self.record,
                multipart,
                version_id=version_id,
                update_record=self.update_record,
            )
            response = self.make_response(
                data=multipart,
                context={
                    "class": MultipartObject,
                    "bucket": multipart.bucket,
                    "object_version_id": str(version_id),
                },
            )
            db.session.commit()
        file_uploaded.send(current_app._get_current_object(), obj=obj)
        return response

    def multipart_init(self, bucket, key, **kwargs):
        """Start a multipart upload (the bucket's size changes: lock it)."""
        sync.start_multipart(self.record, bucket, key)
        return super().multipart_init(bucket, key, **kwargs)

    @pass_multipart()
    @need_permissions(lambda self, multipart: multipart, "multipart-delete")
    def multipart_delete(self, multipart):
        """Abort a multipart upload; its bytes go once the abortion commits."""
        with rolled_back_on_error():
            sync.abort_multipart(self.record, multipart)
            db.session.commit()
        return self.make_response("", 204)


class FileKeyConverter(PathConverter):
    """A file key in a URL: like ``path``, but line breaks match too.

    Keys with control characters are then refused with ``400`` by the view,
    instead of ``404`` by the router.
    """

    regex = r"[^/][\s\S]*?"


def check_archive_permission(
    record, bucket, pid=None, endpoint=None, archive=None
) -> None:
    """Allow the archive of ``record``'s files, or abort (401, 403 or 404).

    :func:`~invenio_records_files.services.access.authorize`: ``read`` on
    the record (its bucket's listing) and, for each file of ``archive``,
    what its download asks (Files-REST's ``object-read``).
    """
    objects = archive.objects(bucket) if archive is not None else ()
    access.authorize(
        record, access.READ, bucket, objects=objects, pid=pid, endpoint=endpoint
    )


class RecordArchiveResource(MethodView):
    """All of a record's current files as one zip (``<files URL>-archive``).

    .. versionadded:: 5.0.0
    """

    def __init__(
        self, record_class: type[FilesMixin] = Record, rest_endpoint=None
    ) -> None:
        """Initialize; ``record_class`` wraps resolved records."""
        self.record_class = record_class
        self.rest_endpoint = rest_endpoint

    def get(self, pid_value):
        """Send the archive (or the requested range of it)."""
        pid, record = resolve_record(pid_value, self.record_class)
        bucket = state_of(record).bucket(record)
        if bucket is None:
            raise RecordFilesRESTError(404, "The record has no files.")
        if bucket.deleted:
            raise RecordFilesRESTError(404, "Bucket does not exist.")
        files = record.files
        zipped = archive.RecordArchive.of(record, files.bucket)
        check_archive_permission(record, bucket, pid, self.rest_endpoint, zipped)
        return archive.send_archive(zipped, archive.archive_filename(pid_value.value))


def create_blueprint_from_app(app: Flask) -> Blueprint:
    """Create the record files blueprint from ``RECORDS_FILES_REST_ENDPOINTS``.

    For each ``{config_name: {endpoint_prefix: suffix}}`` entry, the item
    route of ``app.config[config_name][endpoint_prefix]`` gets
    ``<item_route><suffix>`` (endpoint ``<endpoint_prefix>_bucket_api``),
    ``<item_route><suffix>/<filekey:key>`` (``<endpoint_prefix>_object_api``;
    :class:`FileKeyConverter` is ``path`` with line breaks) and
    ``<item_route><suffix>-archive`` (``<endpoint_prefix>_archive_api``).

    :raises invalid_prefix: ``KeyError`` (as version 4 raised) if an endpoint
        prefix is not defined in the named configuration; ``ValueError`` if
        its item route has no PID converter.
    """
    blueprint = Blueprint("invenio_records_files", __name__, url_prefix="")
    # Before the rules: they need it when the blueprint is registered.
    blueprint.record_once(
        lambda state: state.app.url_map.converters.setdefault(
            "filekey", FileKeyConverter
        )
    )
    with app.app_context():
        configured = settings.rest_endpoints()
    for config_name, endpoints in configured.items():
        rest_endpoints = app.config.get(config_name) or {}
        for prefix, suffix in endpoints.items():
            if prefix not in rest_endpoints:
                raise UnknownEndpointError(prefix, config_name)
            options = rest_endpoints[prefix]
            record_class = options.get("record_class")
            add_record_files_rules(
                blueprint,
                prefix,
                options["item_route"],
                suffix,
                record_class=import_string(record_class)
                if isinstance(record_class, str)
                else record_class,
                rest_endpoint=options,
            )
    return blueprint


def add_record_files_rules(
    blueprint: Blueprint,
    prefix: str,
    item_route: str,
    suffix: str,
    record_class: type | None = None,
    rest_endpoint: dict | None = None,
) -> None:
    """Add the bucket, object and archive routes of one endpoint.

    :param rest_endpoint: The endpoint's Invenio-Records-REST configuration
        (its permission factories apply with
        :func:`~invenio_records_files.permissions.record_permission_factory`).
    """
    if not PID_CONVERTER.search(item_route):
        raise ValueError(
            f"The item route {item_route!r} of {prefix!r} needs a PID converter, "
            "e.g. '<pid(recid):pid_value>'."
        )
    if record_class is None or not issubclass(record_class, Record):
        record_class = Record
    route = item_route.rstrip("/") + "/" + suffix.strip("/")
    blueprint.add_url_rule(
        f"{route}-archive",
        view_func=RecordArchiveResource.as_view(
            f"{prefix}_archive_api",
            record_class=record_class,
            rest_endpoint=rest_endpoint,
        ),
    )
    options = {
        "serializers": {"application/json": json_serializer},
        "record_class": record_class,
        "rest_endpoint": rest_endpoint,
    }
    blueprint.add_url_rule(
        route,
        view_func=RecordBucketResource.as_view(f"{prefix}_bucket_api", **options),
    )
    blueprint.add_url_rule(
        f"{route}/<filekey:key>",
        view_func=RecordObjectResource.as_view(f"{prefix}_object_api", **options),
    )


__all__ = (
    "RecordArchiveResource",
    "RecordBucketResource",
    "RecordObjectResource",
    "check_archive_permission",
    "check_import_permissions",
    "create_blueprint_from_app",
    "pass_bucket_id",
    "pass_record",
    "resolve_record",
)
