//! One PostgreSQL frontend/backend protocol connection: transport, startup and authentication,
//! message framing and the simple-query protocol.
//!
//! We speak the protocol ourselves (on `postgres-protocol`'s message writers and auth helpers)
//! rather than wrap libpq or `tokio-postgres`, because a replication connection needs CopyBoth
//! streaming with our own buffering: the socket is read in chunks of [`READ_CHUNK`] bytes and
//! every message is a zero-copy `Bytes` slice of that buffer. Backend messages are framed here
//! (`postgres-protocol`'s parser does not know CopyBothResponse), and every length and field
//! is checked: malformed server bytes give [`SourceError::Protocol`], never a panic.
//!
//! Startup sends `TimeZone=UTC`, `DateStyle=ISO`, `extra_float_digits=3`,
//! `IntervalStyle=iso_8601` and `client_encoding=UTF8`, so every text value the server sends is
//! in one canonical form. Authentication: trust, cleartext password, MD5 and SCRAM-SHA-256;
//! over TLS, SCRAM-SHA-256-PLUS with `tls-server-end-point` channel binding when the server
//! offers it, so a man in the middle holding another certificate cannot relay the exchange.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{
    ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::config::{PgConnectConfig, SslMode};
use super::error::{ServerErrorFields, SourceError};
use super::tls;

/// How much the socket is asked for at a time. Draining the socket in big reads lets the
/// walsender send big segments (DESIGN §2.1).
pub(crate) const READ_CHUNK: usize = 256 * 1024;
/// A read is started only with at least this much room; otherwise [`READ_CHUNK`] more is reserved.
const MIN_READ_ROOM: usize = 16 * 1024;
/// PostgreSQL never sends a message over 1 GiB (its allocation limit); a larger length is garbage.
pub(crate) const MAX_MESSAGE_LEN: usize = (1 << 30) + 64 * 1024;

/// A backend message: its type byte and its body (without the 5-byte header).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

/// The byte stream under a connection: TCP, a Unix socket, or TLS over TCP.
pub(crate) enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Unix(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Splits the next complete message off the front of `buf`, if there is one.
pub(crate) fn split_frame(buf: &mut BytesMut) -> Result<Option<Frame>, SourceError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = header[0];
    let declared = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=MAX_MESSAGE_LEN).contains(&declared) {
        return Err(SourceError::Protocol(format!(
            "message of type {:?} declares an impossible length {declared}",
            char::from(tag)
        )));
    }
    let total = declared + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut message = buf.split_to(total);
    message.advance(5);
    Ok(Some(Frame {
        tag,
        body: message.freeze(),
    }))
}

/// Reads the next message. Cancel-safe: the only await is `read_buf`, and bytes it read stay
/// in `buf` for the next call.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Frame, SourceError> {
    loop {
        if let Some(frame) = split_frame(buf)? {
            return Ok(frame);
        }
        fill_buffer(reader, buf).await?;
    }
}

/// One socket read into `buf` (at least [`MIN_READ_ROOM`] free); returns the bytes read.
/// Cancel-safe: a cancelled read has read nothing.
pub(crate) async fn fill_buffer<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<usize, SourceError> {
    if buf.capacity() - buf.len() < MIN_READ_ROOM {
        buf.reserve(READ_CHUNK);
    }
    match reader.read_buf(buf).await? {
        0 => Err(SourceError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "PostgreSQL closed the connection",
        ))),
        read => Ok(read),
    }
}

/// How the server authenticated us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No credentials asked (`trust`, or `peer` over a Unix socket).
    Trust,
    /// Cleartext password (`password` in pg_hba.conf).
    Password,
    Md5,
    ScramSha256,
    /// SCRAM-SHA-256 bound to the TLS channel (`tls-server-end-point`).
    ScramSha256Plus,
}

/// An authenticated connection, ready for queries.
pub(crate) struct Connection {
    pub stream: Transport,
    pub read_buf: BytesMut,
    write_buf: BytesMut,
    /// ParameterStatus values (server_version, TimeZone, …).
    pub parameters: HashMap<String, String>,
    pub user: String,
    pub auth_method: AuthMethod,
}

