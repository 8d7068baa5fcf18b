//! The logical replication connection: replication commands, then CopyBoth streaming.
//!
//! ```text
//!   ReplicationClient::connect ── replication=database startup
//!     │ identify_system / create_logical_slot / slot_info / simple_query
//!     ▼
//!   start_replication(slot, lsn, publication)  ── START_REPLICATION … LOGICAL … (pgoutput options)
//!     ▼
//!   ReplicationStream ──split()──► ReplicationReader  next_copy_data() → XLogData 'w' / keepalive 'k'
//!                                 ReplicationWriter  send_status_update(write, flush, apply)
//! ```
//!
//! The reader hands out each CopyData payload as a zero-copy `Bytes` slice of its 256 KiB read
//! buffer; parsing the payload is `decode`'s job. The writer owns the one message the client
//! sends while streaming, the Standby Status Update, which is how the slot's confirmed position
//! advances (DESIGN §4): the caller reports write = last received, flush = apply = durable.
//!
//! The caller's duties while streaming (the walsender drops a silent client after
//! `wal_sender_timeout`, 60 s by default): answer a keepalive whose reply flag is set (`k`,
//! byte 17 = 1) at once, and send a status update at least every `status_interval` anyway.
//! Never report a flush position that is not durable downstream: PostgreSQL may then recycle
//! WAL we still need.
//!
//! The pgoutput protocol version is the highest this server speaks: v1 before PostgreSQL 14,
//! v2 with `streaming 'on'` on 14–15, v4 with `streaming 'parallel'` from 16; `messages 'true'`
//! from 14. Slot errors come back as [`SourceError::SlotMissing`], [`SourceError::SlotInUse`]
//! and [`SourceError::SlotInvalidated`].

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

use super::config::PgConnectConfig;
use super::connection::{
    fill_buffer, protocol, split_frame, unexpected, AuthMethod, Connection, Frame, Transport,
};
use super::error::{ServerErrorFields, SourceError};
use super::low_water::LowWater;
use crate::Lsn;

/// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_UNIX_MICROS: u64 = 946_684_800_000_000;

/// The pgoutput protocol version and streaming mode to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOutputProtocol {
    /// `proto_version`: 1, 2 or 4.
    pub version: u32,
    /// `streaming`: `None` (v1), `"on"` (v2) or `"parallel"` (v4).
    pub streaming: Option<&'static str>,
    /// Whether to ask for logical decoding messages (`messages 'true'`, PostgreSQL 14+).
    pub messages: bool,
}

impl PgOutputProtocol {
    /// The highest protocol a server of this `server_version_num` supports.
    pub fn for_server_version(server_version_num: u32) -> Self {
        match server_version_num {
            0..=139_999 => PgOutputProtocol {
                version: 1,
                streaming: None,
                messages: false,
            },
            140_000..=159_999 => PgOutputProtocol {
                version: 2,
                streaming: Some("on"),
                messages: true,
            },
            _ => PgOutputProtocol {
                version: 4,
                streaming: Some("parallel"),
                messages: true,
            },
        }
    }

    /// The option list of `START_REPLICATION … LOGICAL <lsn> (…)` for `publication`.
    pub fn start_options(&self, publication: &str) -> String {
        // publication_names is a comma-separated identifier list inside a string literal.
        let names = quote_literal(&quote_identifier(publication));
        let mut options = format!(
            "proto_version '{}', publication_names {names}",
            self.version
        );
        if let Some(streaming) = self.streaming {
            options.push_str(&format!(", streaming '{streaming}'"));
        }
        if self.messages {
            options.push_str(", messages 'true'");
        }
        options
    }
}

/// What `IDENTIFY_SYSTEM` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's system identifier (a 64-bit number, as text).
    pub systemid: String,
    pub timeline: u32,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
    pub dbname: Option<String>,
}

/// What to do with the snapshot of a new slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    /// Export it; its name is in [`CreatedSlot::snapshot_name`], usable with `SET TRANSACTION
    /// SNAPSHOT` from other connections until this connection runs its next command.
    Export,
    /// Do not export it.
    NoExport,
    /// Use it in the current transaction of this connection (after `BEGIN ISOLATION LEVEL
    /// REPEATABLE READ`).
    Use,
}

/// A newly created slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// The position from which the slot's changes start.
    pub consistent_point: Lsn,
    pub snapshot_name: Option<String>,
}

