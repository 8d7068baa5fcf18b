//! A plain SQL session for the snapshot's `COPY … TO STDOUT`, on our own protocol connection.
//!
//! PostgreSQL sends one CopyData message per row. Through `tokio-postgres` every row became its
//! own `Bytes` (a split, a reference count up and down) and a stream item — about a tenth of
//! dbmazz's snapshot CPU. Here rows are handed to the caller as slices of the socket buffer,
//! every complete message of a read in one synchronous pass (docs/benchmarks.md).

use bytes::Buf;
use postgres_protocol::message::frontend;

use super::config::PgConnectConfig;
use super::connection::{fill_buffer, protocol, unexpected, Connection, MAX_MESSAGE_LEN};
use super::error::{ServerErrorFields, SourceError};

/// A SQL connection (not a replication one) that runs statements and COPY TO STDOUT.
pub struct CopySession {
    connection: Connection,
    /// A server error met during COPY, returned once ReadyForQuery follows it.
    copy_error: Option<SourceError>,
}

/// Where a COPY stands after a call to [`CopySession::copy_out_data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyProgress {
    /// More rows may come.
    More,
    /// The COPY ended and the server is ready for the next statement.
    Done,
}

impl CopySession {
    /// Connects with the same startup settings, TLS policy and authentication as the stream.
    pub async fn connect(config: &PgConnectConfig) -> Result<CopySession, SourceError> {
        Ok(CopySession {
            connection: Connection::connect(config, false).await?,
            copy_error: None,
        })
    }

    /// Runs statements that return no rows we need (BEGIN, SET TRANSACTION SNAPSHOT, COMMIT).
    pub async fn execute(&mut self, sql: &str) -> Result<(), SourceError> {
        self.connection.simple_query(sql).await.map(|_| ())
    }

    /// Runs a simple query and returns its rows (text values, `None` for NULL).
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, SourceError> {
        self.connection.simple_query(sql).await
    }

    /// Sends `COPY … TO STDOUT` and waits for the server to start it (CopyOutResponse).
    pub async fn start_copy_out(&mut self, sql: &str) -> Result<(), SourceError> {
        frontend::query(sql, self.connection.write_buf())
            .map_err(|error| protocol(format!("cannot encode the query: {error}")))?;
        self.connection.flush().await?;
        // Notices and parameter changes are skipped by `read_message`.
        let frame = self.connection.read_message().await?;
        match frame.tag {
            b'H' => Ok(()),
            b'E' => {
                let error = self.connection.server_error(&frame.body);
                self.wait_until_ready().await?;
                Err(error)
            }
            other => Err(unexpected(other, "the start of COPY TO STDOUT")),
        }
    }

