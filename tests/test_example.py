# SPDX-License-Identifier: MIT
"""The demo: the example application, the Python-API walk-through, run-demo.sh."""

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from invenio_db import db
from invenio_files_rest.models import Location

from examples.app import create_app

pytestmark = pytest.mark.database_independent

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def run(script, *args):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "SQLALCHEMY_DATABASE_URI": ""},
    )


@pytest.mark.parametrize(
    "server", [(), ("--workers", "2")], ids=["werkzeug", "gunicorn"]
)
def test_example_app_walks_through_the_files_api_over_http(server):
    result = run("app.py", "--port", "0", *server)
    assert result.returncode == 0, result.stderr
    exchanges = re.findall(
        r"^(GET|PUT|POST|DELETE) http://127\.0\.0\.1:\d+(\S+).*\n<-- (\d+)$",
        result.stdout,
        flags=re.MULTILINE,
    )
    assert exchanges == [
        ("POST", "/api/records/", "201"),
        ("PUT", "/api/records/1/files/hello.txt", "200"),
        ("PUT", "/api/records/1/files/data.csv", "200"),
        ("GET", "/api/records/1/files", "200"),
        ("GET", "/api/records/1/files/hello.txt", "200"),
        ("GET", "/records/1/files/data.csv?download", "200"),
        ("GET", "/api/records/1/files-archive", "200"),
        ("GET", "/api/records/1/files-archive", "206"),
        ("PUT", "/api/records/1/files/photos.zip", "200"),
        ("GET", "/api/records/1/files/photos.zip?members", "200"),
        ("GET", "/api/records/1/files/photos.zip?member=notes/readme.txt", "200"),
        ("PUT", "/api/records/1/files/hello.txt", "200"),
        ("GET", "/api/records/1/files?versions", "200"),
        ("DELETE", "/api/records/1/files/data.csv", "204"),
        ("GET", "/api/records/1/files", "200"),
        ("GET", "/api/records/1/files/data.csv", "404"),
        ("GET", "/api/records/1", "200"),
        ("GET", "/api/records/", "200"),
    ]
    assert "    Hello, World" in result.stdout
    assert "    x,y" in result.stdout
    assert "    a zip of " in result.stdout
    assert "the joined zip is valid" in result.stdout
    assert '"key": "photos/setup.jpg"' in result.stdout
    assert "    Two photos of the experiment." in result.stdout
    # The records list comes from the database (the demo has no search engine).
    listing = result.stdout.split("GET http://127.0.0.1")[-1]
    assert '"total": 1' in listing
    assert '"control_number": "1"' in listing
    assert '"title": "A dataset"' in listing
    assert '"files": "http://127.0.0.1:' in listing
    assert result.stdout.rstrip().endswith("Done.")
    assert ("gunicorn, 2 workers" in result.stdout) == bool(server)
    data_dir = re.search(r"data in (\S+)\)", result.stdout).group(1)
    assert not Path(data_dir).exists()


def test_api_demo_runs():
    result = run("api_demo.py")
    assert result.returncode == 0, result.stderr
    assert "==> " in result.stdout


def test_records_list_comes_from_the_database(tmp_path):
    app = create_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/example.db")
    with app.app_context():
        db.create_all()
        db.session.add(Location(name="local", uri=str(tmp_path), default=True))
        db.session.commit()
        client = app.test_client()
        empty = client.get("/api/records/")
        assert (empty.status_code, empty.json) == (
            200,
            {
                "hits": {"hits": [], "total": 0},
                "links": {"self": "http://localhost/api/records/"},
            },
        )
        for title in ["First", "Second"]:
            assert (
                client.post("/api/records/", json={"title": title}).status_code == 201
            )
        response = client.get("/api/records/")
        db.session.remove()
    assert response.status_code == 200
    hits = response.json["hits"]
    assert hits["total"] == 2
    assert [hit["id"] for hit in hits["hits"]] == ["1", "2"]
    assert [hit["metadata"]["title"] for hit in hits["hits"]] == ["First", "Second"]
    assert hits["hits"][0]["links"] == {
        "self": "http://localhost/api/records/1",
        "files": "http://localhost/api/records/1/files",
    }


