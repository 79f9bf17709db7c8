# SPDX-License-Identifier: MIT
"""Who may read and change a record's files: the record's own permissions.

By default Invenio-Files-REST's permission factory decides about a record's
bucket, as in version 4. With ``RECORDS_FILES_REST_PERMISSION_FACTORY`` set,
a factory of the record decides instead: ``factory(record, action)``, with
``action`` either :data:`READ` or :data:`UPDATE`, returns an object with a
``can()`` method. :func:`check` asks it once per request, before anything
is read from the request or from storage, and answers Invenio-Files-REST's
own checks on the record's bucket for the rest of the request (so that
Files-REST's factory, which knows nothing of records, cannot deny what the
record's factory allowed).

:func:`record_permission_factory` is such a factory: it applies the
permission factories of the record's Invenio-Records-REST endpoint.

.. versionadded:: 5.0.0
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from flask import abort, current_app, has_request_context, request
from flask_login import current_user
from invenio_db import db
from invenio_files_rest.models import Bucket, MultipartObject, ObjectVersion
from invenio_files_rest.proxies import current_files_rest, current_permission_factory
from invenio_pidstore.models import PersistentIdentifier
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from invenio_records_files import settings
from invenio_records_files.errors import PermissionDeniedError
from invenio_records_files.records.state import state_of

READ = "read"
"""Action of listings (files, versions, uploads), downloads and ``HEAD``."""

UPDATE = "update"
"""Action of uploads, multipart uploads, deletions, version removals, imports."""

ACTIONS = (READ, UPDATE)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

FILES_REST_ACTIONS = {
    "bucket-read": READ,
    "bucket-read-versions": READ,
    "bucket-listmultiparts": READ,
    "object-read": READ,
    "object-read-version": READ,
    "multipart-read": READ,
    "bucket-update": UPDATE,
    "object-delete": UPDATE,
    "object-delete-version": UPDATE,
    "multipart-delete": UPDATE,
}
"""The record action that answers each Invenio-Files-REST action."""

BUCKET_ACTIONS = {READ: "bucket-read", UPDATE: "bucket-update"}
"""The Invenio-Files-REST action asked about the bucket without a record factory."""

_GRANTED = {READ: frozenset({READ}), UPDATE: frozenset({READ, UPDATE})}
# A write request looks the object up (Files-REST's object-read) first.


class _Allowed:
    """A permission that allows."""

    def can(self) -> bool:
        return True


ALLOWED = _Allowed()


def action_of(method: str) -> str:
    """Return the action of an HTTP ``method``: :data:`READ` or :data:`UPDATE`."""
    return READ if method.upper() in READ_METHODS else UPDATE


def configured_factory() -> Callable[[Any, str], Any] | None:
    """Return the factory of ``RECORDS_FILES_REST_PERMISSION_FACTORY`` (or ``None``)."""
    return settings.permission_factory()


def authorize(
    record,
    action: str,
    bucket: Bucket | None = None,
    objects: Iterable[ObjectVersion] = (),
    pid=None,
    endpoint: dict | None = None,
    hidden: bool = True,
    whole_bucket: bool = True,
) -> None:
    """Refuse, unless the current user may ``action`` the files of ``record``.

    The one permission decision of every path: downloads, ``HEAD``,
    listings, versions, the archive, zip members, imports (source and
    target), the download view, and every write.

    1. The record: with ``RECORDS_FILES_REST_PERMISSION_FACTORY`` set, its
       factory decides (``401``/``403``), and Invenio-Files-REST's checks on
       the record's bucket are answered the same way for the rest of the
       request (an :data:`UPDATE` allows reading too). Without it,
       Invenio-Files-REST's factory is asked about the record's bucket
       (``bucket-read``, ``bucket-update``) when the request is about the
       bucket as a whole (``whole_bucket``: a listing, the archive, an
       import); a download asks about its object alone, as Files-REST's
       own download does.
    2. Each of ``objects`` (files whose bytes or metadata the request will
       send): Invenio-Files-REST's ``object-read`` (``object-read-version``
       for a version that is not the head), as for a download.

    :param bucket: The record's bucket, if known (else loaded when needed).
    :param pid: The PID the request came through, and ``endpoint`` its
        records-rest configuration (see :func:`serving`).
    :param hidden: A refusal of Invenio-Files-REST's factory answers ``404``
        (as Files-REST's own checks do), else ``401``/``403``.
    :raises ValueError: for an unknown ``action``.
    :raises invenio_records_files.errors.PermissionDeniedError: ``401`` for
        an anonymous user, ``403`` for an authenticated one.
    :raises werkzeug.exceptions.NotFound: a hidden refusal.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}: use {READ!r} or {UPDATE!r}.")
    factory = configured_factory()
    if factory is not None:
        if has_request_context():
            serving(record, pid, endpoint)
        _require(factory(record, action), record, action, hidden=False)
        bucket = bucket if bucket is not None else state_of(record).bucket(record)
        if bucket is not None and has_request_context():
            _grant(bucket.id, action)
    else:
        if whole_bucket and bucket is None:
            bucket = state_of(record).bucket(record)
        if whole_bucket and bucket is not None:
            _require(
                current_permission_factory(bucket, BUCKET_ACTIONS[action]),
                record,
                action,
                hidden,
            )
    for obj in objects:
        name = "object-read" if obj.is_head else "object-read-version"
        _require(current_permission_factory(obj, name), record, action, hidden)


