# SPDX-License-Identifier: MIT
"""REST endpoints for a record's files.

For each ``RECORDS_FILES_REST_ENDPOINTS`` entry, the record's bucket is
served under the record's URL with Invenio-Files-REST's own resources: the
views resolve the record from the URL, inject its bucket and delegate. The
injected bucket is the only one they touch (the bucket id is never read from
the request), so one record's files are never reachable through another.
"""

import re
import uuid
from contextlib import contextmanager

from flask import Blueprint, Flask, abort, current_app, redirect, request, url_for
from flask.views import MethodView
from invenio_db import db
from invenio_files_rest.errors import BucketLockedError, FileSizeError
from invenio_files_rest.models import MultipartObject, ObjectVersion
from invenio_files_rest.proxies import current_files_rest, current_permission_factory
from invenio_files_rest.signals import file_deleted, file_uploaded
from invenio_files_rest.tasks import remove_file_data
from invenio_files_rest.views import (
    BucketResource,
    ObjectResource,
    check_permission,
    need_permissions,
    pass_multipart,
)
from invenio_pidstore.errors import (
    PIDDeletedError,
    PIDDoesNotExistError,
    PIDMissingObjectError,
    PIDRedirectedError,
    PIDUnregistered,
)
from invenio_records.errors import MissingModelError
from invenio_records_rest.utils import obj_or_import_string
from invenio_rest.errors import RESTException
from marshmallow import missing
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.routing import BuildError

from . import archive, sync, zipmembers
from .api import FilesMixin, Record
from .serializer import json_serializer

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PID_CONVERTER = re.compile(r"<pid(path)?\(")


class RecordFilesRESTError(RESTException):
    """JSON error of the record files endpoints."""

    def __init__(self, code: int, description: str) -> None:
        """Initialize with an HTTP status ``code`` and a message."""
        self.code = code
        super().__init__(description=description)


def resolve_record(pid_value, record_class: type[FilesMixin]) -> FilesMixin:
    """Resolve the URL's PID to a record with files, or raise an HTTP error.

    :param pid_value: The lazy PID value of the records-rest PID converter.
    :param record_class: Record class used when the converter's record class
        has no files.
    """
    try:
        _pid, record = pid_value.resolver.resolve(pid_value.value)
    except (PIDDoesNotExistError, PIDUnregistered) as error:
        raise RecordFilesRESTError(404, "PID does not exist.") from error
    except PIDDeletedError as error:
        raise RecordFilesRESTError(410, "The record has been deleted.") from error
    except PIDMissingObjectError as error:
        raise RecordFilesRESTError(404, "No record is assigned to this PID.") from error
    except PIDRedirectedError as error:
        _redirect(error)
    if record.is_deleted:
        raise RecordFilesRESTError(410, "The record has been deleted.")
    if not isinstance(record, FilesMixin):
        record = record_class(record, model=record.model)
    return record


def _redirect(error: PIDRedirectedError) -> None:
    """Answer 301 with the same files URL for the destination PID."""
    destination = error.destination_pid
    if destination.pid_type == error.pid.pid_type:
        try:
            location = url_for(
                request.endpoint,
                **dict(request.view_args, pid_value=destination.pid_value),
                **request.args,
            )
        except BuildError:
            pass
        else:
            abort(redirect(location, code=301))
    raise RecordFilesRESTError(404, "PID is redirected to another kind of record.")


@contextmanager
def record_errors():
    """Answer 404 or 410 when the object or the record vanished meanwhile.

    Writes lock and reload the record and its bucket; another request may
    have deleted the object (``KeyError``) or the record
    (``MissingModelError``) between the first read and the lock.
    """
    try:
        yield
    except KeyError as error:
        raise RecordFilesRESTError(404, "Object does not exists.") from error
    except MissingModelError as error:
        raise RecordFilesRESTError(410, "The record has been deleted.") from error


