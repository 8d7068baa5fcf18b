//! The one error type of the PostgreSQL side.
//!
//! Every variant carries the context an operator needs to act (host and port, user, slot, the
//! server's SQLSTATE/detail/hint) and keeps the underlying cause as `source`, never formatted
//! into the message. Callers decide what to do with [`SourceError::is_retryable`] and
//! [`SourceError::sqlstate`], not by matching strings.

use std::io;

/// Fields of a PostgreSQL `ErrorResponse` (see "Error and Notice Message Fields" in the
/// PostgreSQL protocol documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerErrorFields {
    /// `S`/`V`: ERROR, FATAL, PANIC (non-localized `V` preferred when present).
    pub severity: String,
    /// `C`: the SQLSTATE code, e.g. `55006`.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`: optional detail.
    pub detail: Option<String>,
    /// `H`: optional hint.
    pub hint: Option<String>,
}

impl ServerErrorFields {
    /// Parses the body of an `ErrorResponse`/`NoticeResponse`: `(field type byte, C string)*`
    /// ended by a zero byte. Tolerant: a truncated body yields the fields read so far.
    pub(crate) fn parse(body: &[u8]) -> ServerErrorFields {
        let mut fields = ServerErrorFields::default();
        let mut localized_severity = String::new();
        let mut rest = body;
        while let Some((&field_type, after_type)) = rest.split_first() {
            if field_type == 0 {
                break;
            }
            let (value, after_value) = match after_type.iter().position(|&byte| byte == 0) {
                Some(end) => (&after_type[..end], &after_type[end + 1..]),
                None => (after_type, &[][..]),
            };
            let value = String::from_utf8_lossy(value).into_owned();
            match field_type {
                b'S' => localized_severity = value,
                b'V' => fields.severity = value,
                b'C' => fields.code = value,
                b'M' => fields.message = value,
                b'D' => fields.detail = Some(value),
                b'H' => fields.hint = Some(value),
                _ => {}
            }
            rest = after_value;
        }
        if fields.severity.is_empty() {
            fields.severity = localized_severity;
        }
        fields
    }
}

