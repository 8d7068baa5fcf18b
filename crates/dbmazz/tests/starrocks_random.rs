//! A seeded random workload (inserts, updates, deletes, key changes, upserts, rollbacks,
//! rolled-back savepoints, one streamed 200k-row transaction and one streamed rollback) from
//! PostgreSQL into the emulator; afterwards every table is identical row by row.
//!
//! Replay a failure with `DBMAZZ_TEST_SEED=<seed printed by the test>`.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig};

use crate::support::starrocks::{replicate_in_process, sink_options, wait_identical_in};
use crate::support::{eventually, start_pg, wait_for_streaming, PG_VERSIONS};

const SCHEMA: &str = "
CREATE TABLE accounts (id bigint PRIMARY KEY, name text, balance numeric(14,2), doc jsonb, big text);
ALTER TABLE accounts ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE events (region int, seq bigint, kind text NOT NULL, payload jsonb, PRIMARY KEY (region, seq));
ALTER TABLE events ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE TABLE tags (code varchar(80) PRIMARY KEY, hits int, note text);
";

/// The comparison query of each table (PostgreSQL, StarRocks): text keys in byte order.
const CHECKS: [(&str, &str); 3] = [
    (
        "SELECT id, name, balance, doc, big FROM accounts ORDER BY id",
        "SELECT id, name, balance, doc, big FROM accounts ORDER BY id",
    ),
    (
        "SELECT region, seq, kind, payload FROM events ORDER BY region, seq",
        "SELECT region, seq, kind, payload FROM events ORDER BY region, seq",
    ),
    (
        "SELECT code, hits, note FROM tags ORDER BY code COLLATE \"C\"",
        "SELECT code, hits, note FROM tags ORDER BY code",
    ),
];

/// The keys that exist (as far as committed work goes) and a counter for fresh ones.
#[derive(Clone, Default)]
struct Keys {
    accounts: Vec<i64>,
    events: Vec<(i32, i64)>,
    tags: Vec<String>,
}

struct Workload {
    rng: fastrand::Rng,
    next: i64,
    committed: Keys,
    ops: usize,
}

/// Strings with quotes, backslashes, multi-byte and 4-byte characters (no newlines: rows are
/// compared as psql's lines).
fn random_text(rng: &mut fastrand::Rng) -> String {
    const PIECES: [&str; 10] = [
        "a",
        "Zz",
        "it''s",
        "back\\slash",
        "é",
        "日本",
        "🦀",
        " ",
        "tab\there",
        "\"q\"",
    ];
    (0..rng.usize(0..6))
        .map(|_| PIECES[rng.usize(..PIECES.len())])
        .collect()
}

impl Workload {
    fn fresh(&mut self) -> i64 {
        self.next += 1;
        self.next
    }

    /// A large value (TOASTed out of line: the column is STORAGE EXTERNAL), a short one or NULL.
    fn big_value(&mut self) -> String {
        match self.rng.u8(0..4) {
            0 => "NULL".into(),
            1 => format!("'short {}'", self.rng.u32(..)),
            _ => format!(
                "repeat(md5('{}'), {})",
                self.rng.u32(..),
                self.rng.u32(70..400)
            ),
        }
    }

    fn doc_value(&mut self) -> String {
        match self.rng.u8(0..5) {
            0 => "NULL".into(),
            1 => format!(
                "jsonb_build_object('big', repeat('j', {}), 'n', {})",
                self.rng.u32(3000..9000),
                self.rng.i32(..)
            ),
            _ => format!(
                "'{{\"n\": {}, \"s\": \"{}\", \"l\": [1, null, true]}}'",
                self.rng.i64(..),
                self.rng.u32(..)
            ),
        }
    }

    fn balance(&mut self) -> String {
        format!(
            "{}{}.{:02}",
            if self.rng.bool() { "-" } else { "" },
            self.rng.u64(..1_000_000_000_000),
            self.rng.u8(..100)
        )
    }

