//! Integration tests: one binary (link once).

mod spec7;
mod support;
