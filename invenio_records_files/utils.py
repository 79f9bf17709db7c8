# SPDX-License-Identifier: MIT
"""Implementation of various utility functions."""

from collections.abc import Iterable

from invenio_files_rest.models import Bucket, ObjectVersion
from invenio_records.errors import MissingModelError
from sqlalchemy.orm import joinedload


def sorted_files_from_bucket(bucket: Bucket, keys: Iterable[str] | None = None):
    """Return files from bucket sorted by given keys.

    One query loads the bucket's files (head versions that are not delete
    markers) with their file instances.

    :param bucket: :class:`~invenio_files_rest.models.Bucket` containing the
        files.
    :param keys: Keys order to be used. Files whose key is not listed follow,
        in key order.
    :returns: Sorted list of bucket items
        (:class:`~invenio_files_rest.models.ObjectVersion`).
    """
    keys = list(keys or [])
    position = {key: index for index, key in enumerate(keys)}
    total = len(keys)
    objects = (
        ObjectVersion.get_by_bucket(bucket)
        .options(joinedload(ObjectVersion.file))
        .all()
    )
    return sorted(objects, key=lambda obj: position.get(obj.key, total))


def record_file_factory(pid, record, filename: str):
    """Get file from a record.

    :param pid: Not used. It keeps the function signature.
    :param record: Record which contains the files.
    :param filename: Name of the file to be returned.
    :returns: File object or ``None`` if not found (also when the record has
        no ``files`` property, no bucket or no model).
    """
    try:
        files = getattr(record, "files", None)
    except MissingModelError:
        return None
    if files is None:
        return None
    try:
        return files[filename]
    except KeyError:
        return None


__all__ = ("record_file_factory", "sorted_files_from_bucket")
