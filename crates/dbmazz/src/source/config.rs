//! Where and how to connect: a PostgreSQL connection URL parsed the way libpq reads it.
//!
//! `postgres://user:password@host:port/dbname?sslmode=require&application_name=x`. User name,
//! password, host and database name are percent-decoded (so a password may hold `@`, `/`, `:`).
//! A host starting with `/` (written `%2Fvar%2Frun%2Fpostgresql` or `?host=/var/run/...`) is a
//! Unix socket directory. Unknown query parameters are an error, not silently ignored: a typo in
//! `sslmode` must never quietly turn TLS off.
//!
//! The password never appears in `Debug` or `Display` output.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::SourceError;

/// The port PostgreSQL listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5432;
/// `application_name` reported to the server (visible in `pg_stat_activity`/`pg_stat_replication`).
pub const DEFAULT_APPLICATION_NAME: &str = "dbmazz";
/// How long connecting (TCP, TLS and authentication together) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS policy, with libpq's `sslmode` meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it (certificate not verified), plain TCP otherwise.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not verified (protects against eavesdropping only).
    Require,
    /// TLS or fail; the certificate chain must lead to a trusted root; the host name is not checked.
    VerifyCa,
    /// TLS or fail; chain and host name are verified.
    VerifyFull,
}

impl SslMode {
    /// The `sslmode` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(text: &str) -> Result<SslMode, SourceError> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => Err(invalid(
                "sslmode=allow is not supported; use prefer (TLS when offered) or disable",
            )),
            other => Err(invalid(format!(
                "unknown sslmode {other:?}; expected disable, prefer, require, verify-ca or verify-full"
            ))),
        }
    }

    /// Whether TLS is mandatory.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// Everything needed to open a connection to PostgreSQL.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConnectConfig {
    /// Host name, IP address, or a Unix socket directory (starts with `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub ssl_mode: SslMode,
    /// PEM file of trusted root certificates for `verify-ca`/`verify-full`. Without it,
    /// `~/.postgresql/root.crt` is used when present, else the bundled Web PKI roots.
    pub ssl_root_cert: Option<PathBuf>,
    pub application_name: String,
    /// Limit for TCP connect + TLS + authentication; zero means no limit.
    pub connect_timeout: Duration,
}

impl PgConnectConfig {
    /// Parses a `postgres://` or `postgresql://` URL.
    pub fn from_url(url: &str) -> Result<Self, SourceError> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or_else(|| invalid("the URL must start with postgres:// or postgresql://"))?;
        if rest.contains('#') {
            return Err(invalid(
                "a URL fragment ('#') is not allowed; percent-encode '#' in a password as %23",
            ));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.split_once('/') {
            Some((authority, path)) => (authority, Some(path)),
            None => (before_query, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };

        let mut user = None;
        let mut password = None;
        if let Some(userinfo) = userinfo {
            let (raw_user, raw_password) = match userinfo.split_once(':') {
                Some((raw_user, raw_password)) => (raw_user, Some(raw_password)),
                None => (userinfo, None),
            };
            user = Some(percent_decode(raw_user, "user name")?).filter(|user| !user.is_empty());
            password = raw_password
                .map(|raw| percent_decode(raw, "password"))
                .transpose()?;
        }

        let (mut host, mut port) = split_host_port(hostport)?;
        let mut dbname = match path {
            Some(path) if !path.is_empty() => Some(percent_decode(path, "database name")?),
            _ => None,
        };

        let mut ssl_mode = SslMode::default();
        let mut ssl_root_cert = None;
        let mut application_name = DEFAULT_APPLICATION_NAME.to_string();
        let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (raw_key, raw_value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("query parameter {pair:?} has no '=value'")))?;
            let key = percent_decode(raw_key, "query parameter name")?;
            let value = percent_decode(raw_value, &format!("query parameter {key}"))?;
            match key.as_str() {
                "sslmode" => ssl_mode = SslMode::parse(&value)?,
                "sslrootcert" => ssl_root_cert = Some(PathBuf::from(value)),
                "application_name" => application_name = value,
                "connect_timeout" => connect_timeout = parse_timeout(&value)?,
                "host" => host = Some(value),
                "port" => port = Some(parse_port(&value)?),
                "user" => user = Some(value),
                "password" => password = Some(value),
                "dbname" => dbname = Some(value),
                other => {
                    return Err(invalid(format!(
                        "unknown query parameter {other:?}; supported: sslmode, sslrootcert, \
                         application_name, connect_timeout, host, port, user, password, dbname"
                    )))
                }
            }
        }

        let user = user.filter(|user| !user.is_empty()).ok_or_else(|| {
            invalid("no user name: write it before the host, as postgres://user:password@host/db")
        })?;
        let host = host
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        if host.contains(',') {
            return Err(invalid("several hosts are not supported; give exactly one"));
        }
        let dbname = dbname
            .filter(|dbname| !dbname.is_empty())
            .unwrap_or_else(|| user.clone());
        Ok(PgConnectConfig {
            host,
            port: port.unwrap_or(DEFAULT_PORT),
            user,
            password,
            dbname,
            ssl_mode,
            ssl_root_cert,
            application_name,
            connect_timeout,
        })
    }

    /// Whether `host` names a Unix socket directory rather than a network host.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }
}

impl fmt::Debug for PgConnectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnectConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `postgres://user@host:port/dbname?sslmode=…`, without the password.
impl fmt::Display for PgConnectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{}:{}/{}?sslmode={}",
            self.user,
            host,
            self.port,
            self.dbname,
            self.ssl_mode.as_str()
        )
    }
}