/// Something went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The connection URL cannot be used; `reason` names the problem (never the password).
    #[error("invalid PostgreSQL URL: {reason}")]
    InvalidUrl { reason: String },

    /// The TCP (or Unix socket) connection could not be opened, or timed out.
    #[error("cannot connect to PostgreSQL at {host}:{port}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: io::Error,
    },

    /// TLS was required but could not be set up: the server refused it, the handshake failed
    /// or the certificate did not verify.
    #[error("TLS with PostgreSQL at {host}:{port} failed: {message}")]
    Tls {
        host: String,
        port: u16,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The server rejected our credentials (or pg_hba.conf has no entry for us).
    #[error(
        "authentication failed for user \"{user}\": {message} (check the password in the source \
         URL, and that pg_hba.conf allows this user, database and replication connections from \
         this host)"
    )]
    Auth { user: String, message: String },

    /// The user may not open a replication connection.
    #[error(
        "user \"{user}\" may not open a replication connection: grant it with \
         ALTER ROLE \"{user}\" WITH REPLICATION (or connect as a superuser)"
    )]
    NotReplicationRole { user: String },

    /// The server answered with an `ErrorResponse`.
    #[error("PostgreSQL error {code}: {message}{}{}", .detail.as_deref().map(|detail| format!(" (detail: {detail})")).unwrap_or_default(), .hint.as_deref().map(|hint| format!(" (hint: {hint})")).unwrap_or_default())]
    Server {
        code: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },

    /// The replication slot does not exist.
    #[error(
        "replication slot \"{slot}\" does not exist (dbmazz creates it on the first start; if it \
         was dropped, the stream position is lost and the tables must be snapshotted again)"
    )]
    SlotMissing { slot: String },

    /// Another process is streaming from the slot.
    #[error(
        "replication slot \"{slot}\" is in use by another connection{} (is another dbmazz running \
         for this slot? stop it, or wait for PostgreSQL to notice the old connection is gone)",
        in_use_by(*.pid, .client.as_deref())
    )]
    SlotInUse {
        slot: String,
        /// The server process streaming from the slot (a walsender, not the client's PID).
        pid: Option<i32>,
        /// Its `application_name` and address, when the server shows them.
        client: Option<String>,
    },

    /// PostgreSQL invalidated the slot (for example `max_slot_wal_keep_size` was exceeded):
    /// the WAL it needed is gone.
    #[error(
        "replication slot \"{slot}\" was invalidated by PostgreSQL: {reason} (the changes it \
         held are lost: drop the slot and snapshot the tables again)"
    )]
    SlotInvalidated { slot: String, reason: String },

    /// A published table whose schema or name holds a dot: dbmazz names tables
    /// `schema.table` (config, state file, API), so it could not tell it apart.
    #[error(
        "publication {publication:?} holds table {table}, whose name has a dot, which dbmazz \
         cannot replicate (it names tables schema.table): rename it (ALTER TABLE ... RENAME TO) \
         or leave it out of the publication"
    )]
    UnaddressableTable { publication: String, table: String },

    /// A slot name PostgreSQL would refuse.
    #[error(
        "invalid replication slot name {slot:?}: use 1 to 63 lowercase letters, digits and \
         underscores"
    )]
    InvalidSlotName { slot: String },

    /// The server sent something this client does not understand.
    #[error("PostgreSQL protocol error: {0}")]
    Protocol(String),

    /// Reading from or writing to an established connection failed (including the server
    /// closing it).
    #[error("I/O error on the PostgreSQL connection")]
    Io(#[from] io::Error),

    /// An error from a `tokio-postgres` SQL connection that is not a server error.
    #[error("PostgreSQL SQL connection error")]
    Sql(#[source] tokio_postgres::Error),
}

impl SourceError {
    /// The connection was not ready (connected, TLS, authenticated) within `connect_timeout`.
    pub fn connect_timed_out(config: &super::PgConnectConfig) -> Self {
        SourceError::Connect {
            host: config.host.clone(),
            port: config.port,
            source: io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connecting and authenticating took longer than connect_timeout ({}s)",
                    config.connect_timeout.as_secs()
                ),
            ),
        }
    }

    /// The SQLSTATE of a server error, if this is one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            SourceError::Server { code, .. } => Some(code),
            SourceError::SlotMissing { .. } => Some("42704"),
            SourceError::SlotInUse { .. } => Some("55006"),
            SourceError::SlotInvalidated { .. } => Some("55000"),
            SourceError::NotReplicationRole { .. } => Some("42501"),
            _ => None,
        }
    }

    /// What to do about it, for errors whose message alone does not say (printed after the
    /// message by the binary).
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            SourceError::Connect { source, .. } => Some(match innermost_io_kind(source) {
                io::ErrorKind::ConnectionRefused => {
                    "is PostgreSQL running and listening there? check the host and port of \
                     source.url (`dbmazz check` tests every prerequisite)"
                }
                io::ErrorKind::TimedOut => {
                    "nothing answered in time: check the host of source.url, firewalls and \
                     listen_addresses (`dbmazz check` tests every prerequisite)"
                }
                _ => "check the host and port of source.url (`dbmazz check` tests every prerequisite)",
            }),
            SourceError::Server { code, .. } => match code.as_str() {
                "3D000" => Some("create the database, or fix the database name in source.url"),
                "42501" => Some(
                    "the user lacks a privilege: dbmazz needs REPLICATION, SELECT on the tables \
                     and, to create a missing publication, CREATE on the database and ownership \
                     of the tables (or create the publication yourself); `dbmazz check` lists \
                     what is missing",
                ),
                "53300" => Some("too many connections: raise max_connections or max_wal_senders"),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether trying again later (a new connection, after a back-off) may succeed.
    ///
    /// Network trouble, server restarts, resource limits and a slot still held by a dying
    /// process are transient; bad credentials, a missing or invalidated slot, bad URLs and
    /// protocol violations are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Connect { .. } | SourceError::Io(_) | SourceError::SlotInUse { .. } => {
                true
            }
            // A handshake cut short by the network is transient; a refused certificate or a
            // server without TLS is not.
            SourceError::Tls { source, .. } => source
                .as_ref()
                .and_then(|source| source.downcast_ref::<io::Error>())
                .is_some_and(|error| {
                    error
                        .get_ref()
                        .is_none_or(|inner| !inner.is::<rustls::Error>())
                }),
            SourceError::Server { code, .. } => is_transient_sqlstate(code),
            SourceError::Sql(error) => error.is_closed(),
            SourceError::InvalidUrl { .. }
            | SourceError::Auth { .. }
            | SourceError::NotReplicationRole { .. }
            | SourceError::SlotMissing { .. }
            | SourceError::SlotInvalidated { .. }
            | SourceError::InvalidSlotName { .. }
            | SourceError::UnaddressableTable { .. }
            | SourceError::Protocol(_) => false,
        }
    }

    /// Builds the error for a server `ErrorResponse`, recognising the authentication and
    /// privilege failures of the startup phase.
    pub(crate) fn from_server(fields: ServerErrorFields, user: &str) -> SourceError {
        match fields.code.as_str() {
            // invalid_password, invalid_authorization_specification (pg_hba.conf).
            "28P01" | "28000" => SourceError::Auth {
                user: user.to_string(),
                message: fields.message,
            },
            // insufficient_privilege while starting a walsender.
            "42501" if is_walsender_permission_error(&fields) => SourceError::NotReplicationRole {
                user: user.to_string(),
            },
            _ => SourceError::Server {
                code: fields.code,
                message: fields.message,
                detail: fields.detail,
                hint: fields.hint,
            },
        }
    }

    /// Maps the errors PostgreSQL gives for slot trouble to their own variants.
    pub(crate) fn for_slot(self, slot: &str) -> SourceError {
        let SourceError::Server {
            code,
            message,
            detail,
            hint,
        } = self
        else {
            return self;
        };
        let slot = slot.to_string();
        match code.as_str() {
            "42704" if message.contains("replication slot") => SourceError::SlotMissing { slot },
            "55006" => SourceError::SlotInUse {
                slot,
                pid: last_number(&message),
                client: None,
            },
            "55000" if is_invalidated_slot_error(&message, detail.as_deref()) => {
                SourceError::SlotInvalidated {
                    slot,
                    reason: detail.unwrap_or(message),
                }
            }
            _ => SourceError::Server {
                code,
                message,
                detail,
                hint,
            },
        }
    }
}

