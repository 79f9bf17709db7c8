# SPDX-License-Identifier: MIT
"""Celery tasks.

.. versionadded:: 5.0.0
"""

from datetime import UTC, datetime, timedelta

from celery import shared_task
from celery.utils.log import get_task_logger
from invenio_db import db

from invenio_records_files.maintenance import fixity

logger = get_task_logger(__name__)


@shared_task(ignore_result=True)
def verify_files(
    older_than_days: float | None = fixity.OLDER_THAN.days,
    limit: int | None = None,
    batch_size: int = fixity.BATCH_SIZE,
) -> dict[str, int]:
    """Verify the stored bytes of records' files, like ``flask records-files verify``.

    Verifies the files never checked or last checked more than
    ``older_than_days`` days ago (every file when ``None``), at most ``limit``
    of them, the least recently checked first; commits the results after each
    batch and logs each failure as an error, naming the record's PID, the key,
    the version, the expected checksum and what was found. Schedule it with
    Celery beat (see :doc:`/deployment`).

    :returns: The numbers of files ``checked`` and ``failed``.
    """
    checked_before = datetime.now(tz=UTC)
    if older_than_days is not None:
        checked_before -= timedelta(days=older_than_days)
    report = fixity.Report()
    for batch in fixity.verify_files(
        checked_before, batch_size=batch_size, limit=limit
    ):
        db.session.commit()
        report.add(batch)
        for failure in batch.failures:
            logger.error(
                "Fixity check failed: record %s:%s (%s), key %r, version %s: "
                "expected %s, found %s.",
                failure.pid_type or "-",
                failure.pid_value or "-",
                failure.record_id,
                failure.key,
                failure.version_id,
                failure.expected,
                failure.found,
            )
    logger.info(
        "Verified files: %d checked, %d failed, %d removed meanwhile.",
        report.checked,
        report.failed,
        report.gone,
    )
    return {"checked": report.checked, "failed": report.failed}
