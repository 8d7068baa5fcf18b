//! dbmazz: PostgreSQL logical replication → StarRocks, in one process.
//!
//! The modules follow the data flow:
//! `source` → `decode` → `schema` → `pipeline` → `sink` → `checkpoint`.

pub mod check;
pub mod checkpoint;
pub mod cleanup;
pub mod config;
pub mod decode;
pub mod demo;
pub mod local_pg;
pub mod lsn;
pub mod monitor;
pub mod ops;
pub mod pipeline;
pub mod replicator;
pub mod schema;
pub mod sink;
pub mod snapshot;
pub mod source;

pub use lsn::Lsn;

/// An error and its causes on one line, each cause once (a cause whose text the line already
/// holds is not repeated).
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let current_text = current.to_string();
        if !text.contains(&current_text) {
            text.push_str(": ");
            text.push_str(&current_text);
        }
        cause = current.source();
    }
    text
}