impl Connection {
    /// Connects, negotiates TLS per `sslmode`, authenticates and waits for ReadyForQuery; all
    /// within `connect_timeout`. `replication` adds `replication=database` to the startup packet.
    pub async fn connect(config: &PgConnectConfig, replication: bool) -> Result<Self, SourceError> {
        let attempt = Self::connect_without_timeout(config, replication);
        if config.connect_timeout.is_zero() {
            return attempt.await;
        }
        tokio::time::timeout(config.connect_timeout, attempt)
            .await
            .unwrap_or_else(|_elapsed| Err(SourceError::connect_timed_out(config)))
    }

    async fn connect_without_timeout(
        config: &PgConnectConfig,
        replication: bool,
    ) -> Result<Self, SourceError> {
        let stream = open_transport(config).await?;
        let mut connection = Connection {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(8 * 1024),
            parameters: HashMap::new(),
            user: config.user.clone(),
            auth_method: AuthMethod::Trust,
        };
        let mut parameters = vec![
            ("user", config.user.as_str()),
            ("database", config.dbname.as_str()),
            ("application_name", config.application_name.as_str()),
            ("client_encoding", "UTF8"),
            ("TimeZone", "UTC"),
            ("DateStyle", "ISO"),
            ("extra_float_digits", "3"),
            ("IntervalStyle", "iso_8601"),
        ];
        if replication {
            parameters.push(("replication", "database"));
        }
        frontend::startup_message(parameters, &mut connection.write_buf)
            .map_err(|error| protocol(format!("cannot encode the startup message: {error}")))?;
        connection.flush().await?;
        connection.authenticate(config).await?;
        connection.wait_until_ready().await?;
        Ok(connection)
    }

    /// Sends what is in the write buffer.
    pub async fn flush(&mut self) -> Result<(), SourceError> {
        self.stream.write_all(&self.write_buf).await?;
        self.stream.flush().await?;
        self.write_buf.clear();
        Ok(())
    }

    /// The write buffer, for `frontend::*` encoders; send it with [`Connection::flush`].
    pub fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// The next message that is not a notice, parameter status or notification.
    pub async fn read_message(&mut self) -> Result<Frame, SourceError> {
        loop {
            let frame = read_frame(&mut self.stream, &mut self.read_buf).await?;
            match frame.tag {
                b'N' | b'A' => {}
                b'S' => self.record_parameter(&frame.body),
                _ => return Ok(frame),
            }
        }
    }

    /// The error for an `ErrorResponse` body.
    pub fn server_error(&self, body: &[u8]) -> SourceError {
        SourceError::from_server(ServerErrorFields::parse(body), &self.user)
    }

    async fn authenticate(&mut self, config: &PgConnectConfig) -> Result<(), SourceError> {
        loop {
            let frame = self.read_message().await?;
            match frame.tag {
                b'R' => {}
                b'E' => return Err(self.server_error(&frame.body)),
                // NegotiateProtocolVersion: we ask for plain 3.0, nothing to adjust.
                b'v' => continue,
                other => return Err(unexpected(other, "authentication")),
            }
            let mut body = frame.body;
            let code = get_i32(&mut body, "authentication request")?;
            match code {
                0 => return Ok(()),
                3 => {
                    self.auth_method = AuthMethod::Password;
                    let password = self.password(config)?;
                    frontend::password_message(password.as_bytes(), &mut self.write_buf).map_err(
                        |error| protocol(format!("cannot encode the password: {error}")),
                    )?;
                    self.flush().await?;
                }
                5 => {
                    self.auth_method = AuthMethod::Md5;
                    let salt: [u8; 4] = body
                        .get(..4)
                        .and_then(|salt| salt.try_into().ok())
                        .ok_or_else(|| protocol("MD5 request without a 4-byte salt"))?;
                    let password = self.password(config)?;
                    let hash = md5_hash(config.user.as_bytes(), password.as_bytes(), salt);
                    frontend::password_message(hash.as_bytes(), &mut self.write_buf).map_err(
                        |error| protocol(format!("cannot encode the password: {error}")),
                    )?;
                    self.flush().await?;
                }
                10 => self.authenticate_scram(config, &body).await?,
                other => {
                    return Err(self.auth_error(format!(
                        "the server asks for an authentication method dbmazz does not support \
                         (code {other}: Kerberos, GSSAPI, SSPI or SCM credentials); use \
                         scram-sha-256 or md5 in pg_hba.conf"
                    )))
                }
            }
        }
    }

