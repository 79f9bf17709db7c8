# SPDX-License-Identifier: MIT
"""Celery application of the worker process that ``tests/test_tasks.py`` starts.

``celery --app tests.celery_worker worker`` loads it: the test application
(:func:`tests.helpers.create_app`) on ``SQLALCHEMY_DATABASE_URI``, whose
Celery (Flask-CeleryExt's, every task in an application context) takes its
tasks from ``CELERY_BROKER_URL``. Tasks really run in the worker: no eager
mode, no in-memory broker.
"""

import os

import invenio_records_files.tasks  # noqa: F401 - registers our tasks

from .helpers import create_app

flask_app = create_app(
    os.environ["SQLALCHEMY_DATABASE_URI"],
    CELERY_TASK_ALWAYS_EAGER=False,
    CELERY_BROKER_URL=os.environ["CELERY_BROKER_URL"],
    CELERY_RESULT_BACKEND=None,
)
celery = flask_app.extensions["flask-celeryext"].celery
