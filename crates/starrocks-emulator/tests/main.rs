//! Integration tests: one binary (link once).

mod faults;
mod http;
mod model;
mod modify;
mod mysql;
mod names;
mod rename;
mod select;
mod settled;
mod show;
mod spec7;
mod support;
mod twopc;
