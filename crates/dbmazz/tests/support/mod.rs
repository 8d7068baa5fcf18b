//! Shared helpers for the integration tests.

use dbmazz::local_pg::{LocalPg, LocalPgOptions, PgBinaries};

/// The major versions every integration test runs against.
pub const PG_VERSIONS: [u32; 2] = [15, 18];

/// Starts a throwaway cluster of `major`, panicking with the reason when it cannot
/// (missing binaries are a setup error, not a skipped test).
pub fn start_pg(major: u32, options: LocalPgOptions) -> LocalPg {
    let binaries = PgBinaries::find(major).unwrap_or_else(|error| panic!("{error}"));
    LocalPg::start(&binaries, options).unwrap_or_else(|error| panic!("{error}"))
}
