//! MySQL protocol front end (FE port 9030, spec §6.1) on `opensrv-mysql`.
//!
//! Each connection gets a [`Session`]; every query goes through [`crate::sql::execute`].
//! Errors are ERR packets with StarRocks's codes (1064 for most) and messages.

use std::sync::Arc;

use async_trait::async_trait;
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
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        info.error(
            ErrorKind::ER_UNKNOWN_ERROR,
            b"emulator: prepared statements are not supported",
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        results
            .error(
                ErrorKind::ER_UNKNOWN_ERROR,
                b"emulator: prepared statements are not supported",
            )
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_init<'a>(
        &'a mut self,
        db: &'a str,
        writer: InitWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        match execute(&self.engine, &mut self.session, &format!("USE `{db}`")) {
            Ok(_) => writer.ok().await,
            Err(e) => {
                writer
                    .error(ErrorKind::from(e.code), e.message.as_bytes())
                    .await
            }
        }
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> Result<(), Self::Error> {
        match execute(&self.engine, &mut self.session, query) {
            Err(e) => {
                results
                    .error(ErrorKind::from(e.code), e.message.as_bytes())
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
                        coltype: mysql_type(&c.ty),
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
        let backend = Backend {
            engine: engine.clone(),
            session: Session::default(),
            connection_id: next_id,
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
