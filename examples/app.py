# SPDX-License-Identifier: MIT
"""Example Invenio API application with records that own files.

A complete, minimal application laid out like an Invenio instance, whose
REST API lives under ``/api``: Invenio-Records-REST serves ``/api/records/``
(``GET`` lists the records from the database: the demo runs no search
engine), Invenio-Records-Files serves each record's files under
``/api/records/<pid>/files`` and Invenio-Files-REST serves
``/api/files/<bucket_id>``; the download view of Invenio-Records-UI answers at
``/records/<pid>/files/<filename>``. It runs on SQLite in a temporary
directory and allows everything to everyone: a demo, not a deployment.

Run the whole demo (set-up included) with ``examples/run-demo.sh``; or

    python examples/app.py              # scripted HTTP walk-through
    python examples/app.py --serve      # then keep serving on 127.0.0.1:5000
    python examples/app.py --port 5001  # another port (0: any free one)
    python examples/app.py --workers 4  # served by gunicorn, 4 processes
"""

import argparse
import functools
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
import zipfile

from flask import Flask, jsonify, request, url_for
from flask_babel import Babel
from flask_celeryext import FlaskCeleryExt
from flask_login import LoginManager
from invenio_db import InvenioDB, db
from invenio_files_rest import InvenioFilesREST
from invenio_files_rest.models import Location
from invenio_files_rest.views import blueprint as files_rest_blueprint
from invenio_pidstore import InvenioPIDStore
from invenio_pidstore.models import PersistentIdentifier, PIDStatus
from invenio_records import InvenioRecords
from invenio_records_rest import InvenioRecordsREST
from invenio_records_rest.serializers import json_v1
from invenio_records_rest.utils import PIDConverter, allow_all
from invenio_records_rest.views import (
    create_blueprint_from_app as create_records_rest_blueprint,
)
from invenio_records_ui import InvenioRecordsUI
from invenio_records_ui.views import create_blueprint as create_records_ui_blueprint
from invenio_rest import InvenioREST
from werkzeug.serving import WSGIRequestHandler, make_server

from invenio_records_files import InvenioRecordsFiles
from invenio_records_files.api import Record
from invenio_records_files.links import default_record_files_links_factory
from invenio_records_files.views import (
    create_blueprint_from_app as create_records_files_blueprint,
)

RECORD_CLASS = "invenio_records_files.api:Record"

# SQLAlchemy-Continuum (record versioning, used by Invenio-Records) warns when
# a savepoint ends before its own; harmless (see setup.cfg).
warnings.filterwarnings("ignore", "nested transaction already deassociated")


def records_rest_endpoints() -> dict:
    """Return a fresh records-rest configuration (records-rest mutates it)."""
    return {
        "recid": {
            "pid_type": "recid",
            "pid_minter": "recid",
            "pid_fetcher": "recid",
            "record_class": RECORD_CLASS,
            "list_route": "/records/",
            "item_route": (
                f'/records/<pid(recid,record_class="{RECORD_CLASS}"):pid_value>'
            ),
            "indexer_class": None,
            "record_serializers": {
                "application/json": "invenio_records_rest.serializers:json_v1_response"
            },
            "search_serializers": {
                "application/json": "invenio_records_rest.serializers:json_v1_search"
            },
            "default_media_type": "application/json",
            "links_factory_imp": (
                "invenio_records_files.links:default_record_files_links_factory"
            ),
            "read_permission_factory_imp": allow_all,
            "create_permission_factory_imp": allow_all,
            "update_permission_factory_imp": allow_all,
            "delete_permission_factory_imp": allow_all,
        }
    }


