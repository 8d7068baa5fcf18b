//! The StarRocks emulator as its own process for `scripts/bench.sh`, on free ports of
//! 127.0.0.1, user `root` with an empty password. Same as the `starrocks-emulator` binary with
//! `--fe-http 0 --be-http 0 --mysql 0`, but built as an example of this crate so that the
//! benchmark's one `cargo build` shares its dependency features (building the emulator's own
//! binary separately recompiles much of the tree). Prints `fe_http ADDR` and `mysql ADDR`, then
//! serves until killed.

use starrocks_emulator::{Emulator, EmulatorConfig};

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench_emulator: runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let emulator = match Emulator::start(EmulatorConfig::ephemeral()).await {
            Ok(emulator) => emulator,
            Err(error) => {
                eprintln!("bench_emulator: {error}");
                return std::process::ExitCode::FAILURE;
            }
        };
        println!("fe_http {}", emulator.fe_http_addr());
        if let Some(mysql) = emulator.mysql_addr() {
            println!("mysql {mysql}");
        }
        std::future::pending::<()>().await;
        std::process::ExitCode::SUCCESS
    })
}
