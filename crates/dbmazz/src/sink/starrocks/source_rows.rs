//! Values PostgreSQL did not send, read back from PostgreSQL: the unchanged TOAST values of an
//! UPDATE that changed the key, when the old row is not in the batch.
//!
//! Reading them from StarRocks's old-key row is exact only when StarRocks is not ahead of the
//! change: after a crash the stream replays changes whose later effects StarRocks already
//! holds (a row moved away, then a new row inserted at the old key), and the old key's row
//! would lend the new row's values. PostgreSQL's current row at the new key converges in every
//! order: a later change to the column carries its value and follows in the stream, and a
//! later delete or move of the row follows too.
//!
//! The same connection reads the source's domains again when a table shows a type created
//! after the start.

use std::collections::BTreeMap;

use tokio::sync::Mutex;

use crate::schema::TableSchema;
use crate::source::{connect_sql, quote_ident, read_domains, PgConnectConfig, SourceError};

/// A lazily opened SQL connection to the source, shared by the sink's loads.
pub struct SourceRows {
    connect: PgConnectConfig,
    client: Mutex<Option<tokio_postgres::Client>>,
}

impl SourceRows {
    pub fn new(connect: PgConnectConfig) -> Self {
        SourceRows {
            connect,
            client: Mutex::new(None),
        }
    }

    /// `columns` (indexes into `schema.columns`) of the row whose key columns hold `key` (text
    /// values, in key order), in PostgreSQL's text output form — the form pgoutput sends.
    /// `Ok(None)` when PostgreSQL has no such row now (a later change removed it; it follows in
    /// the stream). One reconnect when the kept connection broke.
    pub async fn read(
        &self,
        schema: &TableSchema,
        key: &[(usize, String)],
        columns: &[usize],
    ) -> Result<Option<Vec<Option<String>>>, SourceError> {
        let select: Vec<String> = columns
            .iter()
            .map(|&index| quote_ident(&schema.columns[index].name))
            .collect();
        let conditions: Vec<String> = key
            .iter()
            .map(|(index, value)| {
                format!(
                    "{} = '{}'",
                    quote_ident(&schema.columns[*index].name),
                    value.replace('\'', "''")
                )
            })
            .collect();
        // The quoting above relies on standard strings (a backslash is a plain character).
        let statement = format!(
            "SET standard_conforming_strings = on; SELECT {} FROM {}.{} WHERE {}",
            select.join(", "),
            quote_ident(&schema.name.schema),
            quote_ident(&schema.name.name),
            conditions.join(" AND ")
        );
        let messages = self.simple_query(&statement).await?;
        let row = messages.iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        Ok(row.map(|row| {
            (0..columns.len())
                .map(|index| row.get(index).map(str::to_string))
                .collect()
        }))
    }

    /// The source's domains now (see [`read_domains`]).
    pub async fn domains(&self) -> Result<BTreeMap<u32, (u32, i32)>, SourceError> {
        let client = self.open().await?;
        let Some(open) = client.as_ref() else {
            return Err(SourceError::Protocol("no source connection".into()));
        };
        read_domains(open).await
    }

    /// One reconnect when the kept connection broke.
    async fn simple_query(
        &self,
        statement: &str,
    ) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, SourceError> {
        for attempt in 0..2 {
            let mut client = self.open().await?;
            let Some(open) = client.as_ref() else {
                continue;
            };
            match open.simple_query(statement).await {
                Ok(messages) => return Ok(messages),
                Err(error) if attempt == 0 && error.is_closed() => *client = None,
                Err(error) => return Err(error.into()),
            }
        }
        Err(SourceError::Protocol(
            "the source connection closed twice".into(),
        ))
    }

    /// The kept connection, opened when there is none or it closed.
    async fn open(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<tokio_postgres::Client>>, SourceError> {
        let mut client = self.client.lock().await;
        if client
            .as_ref()
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            *client = Some(connect_sql(&self.connect).await?);
        }
        Ok(client)
    }
}