def test_example_app_says_how_to_pick_another_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("app.py", "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    # Werkzeug says that the port is in use, the demo how to pick another.
    assert f"Port {port} is in use" in result.stderr
    assert result.stderr.endswith(
        "\nPick another port: python examples/app.py --port 5001, or"
        " PORT=5001 examples/run-demo.sh.\n"
    )


# -- examples/run-demo.sh -------------------------------------------------------
#
# The script runs with VENV set to a stand-in virtualenv whose bin/python runs
# this test's Python, except for "-m pip", which it records in pip.log and does
# not run: the test's environment already holds the package, and the test is
# about when the script installs, not about pip.

FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "$*" >>"$(dirname "$0")/../pip.log"
  exit 0
fi
exec {python} "$@"
"""


def fake_venv(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    python = path / "bin" / "python"
    python.write_text(FAKE_PYTHON.format(python=sys.executable))
    python.chmod(0o755)
    return path


def demo_env(venv: Path, tmp: Path, **extra) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "SQLALCHEMY_DATABASE_URI": "",
        "VENV": str(venv),
        "TMPDIR": str(tmp),
        "PORT": "0",
        "PYTHONUNBUFFERED": "1",  # the output as it comes, for the SIGTERM test
        **extra,
    }


def setup_hash() -> str:
    """The stamp's hash: setup.cfg, setup.py and the extras installed."""
    return hashlib.sha256(
        (ROOT / "setup.cfg").read_bytes()
        + (ROOT / "setup.py").read_bytes()
        + b"examples\n"
    ).hexdigest()


def run_demo(venv: Path, tmp: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXAMPLES / "run-demo.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=demo_env(venv, tmp),
        cwd=tmp,
    )


INSTALL = "-m pip install --disable-pip-version-check --progress-bar off -e .[examples]"


def test_run_demo_installs_once_then_skips_the_installation(tmp_path):
    venv = fake_venv(tmp_path / "venv")
    first = run_demo(venv, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        "==> Installing invenio-records-files and the example app's dependencies"
        f" into {venv} (about a minute the first time)\n"
    )
    assert first.stdout.rstrip().endswith("Done.")
    assert (venv / "pip.log").read_text() == INSTALL + "\n"
    assert (venv / ".records-files-demo-stamp").read_text() == setup_hash() + "\n"

    second = run_demo(venv, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Installing" not in second.stdout
    assert second.stdout.startswith("==> create a record")
    assert second.stdout.rstrip().endswith("Done.")
    assert (venv / "pip.log").read_text() == INSTALL + "\n"  # not run again
    assert sorted(tmp_path.iterdir()) == [venv]  # temporary directories removed


def test_run_demo_reinstalls_after_a_change_and_cleans_up_on_sigterm(tmp_path):
    venv = fake_venv(tmp_path / "venv")
    # As if setup.cfg or setup.py had changed since the last installation.
    (venv / ".records-files-demo-stamp").write_text("0" * 64 + "\n")
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        demo = subprocess.Popen(
            [str(EXAMPLES / "run-demo.sh"), "--serve"],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=demo_env(venv, tmp_path),
            cwd=tmp_path,
            start_new_session=True,  # a process group of its own, see below
        )
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl+C to stop." not in out.read_text():
            assert demo.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        data_dir = Path(re.search(r"data in (\S+)\)", out.read_text()).group(1))
        assert data_dir.is_dir()
        (workdir,) = tmp_path.glob("records-files-demo.*")
        assert data_dir.parent == workdir
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 143
        with pytest.raises(ProcessLookupError):  # the app went with the script
            os.killpg(demo.pid, 0)
    finally:
        # After a failure, end the script and the demo it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()
    assert (venv / "pip.log").read_text() == INSTALL + "\n"
    assert (venv / ".records-files-demo-stamp").read_text() == setup_hash() + "\n"
    assert re.search(
        r"^Serving on http://127\.0\.0\.1:[1-9]\d*;", out.read_text(), re.M
    )
    assert sorted(tmp_path.iterdir()) == sorted([venv, out])
