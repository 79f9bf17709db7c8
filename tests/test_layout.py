# SPDX-License-Identifier: MIT
"""The package's layers: what the Python API loads, and the layer contracts."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.database_independent


def test_python_api_loads_no_view_layer():
    code = (
        "import sys, invenio_records_files.api\n"
        "print(sorted(m for m in ('flask_login', 'invenio_files_rest.views',"
        " 'invenio_records_files.rest', 'invenio_records_files.services')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_layer_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[tests]')")
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / ".importlinter")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_faces_re_export_the_4x_names():
    from invenio_records_files import api, models, utils, views
    from invenio_records_files.records.record import Record
    from invenio_records_files.rest.resources import RecordObjectResource
    from invenio_records_files.store.keys import sorted_files_from_bucket

    assert api.Record is Record
    assert utils.sorted_files_from_bucket is sorted_files_from_bucket
    assert api.sorted_files_from_bucket is sorted_files_from_bucket
    assert views.RecordObjectResource is RecordObjectResource
    assert models.RecordsBuckets.__tablename__ == "records_buckets"


def test_every_exception_class_lives_in_errors():
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in (ROOT / "invenio_records_files").rglob("*.py")
        if path.name != "errors.py"
        for line in path.read_text().splitlines()
        if line.startswith("class ") and ("Error(" in line or "Exception(" in line)
    ]
    assert offenders == []
