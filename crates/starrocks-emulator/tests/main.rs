//! Integration tests: one binary (link once).

mod http;
mod mysql;
mod spec7;
mod support;
