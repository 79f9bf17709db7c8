# SPDX-License-Identifier: MIT
"""What the benchmarks share: a database of their own, and an application.

A benchmark never drops or empties a database it did not create: on
PostgreSQL it creates a uniquely named database next to the one
``SQLALCHEMY_DATABASE_URI`` names and drops only that one; otherwise it uses
SQLite in a temporary directory.
"""

import os
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from invenio_db import db
from invenio_files_rest.models import Location
from sqlalchemy.engine import make_url
from sqlalchemy_utils import create_database, drop_database

from tests.helpers import create_app

# SQLAlchemy-Continuum's savepoint warning (see setup.cfg): harmless noise here.
warnings.filterwarnings("ignore", "nested transaction already deassociated")


@contextmanager
def own_database(prefix: str = "irf_bench") -> Iterator[str]:
    """Yield the URI of a database created for this run; drop it afterwards."""
    given = os.environ.get("SQLALCHEMY_DATABASE_URI")
    if given and make_url(given).get_backend_name() != "sqlite":
        url = make_url(given).set(database=f"{prefix}_{uuid.uuid4().hex[:12]}")
        uri = url.render_as_string(hide_password=False)
        create_database(uri)
        try:
            yield uri
        finally:
            drop_database(uri)
        return
    directory = tempfile.mkdtemp(prefix="irf-bench-")
    try:
        yield f"sqlite:///{directory}/bench.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def bench_app(**config) -> Iterator:
    """Yield an example application on a database of its own, with tables."""
    files = tempfile.mkdtemp(prefix="irf-bench-files-")
    try:
        with own_database() as uri:
            app = create_app(uri, **config)
            with app.app_context():
                db.create_all()
                db.session.add(Location(name="bench", uri=files, default=True))
                db.session.commit()
                try:
                    yield app
                finally:
                    db.session.remove()
                    db.engine.dispose()
    finally:
        shutil.rmtree(files, ignore_errors=True)


def report(failures: list[str]) -> int:
    """Print the budgets exceeded; return the exit status."""
    if failures:
        print("\nOVER BUDGET: " + "; ".join(failures))
        return 1
    print("\nall budgets met")
    return 0
