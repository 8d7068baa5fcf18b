//! Ordinary SQL connections (metadata queries) through `tokio-postgres`.
//!
//! The replication connection and the snapshot's COPY run on our own client (row throughput);
//! metadata queries have no reason to. This opens a `tokio-postgres` client from the same
//! [`PgConnectConfig`], with the same TLS policy (rustls, same verifiers) and the same session
//! settings, so every value reads as the stream renders it (UTC, ISO dates, round-trippable
//! floats, ISO 8601 intervals).

use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::config::{PgConnectConfig, SslMode};
use super::error::SourceError;
use super::tls;

/// The session settings every dbmazz connection runs with.
const SESSION_OPTIONS: &str =
    "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3 -c IntervalStyle=iso_8601";

/// Opens a SQL connection and spawns its connection task on the current tokio runtime (the
/// task ends when the returned client is dropped).
pub async fn connect_sql(config: &PgConnectConfig) -> Result<tokio_postgres::Client, SourceError> {
    let mut pg_config = tokio_postgres::Config::new();
    if config.is_unix_socket() {
        pg_config.host_path(&config.host);
    } else {
        pg_config.host(&config.host);
    }
    pg_config
        .port(config.port)
        .user(&config.user)
        .dbname(&config.dbname)
        .application_name(&config.application_name)
        .options(SESSION_OPTIONS);
    if let Some(password) = &config.password {
        pg_config.password(password);
    }
    if !config.connect_timeout.is_zero() {
        pg_config.connect_timeout(config.connect_timeout);
    }
    let plain = config.ssl_mode == SslMode::Disable || config.is_unix_socket();
    pg_config.ssl_mode(match config.ssl_mode {
        // Like libpq (and our replication connection): no TLS over a Unix socket.
        _ if plain => PgSslMode::Disable,
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        // Verification itself is done by our rustls verifier.
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });

    let attempt = async {
        let connected = if plain {
            spawn(pg_config.connect(NoTls).await)
        } else {
            let tls = MakeRustlsConnect::new(tls::client_config(config)?);
            spawn(pg_config.connect(tls).await)
        };
        connected.map_err(|error| connect_error(config, error))
    };
    // tokio-postgres bounds only the TCP connect: a server that accepts and never answers
    // would hold the startup (and `dbmazz check`) forever.
    if config.connect_timeout.is_zero() {
        return attempt.await;
    }
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .unwrap_or_else(|_elapsed| Err(SourceError::connect_timed_out(config)))
}

fn spawn<S, T>(
    connected: Result<
        (tokio_postgres::Client, tokio_postgres::Connection<S, T>),
        tokio_postgres::Error,
    >,
) -> Result<tokio_postgres::Client, tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    let (client, connection) = connected?;
    tokio::spawn(async move {
        // Errors surface on the client's next call; nothing else to do with them here.
        let _ = connection.await;
    });
    Ok(client)
}

/// Server errors keep their SQLSTATE (and become `Auth` for bad credentials); anything else at
/// connect time is a connection failure naming host and port.
fn connect_error(config: &PgConnectConfig, error: tokio_postgres::Error) -> SourceError {
    if let Some(db_error) = error.as_db_error() {
        let fields = super::error::ServerErrorFields {
            severity: db_error.severity().to_string(),
            code: db_error.code().code().to_string(),
            message: db_error.message().to_string(),
            detail: db_error.detail().map(str::to_string),
            hint: db_error.hint().map(str::to_string),
        };
        return SourceError::from_server(fields, &config.user);
    }
    // tokio-postgres has no public error kinds; its messages (the kind, then the cause) are
    // stable.
    let text = crate::one_line(&error);
    if text.contains("password missing") {
        return SourceError::Auth {
            user: config.user.clone(),
            message: "the server asks for a password and source.url gives none".into(),
        };
    }
    if text.contains("server does not support TLS") {
        return super::tls::server_without_tls(config);
    }
    if text.contains("TLS handshake") {
        return super::tls::handshake_error(config, error);
    }
    SourceError::Connect {
        host: config.host.clone(),
        port: config.port,
        source: std::io::Error::other(error),
    }
}
