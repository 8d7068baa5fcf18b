//! The start-up check of `sink.starrocks.fe_http`: fail at once when nothing answers there.
//!
//! DDL goes over the MySQL port and loads over the FE HTTP port; the sink connects to the
//! first at start, and without this probe a wrong or unreachable HTTP address would only show
//! as the first load retried for `sink.starrocks.retry_max_elapsed` (10 minutes by default).
//! Only "nothing answers" stops the start: an FE that answers the probe with an error still
//! answers, and loads will tell what is wrong with more context.

use std::error::Error as _;
use std::time::Duration;

use super::stream_load::{RequestError, StreamLoadClient};

/// How long the FE may take to answer the probe, connecting included. The answer is a few
/// bytes from memory; an unroutable address should not hold the start much longer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `Err` is the one-line reason to stop, naming the key and the fix.
pub async fn probe_fe_http(client: &StreamLoadClient, fe_http: &str) -> Result<(), String> {
    let timeout = client.config().connect_timeout.min(PROBE_TIMEOUT);
    match client.fe_health(timeout).await {
        Ok(health) => {
            if health.online_backend_num == Some(0) {
                tracing::warn!(
                    fe_http,
                    total_backends = health.total_backend_num.unwrap_or(0),
                    "the StarRocks FE reports no BE online: loads will be retried until one is"
                );
            }
            Ok(())
        }
        Err(
            error @ (RequestError::Connect { .. }
            | RequestError::Transport { .. }
            | RequestError::Timeout { .. }
            | RequestError::Invalid(_)),
        ) => Err(format!(
            "cannot reach StarRocks FE HTTP at {fe_http} (sink.starrocks.fe_http): {}; check \
             sink.starrocks.fe_http (the FE's HTTP port, 8030 by default) and that the FE is up \
             and reachable from here",
            innermost(&error)
        )),
        Err(error) => {
            tracing::warn!(fe_http, error = %error, "the StarRocks FE HTTP health probe failed; continuing");
            Ok(())
        }
    }
}

/// The root cause: hyper wraps "Connection refused" as "client error (Connect)", which says
/// nothing on its own. A timeout has no cause and reads well as is.
fn innermost(error: &RequestError) -> String {
    let Some(mut current) = error.source() else {
        return error.to_string();
    };
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