/// A row of `pg_replication_slots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub slot_name: String,
    /// `None` for a physical slot.
    pub plugin: Option<String>,
    /// `logical` or `physical`.
    pub slot_type: String,
    pub database: Option<String>,
    pub temporary: bool,
    pub active: bool,
    pub active_pid: Option<i32>,
    /// The streaming connection's `application_name` and address, as far as
    /// `pg_stat_activity` shows them to this user (e.g. `"dbmazz" from 10.0.0.5`).
    pub active_client: Option<String>,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
    /// Why PostgreSQL invalidated the slot (PostgreSQL 17+), e.g. `wal_removed`.
    pub invalidation_reason: Option<String>,
}

impl SlotInfo {
    /// Whether PostgreSQL gave up on this slot: its WAL is gone.
    pub fn is_invalidated(&self) -> bool {
        self.wal_status.as_deref() == Some("lost") || self.invalidation_reason.is_some()
    }
}

/// A `replication=database` connection that is not streaming yet.
pub struct ReplicationClient {
    connection: Connection,
    server_version_num: u32,
}

impl ReplicationClient {
    /// Connects and authenticates (see [`PgConnectConfig`] for TLS and timeouts).
    pub async fn connect(config: &PgConnectConfig) -> Result<Self, SourceError> {
        let connection = Connection::connect(config, true).await?;
        let version_text = connection
            .parameters
            .get("server_version")
            .ok_or_else(|| protocol("the server did not report server_version"))?;
        let server_version_num = parse_server_version(version_text)
            .ok_or_else(|| protocol(format!("cannot read the server version {version_text:?}")))?;
        Ok(ReplicationClient {
            connection,
            server_version_num,
        })
    }

    /// `server_version_num` as PostgreSQL computes it, e.g. 150018 or 180001.
    pub fn server_version_num(&self) -> u32 {
        self.server_version_num
    }

