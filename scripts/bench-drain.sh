#!/usr/bin/env bash
# Slot-drain benchmark (issue 3): dbmazz's stream path vs pg_recvlogical, same run, same slot
# contents. See docs/benchmarks.md.
#
#   scripts/bench-drain.sh                          # 1M row changes, 3 runs (harness defaults)
#   scripts/bench-drain.sh --rows 200000 --runs 1   # quick check
#
# Builds examples/slot_drain_driver.rs in release, runs the shared harness
# (slot_drain_bench.py: $DBMAZZ_BENCH_DIR if set, else ../shared/bench next to the repo) with
# --consumers recv_v1,recv_v2s,etl (+ py_count when $BENCH_PYTHON can import psycopg2), and
# ends with one line:
#   RESULT drain dbmazz_rows_per_s=… recvlogical_rows_per_s=… ratio=… peak_rss_mib=… …
# where recvlogical is the better (faster) of recv_v1 and recv_v2s.
#
# Extra arguments go to the harness after ours (argparse: the last occurrence wins, so e.g.
# --consumers can be overridden; --json cannot — set BENCH_JSON instead).
# Environment: CARGO_TARGET_DIR (default <repo>/target), DBMAZZ_BENCH_DIR, BENCH_PYTHON,
# BENCH_JSON (where to keep the harness's JSON; default a temp file), PGBIN (PG 15 bin dir).
# Needs root or a user that can run initdb (the harness runs PostgreSQL as user postgres when root).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -n "${DBMAZZ_BENCH_DIR:-}" ]]; then
    bench_dir="$DBMAZZ_BENCH_DIR"
elif [[ -f "$root/../shared/bench/slot_drain_bench.py" ]]; then
    bench_dir="$(cd "$root/../shared/bench" && pwd)"
else
    echo "bench-drain: no harness: set DBMAZZ_BENCH_DIR to the directory of slot_drain_bench.py" >&2
    exit 2
fi
harness="$bench_dir/slot_drain_bench.py"
[[ -f "$harness" ]] || { echo "bench-drain: $harness not found" >&2; exit 2; }

target="${CARGO_TARGET_DIR:-$root/target}"
echo "bench-drain: building the driver (release, target dir $target)" >&2
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release -p dbmazz --example slot_drain_driver)
driver="$target/release/examples/slot_drain_driver"
[[ -x "$driver" ]] || { echo "bench-drain: $driver missing after the build" >&2; exit 1; }

python="${BENCH_PYTHON:-python3}"
consumers="recv_v1,recv_v2s,etl"
if "$python" -c 'import psycopg2' 2>/dev/null; then
    consumers="recv_v1,recv_v2s,py_count,etl"
else
    echo "bench-drain: $python has no psycopg2: skipping the py_* consumers" >&2
fi

json="${BENCH_JSON:-$(mktemp "${TMPDIR:-/tmp}/bench-drain.XXXXXX.json")}"
pgbin_args=()
[[ -n "${PGBIN:-}" ]] && pgbin_args=(--pgbin "$PGBIN")

echo "bench-drain: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" >&2
echo "bench-drain: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$python" "$harness" --python "$python" --consumers "$consumers" --etl-bin "$driver" \
    "${pgbin_args[@]}" "$@" --json "$json"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench-drain: load after: $load_after; harness JSON: $json" >&2

"$python" - "$json" "$load_after" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
by = {r["consumer"]: r for r in data["results"]}
etl = by["etl"]
recv = [by[c] for c in ("recv_v1", "recv_v2s") if c in by]
best = max(recv, key=lambda r: r["rows_per_s"])
v1 = by.get("recv_v1", best)
print(f"RESULT drain dbmazz_rows_per_s={etl['rows_per_s']} "
      f"recvlogical_rows_per_s={best['rows_per_s']} "
      f"ratio={etl['rows_per_s'] / best['rows_per_s']:.2f} "
      f"peak_rss_mib={etl.get('max_rss_mib')} "
      f"recvlogical_consumer={best['consumer']} "
      f"recv_v1_rows_per_s={v1['rows_per_s']} "
      f"ratio_v1={etl['rows_per_s'] / v1['rows_per_s']:.2f} "
      f"rows={data['expected_rows']} runs={etl['runs']} load={sys.argv[2].replace(' ', ',')}")
EOF
