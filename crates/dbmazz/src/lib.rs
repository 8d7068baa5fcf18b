//! dbmazz: PostgreSQL logical replication → StarRocks, in one process.
//!
//! The modules follow the data flow:
//! `source` → `decode` → `schema` → `pipeline` → `sink` → `checkpoint`.

pub mod decode;
pub mod lsn;

pub use lsn::Lsn;
pub mod checkpoint;
pub mod local_pg;
pub mod pipeline;
pub mod schema;
pub mod sink;