class RecordFilesResourceMixin:
    """Resolve the record of the URL and inject its bucket into the resource."""

    def __init__(self, *args, record_class: type[FilesMixin] = Record, **kwargs):
        """Initialize the resource; ``record_class`` wraps resolved records."""
        super().__init__(*args, **kwargs)
        self.record_class = record_class

    def dispatch_request(self, pid_value, **kwargs):
        """Resolve the record, check its bucket, delegate to Files-REST."""
        self.record = resolve_record(pid_value, self.record_class)
        files = self.record.files
        if files is None:
            raise RecordFilesRESTError(404, "The record has no files.")
        bucket = files.bucket
        if request.method not in READ_METHODS and bucket.locked:
            raise BucketLockedError()
        return super().dispatch_request(bucket_id=str(bucket.id), **kwargs)


class RecordBucketResource(RecordFilesResourceMixin, BucketResource):
    """A record's bucket: listing of its files, versions and uploads."""

    @need_permissions(lambda self, bucket, versions: bucket, "bucket-read")
    def listobjects(self, bucket, versions):
        """List the objects of the bucket (files and tags loaded eagerly)."""
        if versions is not missing:
            check_permission(
                current_permission_factory(bucket, "bucket-read-versions"),
                hidden=False,
            )
        objects = (
            ObjectVersion.get_by_bucket(bucket.id, versions=versions is not missing)
            .options(joinedload(ObjectVersion.file), selectinload(ObjectVersion.tags))
            .limit(1000)
            .all()
        )
        return self.make_response(
            data=objects,
            context={"class": ObjectVersion, "bucket": bucket, "many": True},
        )


