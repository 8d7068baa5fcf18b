//! `dbmazz demo` as a user runs it: the binary, its output and exit code.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dbmazz() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbmazz"));
    command.env_remove("DBMAZZ_LOG");
    command
}

#[test]
fn demo_verify_passes_with_identical_tables() {
    let output = dbmazz()
        .args(["demo", "--verify", "--duration", "20s", "--rate", "20"])
        .args(["--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for table in ["customers", "products", "orders", "order_items"] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(table))
            .unwrap_or_else(|| panic!("no line for {table}:\n{stdout}"));
        assert!(line.ends_with("PASS"), "{line}\n{stdout}");
    }
    assert!(stdout.contains("verify: every table identical"), "{stdout}");
    // The traffic ran and reported its progress.
    assert!(stdout.contains(" ops/s | last: "), "{stdout}");
}

#[test]
fn ctrl_c_stops_the_demo_cleanly_and_removes_its_files() {
    let child = dbmazz()
        .args(["demo", "--http-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let state_dir = std::env::temp_dir().join(format!("dbmazz-demo-{pid}"));
    let started = Instant::now();
    while !state_dir.exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(state_dir.exists(), "the demo never started");
    // Let it stream a little, then Ctrl-C.
    std::thread::sleep(Duration::from_secs(5));
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("demo stopped:"), "{stdout}");
    assert!(!state_dir.exists(), "{} left behind", state_dir.display());
}

/// `--pg-url` and `--starrocks` point the demo at servers that already run (here a throwaway
/// cluster and an emulator started by the test, standing in for the user's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_against_existing_servers_verifies_and_reset_allows_a_rerun() {
    use starrocks_emulator::{Emulator, EmulatorConfig};
    let pg = crate::support::start_pg(15, dbmazz::local_pg::LocalPgOptions::default());
    pg.create_database("shop_demo").unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let fe = format!("http://{}", emulator.fe_http_addr());
    let mysql = emulator.mysql_addr().unwrap().to_string();
    let url = pg.url("shop_demo");
    let run = |extra: &'static [&'static str]| {
        let (url, fe, mysql) = (url.clone(), fe.clone(), mysql.clone());
        std::thread::spawn(move || {
            dbmazz()
                .args([
                    "demo",
                    "--verify",
                    "--duration",
                    "3s",
                    "--http-listen",
                    "127.0.0.1:0",
                ])
                .args([
                    "--pg-url",
                    &url,
                    "--starrocks",
                    &fe,
                    "--starrocks-mysql",
                    &mysql,
                ])
                .args(extra)
                .output()
                .unwrap()
        })
        .join()
        .unwrap()
    };
    let first = run(&[]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("(--pg-url)"), "{stdout}");
    assert!(stdout.contains("(--starrocks)"), "{stdout}");
    assert!(stdout.contains("verify: every table identical"), "{stdout}");

    // The tables exist now: a second run says how to start over, and --reset does.
    let second = run(&[]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(stderr.contains("--reset"), "{stderr}");
    let third = run(&["--reset"]);
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
}
