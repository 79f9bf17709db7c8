# SPDX-License-Identifier: MIT
"""WSGI application of the gunicorn workers that ``tests/test_storm.py`` starts.

``gunicorn 'tests.wsgi:create()'``: the test application
(:func:`tests.helpers.create_app`, everything allowed) on
``SQLALCHEMY_DATABASE_URI``, each worker process with its own engine. A lock
wait longer than ``LOCK_TIMEOUT_MS`` fails (a deadlock becomes a logged 500,
not a hung client).
"""

import os

from .helpers import create_app, server_connect_args


def create():
    """Create the application of one gunicorn worker."""
    uri = os.environ["SQLALCHEMY_DATABASE_URI"]
    lock_timeout_ms = int(os.environ.get("LOCK_TIMEOUT_MS", "10000"))
    return create_app(
        uri,
        TESTING=False,  # errors are logged and answered 500, as in production
        SQLALCHEMY_ENGINE_OPTIONS={
            "connect_args": server_connect_args(uri, lock_timeout_ms)
        },
    )