    /// A run-time parameter the server reported (`server_version`, `TimeZone`, `DateStyle`, …).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.connection.parameters.get(name).map(String::as_str)
    }

    /// Whether the connection is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.connection.stream, Transport::Tls(_))
    }

    /// How the server authenticated this connection.
    pub fn auth_method(&self) -> AuthMethod {
        self.connection.auth_method
    }

    /// The pgoutput protocol [`ReplicationClient::start_replication`] will ask for.
    pub fn pgoutput_protocol(&self) -> PgOutputProtocol {
        PgOutputProtocol::for_server_version(self.server_version_num)
    }

    /// Runs SQL (or a replication command) and returns all rows as text.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, SourceError> {
        self.connection.simple_query(sql).await
    }

    /// `IDENTIFY_SYSTEM`.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, SourceError> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = single_row(&rows, "IDENTIFY_SYSTEM", 4)?;
        let timeline = required(row, 1, "IDENTIFY_SYSTEM timeline")?;
        Ok(SystemIdentity {
            systemid: required(row, 0, "IDENTIFY_SYSTEM systemid")?.to_string(),
            timeline: timeline
                .parse()
                .map_err(|_| protocol(format!("IDENTIFY_SYSTEM timeline {timeline:?}")))?,
            xlogpos: parse_lsn(required(row, 2, "IDENTIFY_SYSTEM xlogpos")?)?,
            dbname: row[3].clone(),
        })
    }

    /// `CREATE_REPLICATION_SLOT "slot" LOGICAL pgoutput` with the given snapshot action.
    pub async fn create_logical_slot(
        &mut self,
        slot: &str,
        snapshot: SnapshotAction,
    ) -> Result<CreatedSlot, SourceError> {
        validate_slot_name(slot)?;
        let command = if self.server_version_num >= 150_000 {
            let action = match snapshot {
                SnapshotAction::Export => "export",
                SnapshotAction::NoExport => "nothing",
                SnapshotAction::Use => "use",
            };
            format!("CREATE_REPLICATION_SLOT \"{slot}\" LOGICAL pgoutput (SNAPSHOT '{action}')")
        } else {
            let action = match snapshot {
                SnapshotAction::Export => "EXPORT_SNAPSHOT",
                SnapshotAction::NoExport => "NOEXPORT_SNAPSHOT",
                SnapshotAction::Use => "USE_SNAPSHOT",
            };
            format!("CREATE_REPLICATION_SLOT \"{slot}\" LOGICAL pgoutput {action}")
        };
        let rows = self.simple_query(&command).await?;
        let row = single_row(&rows, "CREATE_REPLICATION_SLOT", 4)?;
        Ok(CreatedSlot {
            consistent_point: parse_lsn(required(row, 1, "consistent_point")?)?,
            snapshot_name: row[2].clone(),
        })
    }

    /// `DROP_REPLICATION_SLOT "slot"`, waiting for it to become inactive when `wait` is set.
    pub async fn drop_slot(&mut self, slot: &str, wait: bool) -> Result<(), SourceError> {
        validate_slot_name(slot)?;
        let wait = if wait { " WAIT" } else { "" };
        self.simple_query(&format!("DROP_REPLICATION_SLOT \"{slot}\"{wait}"))
            .await
            .map_err(|error| error.for_slot(slot))?;
        Ok(())
    }

    /// The slot's row of `pg_replication_slots`, or `None` if there is no such slot.
    pub async fn slot_info(&mut self, slot: &str) -> Result<Option<SlotInfo>, SourceError> {
        validate_slot_name(slot)?;
        let wal_status = if self.server_version_num >= 130_000 {
            "wal_status"
        } else {
            "NULL::text"
        };
        let invalidation_reason = if self.server_version_num >= 170_000 {
            "invalidation_reason"
        } else {
            "NULL::text"
        };
        let sql = format!(
            "SELECT slot_name::text, plugin::text, slot_type, database::text, temporary::text, \
             active::text, active_pid::text, restart_lsn::text, confirmed_flush_lsn::text, \
             {wal_status}, {invalidation_reason}, a.application_name, host(a.client_addr) \
             FROM pg_catalog.pg_replication_slots s \
             LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid \
             WHERE slot_name = '{slot}'"
        );
        let rows = self.simple_query(&sql).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        if row.len() < 13 {
            return Err(protocol("pg_replication_slots row has too few columns"));
        }
        let optional_lsn = |index: usize| row[index].as_deref().map(parse_lsn).transpose();
        let active_pid = row[6]
            .as_deref()
            .map(|pid| pid.parse::<i32>())
            .transpose()
            .map_err(|_| protocol("pg_replication_slots.active_pid is not a number"))?;
        Ok(Some(SlotInfo {
            slot_name: required(row, 0, "slot_name")?.to_string(),
            plugin: row[1].clone(),
            slot_type: required(row, 2, "slot_type")?.to_string(),
            database: row[3].clone(),
            temporary: row[4].as_deref() == Some("true"),
            active: row[5].as_deref() == Some("true"),
            active_pid,
            active_client: describe_client(row[11].as_deref(), row[12].as_deref()),
            restart_lsn: optional_lsn(7)?,
            confirmed_flush_lsn: optional_lsn(8)?,
            wal_status: row[9].clone(),
            invalidation_reason: row[10].clone(),
        }))
    }

    /// `START_REPLICATION SLOT "slot" LOGICAL start (…)` with [`Self::pgoutput_protocol`].
    ///
    /// `start` may be [`Lsn::ZERO`]: the server then starts at the slot's confirmed position.
    pub async fn start_replication(
        mut self,
        slot: &str,
        start: Lsn,
        publication: &str,
    ) -> Result<ReplicationStream, SourceError> {
        validate_slot_name(slot)?;
        let options = self.pgoutput_protocol().start_options(publication);
        let command = format!("START_REPLICATION SLOT \"{slot}\" LOGICAL {start} ({options})");
        frontend::query(&command, self.connection.write_buf())
            .map_err(|error| protocol(format!("cannot encode START_REPLICATION: {error}")))?;
        self.connection.flush().await?;
        // CopyBothResponse ('W') means streaming has begun.
        let frame = self.connection.read_message().await?;
        match frame.tag {
            b'W' => {}
            b'E' => return Err(self.connection.server_error(&frame.body).for_slot(slot)),
            other => return Err(unexpected(other, "START_REPLICATION")),
        }
        let Connection {
            stream,
            read_buf,
            user,
            ..
        } = self.connection;
        // A duplicate of a TCP socket's descriptor, for its low-water mark (see `low_water.rs`).
        let tcp_socket = match &stream {
            Transport::Tcp(tcp) => tcp.as_fd().try_clone_to_owned().ok(),
            Transport::Tls(tls) => tls.get_ref().0.as_fd().try_clone_to_owned().ok(),
            Transport::Unix(_) => None,
        };
        let (read, write) = tokio::io::split(stream);
        Ok(ReplicationStream {
            reader: ReplicationReader {
                read,
                buf: read_buf,
                slot: slot.to_string(),
                user,
                finished: false,
                last_read: 0,
                tcp_socket,
                low_water: None,
            },
            writer: ReplicationWriter {
                write,
                buf: BytesMut::with_capacity(64),
            },
        })
    }

    /// Closes the connection politely.
    pub async fn close(self) -> Result<(), SourceError> {
        self.connection.terminate().await
    }
}

