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