    async fn authenticate_scram(
        &mut self,
        config: &PgConnectConfig,
        mechanisms: &[u8],
    ) -> Result<(), SourceError> {
        let offered: Vec<String> = mechanisms
            .split(|&byte| byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        let binding_data = if offered.iter().any(|name| name == SCRAM_SHA_256_PLUS) {
            self.channel_binding_data()
        } else {
            None
        };
        let (mechanism, channel_binding) = match binding_data {
            Some(data) => {
                self.auth_method = AuthMethod::ScramSha256Plus;
                (
                    SCRAM_SHA_256_PLUS,
                    ChannelBinding::tls_server_end_point(data),
                )
            }
            None if offered.iter().any(|name| name == SCRAM_SHA_256) => {
                self.auth_method = AuthMethod::ScramSha256;
                // "n": no channel binding from this client; valid whatever the server offers.
                (SCRAM_SHA_256, ChannelBinding::unsupported())
            }
            None => {
                return Err(self.auth_error(format!(
                    "the server offers only SASL mechanisms {offered:?}; dbmazz supports \
                     {SCRAM_SHA_256} and {SCRAM_SHA_256_PLUS}"
                )))
            }
        };
        let password = self.password(config)?;
        let mut scram = ScramSha256::new(password.as_bytes(), channel_binding);
        frontend::sasl_initial_response(mechanism, scram.message(), &mut self.write_buf)
            .map_err(|error| protocol(format!("cannot encode the SASL response: {error}")))?;
        self.flush().await?;

        let server_first = self.read_sasl_step(11).await?;
        scram
            .update(&server_first)
            .map_err(|error| self.auth_error(format!("SCRAM exchange failed: {error}")))?;
        frontend::sasl_response(scram.message(), &mut self.write_buf)
            .map_err(|error| protocol(format!("cannot encode the SASL response: {error}")))?;
        self.flush().await?;

        let server_final = self.read_sasl_step(12).await?;
        scram.finish(&server_final).map_err(|error| {
            self.auth_error(format!(
                "the server's SCRAM signature did not verify: {error}"
            ))
        })
    }

    /// Reads an `AuthenticationSASLContinue` (11) or `AuthenticationSASLFinal` (12) body.
    async fn read_sasl_step(&mut self, expected: i32) -> Result<Bytes, SourceError> {
        let frame = self.read_message().await?;
        match frame.tag {
            b'R' => {}
            b'E' => return Err(self.server_error(&frame.body)),
            other => return Err(unexpected(other, "SCRAM authentication")),
        }
        let mut body = frame.body;
        let code = get_i32(&mut body, "SASL message")?;
        if code != expected {
            return Err(protocol(format!(
                "expected SASL step {expected}, got authentication code {code}"
            )));
        }
        Ok(body)
    }

    /// After AuthenticationOk: ParameterStatus and BackendKeyData until ReadyForQuery.
    async fn wait_until_ready(&mut self) -> Result<(), SourceError> {
        loop {
            let frame = self.read_message().await?;
            match frame.tag {
                b'Z' => return Ok(()),
                b'K' => {}
                b'E' => return Err(self.server_error(&frame.body)),
                other => return Err(unexpected(other, "connection startup")),
            }
        }
    }

    /// `tls-server-end-point` data for SCRAM-SHA-256-PLUS, when on TLS with a usable certificate.
    fn channel_binding_data(&self) -> Option<Vec<u8>> {
        let Transport::Tls(stream) = &self.stream else {
            return None;
        };
        let certificate = stream.get_ref().1.peer_certificates()?.first()?;
        tls::tls_server_end_point(certificate)
    }

    fn password(&self, config: &PgConnectConfig) -> Result<String, SourceError> {
        config.password.clone().ok_or_else(|| {
            self.auth_error(
                "the server asks for a password and the source URL has none \
                 (postgres://user:password@host/db)"
                    .to_string(),
            )
        })
    }

    fn auth_error(&self, message: String) -> SourceError {
        SourceError::Auth {
            user: self.user.clone(),
            message,
        }
    }

    fn record_parameter(&mut self, body: &[u8]) {
        let mut parts = body.split(|&byte| byte == 0);
        if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
            self.parameters.insert(
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
        }
    }

    /// Runs one or more SQL statements with the simple-query protocol; returns the rows of all
    /// result sets, every value as text (NULL as `None`). An error is returned after the server
    /// is ready again, so the connection stays usable.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, SourceError> {
        frontend::query(sql, &mut self.write_buf)
            .map_err(|error| protocol(format!("cannot encode the query: {error}")))?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = self.read_message().await?;
            match frame.tag {
                b'Z' => break,
                b'D' => rows.push(parse_data_row(frame.body)?),
                b'E' => error = Some(self.server_error(&frame.body)),
                // RowDescription, CommandComplete, EmptyQueryResponse, COPY TO data.
                b'T' | b'C' | b'I' | b'H' | b'd' | b'c' => {}
                b'G' => {
                    frontend::copy_fail(
                        "COPY FROM STDIN is not supported here",
                        &mut self.write_buf,
                    )
                    .map_err(|error| protocol(format!("cannot encode CopyFail: {error}")))?;
                    self.flush().await?;
                }
                other => return Err(unexpected(other, "a simple query")),
            }
        }
        match error {
            Some(error) => Err(error),
            None => Ok(rows),
        }
    }

    /// Says goodbye (`Terminate`) so the server does not log an unexpected EOF.
    pub async fn terminate(mut self) -> Result<(), SourceError> {
        frontend::terminate(&mut self.write_buf);
        self.flush().await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

/// TCP or Unix socket, then TLS if `sslmode` asks for it and the server agrees.
async fn open_transport(config: &PgConnectConfig) -> Result<Transport, SourceError> {
    if config.is_unix_socket() {
        // Like libpq: no TLS over a Unix socket, whatever sslmode says.
        let path = format!(
            "{}/.s.PGSQL.{}",
            config.host.trim_end_matches('/'),
            config.port
        );
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| connect_error(config, source))?;
        return Ok(Transport::Unix(stream));
    }
    let tcp = open_tcp(config).await?;
    if config.ssl_mode == SslMode::Disable {
        return Ok(Transport::Tcp(tcp));
    }
    match start_tls(config, tcp).await {
        // Like libpq, `prefer` retries without TLS when the TLS handshake itself fails.
        Err(SourceError::Tls { .. }) if config.ssl_mode == SslMode::Prefer => {
            Ok(Transport::Tcp(open_tcp(config).await?))
        }
        other => other,
    }
}

