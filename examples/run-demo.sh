#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run the demo on a fresh machine: create the virtualenv (.venv, or $VENV) if
# it is missing, install the package and the example app's dependencies into
# it (editable), then run the Python-API walk-through (examples/api_demo.py)
# and the example application's HTTP walk-through (examples/app.py), both on
# SQLite in a temporary directory. Works from any directory.
#
#   examples/run-demo.sh            # both walk-throughs
#   examples/run-demo.sh --serve    # ... then keep serving on 127.0.0.1:5000
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[examples]"
"$VENV/bin/python" examples/api_demo.py
echo
exec "$VENV/bin/python" examples/app.py "$@"
