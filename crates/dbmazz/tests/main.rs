//! Integration tests: one binary, each test with its own throwaway PostgreSQL database.

mod support;

mod local_pg;
mod replication_client;