async fn open_tcp(config: &PgConnectConfig) -> Result<TcpStream, SourceError> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|source| connect_error(config, source))?;
    tcp.set_nodelay(true)
        .map_err(|source| connect_error(config, source))?;
    set_keepalive(&tcp);
    Ok(tcp)
}

/// SSLRequest, then the TLS handshake if the server says 'S'; plain TCP if it says 'N' and
/// `sslmode` allows it.
async fn start_tls(config: &PgConnectConfig, mut tcp: TcpStream) -> Result<Transport, SourceError> {
    let mut request = BytesMut::with_capacity(8);
    frontend::ssl_request(&mut request);
    tcp.write_all(&request)
        .await
        .map_err(|source| connect_error(config, source))?;
    // Exactly one byte: anything the server sent after 'S' must go through TLS (CVE-2021-23222).
    let answer = tcp
        .read_u8()
        .await
        .map_err(|source| connect_error(config, source))?;
    match answer {
        b'S' => {}
        b'N' if !config.ssl_mode.requires_tls() => return Ok(Transport::Tcp(tcp)),
        b'N' => return Err(tls::server_without_tls(config)),
        other => {
            return Err(protocol(format!(
                "unexpected answer {:?} to the TLS request",
                char::from(other)
            )))
        }
    }
    let client_config = tls::client_config(config)?;
    let server_name = tls::server_name(config)?;
    let stream = TlsConnector::from(Arc::new(client_config))
        .connect(server_name, tcp)
        .await
        .map_err(|error| tls::handshake_error(config, error))?;
    Ok(Transport::Tls(Box::new(stream)))
}

fn connect_error(config: &PgConnectConfig, source: io::Error) -> SourceError {
    SourceError::Connect {
        host: config.host.clone(),
        port: config.port,
        source,
    }
}

