# SPDX-License-Identifier: MIT
"""The Python examples of the docs, run as plain scripts, print what they say.

Run outside pytest and Sphinx (whose warning filters differ), the first
``Record.create()`` prints SQLAlchemy's ``SAWarning: nested transaction
already deassociated from connection``; ``docs/usage.rst`` says why and gives
the ``warnings.filterwarnings(...)`` line that silences it. Each script is the
"Initialization" section of ``docs/usage.rst`` (its ``>>>`` lines, the
documented filter included), then an example: the README's Python snippet, or
the next sections of the usage guide. Run with the filter, standard error
stays empty; without it, the warning is there, as the guide says.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.database_independent

ROOT = Path(__file__).parent.parent
USAGE = (ROOT / "docs" / "usage.rst").read_text()
WARNING = "SAWarning: nested transaction already deassociated from connection"


def section(text: str, title: str) -> str:
    """Return the text of the section ``title`` of an rst document."""
    start = text.index(f"\n{title}\n{'-' * len(title)}\n")
    following = re.search(r"\n\n\S[^\n]*\n-+\n", text[start + len(title) + 2 :])
    return text[start : start + len(title) + 2 + following.start()]


def doctest_source(text: str) -> str:
    """Return the code of the ``>>>`` examples of ``text``, as a script."""
    return "".join(
        line.strip()[4:] + "\n"
        for line in text.splitlines()
        if line.strip().startswith((">>> ", "... ")) or line.strip() in {">>>", "..."}
    )


def readme_snippet() -> str:
    """Return the README's Python example (the first ``python`` block)."""
    readme = (ROOT / "README.rst").read_text()
    block = readme.split(".. code-block:: python\n", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("   "):
            break
        lines.append(line[3:])
    return "\n".join(lines).strip() + "\n"


INITIALIZATION = doctest_source(section(USAGE, "Initialization"))
FILTER = re.search(r"import warnings\n.*?\n\)\n", INITIALIZATION, re.DOTALL).group()

EXAMPLES = {
    "README": readme_snippet(),
    "usage": doctest_source(
        section(USAGE, "Creating a record") + section(USAGE, "Creating files")
    )
    + "record.commit()\ndb.session.commit()\n",
}

CHECK = """
stored = Record.get_record(record.id)
print(sorted(stored.files.keys), stored.revision_id)
"""


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "example.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_usage_documents_the_filter_line():
    assert FILTER == (
        "import warnings\n"
        "from sqlalchemy.exc import SAWarning\n"
        "warnings.filterwarnings(\n"
        '    "ignore", "nested transaction already deassociated", SAWarning\n'
        ")\n"
    )
    assert "Run as a plain script, the first ``Record.create()``" in USAGE
    assert WARNING in USAGE


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_documented_filter_silences_the_warning(example, tmp_path):
    result = run(INITIALIZATION + EXAMPLES[example] + CHECK, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    keys = "['hello.txt']"
    assert result.stdout.strip().startswith(keys), result.stdout


@pytest.mark.parametrize("example", EXAMPLES)
def test_without_the_filter_the_warning_is_printed(example, tmp_path):
    """What the guide explains happens (remove the prose when it no longer does)."""
    without = INITIALIZATION.replace(FILTER, "")
    assert without != INITIALIZATION
    result = run(without + EXAMPLES[example] + CHECK, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
    assert warnings
    assert all(line.endswith(WARNING) for line in warnings), result.stderr
    assert result.stdout.strip().startswith("['hello.txt']"), result.stdout
