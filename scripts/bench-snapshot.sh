#!/usr/bin/env bash
# Snapshot benchmark (issue 6): dbmazz's initial snapshot of one table into the standalone
# StarRocks emulator, beside `psql \copy (select * from t) to /dev/null` in the same run.
#
#   scripts/bench-snapshot.sh                 # 5M rows (~1 GiB heap)
#   ROWS=1000000 scripts/bench-snapshot.sh    # quicker
#
# Builds dbmazz and starrocks-emulator in release, starts a throwaway PostgreSQL (initdb in a
# temp dir, wal_level=logical), loads the table, times the raw COPY, then runs `dbmazz run`
# (snapshot.mode = initial) until it logs "snapshot finished" (the time is that line's), and prints
# rows/s, MiB/s (of COPY text) and dbmazz's peak RSS, ending with one line:
#   RESULT snapshot rows=… seconds=… rows_per_s=… mib_per_s=… copy_rows_per_s=… ratio=… peak_rss_mib=… sink=…
# Environment: ROWS (default 5000000), PARALLELISM (default: cores), CHUNK_PAGES (default 4096),
# PGBIN (default: PostgreSQL 18 at /opt/dbmazz-pg18 or 15 from Debian), CARGO_TARGET_DIR,
# SKIP_BUILD=1 (use the binaries already built), EMULATOR_ENV (a command prefix for the
# emulator only, e.g. "env MALLOC_ARENA_MAX=1"), KEEP_LOG (copy dbmazz's log there at the end),
# SINK=noop (dbmazz reads, decodes and batches the chunks but hands them to the no-op sink:
# the rate of PostgreSQL + dbmazz alone, as when StarRocks runs on other machines).
# Runs PostgreSQL as user postgres when root.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
rows="${ROWS:-5000000}"
parallelism="${PARALLELISM:-$(nproc)}"
chunk_pages="${CHUNK_PAGES:-4096}"
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ -z "${PGBIN:-}" ]]; then
    pg18="$(find /opt/dbmazz-pg18 -name initdb -type f 2>/dev/null | head -1 || true)"
    if [[ -n "$pg18" ]]; then PGBIN="$(dirname "$pg18")"; else PGBIN=/usr/lib/postgresql/15/bin; fi
fi

if [[ -z "${SKIP_BUILD:-}" ]]; then
    echo "bench-snapshot: building (release, target dir $target)" >&2
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release -q -p dbmazz -p starrocks-emulator --bins)
fi
dbmazz="$target/release/dbmazz"
emulator="$target/release/starrocks-emulator"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-snapshot.XXXXXX")"
chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port="$(free_port)"; fe_port="$(free_port)"; be_port="$(free_port)"; my_port="$(free_port)"
as_pg=()
if [[ "$(id -u)" == 0 ]]; then chown postgres "$work"; as_pg=(runuser -u postgres --); fi
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    [[ -n "${KEEP_LOG:-}" && -f "$work/dbmazz.log" ]] && cp "$work/dbmazz.log" "$KEEP_LOG"
    rm -rf "$work"
}
trap cleanup EXIT

"${as_pg[@]}" "$PGBIN/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c wal_level=logical -c shared_buffers=256MB -c max_wal_size=4GB -c fsync=off" start >/dev/null
psql=("$PGBIN/psql" -X -q -A -t -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c "CREATE DATABASE bench"
echo "bench-snapshot: loading $rows rows" >&2
"${psql[@]}" -d bench <<SQL
CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, b bigint, c text, d text, e numeric(12,2));
INSERT INTO t SELECT g, g % 1000, g * 7, repeat(md5(g::text), 4), md5((g * 3)::text), g / 100.0
  FROM generate_series(1, $rows) g;
VACUUM ANALYZE t;
SQL
heap_mib="$("${psql[@]}" -d bench -c "SELECT pg_relation_size('t') >> 20")"
echo "bench-snapshot: heap $heap_mib MiB; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Raw COPY (what a client reading the table as fast as it can costs), warm cache for both.
"${psql[@]}" -d bench -c "\\copy (select * from t) to '$work/copy.txt'"
copy_bytes="$(stat -c %s "$work/copy.txt")"; rm -f "$work/copy.txt"
start=$(date +%s.%N)
"${psql[@]}" -d bench -c "\\copy (select * from t) to /dev/null"
copy_seconds="$(echo "$(date +%s.%N) - $start" | bc)"

