# SPDX-License-Identifier: MIT
"""Walk through the Python API of Invenio-Records-Files.

Creates a Flask application on a SQLite database and a default files location,
both in a temporary directory (removed at the end), then creates a record, adds
files, lists them, reads one back, annotates one, reorders, renames and removes
files, commits, and reloads the record to show what was stored::

    examples/run-demo.sh             # sets up .venv first
    python examples/api_demo.py      # in an environment with the package
"""

import json
import sys
import tempfile
import warnings
from io import BytesIO
from pathlib import Path

from flask import Flask
from invenio_db import InvenioDB, db
from invenio_files_rest import InvenioFilesREST
from invenio_files_rest.models import Location
from invenio_records import InvenioRecords

from invenio_records_files import InvenioRecordsFiles
from invenio_records_files.api import FileObject, Record

# SQLAlchemy-Continuum (record versioning, used by Invenio-Records) warns when
# a savepoint ends before its own; harmless here (see setup.cfg).
warnings.filterwarnings("ignore", "nested transaction already deassociated")

_FILE_FIELDS = {"bucket", "checksum", "file_id", "key", "size", "version_id"}

FILES = {
    "hello.txt": b"Hello, World",
    "data.csv": b"x,y\n1,2\n3,4\n",
    "notes.md": b"# Notes\n\nTo do.\n",
}


def create_app(directory: Path) -> Flask:
    """Create an application whose database lives in ``directory``."""
    app = Flask("api_demo")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{directory / 'demo.db'}",
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
    )
    InvenioDB(app)
    InvenioRecords(app)
    InvenioFilesREST(app)
    InvenioRecordsFiles(app)
    return app


def step(message: str) -> None:
    """Print the title of a step."""
    print(f"==> {message}")


def read_bytes(fileobj: FileObject) -> bytes:
    """Read a file's bytes through Invenio-Files-REST's storage."""
    with fileobj.obj.file.storage().open("rb") as fp:
        return fp.read()


def show_files(record: Record) -> None:
    """Print the record's files in their order, with their metadata."""
    for position, fileobj in enumerate(record.files, start=1):
        extra = {k: v for k, v in fileobj.data.items() if k not in _FILE_FIELDS}
        print(
            f"    {position}. {fileobj.key:<10} {fileobj['size']:>3} bytes"
            f"  {fileobj['checksum']}" + (f"  {extra}" if extra else "")
        )


def run_demo(files_dir: Path) -> str:
    """Run every step on a fresh database; return the record's id."""
    db.create_all()
    db.session.add(Location(name="default", uri=str(files_dir), default=True))
    db.session.commit()

    step("create a record")
    record = Record.create({"title": "A record with files"})
    print(f"    record {record.id}, bucket {record['_bucket']}")

    for key, content in FILES.items():
        step(f"add {key} ({len(content)} bytes)")
        record.files[key] = BytesIO(content)

    step(f"list the files ({len(record.files)})")
    show_files(record)

    step("read hello.txt back")
    print(f"    {read_bytes(record.files['hello.txt'])!r}")

    step("annotate data.csv")
    record.files["data.csv"]["description"] = "Measurements"
    record.files["data.csv"]["filetype"] = "csv"
    show_files(record)

    step("reorder: notes.md first (the others keep following)")
    record.files.sort_by("notes.md")
    print(f"    {list(record.files.keys)}")

    step("rename notes.md to README.md (same bytes, same position)")
    record.files.rename("notes.md", "README.md")
    print(f"    {list(record.files.keys)}")
    print(f"    README.md holds {read_bytes(record.files['README.md'])!r}")

    step("remove hello.txt")
    del record.files["hello.txt"]
    print(f"    {list(record.files.keys)}")

    step("commit (record.commit(); db.session.commit())")
    record.commit()
    db.session.commit()
    return str(record.id)


def show_stored(record_id: str) -> list[str]:
    """Reload the record from the database, print its files; return the keys."""
    db.session.remove()
    step("reload with Record.get_record() and print its _files")
    loaded = Record.get_record(record_id)
    print(json.dumps(loaded["_files"], indent=2, sort_keys=True))
    show_files(loaded)
    return list(loaded.files.keys)


def main() -> int:
    """Run the demo in a temporary directory; return the exit status."""
    with tempfile.TemporaryDirectory(prefix="irf-demo-") as tmp:
        directory = Path(tmp)
        app = create_app(directory)
        with app.app_context():
            try:
                record_id = run_demo(directory / "files")
                keys = show_stored(record_id)
            finally:
                db.session.remove()
                db.engine.dispose()
    expected = ["README.md", "data.csv"]
    if keys != expected:
        print(f"\nunexpected files: {keys} (expected {expected})", file=sys.stderr)
        return 1
    print(f"==> done: the temporary directory {tmp} was removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