impl From<tokio_postgres::Error> for SourceError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db_error) => SourceError::Server {
                code: db_error.code().code().to_string(),
                message: db_error.message().to_string(),
                detail: db_error.detail().map(str::to_string),
                hint: db_error.hint().map(str::to_string),
            },
            None => SourceError::Sql(error),
        }
    }
}

/// SQLSTATEs after which a fresh attempt may work.
fn is_transient_sqlstate(code: &str) -> bool {
    // Class 08: connection exception; 53: insufficient resources; 57P01..57P05: shutdown,
    // crash, cannot connect now, idle session timeout; 40001/40P01: serialization, deadlock.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P05" | "40001" | "40P01" | "55006"
        )
}

fn is_walsender_permission_error(fields: &ServerErrorFields) -> bool {
    let text = format!(
        "{} {}",
        fields.message,
        fields.detail.as_deref().unwrap_or_default()
    );
    text.contains("replication") || text.contains("WAL sender") || text.contains("walsender")
}

fn is_invalidated_slot_error(message: &str, detail: Option<&str>) -> bool {
    message.contains("can no longer get changes")
        || message.contains("cannot read from logical replication slot")
        || detail.is_some_and(|detail| detail.contains("invalidated"))
}

/// " (server process 4242: \"dbmazz\" from 10.0.0.5)" for [`SourceError::SlotInUse`].
fn in_use_by(pid: Option<i32>, client: Option<&str>) -> String {
    match (pid, client) {
        (Some(pid), Some(client)) => format!(" (server process {pid}: {client})"),
        (Some(pid), None) => format!(" (server process {pid})"),
        (None, Some(client)) => format!(" ({client})"),
        (None, None) => String::new(),
    }
}