    /// Hands every row already read (each CopyData payload, a slice of the read buffer) to
    /// `row`, reading from the socket first if nothing complete is buffered. Returns after one
    /// buffer's worth, so the caller can await between calls (e.g. to ship a full batch).
    ///
    /// A server error ends the COPY: it is returned once the server is ready again. An error
    /// from `row` is returned at once (the connection is then not reusable).
    pub async fn copy_out_data<E: From<SourceError>>(
        &mut self,
        mut row: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<CopyProgress, E> {
        loop {
            if let Some(progress) = self.scan_buffered(&mut row)? {
                return Ok(progress);
            }
            let connection = &mut self.connection;
            fill_buffer(&mut connection.stream, &mut connection.read_buf).await?;
        }
    }

    /// Hands the complete messages at the front of the read buffer to [`scan_copy_messages`]
    /// and drops them: `None` if there was none, `More`, or `Done` once the COPY ended.
    fn scan_buffered<E: From<SourceError>>(
        &mut self,
        row: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Option<CopyProgress>, E> {
        let CopySession {
            connection,
            copy_error,
        } = self;
        let scan = scan_copy_messages(&connection.read_buf, &connection.user, copy_error, row)?;
        connection.read_buf.advance(scan.consumed);
        match scan.end {
            Some(Ok(())) => Ok(Some(CopyProgress::Done)),
            Some(Err(error)) => Err(E::from(error)),
            None => Ok((scan.consumed > 0).then_some(CopyProgress::More)),
        }
    }

    async fn wait_until_ready(&mut self) -> Result<(), SourceError> {
        loop {
            if self.connection.read_message().await?.tag == b'Z' {
                return Ok(());
            }
        }
    }
}

/// What [`scan_copy_messages`] got through.
struct Scan {
    /// Bytes of complete messages handled.
    consumed: usize,
    /// Set once ReadyForQuery came (the server's error, if one came before it), or on bytes
    /// that are not a COPY's messages.
    end: Option<Result<(), SourceError>>,
}

/// Walks the complete backend messages in `buf`: CopyData payloads go to `row`; an
/// ErrorResponse is kept in `copy_error` until ReadyForQuery ends the COPY.
fn scan_copy_messages<E>(
    buf: &[u8],
    user: &str,
    copy_error: &mut Option<SourceError>,
    row: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Scan, E> {
    let mut consumed = 0;
    while let Some(header) = buf.get(consumed..consumed + 5) {
        let tag = header[0];
        let declared = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if !(4..=MAX_MESSAGE_LEN).contains(&declared) {
            let error = SourceError::Protocol(format!(
                "message of type {:?} declares an impossible length {declared}",
                char::from(tag)
            ));
            return Ok(Scan {
                consumed,
                end: Some(Err(error)),
            });
        }
        let Some(body) = buf.get(consumed + 5..consumed + 1 + declared) else {
            break;
        };
        consumed += 1 + declared;
        match tag {
            b'd' => row(body)?,
            // CopyDone, CommandComplete, notices, parameter changes, notifications.
            b'c' | b'C' | b'N' | b'S' | b'A' => {}
            b'E' => {
                let fields = ServerErrorFields::parse(body);
                *copy_error = Some(SourceError::from_server(fields, user));
            }
            b'Z' => {
                let end = copy_error.take().map_or(Ok(()), Err);
                return Ok(Scan {
                    consumed,
                    end: Some(end),
                });
            }
            other => {
                return Ok(Scan {
                    consumed,
                    end: Some(Err(unexpected(other, "COPY TO STDOUT"))),
                })
            }
        }
    }
    Ok(Scan {
        consumed,
        end: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// A COPY's messages as PostgreSQL sends them after CopyOutResponse.
    fn copy_stream(rows: &[&[u8]], error: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            out.extend(message(b'd', row));
        }
        match error {
            Some(text) => {
                let mut body = b"SERROR\0C57014\0M".to_vec();
                body.extend_from_slice(text.as_bytes());
                body.extend_from_slice(b"\0\0");
                out.extend(message(b'E', &body));
            }
            None => {
                out.extend(message(b'c', b""));
                out.extend(message(b'C', b"COPY 2\0"));
            }
        }
        out.extend(message(b'Z', b"T"));
        out
    }

    /// Feeds `bytes` in pieces of `piece` bytes, the way socket reads arrive.
    fn feed(bytes: &[u8], piece: usize) -> (Vec<Vec<u8>>, Option<Result<(), SourceError>>) {
        let mut rows = Vec::new();
        let mut buffered = Vec::new();
        let mut copy_error = None;
        for chunk in bytes.chunks(piece.max(1)) {
            buffered.extend_from_slice(chunk);
            let scan = scan_copy_messages(&buffered, "u", &mut copy_error, &mut |row: &[u8]| {
                rows.push(row.to_vec());
                Ok::<(), SourceError>(())
            })
            .unwrap();
            buffered.drain(..scan.consumed);
            if scan.end.is_some() {
                return (rows, scan.end);
            }
        }
        (rows, None)
    }

    #[test]
    fn rows_arrive_whole_however_the_reads_cut_the_messages() {
        let stream = copy_stream(&[b"1\ta\n", b"2\tb\n", b""], None);
        for piece in 1..=stream.len() {
            let (rows, end) = feed(&stream, piece);
            assert_eq!(rows, [b"1\ta\n".to_vec(), b"2\tb\n".to_vec(), Vec::new()]);
            assert!(matches!(end, Some(Ok(()))), "piece {piece}");
        }
    }

    #[test]
    fn a_server_error_during_copy_is_returned_at_ready_for_query() {
        let stream = copy_stream(&[b"1\n"], Some("canceling statement due to user request"));
        let (rows, end) = feed(&stream, 7);
        assert_eq!(rows, [b"1\n".to_vec()]);
        let error = end.unwrap().unwrap_err().to_string();
        assert!(error.contains("canceling statement"), "{error}");
    }

    #[test]
    fn an_impossible_length_or_a_foreign_message_ends_the_copy_with_an_error() {
        let mut bad_length = message(b'd', b"x");
        bad_length[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert!(matches!(
            feed(&bad_length, 64).1,
            Some(Err(SourceError::Protocol(_)))
        ));
        let foreign = message(b'D', b"\0\0");
        assert!(feed(&foreign, 64).1.unwrap().is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), piece in 1usize..64) {
            let _ = feed(&bytes, piece);
        }
    }
}