def can(record, action: str, bucket: Bucket | None = None) -> bool:
    """Tell whether :func:`authorize` allows ``action`` on the record's files."""
    try:
        authorize(record, action, bucket)
    except (PermissionDeniedError, NotFound):
        return False
    return True


def _require(permission, record, action: str, hidden: bool) -> None:
    if permission is None or permission.can():
        return
    if hidden:
        abort(404)
    raise PermissionDeniedError(
        record.id, action, authenticated=current_user.is_authenticated
    )


def check(record, action: str, bucket: Bucket | None = None) -> None:
    """Refuse, unless the current user may ``action`` the files of ``record``.

    :func:`authorize` for the record alone, refusing with ``401``/``403``
    also when Invenio-Files-REST's factory decides. Call it before reading
    the request's body or the files' bytes, e.g. in an endpoint that copies
    the files of one record into another: ``read`` on the source, ``update``
    on the target.

    :param bucket: The record's bucket, if known (else loaded when needed).
    :raises ValueError: for an unknown ``action``.
    :raises invenio_records_files.errors.PermissionDeniedError: ``401`` for
        an anonymous user, ``403`` for an authenticated one.
    """
    authorize(record, action, bucket, hidden=False)


# -- Invenio-Files-REST's checks on an allowed bucket ---------------------------


class RecordGrantsFactory:
    """Invenio-Files-REST's permission factory, aware of :func:`check`.

    Installed in place of Files-REST's factory by :func:`check` (the first
    time a record's factory allows something). On a bucket :func:`check`
    allowed in the current request, it allows the Files-REST actions of the
    allowed record action; everything else goes to Files-REST's factory.
    """

    def __init__(self, files_rest_factory: Callable) -> None:
        """Wrap Files-REST's permission factory."""
        self.files_rest_factory = files_rest_factory

    def __call__(self, obj, action: str):
        """Return the permission of ``action`` on ``obj``."""
        granted = _grants().get(_bucket_id_of(obj)) if has_request_context() else None
        if granted and FILES_REST_ACTIONS.get(action) in granted:
            return ALLOWED
        return self.files_rest_factory(obj, action)


def _bucket_id_of(obj) -> Any:
    if isinstance(obj, Bucket):
        return obj.id
    if isinstance(obj, (ObjectVersion, MultipartObject)):
        return obj.bucket_id
    return None


def _grants() -> dict:
    return getattr(request, "_records_files_grants", None) or {}


def _grant(bucket_id, action: str) -> None:
    state = current_files_rest._get_current_object()
    if not isinstance(state.permission_factory, RecordGrantsFactory):
        state.permission_factory = RecordGrantsFactory(state.permission_factory)
    grants = dict(_grants())
    grants[bucket_id] = grants.get(bucket_id, frozenset()) | _GRANTED[action]
    request._records_files_grants = grants