/// TCP keepalive, so a peer that vanished without a FIN is noticed on an idle stream.
fn set_keepalive(tcp: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(60))
        .with_interval(std::time::Duration::from_secs(10));
    // Best effort: keepalive is an optimisation, not a requirement.
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive);
}

/// Parses a `DataRow` body: column count, then per column a length (-1 = NULL) and the bytes.
fn parse_data_row(mut body: Bytes) -> Result<Vec<Option<String>>, SourceError> {
    if body.remaining() < 2 {
        return Err(protocol("DataRow without a column count"));
    }
    let columns = body.get_u16();
    let mut row = Vec::with_capacity(usize::from(columns));
    for _ in 0..columns {
        let len = get_i32(&mut body, "DataRow column length")?;
        if len < 0 {
            row.push(None);
            continue;
        }
        let len = len as usize;
        if body.remaining() < len {
            return Err(protocol("DataRow column longer than the message"));
        }
        let value = body.split_to(len);
        let text = String::from_utf8(value.to_vec())
            .map_err(|_| protocol("DataRow column is not valid UTF-8"))?;
        row.push(Some(text));
    }
    Ok(row)
}

fn get_i32(body: &mut Bytes, what: &str) -> Result<i32, SourceError> {
    if body.remaining() < 4 {
        return Err(protocol(format!("{what} is truncated")));
    }
    Ok(body.get_i32())
}

pub(crate) fn protocol(message: impl Into<String>) -> SourceError {
    SourceError::Protocol(message.into())
}

pub(crate) fn unexpected(tag: u8, during: &str) -> SourceError {
    protocol(format!(
        "unexpected message of type {:?} during {during}",
        char::from(tag)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_without_copying_and_waits_for_partial_ones() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"d\0\0\0\x07abcd\0\0\0\x06x");
        let frame = split_frame(&mut buf).unwrap().unwrap();
        assert_eq!(frame.tag, b'd');
        assert_eq!(&frame.body[..], b"abc");
        assert!(split_frame(&mut buf).unwrap().is_none(), "partial frame");
        buf.extend_from_slice(b"yZ\0\0\0\x05I");
        let frame = split_frame(&mut buf).unwrap().unwrap();
        assert_eq!((frame.tag, &frame.body[..]), (b'd', &b"xy"[..]));
        let frame = split_frame(&mut buf).unwrap().unwrap();
        assert_eq!((frame.tag, &frame.body[..]), (b'Z', &b"I"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_impossible_lengths() {
        let mut buf = BytesMut::from(&b"d\0\0\0\x02"[..]);
        assert!(matches!(
            split_frame(&mut buf),
            Err(SourceError::Protocol(_))
        ));
        let mut buf = BytesMut::from(&b"d\x7f\xff\xff\xff"[..]);
        assert!(matches!(
            split_frame(&mut buf),
            Err(SourceError::Protocol(_))
        ));
    }

    #[test]
    fn parses_data_rows_and_rejects_truncated_ones() {
        let row =
            parse_data_row(Bytes::from_static(b"\0\x02\0\0\0\x02hi\xff\xff\xff\xff")).unwrap();
        assert_eq!(row, vec![Some("hi".to_string()), None]);
        assert!(parse_data_row(Bytes::from_static(b"\0\x01\0\0\0\x09hi")).is_err());
        assert!(parse_data_row(Bytes::from_static(b"\0\x01\0\0")).is_err());
        assert!(parse_data_row(Bytes::from_static(b"\0")).is_err());
    }

    #[tokio::test]
    async fn reads_frames_across_small_socket_reads() {
        let (mut client, mut server) = tokio::io::duplex(3);
        let writer = tokio::spawn(async move {
            server.write_all(b"d\0\0\0\x06hiN\0\0\0\x04").await.unwrap();
        });
        let mut buf = BytesMut::new();
        let frame = read_frame(&mut client, &mut buf).await.unwrap();
        assert_eq!(&frame.body[..], b"hi");
        let frame = read_frame(&mut client, &mut buf).await.unwrap();
        assert_eq!(frame.tag, b'N');
        writer.await.unwrap();
        let eof = read_frame(&mut client, &mut buf).await;
        assert!(matches!(eof, Err(SourceError::Io(_))));
    }
}
