//! Waiting for StarRocks's answer to a request: bounded by the request timeout, and not
//! silent meanwhile. A hung FE or BE (accepts the connection, never answers) would otherwise
//! show nothing until the timeout, minutes later, while the stream stands still.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::client::RequestError;

/// Awaits `exchange` for at most `timeout`, logging a warning every `warn_every` while no
/// answer has come.
pub(super) async fn answered_within<T>(
    url: &str,
    what: &str,
    timeout: Duration,
    warn_every: Duration,
    exchange: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    let started = Instant::now();
    let exchange = tokio::time::timeout(timeout, exchange);
    tokio::pin!(exchange);
    let first = started + warn_every;
    let mut ticks = tokio::time::interval_at(first, warn_every.max(Duration::from_millis(1)));
    loop {
        tokio::select! {
            answer = &mut exchange => {
                return answer.map_err(|_| RequestError::Timeout {
                    url: url.to_string(),
                    after: timeout,
                })?;
            }
            _ = ticks.tick() => {
                tracing::warn!(
                    url,
                    request = what,
                    waited_s = started.elapsed().as_secs(),
                    timeout_s = timeout.as_secs(),
                    "StarRocks has not answered yet (FE or BE overloaded, or hung?); still waiting, \
                     nothing is acknowledged meanwhile"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_request_without_answer_warns_until_it_times_out() {
        let (log, _guard) = capture();
        let never = std::future::pending::<Result<(), RequestError>>();
        let error = answered_within(
            "http://fe:8030/api/d/t/_stream_load",
            "stream load d.t label l1",
            Duration::from_secs(100),
            Duration::from_secs(30),
            never,
        )
        .await
        .unwrap_err();
        assert!(matches!(error, RequestError::Timeout { .. }), "{error:?}");
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("has not answered yet").count(), 3, "{text}");
        assert!(
            text.contains("label l1") && text.contains("waited_s=30"),
            "{text}"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_prompt_answer_is_not_warned_about() {
        let (log, _guard) = capture();
        let answer = answered_within(
            "http://fe:8030/x",
            "x",
            Duration::from_secs(100),
            Duration::from_secs(30),
            async {
                tokio::time::sleep(Duration::from_secs(29)).await;
                Ok(7)
            },
        )
        .await
        .unwrap();
        assert_eq!(answer, 7);
        assert!(log.0.lock().unwrap().is_empty());
    }
}
