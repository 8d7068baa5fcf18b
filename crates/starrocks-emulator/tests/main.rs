//! Integration tests: one binary (link once).

mod faults;
mod http;
mod mysql;
mod settled;
mod spec7;
mod support;