impl std::fmt::Debug for ReplicationClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationClient")
            .field("user", &self.connection.user)
            .field("server_version_num", &self.server_version_num)
            .field("tls", &self.is_tls())
            .field("auth_method", &self.connection.auth_method)
            .finish_non_exhaustive()
    }
}

/// A connection in CopyBoth mode. Use it from one task, or [`ReplicationStream::split`] it.
#[derive(Debug)]
pub struct ReplicationStream {
    reader: ReplicationReader,
    writer: ReplicationWriter,
}

impl ReplicationStream {
    /// The reading and writing halves, usable from two tasks.
    pub fn split(self) -> (ReplicationReader, ReplicationWriter) {
        (self.reader, self.writer)
    }

    /// See [`ReplicationReader::next_copy_data`].
    pub async fn next_copy_data(&mut self) -> Result<Option<Bytes>, SourceError> {
        self.reader.next_copy_data().await
    }

    /// See [`ReplicationWriter::send_status_update`].
    pub async fn send_status_update(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply_requested: bool,
    ) -> Result<(), SourceError> {
        self.writer
            .send_status_update(write, flush, apply, reply_requested)
            .await
    }
}

/// The receiving half of a replication stream.
pub struct ReplicationReader {
    read: ReadHalf<Transport>,
    buf: BytesMut,
    slot: String,
    user: String,
    finished: bool,
    /// Bytes the last socket read brought (for read pacing).
    last_read: usize,
    tcp_socket: Option<OwnedFd>,
    low_water: Option<LowWater>,
}

impl ReplicationReader {
    /// The next CopyData payload: XLogData (`w…`) or a primary keepalive (`k…`), as a zero-copy
    /// slice of the read buffer. `None` once the server ended the stream (CopyDone).
    ///
    /// Cancel-safe: dropping the future (e.g. in `tokio::select!`) loses no data.
    ///
    /// A payload shares its read chunk (≥ 256 KiB) with its neighbours and keeps it alive;
    /// copy out what must be held for long (e.g. a spilled transaction's values).
    pub async fn next_copy_data(&mut self) -> Result<Option<Bytes>, SourceError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if let Some(frame) = split_frame(&mut self.buf)? {
                if let Some(payload) = self.accept(frame)? {
                    return Ok(Some(payload));
                }
                continue;
            }
            self.last_read = fill_buffer(&mut self.read, &mut self.buf).await?;
        }
    }

    /// Wake the reader only once `bytes` are queued on the socket (TCP only; see
    /// `low_water.rs`). Until [`Self::lower_low_water`], a read waits for that much data.
    pub fn set_low_water(&mut self, bytes: usize) -> std::io::Result<()> {
        let socket = self.tcp_socket.take().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::Unsupported, "not a TCP connection")
        })?;
        self.low_water = Some(LowWater::set(socket, bytes)?);
        Ok(())
    }

    /// Whether [`Self::set_low_water`] took.
    pub fn has_low_water(&self) -> bool {
        self.low_water.is_some()
    }

    /// Lets the next read take whatever is queued (the low-water wait lasted long enough).
    pub fn lower_low_water(&mut self) -> std::io::Result<()> {
        self.low_water.as_mut().map_or(Ok(()), LowWater::lower)
    }

    /// Back to the full low-water mark after a read.
    pub fn raise_low_water(&mut self) -> std::io::Result<()> {
        self.low_water.as_mut().map_or(Ok(()), LowWater::raise)
    }

    /// Bytes the last socket read brought.
    pub fn last_read_len(&self) -> usize {
        self.last_read
    }

    /// The next CopyData payload that is already complete in the read buffer, without touching
    /// the socket: lets the caller handle a whole socket read per wake-up. `None` when nothing
    /// complete is buffered or the stream ended (then [`Self::next_copy_data`] says which).
    pub fn try_next_buffered(&mut self) -> Result<Option<Bytes>, SourceError> {
        while !self.finished {
            let Some(frame) = split_frame(&mut self.buf)? else {
                return Ok(None);
            };
            if let Some(payload) = self.accept(frame)? {
                return Ok(Some(payload));
            }
        }
        Ok(None)
    }

    /// A backend message during streaming: the CopyData payload, or `None` for messages that
    /// are not part of the stream (and for CopyDone, which ends it).
    fn accept(&mut self, frame: Frame) -> Result<Option<Bytes>, SourceError> {
        match frame.tag {
            b'd' => Ok(Some(frame.body)),
            // CopyDone; or CommandComplete alone, which a walsender sends when the server
            // shuts down (`WalSndDone`): both end the stream.
            b'c' | b'C' => {
                self.finished = true;
                Ok(None)
            }
            b'E' => {
                let fields = ServerErrorFields::parse(&frame.body);
                Err(SourceError::from_server(fields, &self.user).for_slot(&self.slot))
            }
            // Notices, parameter changes, notifications: not part of the stream.
            b'N' | b'S' | b'A' => Ok(None),
            other => Err(unexpected(other, "replication streaming")),
        }
    }

    /// Bytes read from the socket but not yet returned.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }
}

