//! `starrocks-emulator`: run the emulator standalone.
//!
//! ```text
//! starrocks-emulator --fe-http 8030 --be-http 8040 --mysql 9030 --user root --password ''
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use starrocks_emulator::{Emulator, EmulatorConfig, FaultRule, LabelRetention};

/// A StarRocks 3.3–3.5 stand-in: FE HTTP, BE HTTP, MySQL protocol, in-memory Primary Key tables.
#[derive(Debug, Parser)]
#[command(name = "starrocks-emulator", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// FE HTTP port (Stream Load entry, get_load_state, /_emulator control API). 0 = any.
    #[arg(long, default_value_t = 8030)]
    fe_http: u16,
    /// BE HTTP port (Stream Load target of the FE's 307, error logs). 0 = any.
    #[arg(long, default_value_t = 8040)]
    be_http: u16,
    /// MySQL protocol port. 0 = any.
    #[arg(long, default_value_t = 9030)]
    mysql: u16,
    /// User for Basic auth and MySQL.
    #[arg(long, default_value = "root")]
    user: String,
    /// Password (may be empty).
    #[arg(long, default_value = "")]
    password: String,
    /// Host written into the FE's 307 `Location` and the BE's `ErrorURL` (default: --host).
    #[arg(long)]
    advertised_host: Option<String>,
    /// `label_keep_max_second`.
    #[arg(long, default_value_t = 259_200)]
    label_keep_max_second: u64,
    /// `label_keep_max_num` (finished txns kept per database at each cleaner run).
    #[arg(long, default_value_t = 1000)]
    label_keep_max_num: usize,
    /// `label_clean_interval_second`.
    #[arg(long, default_value_t = 14_400)]
    label_clean_interval_second: u64,
    /// How long an ALTER TABLE job takes, in milliseconds.
    #[arg(long, default_value_t = 300)]
    alter_duration_ms: u64,
    /// Refuse (and count) Stream Loads whose client sends the body before `100 Continue`.
    #[arg(long)]
    strict_expect_continue: bool,
    /// Queue a fault at start, as the control API's JSON (repeatable), e.g.
    /// '{"kind":"fail","count":2,"message":"boom"}'.
    #[arg(long = "fault", value_name = "JSON")]
    faults: Vec<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut faults = Vec::new();
    for text in &args.faults {
        match serde_json::from_str::<FaultRule>(text) {
            Ok(rule) => faults.push(rule),
            Err(e) => {
                eprintln!("starrocks-emulator: invalid --fault {text}: {e}");
                std::process::exit(2);
            }
        }
    }
    let config = EmulatorConfig {
        fe_http_addr: SocketAddr::new(args.host, args.fe_http),
        be_http_addr: SocketAddr::new(args.host, args.be_http),
        mysql_addr: Some(SocketAddr::new(args.host, args.mysql)),
        advertised_host: args.advertised_host,
        user: args.user,
        password: args.password,
        label_retention: LabelRetention {
            keep_max: Duration::from_secs(args.label_keep_max_second),
            keep_max_num: args.label_keep_max_num,
            clean_interval: Duration::from_secs(args.label_clean_interval_second.max(1)),
        },
        alter_duration: Duration::from_millis(args.alter_duration_ms),
        strict_expect_continue: args.strict_expect_continue,
        faults,
    };
    let handle = match Emulator::start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "starrocks-emulator: {e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            std::process::exit(1);
        }
    };
    println!("starrocks-emulator listening:");
    println!("  fe_http {}", handle.fe_http_addr());
    println!("  be_http {}", handle.be_http_addr());
    if let Some(addr) = handle.mysql_addr() {
        println!("  mysql   {addr}");
    }
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
}
