#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against throwaway PostgreSQL 15 and 18
# clusters and the in-process StarRocks emulator. Installs the PostgreSQL 18 binaries if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-pg18.sh >/dev/null
exec cargo test --workspace --release "$@"
