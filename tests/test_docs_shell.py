# SPDX-License-Identifier: MIT
"""Every shell example of the documentation runs, and prints what it shows.

The examples are the ``.. code-block::`` blocks of language ``console``,
``bash``, ``shell`` or ``sh`` in ``README.rst`` and ``docs/*.rst``, at any
indentation. In a block, a line starting with ``$`` is a command (a line
ending with a backslash continues it), a line starting with ``#`` is a
comment, and the lines after a command, up to the next command, comment or
blank line, are its expected standard output, compared exactly when there
are any. A command that exits with a non-zero status fails the test.

Each block runs in a scratch directory of its own, laid out like a clone of
the repository: its top-level files and folders are symbolic links to this
repository's, except ``docs`` (copied, so that builds stay in the scratch
directory) and ``.venv`` (see below). The commands of a block run in order,
in one ``bash -e -o pipefail`` with the test's environment on ``PATH``.

In place of a user's set-up, and nothing else:

* ``http://localhost:5000`` in a command is replaced with the URL of the
  example application, served by ``examples/app.py --serve --port 0`` as
  ``examples/run-demo.sh --serve`` serves it. Its walk-through creates record
  ``1`` (with ``hello.txt`` and ``photos.zip``), which the examples use.
* ``FLASK_APP`` names the example application on the demo's database, for
  ``flask`` commands. A command starting with ``invenio`` (the command line of
  an Invenio instance, Flask's with the instance's application) runs as
  ``flask``. The commands of ``FRESH_DATABASE`` get a database of their own.
* curl reads a ``.curlrc`` (``CURL_HOME``) with ``--fail-with-body``, so that
  an HTTP error fails the example, and ``--silent --show-error``.
* ``.venv`` is a stand-in virtualenv: its ``bin/python`` and
  ``bin/sphinx-build`` run this test's Python and Sphinx; ``-m pip`` through
  its ``bin/python`` (as ``examples/run-demo.sh`` installs) is recorded in
  ``.venv/pip.log`` and not run. ``PORT`` is ``0`` (any free port) for
  ``examples/run-demo.sh``.

A block with a command of ``NOT_RUN`` is skipped as a whole, with the reason.
"""

import configparser
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.database_independent

ROOT = Path(__file__).parent.parent
DOCUMENTS = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
SHELLS = ("console", "bash", "shell", "sh")
DOCS_URL = "http://localhost:5000"
APP = ROOT / "examples" / "app.py"
BASH = shutil.which("bash")

NOT_RUN = {
    "git clone": "fetches the repository from GitHub; this test runs in a clone",
    "pip install": (
        "installs from the package index (minutes); the test's environment"
        " holds every extra, and test_documented_extras_exist checks the names"
    ),
    "./run-tests.sh": "runs every check of the repository, this test included",
    "celery": (
        "the long-running worker and beat of an Invenio instance (invenio_app),"
        " which this package does not provide"
    ),
}

FRESH_DATABASE = {
    "files location create": (
        "makes a new default location: the demo's later uploads would go there"
    ),
}


# -- reading the examples ----------------------------------------------------


class Command:
    """One ``$`` command of a block, with the output it shows."""

    def __init__(self, line: int, text: str) -> None:
        self.line = line
        self.text = text
        self.output: list[str] = []


class Block:
    """One shell block of a document."""

    def __init__(self, path: Path, line: int) -> None:
        self.path = path
        self.line = line
        self.commands: list[Command] = []

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\S+)\s*$")


def read_blocks(path: Path) -> list[Block]:
    """Return the shell blocks of ``path``, with their commands."""
    lines = path.read_text().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        match = DIRECTIVE.match(lines[index])
        index += 1
        if not match or match.group(2) not in SHELLS:
            continue
        indent = len(match.group(1))
        block = Block(path, index)
        body = []
        while index < len(lines) and (
            not lines[index].strip()
            or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            body.append((index + 1, lines[index]))
            index += 1
        parse_body(block, body)
        blocks.append(block)
    return blocks


def parse_body(block: Block, body: list) -> None:
    """Split the lines of a block into commands and their expected output."""
    command = None
    continued = False
    for number, raw in body:
        line = raw.strip()
        if continued:
            command.text += "\n" + line
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            command = Command(number, line[2:])
            block.commands.append(command)
            continued = line.endswith("\\")
        elif not line or line.startswith("#"):
            command = None
        else:
            assert command is not None, f"{block.id}: output without a command"
            command.output.append(line)


BLOCKS = [block for path in DOCUMENTS for block in read_blocks(path)]


def reasons_not_run(block: Block) -> list[str]:
    return [
        f"{command.text.split(chr(10))[0]!r}: {reason}"
        for command in block.commands
        for pattern, reason in NOT_RUN.items()
        if pattern in command.text
    ]


def test_every_shell_line_of_the_docs_is_in_a_block():
    """No ``$`` example hides outside the blocks this test runs."""
    commands = {(block.path, c.line) for block in BLOCKS for c in block.commands}
    stray = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in DOCUMENTS
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.match(r"^\s*\$ \S", line) and (path, number) not in commands
    ]
    assert stray == []
    assert all(block.commands for block in BLOCKS)
    assert len(BLOCKS) >= 12


