# SPDX-License-Identifier: MIT
"""Object versions created in bulk: a constant number of statements.

Invenio-Files-REST's :meth:`ObjectVersion.create()
<invenio_files_rest.models.ObjectVersion.create>` runs a query and a
savepoint per object. Adding many files at once (the ``files`` setter,
``copy_from()``) creates them here instead: one statement to retire the
current head versions of the keys, one batched insert of the new versions,
one update of the bucket's size.

.. versionadded:: 5.0.0
"""

import uuid
from collections.abc import Iterable

from invenio_db import db
from invenio_files_rest.models import Bucket, FileInstance, ObjectVersion
from sqlalchemy import update


def create_heads(
    bucket: Bucket, files: Iterable[tuple[str, FileInstance]]
) -> list[ObjectVersion]:
    """Make each ``(key, file instance)`` the new head version of ``key``.

    The keys' previous head versions (delete markers, usually) stop being
    heads. The bucket's size grows by the files' sizes. The caller locks the
    bucket and checks the keys.
    """
    files = list(files)
    if not files:
        return []
    db.session.execute(
        update(ObjectVersion)
        .where(
            ObjectVersion.bucket_id == bucket.id,
            ObjectVersion.key.in_([key for key, _ in files]),
            ObjectVersion.is_head.is_(True),
        )
        .values(is_head=False),
        execution_options={"synchronize_session": False},
    )
    created = [
        ObjectVersion(
            bucket=bucket,
            key=key,
            version_id=uuid.uuid4(),
            is_head=True,
            file=fileinstance,
        )
        for key, fileinstance in files
    ]
    db.session.add_all(created)
    bucket.size += sum(fileinstance.size or 0 for _, fileinstance in files)
    db.session.flush()
    return created
