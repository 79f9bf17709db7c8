# SPDX-License-Identifier: MIT
"""Production settings (an excerpt of ``invenio.cfg``), shown in the docs.

``docs/deployment.rst`` includes the sections of this file, and the S3 tests
(``tests/s3.py``) load it, with the address of an S3 server on loopback in the
environment: the settings documented are the settings tested.
"""

import os

from celery.schedules import crontab

# -- files on S3 ---------------------------------------------------------------
# Files on S3-compatible object storage, through Invenio-S3
# (pip install "invenio-records-files[s3]"). Leave S3_ENDPOINT_URL unset on
# Amazon S3 itself; keep the keys out of the file.
FILES_REST_STORAGE_FACTORY = "invenio_s3.s3fs_storage_factory"
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL")
S3_REGION_NAME = os.environ.get("S3_REGION_NAME", "us-east-1")
S3_ACCESS_KEY_ID = os.environ["S3_ACCESS_KEY_ID"]
S3_SECRET_ACCESS_KEY = os.environ["S3_SECRET_ACCESS_KEY"]
# -- end of files on S3 --

# -- celery beat -----------------------------------------------------------------
CELERY_BEAT_SCHEDULE = {
    # Verify the bytes of files not checked for 30 days, at most 10000 files a
    # night: a repository of 300000 files is verified every month.
    "records-files-verify": {
        "task": "invenio_records_files.tasks.verify_files",
        "schedule": crontab(minute=0, hour=2),
        "kwargs": {"older_than_days": 30, "limit": 10000},
    },
}
# -- end of celery beat --
