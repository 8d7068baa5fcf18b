#!/usr/bin/env bash
# Starts `dbmazz demo` in the background (log in ./dbmazz-demo.log, pid in ./dbmazz-demo.pid).
# Extra arguments go to the demo, e.g. `scripts/demo-start.sh --rate 50`.
# Stop it with scripts/demo-stop.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f dbmazz-demo.pid ] && kill -0 "$(cat dbmazz-demo.pid)" 2>/dev/null; then
    echo "the demo already runs (pid $(cat dbmazz-demo.pid)); scripts/demo-stop.sh stops it" >&2
    exit 1
fi
cargo build --release -q -p dbmazz
nohup ./target/release/dbmazz demo "$@" >dbmazz-demo.log 2>&1 &
echo $! >dbmazz-demo.pid
echo "demo started (pid $!); follow it with: tail -f dbmazz-demo.log"
echo "status: curl -s http://127.0.0.1:9808/status   metrics: curl -s http://127.0.0.1:9808/metrics"