class RecordObjectResource(RecordFilesResourceMixin, ObjectResource):
    """A file of a record: download, upload, delete, multipart uploads.

    Writes go through :mod:`invenio_records_files.sync`, which locks the
    record and its bucket, changes the bucket, updates the record's
    ``_files`` (``RECORDS_FILES_REST_UPDATE_RECORD``) and commits the record,
    all in one transaction committed here.
    """

    @property
    def update_record(self) -> bool:
        """Tell whether writes update the record's ``_files``."""
        return current_app.config["RECORDS_FILES_REST_UPDATE_RECORD"]

    def get(self, key=None, **kwargs):
        """Download the file; ``?members`` and ``?member=`` look inside a zip."""
        if zipmembers.wants_members(request.args):
            return zipmembers.members_response(self.record.files.bucket, key)
        return super().get(key=key, **kwargs)

    def create_object(self, bucket, key):
        """Upload a new object (or a new version of it)."""
        stream, content_length, content_md5, tags = current_files_rest.upload_factory()
        size_limit = bucket.size_limit
        if content_length and size_limit and content_length > size_limit:
            raise FileSizeError(
                description="File size limit exceeded."
                if isinstance(size_limit, int)
                else size_limit.reason
            )
        with record_errors():
            obj = sync.upload(
                self.record,
                bucket,
                key,
                stream,
                size=content_length,
                size_limit=size_limit,
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
        with record_errors():
            deleted = sync.delete(
                self.record,
                bucket,
                obj.key,
                version_id=version_id,
                update_record=self.update_record,
            )
        file_id = deleted.file_id if version_id is not None else None
        db.session.commit()
        if file_id:
            remove_file_data.delay(str(file_id))
        file_deleted.send(current_app._get_current_object(), obj=deleted)
        return self.make_response("", 204)

    @pass_multipart(with_completed=True)
    def multipart_complete(self, multipart):
        """Complete a multipart upload and merge it into a new object version.

        Files-REST merges in a Celery task and streams whitespace while it
        waits; here the merge runs in the request, so completion needs no
        worker and the new version exists when the response is sent.
        """
        multipart.complete()
        version_id = uuid.uuid4()
        with record_errors():
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
        sync.lock(None, bucket)
        return super().multipart_init(bucket, key, **kwargs)

    def multipart_delete(self, bucket, key, upload_id):
        """Abort a multipart upload (the bucket's size changes: lock it)."""
        sync.lock(None, bucket)
        return super().multipart_delete(bucket, key, upload_id)


def check_archive_permission(record, bucket) -> None:
    """Allow the archive of ``record``'s files, or abort (401, 403 or 404).

    The one place that decides who may download a record's archive: for now
    Files-REST's ``bucket-read`` permission of the record's bucket, as for
    listing the files.
    """
    check_permission(current_permission_factory(bucket, "bucket-read"))


class RecordArchiveResource(MethodView):
    """All of a record's current files as one zip (``<files URL>-archive``).

    .. versionadded:: 2.0.0
    """

    def __init__(self, record_class: type[FilesMixin] = Record) -> None:
        """Initialize; ``record_class`` wraps resolved records."""
        self.record_class = record_class

    def get(self, pid_value):
        """Send the archive (or the requested range of it)."""
        record = resolve_record(pid_value, self.record_class)
        files = record.files
        if files is None:
            raise RecordFilesRESTError(404, "The record has no files.")
        if files.bucket.deleted:
            raise RecordFilesRESTError(404, "Bucket does not exist.")
        check_archive_permission(record, files.bucket)
        return archive.send_archive(
            archive.RecordArchive.of(record, files.bucket),
            archive.archive_filename(pid_value.value),
        )


def create_blueprint_from_app(app: Flask) -> Blueprint:
    """Create the record files blueprint from ``RECORDS_FILES_REST_ENDPOINTS``.

    For each ``{config_name: {endpoint_prefix: suffix}}`` entry, the item
    route of ``app.config[config_name][endpoint_prefix]`` gets
    ``<item_route><suffix>`` (endpoint ``<endpoint_prefix>_bucket_api``),
    ``<item_route><suffix>/<path:key>`` (``<endpoint_prefix>_object_api``) and
    ``<item_route><suffix>-archive`` (``<endpoint_prefix>_archive_api``).

    :raises ValueError: if an endpoint prefix is not defined in the named
        configuration, or its item route has no PID converter.
    """
    blueprint = Blueprint("invenio_records_files", __name__, url_prefix="")
    for config_name, endpoints in app.config.get(
        "RECORDS_FILES_REST_ENDPOINTS", {}
    ).items():
        rest_endpoints = app.config.get(config_name) or {}
        for prefix, suffix in endpoints.items():
            if prefix not in rest_endpoints:
                raise ValueError(
                    f"Endpoint prefix {prefix!r} (RECORDS_FILES_REST_ENDPOINTS) is "
                    f"not defined in {config_name}."
                )
            options = rest_endpoints[prefix]
            add_record_files_rules(
                blueprint,
                prefix,
                options["item_route"],
                suffix,
                record_class=obj_or_import_string(options.get("record_class")),
            )
    return blueprint


def add_record_files_rules(
    blueprint: Blueprint,
    prefix: str,
    item_route: str,
    suffix: str,
    record_class: type | None = None,
) -> None:
    """Add the bucket, object and archive routes of one endpoint."""
    if not PID_CONVERTER.search(item_route):
        raise ValueError(
            f"The item route {item_route!r} of {prefix!r} needs a PID converter, "
            "e.g. '<pid(recid):pid_value>'."
        )
    if record_class is None or not issubclass(record_class, FilesMixin):
        record_class = Record
    route = item_route.rstrip("/") + "/" + suffix.strip("/")
    blueprint.add_url_rule(
        f"{route}-archive",
        view_func=RecordArchiveResource.as_view(
            f"{prefix}_archive_api", record_class=record_class
        ),
    )
    options = {
        "serializers": {"application/json": json_serializer},
        "record_class": record_class,
    }
    blueprint.add_url_rule(
        route,
        view_func=RecordBucketResource.as_view(f"{prefix}_bucket_api", **options),
    )
    blueprint.add_url_rule(
        f"{route}/<path:key>",
        view_func=RecordObjectResource.as_view(f"{prefix}_object_api", **options),
    )