def test_documented_extras_exist():
    """The extras the docs install are setup.cfg's, and all are documented."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = set(config["options.extras_require"])
    named = {
        extra.strip()
        for block in BLOCKS
        for command in block.commands
        for group in re.findall(r'pip install -e "\.\[([^\]]*)\]"', command.text)
        for extra in group.split(",")
    }
    assert named
    assert named <= extras
    installation = (ROOT / "docs" / "installation.rst").read_text()
    assert [e for e in sorted(extras) if f"``{e}``" not in installation] == []


# -- running them --------------------------------------------------------------


STAND_IN_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "$*" >>"$(dirname "$0")/../pip.log"
  exit 0
fi
exec {python} "$@"
"""

FLASK_APP_MODULE = """from invenio_db import db

from examples.app import create_app

app = create_app(SQLALCHEMY_DATABASE_URI={uri!r})
with app.app_context():
    db.create_all()
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Serve the example application as ``run-demo.sh --serve`` does."""
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "demo.out"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(tmp),
        "SQLALCHEMY_DATABASE_URI": "",
    }
    with out.open("w") as stdout:
        server = subprocess.Popen(
            [sys.executable, str(APP), "--serve", "--port", "0"],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl+C to stop." not in out.read_text():
            assert server.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        found = re.search(
            r"Example app on (\S+) \((?:[^;)]*; )?data in (\S+)\)", out.read_text()
        )
        url, data = found.group(1), Path(found.group(2))
        apps = tmp / "apps"
        apps.mkdir()
        (apps / "demo_app.py").write_text(
            FLASK_APP_MODULE.format(uri=f"sqlite:///{data}/example.db")
        )
        (apps / "fresh_app.py").write_text(
            FLASK_APP_MODULE.format(uri=f"sqlite:///{tmp}/fresh.db")
        )
        yield {"url": url, "apps": apps}
    finally:
        server.send_signal(signal.SIGTERM)  # the demo removes its directory
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def scratch_clone(path: Path) -> Path:
    """Lay out ``path`` like a clone of the repository (see the docstring)."""
    path.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in {".git", ".venv", "docs"} or entry.name.endswith("cache"):
            continue
        (path / entry.name).symlink_to(entry)
    shutil.copytree(
        ROOT / "docs", path / "docs", ignore=shutil.ignore_patterns("_build")
    )
    bin_ = path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text(STAND_IN_PYTHON.format(python=sys.executable))
    (bin_ / "sphinx-build").write_text(
        f'#!/bin/sh\nexec {sys.executable} -m sphinx "$@"\n'
    )
    for script in bin_.iterdir():
        script.chmod(0o755)
    (path / ".curlrc").write_text("fail-with-body\nsilent\nshow-error\n")
    return path


def prepare(command: str, demo: dict) -> tuple[str, str]:
    """Return the command as it runs here, and the ``FLASK_APP`` it gets."""
    text = command.replace(DOCS_URL, demo["url"])
    if text.startswith("invenio "):
        text = "flask " + text.removeprefix("invenio ")
    fresh = any(pattern in text for pattern in FRESH_DATABASE)
    app = demo["apps"] / ("fresh_app.py" if fresh else "demo_app.py")
    return text, str(app)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_shell_example(block, demo, tmp_path):
    reasons = reasons_not_run(block)
    if reasons:
        pytest.skip("not run: " + "; ".join(reasons))
    cwd = scratch_clone(tmp_path / "clone")
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "CURL_HOME": str(cwd),
        "PYTHONPATH": str(ROOT),
        "PORT": "0",
        "TMPDIR": str(tmp_path),
        "LC_ALL": "C.UTF-8",
    }
    for command in block.commands:
        text, app = prepare(command.text, demo)
        result = subprocess.run(
            [BASH, "-e", "-o", "pipefail", "-c", text],
            cwd=cwd,
            env={**env, "FLASK_APP": app},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        where = f"{block.path.name}:{command.line}: $ {text}"
        assert result.returncode == 0, (
            f"{where}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        if command.output:
            shown = [line.rstrip() for line in result.stdout.rstrip().splitlines()]
            assert shown == command.output, where
