//! The throwaway-cluster harness itself.

use crate::support::{start_pg, PG_VERSIONS};
use dbmazz::local_pg::{HbaAuth, LocalPgOptions};

#[test]
fn starts_logical_clusters_of_every_supported_version() {
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        assert_eq!(pg.major_version(), major);
        let wal_level = pg.psql("postgres", "SHOW wal_level").unwrap();
        assert_eq!(wal_level, "logical");
        let version = pg.psql("postgres", "SHOW server_version_num").unwrap();
        assert!(version.starts_with(&major.to_string()), "{version}");
        pg.create_database("t1").unwrap();
        assert_eq!(pg.psql("t1", "SELECT 1+1").unwrap(), "2");
    }
}

#[test]
fn password_auth_is_enforced_when_asked() {
    let pg = start_pg(
        15,
        LocalPgOptions {
            auth: HbaAuth::ScramSha256,
            password: "s3cret".into(),
            ..Default::default()
        },
    );
    assert_eq!(pg.psql("postgres", "SELECT 7").unwrap(), "7");
    let stopped_dir = pg.data_dir().to_path_buf();
    drop(pg);
    assert!(!stopped_dir.exists(), "drop removes the cluster");
}
