#!/usr/bin/env bash
# Runs the demo for a while (default 30s; DURATION=2m to change), stops the traffic, waits for
# the stream to catch up and compares every table row by row. Exit code 0 only when identical.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p dbmazz
exec ./target/release/dbmazz demo --verify --duration "${DURATION:-30s}" "$@"
