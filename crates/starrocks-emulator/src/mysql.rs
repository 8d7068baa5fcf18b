//! MySQL protocol front end (FE port 9030, spec §6.1) on `opensrv-mysql`.
//!
//! Each connection gets a [`Session`]; every query goes through [`crate::sql::execute`].
//! Prepared statements (as mysql_async's `exec*` use) are emulated by substituting the
//! parameters as SQL literals; their result columns are all strings.
//! Errors are ERR packets with StarRocks's codes (1064 for most) and messages.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use opensrv_mysql::ValueInner;
use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ColumnType as MyType, ErrorKind,
    InitWriter, OkResponse, ParamParser, QueryResultWriter, StatementMetaWriter,
};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::sql::{execute, QueryOutput, Session};
use crate::types::ColumnType;

struct Backend {
    engine: Arc<Engine>,
    session: Session,
    connection_id: u32,
    /// Prepared statements: id → SQL text with `?` placeholders.
    statements: HashMap<u32, String>,
    next_statement: u32,
    /// This connection's auth challenge.
    scramble: [u8; 20],
}

/// A fresh auth challenge per connection, as `MysqlPassword.createRandomString`: random bytes,
/// each non-letter mapped to `'a' + (byte % 26)` (Java's signed byte), so never 0.
fn random_scramble() -> [u8; 20] {
    let mut random = [0u8; 32];
    random[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    random[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut scramble = [0u8; 20];
    for (out, byte) in scramble.iter_mut().zip(random) {
        *out = if byte.is_ascii_alphabetic() {
            byte
        } else {
            (i16::from(b'a') + i16::from(byte as i8 % 26)) as u8
        };
    }
    scramble
}

/// Positions of `?` placeholders outside quotes.
fn placeholders(sql: &str) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in sql.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '?') => positions.push(i),
            _ => {}
        }
    }
    positions
}

/// A binary-protocol DATE/DATETIME as SQL text.
fn binary_datetime(bytes: &[u8], with_time: bool) -> String {
    let get = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0));
    let year = get(0) | (get(1) << 8);
    let date = format!("{year:04}-{:02}-{:02}", get(2), get(3));
    if !with_time {
        return date;
    }
    let micros = get(7) | (get(8) << 8) | (get(9) << 16) | (get(10) << 24);
    let mut text = format!("{date} {:02}:{:02}:{:02}", get(4), get(5), get(6));
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text
}

/// A parameter as a SQL literal.
fn literal(value: opensrv_mysql::Value<'_>) -> String {
    match value.into_inner() {
        ValueInner::NULL => "NULL".into(),
        ValueInner::Int(i) => i.to_string(),
        ValueInner::UInt(u) => u.to_string(),
        ValueInner::Double(f) => f.to_string(),
        ValueInner::Date(b) => format!("'{}'", binary_datetime(b, false)),
        ValueInner::Datetime(b) => format!("'{}'", binary_datetime(b, true)),
        ValueInner::Bytes(b) | ValueInner::Time(b) => {
            let text = String::from_utf8_lossy(b);
            format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
        }
    }
}

/// The ERR packet code. opensrv-mysql writes only MySQL's own codes (and panics on others), so
/// StarRocks's 5509 ERR_BAD_FIELD_ERROR goes out as MySQL's 1054 ER_BAD_FIELD_ERROR: same
/// message template, same SQLSTATE 42S22 (spec §6.3a).
fn error_kind(code: u16) -> ErrorKind {
    match code {
        5509 => ErrorKind::ER_BAD_FIELD_ERROR,
        code => ErrorKind::from(code),
    }
}

/// Write a statement's outcome; `binary` declares every column as a string (prepared
/// statements use the binary row format, and strings convert on the client).
async fn write_output<'a, W: AsyncWrite + Send + Unpin>(
    output: Result<QueryOutput, crate::catalog::SqlError>,
    results: QueryResultWriter<'a, W>,
    binary: bool,
) -> std::io::Result<()> {
    match output {
        Err(e) => {
            results
                .error(error_kind(e.code), e.message.as_bytes())
                .await
        }
        Ok(QueryOutput::Ok { affected_rows }) => {
            results
                .completed(OkResponse {
                    affected_rows,
                    ..OkResponse::default()
                })
                .await
        }
        Ok(QueryOutput::Rows { columns, rows }) => {
            let cols: Vec<Column> = columns
                .iter()
                .map(|c| Column {
                    table: String::new(),
                    column: c.name.clone(),
                    coltype: if binary {
                        MyType::MYSQL_TYPE_VAR_STRING
                    } else {
                        mysql_type(&c.ty)
                    },
                    colflags: ColumnFlags::empty(),
                })
                .collect();
            let mut writer = results.start(&cols).await?;
            for row in rows {
                for value in row {
                    writer.write_col(value.to_text())?;
                }
                writer.end_row().await?;
            }
            writer.finish().await
        }
    }
}