impl std::fmt::Debug for ReplicationReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationReader")
            .field("slot", &self.slot)
            .field("buffered_len", &self.buf.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// `"app" from 10.0.0.5`, `"app"`, `from 10.0.0.5` or nothing, from `pg_stat_activity`.
fn describe_client(application: Option<&str>, address: Option<&str>) -> Option<String> {
    let application = application.filter(|name| !name.is_empty());
    match (application, address) {
        (Some(name), Some(address)) => Some(format!("{name:?} from {address}")),
        (Some(name), None) => Some(format!("{name:?}")),
        (None, Some(address)) => Some(format!("from {address}")),
        (None, None) => None,
    }
}

/// The sending half of a replication stream.
pub struct ReplicationWriter {
    write: WriteHalf<Transport>,
    buf: BytesMut,
}

impl ReplicationWriter {
    /// Sends a Standby Status Update stamped with the current time. `flush` is what the slot's
    /// `confirmed_flush_lsn` moves to: only report positions that are durable downstream.
    pub async fn send_status_update(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply_requested: bool,
    ) -> Result<(), SourceError> {
        let payload =
            encode_standby_status_update(write, flush, apply, SystemTime::now(), reply_requested);
        self.send_copy_data(payload).await
    }

    /// Sends any CopyData payload (e.g. a hot-standby feedback message).
    pub async fn send_copy_data(&mut self, payload: Bytes) -> Result<(), SourceError> {
        self.buf.clear();
        frontend::CopyData::new(payload)
            .map_err(|error| protocol(format!("cannot encode CopyData: {error}")))?
            .write(&mut self.buf);
        self.write_buffer().await
    }

    /// Ends the stream from our side; the server answers with CopyDone, which the reader sees
    /// as `None`.
    pub async fn send_copy_done(&mut self) -> Result<(), SourceError> {
        self.buf.clear();
        frontend::copy_done(&mut self.buf);
        self.write_buffer().await
    }

    async fn write_buffer(&mut self) -> Result<(), SourceError> {
        self.write.write_all(&self.buf).await?;
        self.write.flush().await?;
        Ok(())
    }
}

impl std::fmt::Debug for ReplicationWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationWriter").finish_non_exhaustive()
    }
}

/// The Standby Status Update message (`r`): write, flush and apply positions, the client's
/// clock in microseconds since 2000-01-01 UTC, and whether the server should reply at once.
pub fn encode_standby_status_update(
    write: Lsn,
    flush: Lsn,
    apply: Lsn,
    now: SystemTime,
    reply_requested: bool,
) -> Bytes {
    let unix_micros = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros();
    let postgres_micros =
        i64::try_from(unix_micros).unwrap_or(i64::MAX) - POSTGRES_EPOCH_UNIX_MICROS as i64;
    let mut message = BytesMut::with_capacity(34);
    message.put_u8(b'r');
    message.put_u64(write.0);
    message.put_u64(flush.0);
    message.put_u64(apply.0);
    message.put_i64(postgres_micros);
    message.put_u8(u8::from(reply_requested));
    message.freeze()
}

/// `server_version` as `server_version_num`: "15.18 (Debian …)" → 150018, "18beta1" → 180000,
/// "9.6.24" → 90624.
pub(crate) fn parse_server_version(text: &str) -> Option<u32> {
    let numeric: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').filter(|part| !part.is_empty());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next().map_or(Some(0), |part| part.parse().ok())?;
    if major >= 10 {
        return Some(major * 10_000 + minor);
    }
    let patch: u32 = parts.next().map_or(Some(0), |part| part.parse().ok())?;
    Some(major * 10_000 + minor * 100 + patch)
}

