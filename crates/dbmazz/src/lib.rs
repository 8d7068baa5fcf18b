//! dbmazz: PostgreSQL logical replication → StarRocks, in one process.
//!
//! The modules follow the data flow:
//! `source` → `decode` → `schema` → `pipeline` → `sink` → `checkpoint`.

pub mod lsn;

pub use lsn::Lsn;
pub mod local_pg;
pub mod source;
