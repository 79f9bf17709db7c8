# SPDX-License-Identifier: MIT
"""Flask extension."""

from copy import deepcopy

from flask import Flask
from invenio_db import db

from invenio_records_files import config
from invenio_records_files.maintenance.cli import records_files
from invenio_records_files.store.transactions import listen


class InvenioRecordsFiles:
    """Invenio-Records-Files extension."""

    def __init__(self, app: Flask | None = None) -> None:
        """Initialize the extension, on ``app`` if given."""
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension and its default configuration on ``app``."""
        self.init_config(app)
        app.extensions["invenio-records-files"] = self
        app.cli.add_command(records_files)
        app.url_value_preprocessor(_refuse_unstorable_url_values)
        listen(db.session)

    @staticmethod
    def init_config(app: Flask) -> None:
        """Set the ``RECORDS_FILES_*`` defaults (a copy per application)."""
        for name in dir(config):
            if name.startswith("RECORDS_FILES_"):
                app.config.setdefault(name, deepcopy(getattr(config, name)))


def _refuse_unstorable_url_values(endpoint: str | None, values: dict | None) -> None:
    """See :func:`invenio_records_files.rest.ui.refuse_unstorable_url_values`.

    Imported when first called: loading the extension loads no view layer.
    """
    from invenio_records_files.rest.ui import refuse_unstorable_url_values

    refuse_unstorable_url_values(endpoint, values)