# -- wsgi input --
class LimitedInput:
    """WSGI middleware: Werkzeug limits request bodies to their Content-Length.

    gunicorn (like other servers that end the body themselves) sets
    ``wsgi.input_terminated``; Werkzeug then gives views the server's own
    input object as ``request.stream``, and Invenio-Files-REST's upload views
    read ``request.stream.is_exhausted``, which only Werkzeug's
    ``LimitedStream`` has: every upload with a body would answer 500
    (``AttributeError``). Without the flag, Werkzeug wraps the input in a
    ``LimitedStream`` of ``Content-Length`` bytes.
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        """Serve the request, its body limited by Werkzeug."""
        if environ.get("CONTENT_LENGTH"):
            environ.pop("wsgi.input_terminated", None)
        return self.wsgi_app(environ, start_response)


# -- end of wsgi input --


def create_app(**config) -> Flask:
    """Create the example application; ``config`` overrides the defaults."""
    app = Flask("records_files_example")
    app.config.update(
        SECRET_KEY="CHANGE ME",  # noqa: S106 - demo only
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        # Celery runs Files-REST's tasks (multipart merge) in-process.
        CELERY_TASK_ALWAYS_EAGER=True,
        CELERY_TASK_EAGER_PROPAGATES=True,
        CELERY_BROKER_URL="memory://",
        CELERY_RESULT_BACKEND="cache",
        CELERY_CACHE_BACKEND="memory",
        # Everybody may do everything: a demo.
        FILES_REST_PERMISSION_FACTORY=allow_all,
        RECORDS_UI_DEFAULT_PERMISSION_FACTORY=None,
        RECORDS_REST_ENDPOINTS=records_rest_endpoints(),
        RECORDS_REST_DEFAULT_READ_PERMISSION_FACTORY=allow_all,
        RECORDS_FILES_REST_ENDPOINTS={"RECORDS_REST_ENDPOINTS": {"recid": "/files"}},
        RECORDS_UI_ENDPOINTS={
            "recid_files": {
                "pid_type": "recid",
                "route": "/records/<pid_value>/files/<filename>",
                "view_imp": "invenio_records_files.utils:file_download_ui",
                "record_class": RECORD_CLASS,
            }
        },
    )
    app.config.update(config)
    Babel(app)
    LoginManager(app).user_loader(lambda user_id: None)  # anonymous users only
    FlaskCeleryExt(app)
    InvenioREST(app)
    InvenioDB(app)
    InvenioRecords(app)
    InvenioPIDStore(app)
    InvenioFilesREST(app)
    InvenioRecordsREST(app)
    InvenioRecordsUI(app)
    InvenioRecordsFiles(app)
    app.url_map.converters["pid"] = PIDConverter
    app.wsgi_app = LimitedInput(app.wsgi_app)
    app.register_blueprint(create_records_rest_blueprint(app), url_prefix="/api")
    list_endpoint = "invenio_records_rest.recid_list"
    app.view_functions[list_endpoint] = list_from_database(
        app.view_functions[list_endpoint]
    )
    app.register_blueprint(files_rest_blueprint, url_prefix="/api/files")
    app.register_blueprint(create_records_files_blueprint(app), url_prefix="/api")
    app.register_blueprint(
        create_records_ui_blueprint(app.config["RECORDS_UI_ENDPOINTS"])
    )
    return app


def list_from_database(list_view):
    """Answer ``GET /api/records/`` from the database; leave ``POST`` as it is.

    Invenio-Records-REST lists records by searching an OpenSearch index
    (through Invenio-Search), which the demo neither runs nor fills
    (``indexer_class`` is ``None``): its ``GET`` would fail. This ``GET``
    lists the records of every registered ``recid`` PID, in PID order, with
    the body records-rest gives a search (``hits.hits``, ``hits.total``,
    ``links``), each hit as ``GET /api/records/<pid>`` shows it. No query,
    sorting or paging: a demo with a few records.
    """

    @functools.wraps(list_view)
    def view(*args, **kwargs):
        if request.method != "GET":
            return list_view(*args, **kwargs)
        pids = PersistentIdentifier.query.filter_by(
            pid_type="recid", status=PIDStatus.REGISTERED
        ).all()
        pids.sort(key=lambda pid: int(pid.pid_value))
        records = Record.get_records([pid.object_uuid for pid in pids])
        by_id = {record.id: record for record in records}
        hits = [
            json_v1.transform_record(
                pid,
                by_id[pid.object_uuid],
                links_factory=default_record_files_links_factory,
            )
            for pid in pids
            if pid.object_uuid in by_id
        ]
        links = {"self": url_for("invenio_records_rest.recid_list", _external=True)}
        return jsonify(hits={"hits": hits, "total": len(hits)}, links=links)

    return view


# -- the demo -----------------------------------------------------------------


class Client:
    """Minimal HTTP client (standard library) that prints every exchange."""

    def __init__(self, base_url: str, out=sys.stdout) -> None:
        self.base_url = base_url
        self.out = out

    def request(self, method: str, path: str, data=None, headers=None, show=True):
        """Send a request; print it and the response; return (status, body)."""
        url = path if path.startswith("http") else self.base_url + path
        request = urllib.request.Request(  # noqa: S310 - http:// URLs we build
            url, data=data, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request) as response:  # noqa: S310
                status, body, self.headers = (
                    response.status,
                    response.read(),
                    response.headers,
                )
        except urllib.error.HTTPError as error:
            status, body, self.headers = error.code, error.read(), error.headers
        content_type = self.headers.get("Content-Type", "")
        sent = f" ({len(data)} bytes)" if data else ""
        if "Range" in (headers or {}):
            sent += f" (Range: {headers['Range']})"
        print(f"\n{method} {url}{sent}", file=self.out)
        print(f"<-- {status}", file=self.out)
        if show and body:
            print(_preview(body, content_type), file=self.out)
        return status, body

    def json(self, method: str, path: str, payload=None, **kwargs):
        """Send JSON (if any) and decode the JSON answer."""
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        status, body = self.request(method, path, data=data, headers=headers, **kwargs)
        return status, (json.loads(body) if body.strip() else None)


def _preview(body: bytes, content_type: str) -> str:
    if "json" in content_type:
        text = json.dumps(json.loads(body), indent=2)
    else:
        text = body.decode("utf-8", "replace")
    lines = text.splitlines()
    if len(lines) > 40:
        lines = [*lines[:40], f"    ... ({len(lines) - 40} more lines)"]
    return "\n".join(f"    {line}" for line in lines)


def expect(status: int, expected: int, what: str) -> None:
    """Stop the demo when an answer is not the expected one."""
    if status != expected:
        raise SystemExit(f"unexpected answer to {what}: {status} != {expected}")


def walk_through(client: Client) -> None:
    """Create a record, then upload, list, download and delete its files."""
    status, record = client.json("POST", "/api/records/", {"title": "A dataset"})
    expect(status, 201, "creating a record")
    files = record["links"]["files"]
    pid = record["id"]

    for key, content in [("hello.txt", b"Hello, World\n"), ("data.csv", b"x,y\n1,2\n")]:
        status, _ = client.request(
            "PUT",
            f"{files}/{key}",
            data=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        expect(status, 200, f"uploading {key}")

    status, _ = client.json("GET", files)
    expect(status, 200, "listing the files")

    status, _ = client.request("GET", f"{files}/hello.txt")
    expect(status, 200, "downloading hello.txt")
    status, _ = client.request("GET", f"/records/{pid}/files/data.csv?download")
    expect(status, 200, "downloading data.csv through the UI view")

    archive_and_zip_members(client, files)

    status, _ = client.request(
        "PUT",
        f"{files}/hello.txt",
        data=b"Hello again\n",
        headers={"Content-Type": "application/octet-stream"},
    )
    expect(status, 200, "uploading a new version of hello.txt")
    status, _ = client.json("GET", f"{files}?versions")
    expect(status, 200, "listing versions")

    status, _ = client.request("DELETE", f"{files}/data.csv")
    expect(status, 204, "deleting data.csv")
    status, _ = client.json("GET", files)
    expect(status, 200, "listing the files")
    status, _ = client.request("GET", f"{files}/data.csv")
    expect(status, 404, "downloading a deleted file")

    status, _ = client.json("GET", f"/api/records/{pid}")
    expect(status, 200, "reading the record")

    status, _ = client.json("GET", "/api/records/")
    expect(status, 200, "listing the records")


def archive_and_zip_members(client: Client, files: str) -> None:
    """Download all files as one zip and resume it; look inside a zip."""
    status, archive = client.request("GET", f"{files}-archive", show=False)
    expect(status, 200, "downloading all files as a zip")
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    print(f"    a zip of {len(archive)} bytes: {', '.join(names)}", file=client.out)
    cut = len(archive) // 2  # as if the connection had dropped here
    status, rest = client.request(
        "GET",
        f"{files}-archive",
        headers={"Range": f"bytes={cut}-", "If-Range": client.headers["ETag"]},
        show=False,
    )
    expect(status, 206, "resuming the zip download")
    resumed = zipfile.ZipFile(io.BytesIO(archive[:cut] + rest))
    expect(0 if resumed.testzip() is None else 1, 0, "checking the resumed zip")
    print(f"    the other {len(rest)} bytes; the joined zip is valid", file=client.out)

    photos = io.BytesIO()
    with zipfile.ZipFile(photos, "w", zipfile.ZIP_DEFLATED) as upload:
        upload.writestr("notes/readme.txt", "Two photos of the experiment.\n")
        upload.writestr("photos/setup.jpg", bytes(2048))
        upload.writestr("photos/result.jpg", bytes(4096))
    status, _ = client.request(
        "PUT",
        f"{files}/photos.zip",
        data=photos.getvalue(),
        headers={"Content-Type": "application/octet-stream"},
    )
    expect(status, 200, "uploading photos.zip")
    status, _ = client.json("GET", f"{files}/photos.zip?members")
    expect(status, 200, "listing the members of photos.zip")
    status, _ = client.request("GET", f"{files}/photos.zip?member=notes/readme.txt")
    expect(status, 200, "extracting one member of photos.zip")


class QuietHandler(WSGIRequestHandler):
    """Request handler that leaves the printing to the demo."""

    def log_request(self, *args, **kwargs):
        """Do not log requests."""


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def wsgi(database_uri: str) -> Flask:
    """Create the application of a gunicorn worker (``app:wsgi("<uri>")``)."""
    return create_app(SQLALCHEMY_DATABASE_URI=database_uri)


class Gunicorn:
    """gunicorn serving :func:`wsgi` with worker processes on loopback."""

    def __init__(self, database_uri: str, port: int, workers: int) -> None:
        if port == 0:  # gunicorn prints the port it gets; ask the system first
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.server_port = port
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            [
                *(sys.executable, "-m", "gunicorn"),
                *("--workers", str(workers), "--bind", f"127.0.0.1:{port}"),
                *("--worker-class", "gthread", "--log-level", "warning"),
                "--no-control-socket",  # gunicorn 27's, at a shared default path
                # This directory, not the project's: the package imported is
                # the installed one.
                *("--chdir", os.path.dirname(os.path.abspath(__file__))),
                f"app:wsgi({database_uri!r})",
            ]
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.1)

    def serve_forever(self) -> None:
        """Wait for gunicorn to stop."""
        self.process.wait()

    def shutdown(self) -> None:
        """Stop gunicorn and its workers."""
        self.process.terminate()
        self.process.wait(timeout=30)


def main(argv=None) -> int:
    """Set up the example application and run the walk-through over HTTP."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="keep serving")
    parser.add_argument(
        "--port", type=int, default=5000, help="port on 127.0.0.1 (0: any free one)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("DEMO_WORKERS") or 0),
        help="serve with gunicorn and this many worker processes "
        "(default: $DEMO_WORKERS, else Werkzeug's threaded server)",
    )
    args = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="irf-example-")
    database_uri = f"sqlite:///{directory}/example.db"
    app = create_app(SQLALCHEMY_DATABASE_URI=database_uri)
    with app.app_context():
        db.create_all()
        db.session.add(Location(name="local", uri=f"{directory}/files", default=True))
        db.session.commit()

    try:
        if args.workers:
            server = Gunicorn(database_uri, args.port, args.workers)
            served_by = f"gunicorn, {args.workers} workers"
        else:
            server = make_server(
                "127.0.0.1", args.port, app, threaded=True, request_handler=QuietHandler
            )
            served_by = "Werkzeug"
    except SystemExit:
        # The port is in use (or gunicorn did not start); say how to pick another.
        shutil.rmtree(directory, ignore_errors=True)
        print(
            "Pick another port: python examples/app.py --port 5001, or"
            " PORT=5001 examples/run-demo.sh.",
            file=sys.stderr,
        )
        raise
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    thread.start()
    # SIGTERM (kill, a service manager) ends the demo as Ctrl+C does, so that
    # the temporary directory is removed.
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"Example app on {base_url} ({served_by}; data in {directory})")
    try:
        walk_through(Client(base_url))
        if args.serve:
            print(
                f"\nServing on {base_url}; try:\n  curl {base_url}/api/records/1/files"
            )
            print("Press Ctrl+C to stop.")
            thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)
    print("\nDone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
