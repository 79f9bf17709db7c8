#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run every check on a fresh machine: install into ./.venv, lint, build the
# docs (warnings are errors), run the doctests, build the sdist and the wheel
# and run the demo from the wheel in a clean virtualenv, then the test suite on
# SQLite, on PostgreSQL (127.0.0.1:5432, user postgres) and on MariaDB
# (127.0.0.1:3306, user root) when they are reachable. In CI (CI set) both
# servers, Redis and RabbitMQ are required, and started if they are down.
#
# Each pass runs what depends on its database: the database-independent tests
# run in the SQLite pass, the multi-process ones (gunicorn storm, Celery
# worker) in the PostgreSQL pass.
#
#   ./run-tests.sh              everything
#   ./run-tests.sh -k rename    extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-.venv}
PG_URI=${PG_URI:-postgresql+psycopg2://postgres@127.0.0.1:5432/postgres}
MYSQL_URI=${MYSQL_URI:-mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4}

step() { printf '\n==> %s\n' "$*"; }

step "Installing into $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY=$VENV/bin/python
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[tests,postgresql,mysql]"

# tests/test_docs_shell.py runs the docs' shell examples with Debian's curl
# and unzip, installed the same way as Chromium below when they are missing.
step "curl and unzip for tests/test_docs_shell.py"
for tool in curl unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool"; } \
        >/dev/null || echo "Could not install $tool."
    else
      echo "$tool is missing and cannot be installed here (apt-get, as root)."
    fi
  fi
  command -v "$tool" || true
done

# tests/test_browser.py opens uploaded files in Debian's Chromium, driven by
# Playwright (never a browser of Playwright's own). Installed where the
# machine allows it; elsewhere the test is skipped, saying why. CI requires it.
step "Browser (Chromium and Playwright) for tests/test_browser.py"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
      >/dev/null || echo "Could not install Chromium."
  else
    echo "Chromium is missing and cannot be installed here (apt-get, as root)."
  fi
fi
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[browser]" \
  || echo "Could not install Playwright."
if [ -n "${CI:-}" ]; then
  export RECORDS_FILES_REQUIRE_BROWSER=1
fi
command -v chromium || true

step "Lint (ruff)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

step "Layers (import-linter, contracts in .importlinter)"
"$VENV/bin/lint-imports"

step "Manifest (check-manifest)"
"$VENV/bin/check-manifest" --no-build-isolation -q

step "Packages (sdist, then the wheel from it); the demo from the wheel"
# The wheel goes into a clean virtualenv of its own (the example app's extras
# and gunicorn beside it), and the demo runs from it, served by gunicorn: what
# users install is what works, not only this tree.
dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
"$PY" -m build --no-isolation --outdir "$dist" . >"$dist/build.log" 2>&1 \
  || { cat "$dist/build.log"; exit 1; }
(cd "$dist" && ls -- *.tar.gz *.whl)
python3 -m venv "$dist/venv"
"$dist/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "$(ls "$dist"/*.whl)[examples,gunicorn]" >"$dist/pip.log" 2>&1 \
  || { cat "$dist/pip.log"; exit 1; }
VENV="$dist/venv" DEMO_INSTALLED=1 examples/run-demo.sh --port 0 --workers 2 \
  >"$dist/demo.log" 2>&1 || { cat "$dist/demo.log"; exit 1; }
grep -E "^(Using the installed package|Example app on)" "$dist/demo.log"
tail -n 1 "$dist/demo.log"

step "Docs (sphinx, warnings are errors)"
"$VENV/bin/sphinx-build" -q -W --keep-going -b html docs docs/_build/html
"$VENV/bin/sphinx-build" -q -W --keep-going -b doctest docs docs/_build/doctest

step "Spec walk-through (usage.doctest, unchanged)"
spec=tests/spec/usage.doctest
if [ -f ../shared/spec/usage.doctest ]; then
  cmp -s ../shared/spec/usage.doctest "$spec" || {
    echo "tests/spec/usage.doctest differs from ../shared/spec/usage.doctest" >&2
    exit 1
  }
fi
(cd "$(mktemp -d)" && "$OLDPWD/$PY" -W "ignore::Warning" -m doctest -o ELLIPSIS "$OLDPWD/$spec")
echo "ok"

reachable() {
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys
import sqlalchemy as sa
sa.create_engine(sys.argv[1]).connect().close()
PYEOF
}
port_open() {
  "$PY" -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 2).close()" "$1" \
    >/dev/null 2>&1
}
wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local seconds=$1
  shift
  for _ in $(seq "$seconds"); do "$@" && return 0; sleep 1; done
  "$@"
}
# start_service NAME: start a Debian service that is down (as root).
start_service() {
  if [ "$(id -u)" = 0 ] && [ -x "/etc/init.d/$1" ]; then
    step "Starting $1"
    service "$1" start >/dev/null 2>&1 || "/etc/init.d/$1" start >/dev/null 2>&1 || true
  fi
}
# require WHAT: say a server is missing; fatal in CI.
require() {
  if [ -n "${CI:-}" ]; then
    echo "$1 is not reachable, and CI requires it." >&2
    exit 1
  fi
  echo "$1 is not reachable: the tests that need it are skipped."
}

if ! reachable "$PG_URI" && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  step "Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    || true
  wait_for 10 reachable "$PG_URI" || true
fi
if reachable "$PG_URI"; then with_pg=1; else with_pg=0; require "PostgreSQL ($PG_URI)"; fi

if ! reachable "$MYSQL_URI"; then
  start_service mariadb
  if ! wait_for 15 reachable "$MYSQL_URI" && command -v mysqld_safe >/dev/null 2>&1; then
    (mysqld_safe >/dev/null 2>&1 &)
    wait_for 30 reachable "$MYSQL_URI" || true
  fi
fi
if reachable "$MYSQL_URI"; then with_mysql=1; else with_mysql=0; require "MariaDB ($MYSQL_URI)"; fi

# The Celery test (tests/test_tasks.py) runs a worker on a real broker: Redis,
# else RabbitMQ. It is skipped, saying why, where neither runs.
if ! port_open 6379 && ! port_open 5672; then
  start_service redis-server
  wait_for 10 port_open 6379 || { start_service rabbitmq-server; wait_for 30 port_open 5672; } \
    || true
fi
if port_open 6379 || port_open 5672; then
  if [ -n "${CI:-}" ]; then export RECORDS_FILES_REQUIRE_BROKER=1; fi
else
  require "A Celery broker (Redis at 127.0.0.1:6379 or RabbitMQ at 127.0.0.1:5672)"
fi

step "Tests on SQLite"
env -u SQLALCHEMY_DATABASE_URI "$PY" -m pytest -q -rs "$@"

if [ "$with_pg" = 1 ]; then
  step "Tests on PostgreSQL"
  SQLALCHEMY_DATABASE_URI=$PG_URI "$PY" -m pytest -q -rs "$@"
fi

if [ "$with_mysql" = 1 ]; then
  step "Tests on MariaDB"
  SQLALCHEMY_DATABASE_URI=$MYSQL_URI "$PY" -m pytest -q -rs "$@"
fi
