# SPDX-License-Identifier: MIT
"""Records that own a bucket of files.

Invenio-Records-Files ties `Invenio-Records
<https://invenio-records.readthedocs.io/>`_ (JSON metadata stored in SQL) to
`Invenio-Files-REST <https://invenio-files-rest.readthedocs.io/>`_ (buckets of
versioned objects): a record owns a bucket, its files carry per-file metadata
and an order, and both are reachable through a Python API, REST endpoints and a
download view.

The API classes are importable from here as well as from their modules; they
are loaded on first access so that importing the package (as Invenio does for
its entry points) does not define database models before the application's
database extension is set up.
"""

from importlib import import_module

from invenio_records_files.ext import InvenioRecordsFiles

__version__ = "5.0.0.dev0"

_LAZY = {
    "Record": "api",
    "FilesMixin": "api",
    "FilesIterator": "api",
    "FileObject": "api",
    "RecordsBuckets": "models",
    "KeyExistsError": "errors",
}


def __getattr__(name: str):
    """Load the public API classes on first access."""
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ("InvenioRecordsFiles", "__version__", *_LAZY)