# -- the records-rest permissions of a record -----------------------------------


@dataclass(frozen=True)
class _Served:
    """The record a request is about, and the records-rest endpoint serving it."""

    record_id: Any
    pid_type: str | None = None
    endpoint: dict | None = None


def serving(record, pid=None, endpoint: dict | None = None) -> None:
    """Remember that the current request serves ``record`` (found through ``pid``).

    :func:`record_permission_factory` then takes the permissions of
    ``endpoint`` (a records-rest endpoint configuration), or else of the
    records-rest endpoint of ``pid``'s type, without a query.
    """
    request._records_files_served = _Served(
        record.id, getattr(pid, "pid_type", None), endpoint
    )


def rest_endpoint(record) -> dict | None:
    """Return the Invenio-Records-REST endpoint configuration of ``record``.

    The one serving the current request (see :func:`serving`), else the
    default endpoint of the record's PID type in ``RECORDS_REST_ENDPOINTS``
    (one query finds the PID types); ``None`` when there is none.
    """
    served = (
        getattr(request, "_records_files_served", None)
        if has_request_context()
        else None
    )
    if served is not None and served.record_id == record.id:
        if served.endpoint is not None:
            return served.endpoint
        pid_types = [served.pid_type] if served.pid_type else []
    else:
        pid_types = []
    if not pid_types and record.id is not None:
        pid_types = db.session.scalars(
            select(PersistentIdentifier.pid_type).where(
                PersistentIdentifier.object_type == "rec",
                PersistentIdentifier.object_uuid == record.id,
            )
        ).all()
    prefixes = _records_rest().default_endpoint_prefixes
    endpoints = current_app.config.get("RECORDS_REST_ENDPOINTS") or {}
    for pid_type in pid_types:
        prefix = prefixes.get(pid_type)
        if prefix in endpoints:
            return endpoints[prefix]
    return None


def record_permission_factory(record, action: str):
    """Return the records-rest permission of ``action`` on ``record``.

    The permission factory of the record's Invenio-Records-REST endpoint
    (:func:`rest_endpoint`): ``read_permission_factory_imp`` for
    :data:`READ`, ``update_permission_factory_imp`` for :data:`UPDATE`; the
    ``RECORDS_REST_DEFAULT_READ_PERMISSION_FACTORY`` /
    ``..._UPDATE_PERMISSION_FACTORY`` where the endpoint names none. Where
    neither is set, records-rest checks nothing, and neither does this.

    Set ``RECORDS_FILES_REST_PERMISSION_FACTORY`` to it so that whoever may
    read a record may read its files, and whoever may update it may change
    them.

    :raises ValueError: for an unknown ``action``.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}: use {READ!r} or {UPDATE!r}.")
    endpoint = rest_endpoint(record)
    name = f"{action}_permission_factory"
    factory = settings.obj_or_import_string((endpoint or {}).get(f"{name}_imp"))
    if factory is None:
        factory = getattr(_records_rest(), name)
    if factory is None:
        return ALLOWED
    from invenio_records_rest.utils import check_search

    if factory is check_search:
        _provide_search_class(endpoint)
    return factory(record=record)


def _records_rest():
    """Return Invenio-Records-REST's state (imported only when it is used)."""
    return current_app.extensions["invenio-records-rest"]


def _provide_search_class(endpoint: dict | None) -> None:
    """Give records-rest's ``check_search`` the endpoint's search class.

    ``check_search`` (records-rest's default read permission: "the record is
    in the search index") reads the search class of the records-rest view
    serving the request; here none is, so the endpoint's is provided.
    """
    if getattr(request, "_methodview", None) is not None:
        return
    search_class = settings.obj_or_import_string((endpoint or {}).get("search_class"))
    if search_class is None:
        from invenio_search import RecordsSearch

        search_class = RecordsSearch
    request._methodview = SimpleNamespace(search_class=search_class)


__all__ = (
    "ACTIONS",
    "READ",
    "UPDATE",
    "RecordGrantsFactory",
    "action_of",
    "authorize",
    "can",
    "check",
    "configured_factory",
    "record_permission_factory",
    "rest_endpoint",
    "serving",
)
