# SPDX-License-Identifier: MIT
"""The most files a record may hold (``RECORDS_FILES_MAX_FILES``).

Every writer that adds a file calls :func:`check_max_files` after it has
locked the record and its bucket (see :mod:`invenio_records_files.records.state`),
so concurrent uploads queue up behind the lock and each one counts the files
the previous ones committed: the limit cannot be overshot. A new version of
a file the record holds never counts. With no limit configured nothing is
queried.

How much a record may *store* is Invenio-Files-REST's business: the quota
and the largest file size of its bucket (``FILES_REST_DEFAULT_QUOTA_SIZE``,
``FILES_REST_DEFAULT_MAX_FILE_SIZE``), see :doc:`/configuration`.

.. versionadded:: 5.0.0
"""

from collections.abc import Collection

from invenio_db import db
from invenio_files_rest.models import Bucket, ObjectVersion
from sqlalchemy import case, func, select

from invenio_records_files import settings
from invenio_records_files.errors import TooManyFilesError


def max_files() -> int | None:
    """Return ``RECORDS_FILES_MAX_FILES`` (read by :mod:`.settings`)."""
    return settings.max_files()


def check_max_files(bucket: Bucket, keys: Collection[str]) -> None:
    """Refuse to add ``keys`` to ``bucket`` past ``RECORDS_FILES_MAX_FILES``.

    Keys the bucket holds (new versions) are free. One query counts the
    bucket's files and those of ``keys`` among them; none without a limit.

    :raises invenio_records_files.errors.TooManyFilesError: if the new keys
        do not fit.
    """
    limit = max_files()
    if limit is None or not keys:
        return
    keys = set(keys)
    held, present = db.session.execute(
        select(
            func.count(),
            func.count(case((ObjectVersion.key.in_(keys), 1))),
        ).where(
            ObjectVersion.bucket_id == bucket.id,
            ObjectVersion.is_head.is_(True),
            ObjectVersion.file_id.is_not(None),
        )
    ).one()
    new = len(keys) - present
    if new and held + new > limit:
        raise TooManyFilesError(limit, sorted(keys))


__all__ = ("check_max_files", "max_files")