/// Slot names are 1–63 of `[a-z0-9_]` (PostgreSQL's own rule), so they need no escaping.
fn validate_slot_name(slot: &str) -> Result<(), SourceError> {
    let valid = (1..=63).contains(&slot.len())
        && slot
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(SourceError::InvalidSlotName {
            slot: slot.to_string(),
        })
    }
}

/// `"name"` with embedded quotes doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on since 9.1).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn parse_lsn(text: &str) -> Result<Lsn, SourceError> {
    text.parse()
        .map_err(|_| protocol(format!("the server sent an invalid LSN {text:?}")))
}

fn single_row<'a>(
    rows: &'a [Vec<Option<String>>],
    command: &str,
    columns: usize,
) -> Result<&'a [Option<String>], SourceError> {
    match rows {
        [row] if row.len() >= columns => Ok(row),
        _ => Err(protocol(format!(
            "{command} returned {} rows, expected one with {columns} columns",
            rows.len()
        ))),
    }
}

fn required<'a>(
    row: &'a [Option<String>],
    index: usize,
    what: &str,
) -> Result<&'a str, SourceError> {
    row.get(index)
        .and_then(|value| value.as_deref())
        .ok_or_else(|| protocol(format!("{what} is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_standby_status_update_byte_by_byte() {
        // 2000-01-01 00:00:01.5 UTC = 1_500_000 µs after the PostgreSQL epoch.
        let now = UNIX_EPOCH + Duration::from_micros(POSTGRES_EPOCH_UNIX_MICROS + 1_500_000);
        let message = encode_standby_status_update(
            Lsn(0x0102_0304_0506_0708),
            Lsn(0x16_B374_D848),
            Lsn(1),
            now,
            true,
        );
        let mut expected = vec![b'r'];
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend_from_slice(&[0, 0, 0, 0x16, 0xB3, 0x74, 0xD8, 0x48]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(&1_500_000i64.to_be_bytes());
        expected.push(1);
        assert_eq!(&message[..], &expected[..]);
        assert_eq!(message.len(), 34);

        let no_reply = encode_standby_status_update(Lsn(0), Lsn(0), Lsn(0), now, false);
        assert_eq!(no_reply[33], 0);
        // Before 2000 the clock is negative, never a panic.
        let old = encode_standby_status_update(Lsn(0), Lsn(0), Lsn(0), UNIX_EPOCH, false);
        assert_eq!(
            &old[25..33],
            &(-(POSTGRES_EPOCH_UNIX_MICROS as i64)).to_be_bytes()
        );
    }

    #[test]
    fn picks_the_highest_pgoutput_protocol() {
        let v13 = PgOutputProtocol::for_server_version(130_012);
        assert_eq!((v13.version, v13.streaming, v13.messages), (1, None, false));
        let v15 = PgOutputProtocol::for_server_version(150_018);
        assert_eq!(
            (v15.version, v15.streaming, v15.messages),
            (2, Some("on"), true)
        );
        let v16 = PgOutputProtocol::for_server_version(160_000);
        assert_eq!((v16.version, v16.streaming), (4, Some("parallel")));
        let v18 = PgOutputProtocol::for_server_version(180_001);
        assert_eq!((v18.version, v18.streaming), (4, Some("parallel")));
    }

    #[test]
    fn quotes_publication_names_in_start_options() {
        let options = PgOutputProtocol::for_server_version(150_000).start_options("My \"pub\" o'k");
        assert_eq!(
            options,
            "proto_version '2', publication_names '\"My \"\"pub\"\" o''k\"', streaming 'on', \
             messages 'true'"
        );
        let v1 = PgOutputProtocol::for_server_version(120_000).start_options("p");
        assert_eq!(v1, "proto_version '1', publication_names '\"p\"'");
    }

    #[test]
    fn parses_server_versions() {
        assert_eq!(
            parse_server_version("15.18 (Debian 15.18-1.pgdg120+1)"),
            Some(150_018)
        );
        assert_eq!(parse_server_version("18.1"), Some(180_001));
        assert_eq!(parse_server_version("18beta1"), Some(180_000));
        assert_eq!(parse_server_version("9.6.24"), Some(90_624));
        assert_eq!(parse_server_version("devel"), None);
    }

    #[test]
    fn validates_slot_names() {
        assert!(validate_slot_name("dbmazz_slot_1").is_ok());
        for bad in ["", "Upper", "with-dash", "x\"; DROP", &"a".repeat(64)] {
            assert!(matches!(
                validate_slot_name(bad),
                Err(SourceError::InvalidSlotName { .. })
            ));
        }
    }
}
