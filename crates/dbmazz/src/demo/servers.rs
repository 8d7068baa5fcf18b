//! The demo's servers: a throwaway PostgreSQL cluster and an in-process StarRocks emulator, or
//! the existing servers the user points at.

use std::path::{Path, PathBuf};

use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

use super::DATABASE;
use crate::local_pg::{LocalPg, LocalPgOptions, PgBinaries};
use crate::source::{PgConnectConfig, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "no PostgreSQL server binaries found ({0}). The demo starts its own throwaway cluster: \
         install them (Debian/Ubuntu: `sudo apt-get install -y postgresql`; macOS: `brew install \
         postgresql`) or point the demo at a running server with --pg-url \
         postgres://user:pass@host:5432/db (it needs wal_level=logical)"
    )]
    NoPostgres(String),
    #[error("starting the throwaway PostgreSQL cluster: {0}")]
    LocalPg(String),
    #[error("starting the in-process StarRocks emulator: {0}")]
    Emulator(String),
}

/// Where the demo's PostgreSQL is.
pub struct PostgresTarget {
    pub url: String,
    local: Option<LocalPg>,
}

impl PostgresTarget {
    /// `url = None`: initdb a cluster in a temporary directory (removed on stop).
    pub async fn start(url: Option<&str>) -> Result<Self, ServerError> {
        if let Some(url) = url {
            return Ok(PostgresTarget {
                url: url.to_string(),
                local: None,
            });
        }
        let binaries = PgBinaries::find_newest()
            .map_err(|error| ServerError::NoPostgres(error.to_string()))?;
        let local = tokio::task::spawn_blocking(move || {
            // The defaults are for tests (small decoding memory); a demo wants PostgreSQL's.
            let options = LocalPgOptions::default().setting("logical_decoding_work_mem", "'64MB'");
            let cluster = LocalPg::start(&binaries, options).map_err(|error| error.to_string())?;
            cluster
                .create_database(DATABASE)
                .map_err(|error| error.to_string())?;
            Ok::<_, String>(cluster)
        })
        .await
        .map_err(|error| ServerError::LocalPg(error.to_string()))?
        .map_err(ServerError::LocalPg)?;
        Ok(PostgresTarget {
            url: local.url(DATABASE),
            local: Some(local),
        })
    }

    pub fn connect_config(&self) -> Result<PgConnectConfig, SourceError> {
        PgConnectConfig::from_url(&self.url)
    }

    pub fn database(&self) -> String {
        self.connect_config()
            .map(|config| config.dbname)
            .unwrap_or_default()
    }

    pub fn describe(&self) -> String {
        match &self.local {
            Some(local) => format!(
                "throwaway PostgreSQL {} on 127.0.0.1:{} (psql -h 127.0.0.1 -p {} -U {} {DATABASE})",
                local.major_version(),
                local.port(),
                local.port(),
                local.superuser()
            ),
            None => format!("database {} (--pg-url)", self.database()),
        }
    }

    /// Stops and deletes a throwaway cluster; leaves an existing server alone.
    pub fn stop(self) {
        drop(self.local);
    }
}

/// An existing StarRocks (`--starrocks`).
#[derive(Debug, Clone)]
pub struct StarRocksTarget {
    pub fe_http: String,
    pub mysql: String,
    pub user: String,
    pub password: String,
}

impl StarRocksTarget {
    /// From `--starrocks HOST[:HTTP_PORT]` or an `http://host:port` URL: the FE's HTTP address;
    /// the MySQL port is 9030 on the same host unless `mysql` is given.
    pub fn from_flag(fe: &str, mysql: Option<&str>, user: &str, password: &str) -> Self {
        let fe_http = if fe.starts_with("http://") || fe.starts_with("https://") {
            fe.trim_end_matches('/').to_string()
        } else if fe.contains(':') {
            format!("http://{fe}")
        } else {
            format!("http://{fe}:8030")
        };
        let host = fe_http
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([':', '/']).next())
            .unwrap_or("127.0.0.1")
            .to_string();
        StarRocksTarget {
            fe_http,
            mysql: mysql.map_or_else(|| format!("{host}:9030"), str::to_string),
            user: user.to_string(),
            password: password.to_string(),
        }
    }
}

/// The StarRocks the demo uses, emulated in-process unless the user named one.
pub struct StarRocksServer {
    pub fe_http: String,
    pub mysql: String,
    pub user: String,
    pub password: String,
    emulator: Option<EmulatorHandle>,
}

impl StarRocksServer {
    pub async fn start_or_use(target: Option<StarRocksTarget>) -> Result<Self, ServerError> {
        if let Some(target) = target {
            return Ok(StarRocksServer {
                fe_http: target.fe_http,
                mysql: target.mysql,
                user: target.user,
                password: target.password,
                emulator: None,
            });
        }
        let emulator = Emulator::start(EmulatorConfig::ephemeral())
            .await
            .map_err(|error| ServerError::Emulator(error.to_string()))?;
        let mysql = emulator
            .mysql_addr()
            .ok_or_else(|| ServerError::Emulator("no MySQL listener".into()))?;
        Ok(StarRocksServer {
            fe_http: format!("http://{}", emulator.fe_http_addr()),
            mysql: mysql.to_string(),
            user: "root".into(),
            password: String::new(),
            emulator: Some(emulator),
        })
    }

    pub fn describe(&self) -> String {
        let (host, port) = self.mysql.rsplit_once(':').unwrap_or((&self.mysql, "9030"));
        match &self.emulator {
            Some(_) => format!(
                "in-process starrocks-emulator, FE {} (mysql -h {host} -P {port} -u root {DATABASE})",
                self.fe_http
            ),
            None => format!("FE {} / MySQL {} (--starrocks)", self.fe_http, self.mysql),
        }
    }

    pub async fn stop(self) {
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// The demo's state directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starrocks_flag_forms() {
        let target = StarRocksTarget::from_flag("sr.example", None, "root", "");
        assert_eq!(target.fe_http, "http://sr.example:8030");
        assert_eq!(target.mysql, "sr.example:9030");
        let target =
            StarRocksTarget::from_flag("http://10.0.0.5:8030/", Some("10.0.0.6:9030"), "u", "p");
        assert_eq!(target.fe_http, "http://10.0.0.5:8030");
        assert_eq!(target.mysql, "10.0.0.6:9030");
        let target = StarRocksTarget::from_flag("10.0.0.5:18030", None, "root", "");
        assert_eq!(target.fe_http, "http://10.0.0.5:18030");
        assert_eq!(target.mysql, "10.0.0.5:9030");
    }
}