fn invalid(reason: impl Into<String>) -> SourceError {
    SourceError::InvalidUrl {
        reason: reason.into(),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, `:port` or empty.
fn split_host_port(hostport: &str) -> Result<(Option<String>, Option<u16>), SourceError> {
    if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 host opened with '[' has no closing ']'"))?;
        let port = match after {
            "" => None,
            _ => {
                let port = after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("expected ':port' after the bracketed IPv6 host"))?;
                Some(parse_port(port)?)
            }
        };
        return Ok((Some(host.to_string()), port));
    }
    let (raw_host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (host, Some(parse_port(port)?)),
        None => (hostport, None),
    };
    let host = percent_decode(raw_host, "host")?;
    Ok((Some(host).filter(|host| !host.is_empty()), port))
}

fn parse_port(text: &str) -> Result<u16, SourceError> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        // The text is not echoed: in a URL missing its '@' it may be a password.
        _ => Err(invalid("the port is not a number between 1 and 65535")),
    }
}

fn parse_timeout(text: &str) -> Result<Duration, SourceError> {
    let seconds: u64 = text.parse().map_err(|_| {
        invalid(format!(
            "connect_timeout {text:?} is not a whole number of seconds"
        ))
    })?;
    // libpq treats 1 as 2 seconds: a one-second limit fails on any hiccup.
    Ok(Duration::from_secs(if seconds == 1 { 2 } else { seconds }))
}

/// Decodes `%XX` escapes (no `+` → space: that is a form encoding, not a URL one).
fn percent_decode(text: &str, what: &str) -> Result<String, SourceError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "bad percent-encoding in the {what}: '%' must be followed by two hex digits"
                    ))
                })?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| {
        invalid(format!(
            "the {what} is not valid UTF-8 after percent-decoding"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> PgConnectConfig {
        PgConnectConfig::from_url(url).unwrap_or_else(|error| panic!("{url}: {error}"))
    }

    fn reason(url: &str) -> String {
        match PgConnectConfig::from_url(url) {
            Err(SourceError::InvalidUrl { reason }) => reason,
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_full_url() {
        let config = parse(
            "postgresql://repl:p%40ss%3Aw%2Frd@db.example.com:6543/shop?sslmode=verify-full\
             &sslrootcert=/etc/ca.pem&application_name=cdc%201&connect_timeout=5",
        );
        assert_eq!(config.host, "db.example.com");
        assert_eq!(config.port, 6543);
        assert_eq!(config.user, "repl");
        assert_eq!(config.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(config.dbname, "shop");
        assert_eq!(config.ssl_mode, SslMode::VerifyFull);
        assert_eq!(config.ssl_root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.application_name, "cdc 1");
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn applies_defaults() {
        let config = parse("postgres://alice@localhost");
        assert_eq!(config.port, DEFAULT_PORT);
        assert_eq!(config.password, None);
        assert_eq!(config.dbname, "alice");
        assert_eq!(config.ssl_mode, SslMode::Prefer);
        assert_eq!(config.application_name, DEFAULT_APPLICATION_NAME);
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(parse("postgres://alice@/db").host, "localhost");
    }

    #[test]
    fn parses_every_sslmode() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(
                parse(&format!("postgres://u@h/d?sslmode={text}")).ssl_mode,
                mode
            );
            assert_eq!(mode.as_str(), text);
        }
        assert!(reason("postgres://u@h/d?sslmode=required").contains("unknown sslmode"));
        assert!(reason("postgres://u@h/d?sslmode=allow").contains("not supported"));
    }

    #[test]
    fn parses_ipv6_and_unix_sockets() {
        let config = parse("postgres://u@[::1]:5433/d");
        assert_eq!((config.host.as_str(), config.port), ("::1", 5433));
        let config = parse("postgres://u@%2Fvar%2Frun%2Fpostgresql/d");
        assert!(config.is_unix_socket());
        assert_eq!(config.host, "/var/run/postgresql");
        let config = parse("postgres://u@/d?host=/tmp&port=5999");
        assert_eq!((config.host.as_str(), config.port), ("/tmp", 5999));
    }

    #[test]
    fn rejects_bad_urls_naming_the_problem() {
        assert!(reason("mysql://u@h/d").contains("postgres://"));
        assert!(reason("postgres://h:5432/d").contains("no user name"));
        assert!(reason("postgres://u@h:99999/d").contains("port"));
        assert!(reason("postgres://u@h:abc/d").contains("port"));
        assert!(reason("postgres://u:bad%zz@h/d").contains("percent-encoding in the password"));
        assert!(reason("postgres://u@h/d?sslmod=require").contains("unknown query parameter"));
        assert!(reason("postgres://u@h/d?connect_timeout=soon").contains("connect_timeout"));
        assert!(reason("postgres://u@h1,h2/d").contains("several hosts"));
        assert!(reason("postgres://u@[::1/d").contains("']'"));
    }

    #[test]
    fn never_shows_the_password() {
        let config = parse("postgres://u:hunter2secret@h/d");
        let debug = format!("{config:?}");
        let display = config.to_string();
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert!(!display.contains("hunter2secret"), "{display}");
        assert_eq!(display, "postgres://u@h:5432/d?sslmode=prefer");
        // Nor in the error for a bad URL.
        let error = PgConnectConfig::from_url("postgres://u:hunter2secret@h:x/d").unwrap_err();
        assert!(!error.to_string().contains("hunter2secret"));
    }
}
