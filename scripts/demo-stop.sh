#!/usr/bin/env bash
# Stops the demo started by scripts/demo-start.sh (Ctrl-C equivalent: clean shutdown, temporary
# PostgreSQL cluster and files removed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dbmazz-demo.pid ]; then
    echo "no dbmazz-demo.pid: the demo is not running from this directory" >&2
    exit 1
fi
pid="$(cat dbmazz-demo.pid)"
if kill -INT "$pid" 2>/dev/null; then
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
fi
rm -f dbmazz-demo.pid
tail -n 3 dbmazz-demo.log 2>/dev/null || true