/// The last run of ASCII digits in `text`, e.g. the PID in "… is active for PID 4242".
fn last_number(text: &str) -> Option<i32> {
    let end = text.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = text[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |index| index + 1);
    text[start..end].parse().ok()
}

/// The kind of the deepest `io::Error` under `error` (a client library may wrap the socket's
/// error in its own, under a kind of `Other`).
fn innermost_io_kind(error: &io::Error) -> io::ErrorKind {
    let mut kind = error.kind();
    let mut cause = error
        .get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(current) = cause {
        if let Some(io_error) = current.downcast_ref::<io::Error>() {
            kind = io_error.kind();
        }
        cause = current.source();
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str, message: &str, detail: Option<&str>) -> SourceError {
        SourceError::Server {
            code: code.into(),
            message: message.into(),
            detail: detail.map(str::to_string),
            hint: None,
        }
    }

    #[test]
    fn parses_error_response_fields() {
        let body =
            b"SERROR\0VERROR\0C55006\0Mreplication slot \"s\" is active for PID 77\0Dd\0Hh\0\0";
        let fields = ServerErrorFields::parse(body);
        assert_eq!(fields.severity, "ERROR");
        assert_eq!(fields.code, "55006");
        assert_eq!(fields.detail.as_deref(), Some("d"));
        assert_eq!(fields.hint.as_deref(), Some("h"));
        // Truncated input never panics.
        let truncated = ServerErrorFields::parse(b"C550");
        assert_eq!(truncated.code, "550");
        assert_eq!(ServerErrorFields::parse(b""), ServerErrorFields::default());
    }

    #[test]
    fn maps_slot_errors_to_their_variants() {
        let in_use = server(
            "55006",
            "replication slot \"s\" is active for PID 4242",
            None,
        );
        assert!(matches!(
            in_use.for_slot("s"),
            SourceError::SlotInUse {
                pid: Some(4242),
                ..
            }
        ));
        let named = SourceError::SlotInUse {
            slot: "s".into(),
            pid: Some(4242),
            client: Some("\"dbmazz\" from 10.0.0.5".into()),
        };
        assert!(named.to_string().starts_with(
            "replication slot \"s\" is in use by another connection (server process 4242: \"dbmazz\" from 10.0.0.5) (is another dbmazz"
        ));
        let missing = server("42704", "replication slot \"s\" does not exist", None);
        assert!(matches!(
            missing.for_slot("s"),
            SourceError::SlotMissing { .. }
        ));
        let invalidated = server(
            "55000",
            "can no longer get changes from replication slot \"s\"",
            Some("This slot has been invalidated because it exceeded the maximum reserved size."),
        );
        let SourceError::SlotInvalidated { reason, .. } = invalidated.for_slot("s") else {
            panic!("expected SlotInvalidated");
        };
        assert!(reason.contains("maximum reserved size"));
        let other = server("42601", "syntax error", None);
        assert!(matches!(other.for_slot("s"), SourceError::Server { .. }));
    }

    #[test]
    fn classifies_retryable_errors() {
        assert!(server("57P01", "terminating connection", None).is_retryable());
        assert!(server("53300", "too many clients", None).is_retryable());
        assert!(!server("42601", "syntax error", None).is_retryable());
        let auth = SourceError::from_server(
            ServerErrorFields {
                code: "28P01".into(),
                message: "password authentication failed for user \"u\"".into(),
                ..Default::default()
            },
            "u",
        );
        assert!(matches!(auth, SourceError::Auth { .. }));
        assert!(!auth.is_retryable());
        assert_eq!(server("42601", "x", None).sqlstate(), Some("42601"));
    }

    #[test]
    fn finds_the_last_number() {
        assert_eq!(last_number("active for PID 12"), Some(12));
        assert_eq!(last_number("no digits"), None);
        assert_eq!(last_number("7"), Some(7));
    }
}
