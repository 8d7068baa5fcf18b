#!/usr/bin/env bash
# Text vs binary COPY of the snapshot benchmark's table: PostgreSQL backend CPU, wall time and
# bytes per format (three rounds, alternating). Why the snapshot reads text: docs/snapshot.md.
#
#   ROWS=2000000 PGBIN=/usr/lib/postgresql/15/bin scripts/copy-format.sh
set -euo pipefail
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
rows="${ROWS:-2000000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/copy-format.XXXXXX")"
chmod 755 "$work"
as_pg=()
if [[ "$(id -u)" == 0 ]]; then chown postgres "$work"; as_pg=(runuser -u postgres --); fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"${as_pg[@]}" "$PGBIN/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB -c fsync=off" start >/dev/null
trap '"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null; rm -rf "$work"' EXIT
psql=("$PGBIN/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -d postgres)
"${psql[@]}" <<SQL
CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, b bigint, c text, d text, e numeric(12,2));
INSERT INTO t SELECT g, g % 1000, g * 7, repeat(md5(g::text), 4), md5((g * 3)::text), g / 100.0
  FROM generate_series(1, $rows) g;
VACUUM ANALYZE t;
SQL
echo "copy-format: $rows rows, $("${psql[@]}" -c 'SHOW server_version'), $(nproc) CPUs"
for format in text binary text binary text binary; do
    option=""; [[ "$format" == binary ]] && option="with (format binary)"
    "${psql[@]}" -c "\\copy (select * from t) to '$work/out' $option"
    bytes="$(stat -c %s "$work/out")"; rm -f "$work/out"
    start="$(date +%s.%N)"
    "${psql[@]}" -c "\\copy (select * from t) to /dev/null $option" &
    client=$!
    backend=""; cpu=0
    while kill -0 "$client" 2>/dev/null; do
        [[ -z "$backend" ]] && backend="$(pgrep -f "postgres: postgres postgres 127.0.0.1.*COPY" | head -1 || true)"
        if [[ -n "$backend" ]]; then
            cpu="$(awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$backend/stat" 2>/dev/null || echo "$cpu")"
        fi
        sleep 0.05
    done
    wait "$client"
    printf '%-6s wall %.2f s  backend CPU %.2f s  %d bytes\n' "$format" "$(echo "$(date +%s.%N) - $start" | bc)" "$cpu" "$bytes"
done
