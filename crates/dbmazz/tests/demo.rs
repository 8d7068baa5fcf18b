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
