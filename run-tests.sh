#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run every check on a fresh machine: install into ./.venv, lint, build the
# docs (warnings are errors), run the doctests, then the test suite on SQLite
# and on PostgreSQL (127.0.0.1:5432, user postgres) when one is reachable.
# In CI (CI set) PostgreSQL is required and started if it is down.
#
#   ./run-tests.sh              everything
#   ./run-tests.sh -k rename    extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-.venv}
PG_URI=${PG_URI:-postgresql+psycopg2://postgres@127.0.0.1:5432/postgres}

step() { printf '\n==> %s\n' "$*"; }

step "Installing into $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY=$VENV/bin/python
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[tests,postgresql]"

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

step "Manifest (check-manifest)"
"$VENV/bin/check-manifest" --no-build-isolation -q

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

pg_up() {
  "$PY" - "$PG_URI" <<'PYEOF' >/dev/null 2>&1
import sys
import sqlalchemy as sa
sa.create_engine(sys.argv[1]).connect().close()
PYEOF
}
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  step "Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do pg_up && break; sleep 1; done
fi
if pg_up; then
  with_pg=1
else
  with_pg=0
  if [ -n "${CI:-}" ]; then
    echo "PostgreSQL is not reachable at $PG_URI, and CI requires it." >&2
    exit 1
  fi
  echo "PostgreSQL is not reachable at $PG_URI: the suite runs on SQLite only."
fi

step "Tests on SQLite"
env -u SQLALCHEMY_DATABASE_URI "$PY" -m pytest -q -rs "$@"

if [ "$with_pg" = 1 ]; then
  step "Tests on PostgreSQL"
  SQLALCHEMY_DATABASE_URI=$PG_URI "$PY" -m pytest -q -rs "$@"
fi
