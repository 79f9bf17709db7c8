# SPDX-License-Identifier: MIT
"""From the URL of a record's files to the record: PID resolution.

The record files endpoints resolve the PID of the URL with the resolver of
its records-rest converter, but load the record with its bucket and without
``_files`` (writes do not read the file list; ``record.files`` loads it when
used): :func:`resolve_record`. :func:`pass_record` and :func:`pass_bucket_id`
hand ``pid``, ``record`` and the bucket's id to the resources' methods.

.. versionadded:: 5.0.0
"""

import uuid
from functools import wraps
from types import SimpleNamespace

from flask import abort, redirect, request, url_for
from invenio_pidstore.errors import (
    PIDDeletedError,
    PIDDoesNotExistError,
    PIDMissingObjectError,
    PIDRedirectedError,
    PIDUnregistered,
)
from invenio_pidstore.resolver import Resolver
from sqlalchemy.orm.exc import NoResultFound

from invenio_records_files.errors import (
    InvalidArgumentError,
    NoBucketError,
    RecordFilesRESTError,
)
from invenio_records_files.records.record import FilesMixin, Record
from invenio_records_files.records.state import state_of
from invenio_records_files.store.keys import is_storable


def _record_class_of(resolver: Resolver, default: type) -> type:
    """Return the record class the URL's PID converter loads, if it has files."""
    getter = resolver.object_getter
    cls = getattr(getattr(getter, "func", getter), "__self__", None)
    if isinstance(cls, type) and issubclass(cls, Record):
        return cls
    return default


def resolve_record(
    pid_value, record_class: type[FilesMixin] = Record, follow_redirect: bool = False
):
    """Resolve the URL's PID to ``(pid, record)``, or raise an HTTP error.

    The record is loaded with its bucket but without ``_files`` (writes do
    not read the file list; ``record.files`` loads it when used).

    :param pid_value: The lazy PID value of the records-rest PID converter.
    :param record_class: Record class used when the converter's record class
        has no files.
    :param follow_redirect: Resolve a redirected PID to its destination
        (once) instead of answering ``301``.
    """
    resolver = pid_value.resolver
    if not is_storable(pid_value.value):  # NUL: no PID has it, nor can be asked
        raise RecordFilesRESTError(404, "PID does not exist.")
    cls = _record_class_of(resolver, record_class)

    def load(record_id):
        return cls._load([record_id], with_deleted=True, one=True, files=False)[0]

    try:
        pid, record = Resolver(
            pid_type=resolver.pid_type, object_type=resolver.object_type, getter=load
        ).resolve(pid_value.value)
    except (PIDDoesNotExistError, PIDUnregistered) as error:
        raise RecordFilesRESTError(404, "PID does not exist.") from error
    except PIDDeletedError as error:
        raise RecordFilesRESTError(410, "The record has been deleted.") from error
    except PIDMissingObjectError as error:
        raise RecordFilesRESTError(404, "No record is assigned to this PID.") from error
    except PIDRedirectedError as error:
        if not follow_redirect:
            _redirect(error)
        destination = error.destination_pid
        if destination.pid_type != error.pid.pid_type:
            raise RecordFilesRESTError(
                404, "PID is redirected to another kind of record."
            ) from error
        return resolve_record(
            SimpleNamespace(resolver=resolver, value=destination.pid_value),
            record_class,
        )
    except NoResultFound as error:
        raise RecordFilesRESTError(410, "The record has been deleted.") from error
    if record.is_deleted:
        raise RecordFilesRESTError(410, "The record has been deleted.")
    return pid, record


def _redirect(error: PIDRedirectedError) -> None:
    """Answer with the same files URL for the destination PID.

    ``GET`` and ``HEAD`` get ``301``; writes get ``308`` (clients turn a
    ``301`` into a ``GET`` and drop the body; a ``308`` keeps the method and
    the body). The query string is appended as it came; nothing of it reaches
    ``url_for`` (which would let a client choose the scheme or the anchor).
    """
    destination = error.destination_pid
    if destination.pid_type != error.pid.pid_type:
        raise RecordFilesRESTError(404, "PID is redirected to another kind of record.")
    location = url_for(
        request.endpoint,
        **dict(request.view_args, pid_value=destination.pid_value),
    )
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    code = 301 if request.method in ("GET", "HEAD") else 308
    abort(redirect(location, code=code))


def pass_record(f):
    """Resolve the URL's ``pid_value`` and pass ``pid`` and ``record`` instead."""

    @wraps(f)
    def inner(self, *args, pid_value=None, **kwargs):
        pid, record = resolve_record(pid_value, self.record_class)
        return f(self, *args, pid=pid, record=record, **kwargs)

    return inner


def pass_bucket_id(f):
    """Pass the record's bucket id as ``bucket_id`` (404 without a bucket)."""

    @wraps(f)
    def inner(self, pid, record, *args, **kwargs):
        bucket = state_of(record).bucket(record)
        if bucket is None:
            raise NoBucketError(record.id)
        return f(self, pid, record, *args, bucket_id=str(bucket.id), **kwargs)

    return inner


def resolve_import_source(value: str, record_class: type[FilesMixin] = Record):
    """Resolve the ``?import`` PID value with the URL's resolver (same PID type).

    A redirected PID is followed to its destination.

    :returns: ``(pid, record)``.
    :raises RecordFilesRESTError: ``404`` for an unknown PID, ``410`` for a
        deleted record, naming the source.

    .. versionadded:: 5.0.0
    """
    resolver = request.view_args["pid_value"].resolver
    try:
        return resolve_record(
            SimpleNamespace(resolver=resolver, value=value),
            record_class,
            follow_redirect=True,
        )
    except RecordFilesRESTError as error:
        raise RecordFilesRESTError(
            error.code, f"Cannot import from {value!r}: {error.description}"
        ) from error


UUID_ARGUMENTS = ("versionId", "uploadId")
"""Query arguments that are UUIDs (checked by :func:`check_uuid_arguments`)."""


def uuid_arg(name: str) -> uuid.UUID | None:
    """Return the query argument ``name`` as a UUID (``None`` when absent).

    :raises invenio_records_files.errors.InvalidArgumentError: (400,
        "Invalid <name>.") if it is not a UUID.
    """
    value = request.args.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise InvalidArgumentError(name) from error


def check_uuid_arguments() -> None:
    """Refuse a request whose ``versionId`` or ``uploadId`` is not a UUID."""
    for name in UUID_ARGUMENTS:
        uuid_arg(name)
