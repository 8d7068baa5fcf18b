//! `POST /snapshot?table=…`: a request to snapshot one table while the stream runs, handed to
//! the replicator, and its answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// How long the API waits for the replicator to plan the snapshot (a few catalog queries).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// One request, answered once on `reply`.
#[derive(Debug)]
pub struct SnapshotRequest {
    /// `schema.table` (a bare name means `public`).
    pub table: String,
    /// Empty the StarRocks table before loading it (`replace=true`), so rows that exist only
    /// there go too.
    pub replace: bool,
    pub reply: oneshot::Sender<SnapshotAnswer>,
}

/// What the replicator says to a snapshot request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SnapshotAnswer {
    /// Planned; the table's stream changes are held until its rows are loaded.
    Accepted {
        table: String,
        epoch: u64,
        chunks: u64,
        /// The destination table is emptied before the copy (absent in older answers).
        #[serde(default)]
        replace: bool,
    },
    NotPublished {
        table: String,
        publication: String,
    },
    AlreadyRunning {
        table: String,
    },
    /// Not streaming (starting, in the initial snapshot, stopping or failed).
    Unavailable {
        reason: String,
    },
    Failed {
        message: String,
    },
    /// The request itself is wrong (no `table`, a bad `replace`).
    BadRequest {
        message: String,
    },
}

impl SnapshotAnswer {
    /// The HTTP status of the answer.
    pub fn http_status(&self) -> u16 {
        match self {
            SnapshotAnswer::Accepted { .. } => 202,
            SnapshotAnswer::NotPublished { .. } => 404,
            SnapshotAnswer::AlreadyRunning { .. } => 409,
            SnapshotAnswer::Unavailable { .. } => 503,
            SnapshotAnswer::Failed { .. } => 500,
            SnapshotAnswer::BadRequest { .. } => 400,
        }
    }

    /// One line for people (the CLI prints it).
    pub fn message(&self) -> String {
        match self {
            SnapshotAnswer::Accepted {
                table,
                epoch,
                chunks,
                replace,
            } => format!(
                "snapshot of {table} accepted (epoch {epoch}, {chunks} chunks{}); its stream \
                 changes are held until its rows are loaded",
                if *replace {
                    "; its StarRocks table is emptied first"
                } else {
                    ""
                }
            ),
            SnapshotAnswer::NotPublished { table, publication } => format!(
                "table {table} is not in publication {publication:?}: add it (ALTER PUBLICATION \
                 … ADD TABLE) or check the name (schema.table, as PostgreSQL stores it: \
                 case-sensitive, without SQL quotes{})",
                if table.contains('"') {
                    format!(", e.g. {}", table.replace('"', ""))
                } else {
                    String::new()
                }
            ),
            SnapshotAnswer::AlreadyRunning { table } => {
                format!("a snapshot of {table} is already running: wait for it (dbmazz status)")
            }
            SnapshotAnswer::Unavailable { reason } => {
                format!("dbmazz cannot snapshot a table now: {reason}; try again when it streams")
            }
            SnapshotAnswer::Failed { message } => format!("snapshot request failed: {message}"),
            SnapshotAnswer::BadRequest { message } => format!("bad snapshot request: {message}"),
        }
    }
}

/// The replicator's end of the request channel, registered in [`super::Telemetry`].
pub(super) type RequestSender = mpsc::UnboundedSender<SnapshotRequest>;

/// Sends a request and waits for its answer.
pub(super) async fn ask(
    sender: Option<RequestSender>,
    table: String,
    replace: bool,
) -> SnapshotAnswer {
    let Some(sender) = sender else {
        return SnapshotAnswer::Unavailable {
            reason: "it is not streaming yet".into(),
        };
    };
    let (reply, answer) = oneshot::channel();
    let request = SnapshotRequest {
        table,
        replace,
        reply,
    };
    if sender.send(request).is_err() {
        return SnapshotAnswer::Unavailable {
            reason: "the stream has stopped".into(),
        };
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => SnapshotAnswer::Unavailable {
            reason: "the stream stopped before answering".into(),
        },
        Err(_) => SnapshotAnswer::Failed {
            message: format!("no answer within {ANSWER_TIMEOUT:?}"),
        },
    }
}

/// The table and the `replace` flag of `POST /snapshot?table=…[&replace=true]`, or what is
/// wrong with the query.
pub fn parse_snapshot_query(query: &str) -> Result<(String, bool), String> {
    // `name=value`, or a bare `name` (read as an empty value).
    let parameter = |name: &str| {
        query.split('&').find_map(|pair| {
            let rest = pair.strip_prefix(name)?;
            match rest.strip_prefix('=') {
                Some(value) => Some(percent_decode(value)),
                None => rest.is_empty().then(String::new),
            }
        })
    };
    let Some(table) = parameter("table").filter(|table| !table.trim().is_empty()) else {
        return Err("say which table: POST /snapshot?table=schema.table".into());
    };
    let replace = match parameter("replace").as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return Err(format!(
                "replace={other:?}: say replace=true or replace=false"
            ))
        }
    };
    Ok((table, replace))
}

/// Decodes `%XX` escapes and `+` of a query parameter value.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = |byte: u8| (byte as char).to_digit(16);
                match (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        index += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes everything but `[A-Za-z0-9._-]` for a query parameter value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_survive_the_query_string() {
        for name in ["public.orders", "My Schema.\"odd\"%name", "ünï.t"] {
            assert_eq!(percent_decode(&percent_encode(name)), name);
        }
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a+b%2Ec"), "a b.c");
    }

    #[test]
    fn snapshot_queries_name_a_table_and_maybe_replace() {
        let parse = parse_snapshot_query;
        assert_eq!(parse("table=public.t"), Ok(("public.t".into(), false)));
        assert_eq!(parse("replace=true&table=t"), Ok(("t".into(), true)));
        assert_eq!(parse("table=a%2Eb&replace=0"), Ok(("a.b".into(), false)));
        assert_eq!(parse("table=t&replace"), Ok(("t".into(), true)));
        assert_eq!(parse("table=t&replace="), Ok(("t".into(), true)));
        assert!(parse("table=t&replace=maybe")
            .unwrap_err()
            .contains("replace=\"maybe\""));
        assert!(parse("tables=t").unwrap_err().contains("say which table"));
        assert!(parse("table=%20").is_err());
    }

    #[test]
    fn each_answer_has_its_status() {
        let statuses: Vec<u16> = [
            SnapshotAnswer::Accepted {
                table: "t".into(),
                epoch: 2,
                chunks: 1,
                replace: false,
            },
            SnapshotAnswer::NotPublished {
                table: "t".into(),
                publication: "p".into(),
            },
            SnapshotAnswer::AlreadyRunning { table: "t".into() },
            SnapshotAnswer::Unavailable { reason: "r".into() },
        ]
        .iter()
        .map(SnapshotAnswer::http_status)
        .collect();
        assert_eq!(statuses, [202, 404, 409, 503]);
    }

    #[test]
    fn a_quoted_name_that_is_not_published_gets_its_unquoted_form() {
        let answer = SnapshotAnswer::NotPublished {
            table: "public.\"Orders\"".into(),
            publication: "p".into(),
        };
        assert!(
            answer
                .message()
                .ends_with("without SQL quotes, e.g. public.Orders)"),
            "{}",
            answer.message()
        );
    }
}
