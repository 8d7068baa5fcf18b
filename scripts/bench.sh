#!/usr/bin/env bash
# End-to-end benchmark (issue 5): PostgreSQL → dbmazz → StarRocks (the emulator), beside
# pg_recvlogical → /dev/null in the same run, plus commit-to-visible lag at a steady rate.
# See docs/benchmarks.md.
#
#   scripts/bench.sh --rows 1000000 --runs 1      # what docs/benchmarks.md reports
#   scripts/bench.sh --rows 200000 --runs 1       # quick check
#
# 1. Builds in release: dbmazz and the examples slot_drain_driver (which drains into the real
#    StarRocks sink when DBMAZZ_BENCH_STARROCKS_* are set), e2e_lag_probe and bench_emulator.
# 2. Starts the emulator in its own process (examples/bench_emulator.rs, so its memory and CPU
#    are not counted as dbmazz's) on free ports.
# 3. Throughput: the shared harness (slot_drain_bench.py: $DBMAZZ_BENCH_DIR, else
#    ../shared/bench next to the repo) with --consumers recv_v1,recv_v2s,etl; the etl consumer
#    is dbmazz draining its slot into the emulator (Stream Load over HTTP, tables created); a
#    change counts once StarRocks has it durably. Default batching (--etl-fill-ms 1000).
# 4. Lag: e2e_lag_probe runs `dbmazz run` against its own PostgreSQL with a writer committing
#    $LAG_RATE rows/s (default 10000) for $LAG_SECS s (default 20).
# Ends with one line:
#   RESULT e2e dbmazz_rows_per_s=… recvlogical_rows_per_s=… ratio=… peak_rss_mib=… lag_p99_ms=…
# (recvlogical = the faster of recv_v1 and recv_v2s; peak_rss_mib = the larger of the drain's
# and the lag run's).
#
# Extra arguments go to the harness after ours (argparse: the last occurrence wins).
# Environment: CARGO_TARGET_DIR (default <repo>/target), DBMAZZ_BENCH_DIR, BENCH_JSON, PGBIN,
# LAG_RATE, LAG_SECS, LAG_PG_MAJOR, BENCH_QUIET_WAIT_SECS (the harness waits up to 600 s for an
# idle machine before each run; on a machine shared with builds that never comes, so this
# caps the wait — the harness still flags runs with other CPU work in its log).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -n "${DBMAZZ_BENCH_DIR:-}" ]]; then
    bench_dir="$DBMAZZ_BENCH_DIR"
elif [[ -f "$root/../shared/bench/slot_drain_bench.py" ]]; then
    bench_dir="$(cd "$root/../shared/bench" && pwd)"
else
    echo "bench: no harness: set DBMAZZ_BENCH_DIR to the directory of slot_drain_bench.py" >&2
    exit 2
fi
harness="$bench_dir/slot_drain_bench.py"
[[ -f "$harness" ]] || { echo "bench: $harness not found" >&2; exit 2; }

target="${CARGO_TARGET_DIR:-$root/target}"
echo "bench: building (release, target dir $target)" >&2
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release -p dbmazz --bin dbmazz \
    --example slot_drain_driver --example e2e_lag_probe --example bench_emulator)
driver="$target/release/examples/slot_drain_driver"
probe="$target/release/examples/e2e_lag_probe"
emulator_bin="$target/release/examples/bench_emulator"
for binary in "$driver" "$probe" "$emulator_bin" "$target/release/dbmazz"; do
    [[ -x "$binary" ]] || { echo "bench: $binary missing after the build" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/dbmazz-bench.XXXXXX")"
emulator_pid=""
cleanup() {
    [[ -n "$emulator_pid" ]] && kill "$emulator_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$emulator_bin" >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do
    grep -q '^mysql' "$work/emulator.out" 2>/dev/null && break
    sleep 0.1
done
fe_http="$(awk '$1 == "fe_http" {print $2}' "$work/emulator.out")"
mysql="$(awk '$1 == "mysql" {print $2}' "$work/emulator.out")"
[[ -n "$fe_http" && -n "$mysql" ]] || { echo "bench: the emulator did not start:" >&2; cat "$work/emulator.err" >&2; exit 1; }
echo "bench: emulator pid $emulator_pid, FE $fe_http, MySQL $mysql" >&2

json="${BENCH_JSON:-$work/harness.json}"
pgbin_args=()
[[ -n "${PGBIN:-}" ]] && pgbin_args=(--pgbin "$PGBIN")
echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" >&2
echo "bench: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The harness runs as a module so that BENCH_QUIET_WAIT_SECS can cap its idle-machine wait
# without changing the shared file.
DBMAZZ_BENCH_STARROCKS_FE_HTTP="http://$fe_http" DBMAZZ_BENCH_STARROCKS_MYSQL="$mysql" \
    python3 - "$bench_dir" --consumers recv_v1,recv_v2s,etl --etl-bin "$driver" --etl-fill-ms 1000 \
    "${pgbin_args[@]}" "$@" --json "$json" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
import slot_drain_bench as harness
cap = os.environ.get("BENCH_QUIET_WAIT_SECS")
if cap:
    wait = harness.wait_for_quiet_machine
    harness.wait_for_quiet_machine = lambda max_wait=600, threshold=0.15: wait(int(cap), threshold)
sys.argv = [os.path.join(sys.argv[1], "slot_drain_bench.py")] + sys.argv[2:]
harness.main()
PY
emulator_rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$emulator_pid/status" 2>/dev/null || echo 0)"
echo "bench: emulator peak RSS $((emulator_rss_kb / 1024)) MiB (not dbmazz's)" >&2
kill "$emulator_pid" 2>/dev/null || true
wait "$emulator_pid" 2>/dev/null || true
emulator_pid=""

lag_args=(--dbmazz-bin "$target/release/dbmazz" --rate "${LAG_RATE:-10000}" --secs "${LAG_SECS:-20}")
[[ -n "${LAG_PG_MAJOR:-}" ]] && lag_args+=(--pg-major "$LAG_PG_MAJOR")
echo "bench: lag at a steady rate: ${lag_args[*]}" >&2
lag_line="$("$probe" "${lag_args[@]}")"
echo "$lag_line"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: load after: $load_after" >&2

python3 - "$json" "$lag_line" "$load_after" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
lag = dict(kv.split("=", 1) for kv in sys.argv[2].split()[1:])
by = {r["consumer"]: r for r in data["results"]}
etl = by["etl"]
recv = [by[c] for c in ("recv_v1", "recv_v2s") if c in by]
best = max(recv, key=lambda r: r["rows_per_s"])
rss = max(float(etl.get("max_rss_mib") or 0), float(lag["dbmazz_peak_rss_mib"]))
print(f"e2e drain: dbmazz {etl['rows_per_s']:.0f} rows/s, client CPU {etl.get('client_cpu_pct')}% of a core, "
      f"peak RSS {etl.get('max_rss_mib')} MiB; lag run: {sys.argv[2]}")
print(f"RESULT e2e dbmazz_rows_per_s={etl['rows_per_s']:.0f} "
      f"recvlogical_rows_per_s={best['rows_per_s']:.0f} "
      f"ratio={etl['rows_per_s'] / best['rows_per_s']:.2f} "
      f"peak_rss_mib={rss:.1f} lag_p99_ms={lag['p99_ms']} "
      f"lag_p50_ms={lag['p50_ms']} lag_cpu_pct={lag['dbmazz_cpu_pct']} "
      f"recvlogical_consumer={best['consumer']} rows={data['expected_rows']} "
      f"runs={etl['runs']} load={sys.argv[3].replace(' ', ',')}")
PY