${EMULATOR_ENV:-} "$emulator" --fe-http "$fe_port" --be-http "$be_port" --mysql "$my_port" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
pids+=("$emulator_pid")
sleep 1
cat >"$work/dbmazz.toml" <<TOML
state_dir = "$work/state"
[source]
url = "postgres://postgres@127.0.0.1:$pg_port/bench"
tables = ["public.t"]
[sink]
type = "${SINK:-starrocks}"
[sink.starrocks]
fe_http = "http://127.0.0.1:$fe_port"
mysql = "127.0.0.1:$my_port"
database = "bench"
table_properties = { replication_num = "1" }
[snapshot]
parallelism = $parallelism
chunk_pages = $chunk_pages
[http]
listen = ""
TOML
# CPU accounting (builtins only): the machine's busy/idle ticks and each process's CPU time.
machine_ticks() {  # prints "busy idle" from /proc/stat's cpu line
    local _ user nice system idle iowait irq softirq steal
    read -r _ user nice system idle iowait irq softirq steal _ < /proc/stat
    echo "$((user + nice + system + irq + softirq + steal)) $((idle + iowait))"
}
process_ticks() {  # utime + stime of a pid
    local stat rest
    stat="$(< "/proc/$1/stat")" || { echo 0; return 0; }
    rest="${stat##*) }"
    read -r -a fields <<< "$rest"
    echo "$((fields[11] + fields[12]))"
}
process_faults() {  # minor page faults of a pid (each one a fresh page the kernel had to zero)
    local stat rest
    stat="$(< "/proc/$1/stat")" || { echo 0; return 0; }
    rest="${stat##*) }"
    read -r -a fields <<< "$rest"
    echo "${fields[7]}"
}
emulator_ticks_before="$(process_ticks "$emulator_pid")"
emulator_faults_before="$(process_faults "$emulator_pid")"
machine_before="$(machine_ticks)"
start=$(date +%s.%N)
"$dbmazz" run --config "$work/dbmazz.toml" >"$work/dbmazz.log" 2>&1 &
dbmazz_pid=$!
pids+=("$dbmazz_pid")
peak_kb=0
# VmHWM read with bash builtins: the wait loop must not take CPU from the snapshot it times
# (a `jq` every 50 ms took ~10 % of this 2-core machine).
read_hwm() {
    local key value _
    while read -r key value _; do
        if [[ "$key" == VmHWM: ]]; then
            if (( value > peak_kb )); then peak_kb=$value; fi
            return 0
        fi
    done < "/proc/$dbmazz_pid/status" 2>/dev/null || true
}
while true; do
    if ! kill -0 "$dbmazz_pid" 2>/dev/null; then
        echo "bench-snapshot: dbmazz exited early:" >&2; cat "$work/dbmazz.log" >&2; exit 1
    fi
    read_hwm
    if finished="$(grep -m1 'snapshot finished' "$work/dbmazz.log")"; then
        break
    fi
    sleep 0.1
done
# The end is the time dbmazz logged (its log line starts with an RFC 3339 timestamp), so the
# polling interval does not add to the figure.
finished_at="$(date -d "${finished%% *}" +%s.%N)"
snapshot_seconds="$(echo "$finished_at - $start" | bc)"
read_hwm
machine_after="$(machine_ticks)"
dbmazz_ticks="$(process_ticks "$dbmazz_pid")"
emulator_ticks="$(( $(process_ticks "$emulator_pid") - emulator_ticks_before ))"
dbmazz_faults="$(process_faults "$dbmazz_pid")"
emulator_faults="$(( $(process_faults "$emulator_pid") - emulator_faults_before ))"
read -r busy_before idle_before <<< "$machine_before"
read -r busy_after idle_after <<< "$machine_after"
busy=$((busy_after - busy_before)); idle=$((idle_after - idle_before))
hz="$(getconf CLK_TCK)"
echo "bench-snapshot: during the snapshot the machine was $(( 100 * busy / (busy + idle + 1) )) % busy;" \
    "CPU-s: dbmazz $(echo "scale=2; $dbmazz_ticks / $hz" | bc)," \
    "emulator $(echo "scale=2; $emulator_ticks / $hz" | bc)," \
    "everything $(echo "scale=2; $busy / $hz" | bc) (the rest is mostly PostgreSQL);" \
    "minor page faults: dbmazz $dbmazz_faults, emulator $emulator_faults" >&2
kill -TERM "$dbmazz_pid"; wait "$dbmazz_pid" || true
loaded="$(jq '[.snapshot.tables[].chunks[].rows] | add' "$work/state/state.json")"
[[ "$loaded" == "$rows" ]] || { echo "bench-snapshot: loaded $loaded rows, expected $rows" >&2; exit 1; }

python3 - "$rows" "$copy_bytes" "$copy_seconds" "$snapshot_seconds" "$peak_kb" "$parallelism" "$heap_mib" "${SINK:-starrocks}" <<'EOF'
import sys
rows, copy_bytes, copy_s, snap_s, peak_kb, parallelism, heap_mib, sink = sys.argv[1:]
into = "into the emulator" if sink == "starrocks" else f"into the {sink} sink"
rows, copy_bytes, copy_s, snap_s = int(rows), int(copy_bytes), float(copy_s), float(snap_s)
mib = copy_bytes / 2**20
print(f"raw COPY : {rows / copy_s:12,.0f} rows/s {mib / copy_s:8.1f} MiB/s ({copy_s:.1f} s, {mib:.0f} MiB of COPY text, heap {heap_mib} MiB)")
print(f"snapshot : {rows / snap_s:12,.0f} rows/s {mib / snap_s:8.1f} MiB/s ({snap_s:.1f} s, parallelism {parallelism}, {into})")
print(f"peak RSS of dbmazz: {int(peak_kb) / 1024:.0f} MiB")
print(f"RESULT snapshot rows={rows} seconds={snap_s:.2f} rows_per_s={rows / snap_s:.0f} mib_per_s={mib / snap_s:.1f} "
      f"copy_rows_per_s={rows / copy_s:.0f} ratio={copy_s / snap_s:.2f} peak_rss_mib={int(peak_kb) / 1024:.0f} sink={sink}")
EOF