    /// One random statement against `keys` (the transaction's view), updating it.
    fn statement(&mut self, keys: &mut Keys) -> String {
        self.ops += 1;
        let rng_pick = self.rng.u8(0..100);
        let table = self.rng.u8(0..3);
        match (table, rng_pick) {
            (0, pick) if pick < 30 || keys.accounts.is_empty() => {
                let id = self.fresh();
                keys.accounts.push(id);
                let (name, balance, doc, big) = (
                    random_text(&mut self.rng),
                    self.balance(),
                    self.doc_value(),
                    self.big_value(),
                );
                format!("INSERT INTO accounts VALUES ({id}, '{name}', {balance}, {doc}, {big});")
            }
            (0, 30..=54) => {
                // Leaves `big` (and often `doc`) unchanged: unchanged TOAST values.
                let id = keys.accounts[self.rng.usize(..keys.accounts.len())];
                let balance = self.balance();
                format!("UPDATE accounts SET balance = {balance} WHERE id = {id};")
            }
            (0, 55..=64) => {
                let id = keys.accounts[self.rng.usize(..keys.accounts.len())];
                let (doc, big) = (self.doc_value(), self.big_value());
                format!("UPDATE accounts SET doc = {doc}, big = {big} WHERE id = {id};")
            }
            (0, 65..=76) => {
                // Key change that leaves the TOASTed columns unchanged (the hard case).
                let index = self.rng.usize(..keys.accounts.len());
                let (old, new) = (keys.accounts[index], self.fresh());
                keys.accounts[index] = new;
                format!("UPDATE accounts SET id = {new} WHERE id = {old};")
            }
            (0, 77..=84) => {
                let id = keys
                    .accounts
                    .swap_remove(self.rng.usize(..keys.accounts.len()));
                format!("DELETE FROM accounts WHERE id = {id};")
            }
            (0, _) => {
                // Upsert of an existing key or a re-insert after delete in the same statement list.
                let id = keys.accounts[self.rng.usize(..keys.accounts.len())];
                let name = random_text(&mut self.rng);
                format!(
                    "DELETE FROM accounts WHERE id = {id}; INSERT INTO accounts VALUES ({id}, '{name}', 1.00, NULL, NULL) \
                     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;"
                )
            }
            (1, pick) if pick < 40 || keys.events.is_empty() => {
                let key = (self.rng.i32(-3..4), self.fresh());
                keys.events.push(key);
                let doc = self.doc_value();
                let kind = random_text(&mut self.rng);
                format!(
                    "INSERT INTO events VALUES ({}, {}, '{kind}', {doc});",
                    key.0, key.1
                )
            }
            (1, 40..=64) => {
                let (region, seq) = keys.events[self.rng.usize(..keys.events.len())];
                let kind = random_text(&mut self.rng);
                format!(
                    "UPDATE events SET kind = '{kind}' WHERE region = {region} AND seq = {seq};"
                )
            }
            (1, 65..=79) => {
                let index = self.rng.usize(..keys.events.len());
                let (region, seq) = keys.events[index];
                let new_region = self.rng.i32(-3..4);
                keys.events[index] = (new_region, seq);
                format!(
                    "UPDATE events SET region = {new_region} WHERE region = {region} AND seq = {seq};"
                )
            }
            (1, _) => {
                let (region, seq) = keys.events.swap_remove(self.rng.usize(..keys.events.len()));
                format!("DELETE FROM events WHERE region = {region} AND seq = {seq};")
            }
            (_, pick) if pick < 40 || keys.tags.is_empty() => {
                let code = format!("t-{}-{}", self.fresh(), random_text(&mut self.rng));
                keys.tags.push(code.clone());
                let note = random_text(&mut self.rng);
                format!(
                    "INSERT INTO tags VALUES ('{code}', {}, '{note}');",
                    self.rng.i32(..)
                )
            }
            (_, 40..=69) => {
                let code = &keys.tags[self.rng.usize(..keys.tags.len())];
                format!("UPDATE tags SET hits = hits / 2 + 1, note = NULL WHERE code = '{code}';")
            }
            (_, 70..=84) => {
                let index = self.rng.usize(..keys.tags.len());
                let new = format!("k-{}", self.fresh());
                let old = std::mem::replace(&mut keys.tags[index], new.clone());
                format!("UPDATE tags SET code = '{new}' WHERE code = '{old}';")
            }
            (_, _) => {
                let code = keys.tags.swap_remove(self.rng.usize(..keys.tags.len()));
                format!("DELETE FROM tags WHERE code = '{code}';")
            }
        }
    }

