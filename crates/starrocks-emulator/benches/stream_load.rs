//! Benchmark: a JSON Stream Load of 1,000,000 rows × 10 columns into an empty table.
//!
//! Prints rows/s and MiB/s for the emulator alone (in-process, no HTTP) and through HTTP
//! (FE 307 → BE over loopback). Run with `cargo bench -p starrocks-emulator`.
//! `EMU_BENCH_ROWS` overrides the row count.

use std::time::Instant;

use starrocks_emulator::{Emulator, EmulatorConfig};

const TABLE: &str = "CREATE TABLE t (id BIGINT NOT NULL, c1 INT NULL, c2 VARCHAR(64) NULL, c3 DOUBLE NULL, \
    c4 DECIMAL(18,4) NULL, c5 DATETIME NULL, c6 DATE NULL, c7 BOOLEAN NULL, c8 VARCHAR(255) NULL, c9 BIGINT NULL) \
    PRIMARY KEY (id) DISTRIBUTED BY HASH(id)";

fn body(rows: usize) -> String {
    let mut out = String::with_capacity(rows * 200);
    out.push('[');
    for i in 0..rows {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":{i},"c1":{},"c2":"customer-{i}","c3":{}.25,"c4":"{}.1250","c5":"2024-01-{:02} 10:{:02}:00","c6":"2024-02-{:02}","c7":{},"c8":"some longer text value number {i}","c9":{}}}"#,
            i % 100_000,
            i % 1000,
            i % 99_999,
            i % 28 + 1,
            i % 60,
            i % 28 + 1,
            i % 2 == 0,
            i * 7
        ));
    }
    out.push(']');
    out
}

/// CPU time of the current thread (Linux), in seconds.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn report(what: &str, rows: usize, bytes: usize, seconds: f64) {
    println!(
        "{what}: {rows} rows, {:.1} MiB in {seconds:.3} s = {:.0} rows/s, {:.1} MiB/s",
        bytes as f64 / 1_048_576.0,
        rows as f64 / seconds,
        bytes as f64 / 1_048_576.0 / seconds
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep that quick.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let rows: usize = std::env::var("EMU_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1000 } else { 1_000_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let emu = Emulator::start(EmulatorConfig::ephemeral())
            .await
            .expect("emulator");
        emu.execute_sql(None, "CREATE DATABASE d")
            .await
            .expect("db");
        emu.execute_sql(Some("d"), TABLE).await.expect("table");
        emu.execute_sql(Some("d"), &TABLE.replace("TABLE t", "TABLE t2"))
            .await
            .expect("table");
        let text = body(rows);
        let headers = [
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("label", "bench1"),
        ];

        let started = Instant::now();
        let cpu_before = thread_cpu_seconds();
        let result = emu.stream_load("d", "t", &headers, text.as_bytes()).await;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_before.and_then(|b| thread_cpu_seconds().map(|a| a - b));
        assert_eq!(result.status.text(), "Success", "{}", result.message);
        assert_eq!(result.loaded_rows, rows as u64);
        report("in-process stream load (wall)", rows, text.len(), seconds);
        if let Some(cpu) = cpu {
            report(
                "in-process stream load (one core, CPU time)",
                rows,
                text.len(),
                cpu,
            );
        }
        println!(
            "  scan+convert {} ms, apply {} ms",
            result.read_data_time_ms, result.write_data_time_ms
        );

        // Through HTTP: 307 from the FE, then the BE (one connection each, loopback).
        let started = Instant::now();
        let url = format!("http://{}/api/d/t2/_stream_load", emu.fe_http_addr());
        let status = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--location-trusted",
                "-u",
                "root:",
            ])
            .args([
                "-H",
                "Expect:100-continue",
                "-H",
                "format:json",
                "-H",
                "strip_outer_array:true",
            ])
            .args(["-H", "ignore_json_size:true"])
            .args(["--data-binary", "@-", "-XPUT", &url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(stdin) = child.stdin.as_mut() {
                    stdin.write_all(text.as_bytes())?;
                }
                child.wait_with_output()
            });
        match status {
            Ok(out) if out.status.success() => {
                let seconds = started.elapsed().as_secs_f64();
                let loaded = emu
                    .table_stats("d", "t2")
                    .map(|s| s.rows_loaded)
                    .unwrap_or(0);
                if loaded == rows as u64 {
                    report("HTTP stream load via curl", rows, text.len(), seconds);
                } else {
                    println!("HTTP stream load via curl: rows loaded {loaded}, expected {rows}");
                }
            }
            _ => println!("HTTP stream load via curl: skipped (curl not available)"),
        }
        emu.shutdown().await;
    });
}
