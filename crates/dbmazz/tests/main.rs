//! Integration tests: one binary, each test with its own throwaway PostgreSQL database.

mod support;

mod check;
mod checkpoint;
mod cleanup;
mod dashboards;
mod demo;
mod local_pg;
mod memory;
mod monitor;
mod ops;
mod pacing;
mod partitions;
mod replication_client;
mod resnapshot;
mod resnapshot_ddl;
mod snapshot;
mod starrocks_bad_input;
mod starrocks_ddl;
mod starrocks_e2e;
mod starrocks_kill;
mod starrocks_random;
mod starrocks_renames;
mod starrocks_schema;
mod starrocks_soft_delete;
mod starrocks_toast;
mod starrocks_types;
mod stream;
mod stream_load;
mod transactional;