    /// A transaction of 1..40 statements: committed, rolled back, or committed with a
    /// rolled-back savepoint in the middle.
    fn transaction(&mut self, script: &mut String) {
        let mut keys = self.committed.clone();
        let size = self.rng.usize(1..40);
        let kind = self.rng.u8(0..10);
        script.push_str("BEGIN;\n");
        for index in 0..size {
            if kind >= 8 && index == size / 2 {
                let saved = keys.clone();
                script.push_str("SAVEPOINT s;\n");
                for _ in 0..self.rng.usize(1..10) {
                    let statement = self.statement(&mut keys);
                    script.push_str(&statement);
                    script.push('\n');
                }
                script.push_str("ROLLBACK TO SAVEPOINT s;\n");
                keys = saved;
            }
            let statement = self.statement(&mut keys);
            script.push_str(&statement);
            script.push('\n');
        }
        if kind == 0 {
            script.push_str("ROLLBACK;\n");
        } else {
            script.push_str("COMMIT;\n");
            self.committed = keys;
        }
    }
}

fn seed() -> u64 {
    std::env::var("DBMAZZ_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

/// The streamed transactions: `rows` inserts with a rolled-back subtransaction and updates of
/// its own rows, and a streamed transaction that is rolled back entirely.
fn streamed_transactions(rows: u32) -> String {
    format!(
        "BEGIN;
         INSERT INTO events SELECT 99, g, 'bulk', CASE WHEN g % 5000 = 0 THEN jsonb_build_object('g', g) END
           FROM generate_series(1, {rows}) g;
         SAVEPOINT a;
         DELETE FROM events WHERE region = 99 AND seq % 10 = 0;
         ROLLBACK TO SAVEPOINT a;
         UPDATE events SET kind = 'bulk-updated' WHERE region = 99 AND seq % 1000 = 0;
         UPDATE events SET seq = seq + 10000000 WHERE region = 99 AND seq % 1000 = 1;
         DELETE FROM events WHERE region = 99 AND seq % 1000 = 2;
         COMMIT;
         BEGIN;
         INSERT INTO events SELECT 98, g, 'never' FROM generate_series(1, 30000) g;
         DELETE FROM accounts;
         ROLLBACK;\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_workload_with_a_streamed_transaction_ends_identical() {
    for major in PG_VERSIONS {
        let seed = seed();
        println!("PG{major}: seed {seed} (DBMAZZ_TEST_SEED={seed} replays it)");
        let started = std::time::Instant::now();
        // Small logical_decoding_work_mem: the big transactions are streamed in chunks.
        let pg = start_pg(
            major,
            LocalPgOptions::default().setting("logical_decoding_work_mem", "64kB"),
        );
        pg.create_database("shop").unwrap();
        pg.psql("shop", SCHEMA).unwrap();
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let replication = replicate_in_process(
            &pg,
            &emulator,
            "shop",
            &["public.accounts", "public.events", "public.tags"],
            sink_options(DeleteMode::Hard),
            |_| {},
        )
        .await;
        wait_for_streaming(&pg).await;
        let mut workload = Workload {
            rng: fastrand::Rng::with_seed(seed),
            next: 0,
            committed: Keys::default(),
            ops: 0,
        };
        // The 200k-row transaction on the newest server; 50k on the other keeps the suite short
        // and still streams.
        let bulk_rows = if major >= 18 { 200_000 } else { 50_000 };
        let chunks = 12;
        for chunk in 0..chunks {
            let mut script = String::new();
            for _ in 0..workload.rng.usize(10..40) {
                workload.transaction(&mut script);
            }
            if chunk == chunks / 2 {
                script.push_str(&streamed_transactions(bulk_rows));
            }
            pg.psql("shop", &script)
                .unwrap_or_else(|error| panic!("PG{major} seed {seed}: {error}"));
            // Vary how transactions fall into batches.
            tokio::time::sleep(Duration::from_millis(workload.rng.u64(0..300))).await;
        }
        println!(
            "PG{major}: {} random statements written in {:.1}s",
            workload.ops,
            started.elapsed().as_secs_f64()
        );
        for (pg_sql, sr_sql) in CHECKS {
            wait_identical_in(
                &pg,
                &emulator,
                "shop",
                pg_sql,
                sr_sql,
                Duration::from_secs(120),
            )
            .await;
        }
        // The big committed transaction really was streamed (not just spilled by the
        // walsender). Only it is certain: PostgreSQL 18 truncates instead of streaming a
        // transaction whose abort is already in the WAL when the decoder reaches its memory
        // limit, which happens to the rolled-back one when the walsender lags behind psql.
        // The walsender reports slot statistics lazily; under load that takes a while.
        eventually(Duration::from_secs(60), "a streamed transaction", || async {
            let streamed = pg
                .psql(
                    "shop",
                    "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'test_slot'",
                )
                .ok()?;
            (streamed.parse::<u64>().ok()? >= 1).then_some(())
        })
        .await;
        replication.stop().await;
        println!(
            "PG{major}: identical after {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}
