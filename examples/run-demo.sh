#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run the demo on a fresh machine: create the virtualenv (.venv, or $VENV) if
# it is missing, install the package and the example app's dependencies into
# it (editable), then run the Python-API walk-through (examples/api_demo.py)
# and the example application's HTTP walk-through (examples/app.py), both on
# SQLite in a temporary directory. Works from any directory.
#
#   examples/run-demo.sh                # both walk-throughs
#   examples/run-demo.sh --serve        # ... then keep serving on 127.0.0.1:5000
#   examples/run-demo.sh --workers 4    # served by gunicorn, 4 worker processes
#                                       # (or DEMO_WORKERS=4)
#   DEMO_INSTALLED=1 VENV=/path/to/venv examples/run-demo.sh
#       # the package already installed in $VENV (a wheel, say): install
#       # nothing, and check that the demo imports that copy, not this tree
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
workers=${DEMO_WORKERS:-}
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --workers) workers=${args[$((i + 1))]:-} ;;
    --workers=*) workers=${args[$i]#--workers=} ;;
  esac
done

if [ -n "${DEMO_INSTALLED:-}" ]; then
  # Run from outside this tree, so that only the installed package is found.
  where=$(cd / && "$VENV/bin/python" -c \
    "import invenio_records_files as m; print(m.__file__)")
  case "$where" in
    "$PWD"/*) echo "DEMO_INSTALLED: $VENV imports this tree ($where)" >&2; exit 1 ;;
  esac
  echo "Using the installed package: $where"
else
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  extras=examples
  [ -n "$workers" ] && [ "$workers" != 0 ] && extras=examples,gunicorn
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
fi
"$VENV/bin/python" examples/api_demo.py
echo
exec "$VENV/bin/python" examples/app.py "$@"
