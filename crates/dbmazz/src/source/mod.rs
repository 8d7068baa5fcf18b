//! The PostgreSQL side of dbmazz: connecting, the logical replication protocol, SQL connections.
//!
//! - [`PgConnectConfig`]: a libpq-style URL, parsed and validated without I/O.
//! - [`ReplicationClient`] → [`ReplicationStream`]: our own client on `postgres-protocol` +
//!   tokio for the `replication=database` connection (startup, auth, TLS, replication
//!   commands, CopyBoth streaming, Standby Status Updates). See `replication.rs` for the flow.
//! - [`CopySession`]: a plain SQL connection on the same client for the snapshot's COPY, rows
//!   handed over as slices of the socket buffer.
//! - [`connect_sql`]: a `tokio-postgres` client for metadata queries.
//! - [`SourceError`]: every failure, with the context to act on it.

mod config;
mod connection;
mod copy_out;
mod domains;
mod error;
mod low_water;
mod replication;
mod setup;
mod sql;
mod tls;
mod tls_libpq;

pub use config::{
    PgConnectConfig, SslMode, DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT,
};
pub use connection::AuthMethod;
pub use copy_out::{CopyProgress, CopySession};
pub use domains::read_domains;
pub use error::{ServerErrorFields, SourceError};
pub use replication::{
    encode_standby_status_update, CreatedSlot, PgOutputProtocol, ReplicationClient,
    ReplicationReader, ReplicationStream, ReplicationWriter, SlotInfo, SnapshotAction,
    SystemIdentity,
};
pub use setup::{
    check_select_privilege, check_wal_level, ensure_slot, ensure_slot_with,
    full_identity_primary_keys, prepare_publication, publication_membership, published_columns,
    published_tables, quote_ident, quote_table, SetupError, SlotStart,
};
pub use sql::connect_sql;