fn mysql_type(ty: &ColumnType) -> MyType {
    match ty {
        ColumnType::Boolean | ColumnType::TinyInt => MyType::MYSQL_TYPE_TINY,
        ColumnType::SmallInt => MyType::MYSQL_TYPE_SHORT,
        ColumnType::Int => MyType::MYSQL_TYPE_LONG,
        ColumnType::BigInt => MyType::MYSQL_TYPE_LONGLONG,
        ColumnType::LargeInt => MyType::MYSQL_TYPE_VAR_STRING,
        ColumnType::Float => MyType::MYSQL_TYPE_FLOAT,
        ColumnType::Double => MyType::MYSQL_TYPE_DOUBLE,
        ColumnType::Decimal { .. } => MyType::MYSQL_TYPE_NEWDECIMAL,
        ColumnType::Date => MyType::MYSQL_TYPE_DATE,
        ColumnType::DateTime => MyType::MYSQL_TYPE_DATETIME,
        ColumnType::Varbinary => MyType::MYSQL_TYPE_BLOB,
        _ => MyType::MYSQL_TYPE_VAR_STRING,
    }
}

/// `mysql_native_password` check: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
fn native_password_ok(password: &str, salt: &[u8], response: &[u8]) -> bool {
    if password.is_empty() {
        return response.is_empty();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(salt);
    hasher.update(stage2);
    let mix = hasher.finalize();
    let expected: Vec<u8> = stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
    expected == response
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Backend {
    type Error = std::io::Error;

    fn version(&self) -> String {
        crate::sql::MYSQL_SERVER_VERSION.to_string()
    }

    fn connect_id(&self) -> u32 {
        self.connection_id
    }

    fn salt(&self) -> [u8; 20] {
        self.scramble
    }

    async fn authenticate(
        &self,
        auth_plugin: &str,
        username: &[u8],
        salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let user = String::from_utf8_lossy(username);
        if user != self.engine.user.as_str() {
            return false;
        }
        match auth_plugin {
            "mysql_clear_password" => {
                let given = auth_data.strip_suffix(&[0]).unwrap_or(auth_data);
                given == self.engine.password.as_bytes()
            }
            _ => native_password_ok(
                &self.engine.password,
                &salt[..20.min(salt.len())],
                auth_data,
            ),
        }
    }

    async fn on_prepare<'a>(
        &'a mut self,
        query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        self.next_statement += 1;
        let id = self.next_statement;
        let params: Vec<Column> = placeholders(query)
            .iter()
            .map(|_| Column {
                table: String::new(),
                column: "?".into(),
                coltype: MyType::MYSQL_TYPE_VAR_STRING,
                colflags: ColumnFlags::empty(),
            })
            .collect();
        self.statements.insert(id, query.to_string());
        info.reply(id, &params, &[]).await
    }

    async fn on_execute<'a>(
        &'a mut self,
        id: u32,
        params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        let Some(sql) = self.statements.get(&id).cloned() else {
            return results
                .error(
                    ErrorKind::ER_UNKNOWN_STMT_HANDLER,
                    b"Unknown prepared statement handler",
                )
                .await;
        };
        let values: Vec<String> = params.into_iter().map(|p| literal(p.value)).collect();
        let mut text = String::with_capacity(sql.len() + values.len() * 8);
        let mut last = 0;
        for (position, value) in placeholders(&sql).into_iter().zip(values.iter()) {
            text.push_str(&sql[last..position]);
            text.push_str(value);
            last = position + 1;
        }
        text.push_str(&sql[last..]);
        let output = execute(&self.engine, &mut self.session, &text);
        write_output(output, results, true).await
    }

    async fn on_close<'a>(&'a mut self, stmt: u32)
    where
        W: 'async_trait,
    {
        self.statements.remove(&stmt);
    }

    async fn on_init<'a>(
        &'a mut self,
        db: &'a str,
        writer: InitWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        match execute(&self.engine, &mut self.session, &format!("USE `{db}`")) {
            Ok(_) => writer.ok().await,
            Err(e) => writer.error(error_kind(e.code), e.message.as_bytes()).await,
        }
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        let output = execute(&self.engine, &mut self.session, query);
        write_output(output, results, false).await
    }
}

/// Accept MySQL connections until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut next_id: u32 = 1;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        // As the FE's MysqlServer (TCP_NODELAY): no Nagle delay on small result packets.
        let _ = stream.set_nodelay(true);
        let backend = Backend {
            engine: engine.clone(),
            session: Session::default(),
            connection_id: next_id,
            statements: HashMap::new(),
            next_statement: 0,
            scramble: random_scramble(),
        };
        next_id = next_id.wrapping_add(1);
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let (reader, writer) = stream.into_split();
            tokio::select! {
                _ = AsyncMysqlIntermediary::run_on(backend, reader, writer) => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}
