# SPDX-License-Identifier: MIT
"""The demo: the example application and the Python-API walk-through."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.database_independent

EXAMPLES = Path(__file__).parent.parent / "examples"


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
    ]
    assert "    Hello, World" in result.stdout
    assert "    x,y" in result.stdout
    assert "    a zip of " in result.stdout
    assert "the joined zip is valid" in result.stdout
    assert '"key": "photos/setup.jpg"' in result.stdout
    assert "    Two photos of the experiment." in result.stdout
    assert result.stdout.rstrip().endswith("Done.")
    assert ("gunicorn, 2 workers" in result.stdout) == bool(server)
    data_dir = re.search(r"data in (\S+)\)", result.stdout).group(1)
    assert not Path(data_dir).exists()


def test_api_demo_runs():
    result = run("api_demo.py")
    assert result.returncode == 0, result.stderr
    assert "==> " in result.stdout
