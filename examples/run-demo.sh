#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run the demo on a fresh machine: create the virtualenv (.venv, or $VENV) if
# it is missing, install the package and the example app's dependencies into
# it (editable), then run the Python-API walk-through (examples/api_demo.py)
# and the example application's HTTP walk-through (examples/app.py), both on
# SQLite in a temporary directory. Works from any directory.
#
#   examples/run-demo.sh                  # both walk-throughs
#   examples/run-demo.sh --serve          # ... then keep serving on 127.0.0.1:5000
#   PORT=5001 examples/run-demo.sh        # another port, when 5000 is taken
#   VENV=/tmp/venv examples/run-demo.sh   # another virtualenv
#   examples/run-demo.sh --workers 4      # served by gunicorn, 4 worker processes
#                                         # (or DEMO_WORKERS=4)
#   DEMO_INSTALLED=1 VENV=/path/to/venv examples/run-demo.sh
#       # the package already installed in $VENV (a wheel, say): install
#       # nothing, and check that the demo imports that copy, not this tree
#
# The installation runs only when it is needed: the first time, and after
# setup.cfg or setup.py (or the extras asked for) changed. A stamp in the
# virtualenv ($VENV/.records-files-demo-stamp) holds their hash as of the
# last installation; delete it to reinstall.
#
# The temporary directory (the demo's database and files) is removed when the
# demo ends, also on Ctrl+C and on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PORT=${PORT:-5000}
PY=$VENV/bin/python
STAMP=$VENV/.records-files-demo-stamp

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
  where=$(cd / && "$PY" -c "import invenio_records_files as m; print(m.__file__)")
  case "$where" in
    "$PWD"/*) echo "DEMO_INSTALLED: $VENV imports this tree ($where)" >&2; exit 1 ;;
  esac
  echo "Using the installed package: $where"
else
  if [ ! -x "$PY" ]; then
    echo "==> Creating the virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  extras=examples
  [ -n "$workers" ] && [ "$workers" != 0 ] && extras=examples,gunicorn
  wanted=$( (cat setup.cfg setup.py; echo "$extras") | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ]; then
    echo "==> Installing invenio-records-files and the example app's dependencies" \
      "into $VENV (about a minute the first time)"
    rm -f "$STAMP"
    "$PY" -m pip install --disable-pip-version-check --progress-bar off -e ".[$extras]"
    echo "$wanted" >"$STAMP"
    echo
  fi
fi

# Both walk-throughs make their temporary directory in $TMPDIR: one
# directory of ours, removed on exit, whatever ends the demo.
workdir=$(mktemp -d "${TMPDIR:-/tmp}/records-files-demo.XXXXXX")
child=
cleanup() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
export TMPDIR=$workdir

# Run in the background and wait, so that a signal to this script reaches
# its trap at once (bash runs traps only between commands).
run() {
  "$PY" "$@" &
  child=$!
  wait "$child"
  child=
}
run examples/api_demo.py
echo
run examples/app.py --port "$PORT" "$@"
