//! Getting PostgreSQL ready to stream: `wal_level`, the publication and the slot.
//!
//! The publication is created for the configured tables when missing; an existing one must
//! cover them (we never silently change what another tool may rely on). The slot is created
//! when missing and **never** dropped or recreated: it is the stream's checkpoint.

use std::collections::{BTreeMap, BTreeSet};

use super::error::SourceError;
use super::replication::{ReplicationClient, SlotInfo, SnapshotAction};
use crate::schema::{KeyOverrides, TableName};
use crate::Lsn;

/// Why PostgreSQL is not ready for dbmazz, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(
        "wal_level is {current}, logical replication needs wal_level = logical \
         (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)"
    )]
    WalLevel { current: String },
    #[error("table {table} does not exist (check source.tables)")]
    TableMissing { table: TableName },
    #[error(
        "table {table} has no primary key: StarRocks Primary Key tables need one \
         (ALTER TABLE {} ADD PRIMARY KEY (...)), or set REPLICA IDENTITY USING INDEX on a \
         unique NOT NULL index; or, with REPLICA IDENTITY FULL, name its key columns in \
         source.key_columns",
        quote_table(.table)
    )]
    NoPrimaryKey { table: TableName },
    /// A published column the destination cannot take under its name; `problem` says why
    /// and what to do.
    #[error("table {table}: {problem}")]
    ColumnName { table: TableName, problem: String },
    #[error(
        "publication {publication:?} does not exist and source.tables is empty: list the tables \
         to replicate in source.tables (dbmazz then creates the publication), or create it \
         yourself: CREATE PUBLICATION {} FOR TABLE ...",
        quote_ident(.publication)
    )]
    NoPublicationNoTables { publication: String },
    #[error(
        "publication {publication:?} does not exist and this user cannot create it ({reason}): \
         have the tables' owner (or a superuser) run {statement}"
    )]
    CannotCreatePublication {
        publication: String,
        reason: String,
        statement: String,
    },
    #[error("publication {publication:?} publishes no tables: ALTER PUBLICATION {publication} ADD TABLE ...")]
    EmptyPublication { publication: String },
    #[error(
        "publication {publication:?} does not publish {missing}: \
         ALTER PUBLICATION {publication} ADD TABLE {missing}"
    )]
    PublicationMissesTables {
        publication: String,
        missing: String,
    },
    #[error(
        "user {user:?} may not read {tables}: the snapshot copies them with SELECT (GRANT SELECT \
         ON {tables} TO {user}; `dbmazz check` lists every privilege dbmazz needs)"
    )]
    NoSelect { user: String, tables: String },
    #[error(
        "replication slot {slot:?} exists but {problem}; dbmazz never drops an existing slot: \
         choose another source.slot, or drop this one yourself if nothing else uses it \
         (SELECT pg_drop_replication_slot('{slot}'))"
    )]
    UnusableSlot { slot: String, problem: String },
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_table(table: &TableName) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    )
}

pub async fn check_wal_level(client: &tokio_postgres::Client) -> Result<(), SetupError> {
    let row = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(SourceError::from)?;
    let current: String = row.get(0);
    if current != "logical" {
        return Err(SetupError::WalLevel { current });
    }
    Ok(())
}

/// Makes sure `publication` exists and covers `tables`; returns the tables it publishes.
/// Tables in `keyed` (`source.key_columns`) need no key of their own.
pub async fn prepare_publication(
    client: &tokio_postgres::Client,
    publication: &str,
    tables: &[TableName],
    keyed: &KeyOverrides,
) -> Result<Vec<TableName>, SetupError> {
    for table in tables {
        check_table(client, table, keyed).await?;
    }
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(SourceError::from)?
        .is_some();
    if !exists {
        if tables.is_empty() {
            return Err(SetupError::NoPublicationNoTables {
                publication: publication.to_string(),
            });
        }
        let list = tables
            .iter()
            .map(quote_table)
            .collect::<Vec<_>>()
            .join(", ");
        // A partitioned table is one StarRocks table: publish its changes under the root's
        // name (PostgreSQL 13+), as the snapshot reads it.
        let via_root: bool = client
            .query_one(
                "SELECT current_setting('server_version_num')::int >= 130000",
                &[],
            )
            .await
            .map_err(SourceError::from)?
            .get(0);
        let options = if via_root {
            " WITH (publish_via_partition_root = true)"
        } else {
            ""
        };
        let sql = format!(
            "CREATE PUBLICATION {} FOR TABLE {list}{options}",
            quote_ident(publication)
        );
        if let Err(error) = client.batch_execute(&sql).await {
            let error = SourceError::from(error);
            if error.sqlstate() == Some("42501") {
                return Err(SetupError::CannotCreatePublication {
                    publication: publication.to_string(),
                    reason: crate::one_line(&error),
                    statement: sql,
                });
            }
            return Err(error.into());
        }
        tracing::info!(publication, tables = %list, "created publication");
    }
    let published = published_tables(client, publication).await?;
    let missing: Vec<String> = tables
        .iter()
        .filter(|table| !published.contains(table))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(SetupError::PublicationMissesTables {
            publication: publication.to_string(),
            missing: missing.join(", "),
        });
    }
    if published.is_empty() {
        return Err(SetupError::EmptyPublication {
            publication: publication.to_string(),
        });
    }
    for table in &published {
        check_table(client, table, keyed).await?;
    }
    Ok(published)
}

pub async fn published_tables(
    client: &tokio_postgres::Client,
    publication: &str,
) -> Result<Vec<TableName>, SourceError> {
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = $1 ORDER BY 1, 2",
            &[&publication],
        )
        .await?;
    let tables: Vec<TableName> = rows
        .iter()
        .map(|row| TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect();
    if let Some(dotted) = tables
        .iter()
        .find(|table| table.schema.contains('.') || table.name.contains('.'))
    {
        return Err(SourceError::UnaddressableTable {
            publication: publication.to_string(),
            table: format!(
                "{}.{}",
                quote_ident(&dotted.schema),
                quote_ident(&dotted.name)
            ),
        });
    }
    Ok(tables)
}

/// The columns `publication` publishes of each of its tables, in column order (a column
/// list, PostgreSQL 15+, leaves the others out).
pub async fn published_columns(
    client: &tokio_postgres::Client,
    publication: &str,
) -> Result<Vec<(TableName, Vec<String>)>, SourceError> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .get(0);
    let sql = if version >= 150000 {
        "SELECT schemaname::text, tablename::text, attnames::text[] FROM pg_publication_tables \
         WHERE pubname = $1"
    } else {
        "SELECT t.schemaname::text, t.tablename::text, \
                array_agg(a.attname::text ORDER BY a.attnum) \
         FROM pg_publication_tables t \
         JOIN pg_namespace n ON n.nspname = t.schemaname \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         WHERE t.pubname = $1 GROUP BY 1, 2"
    };
    let rows = client.query(sql, &[&publication]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
                row.get::<_, Vec<String>>(2),
            )
        })
        .collect())
}

/// The primary key columns (in key order) of every table under `REPLICA IDENTITY FULL`. pgoutput
/// flags all columns of such a table as key; dbmazz keys it by its primary key instead.
pub async fn full_identity_primary_keys(
    client: &tokio_postgres::Client,
) -> Result<Vec<(TableName, Vec<String>)>, SourceError> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, \
                    array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE c.relreplident = 'f' AND c.relkind IN ('r', 'p') \
             GROUP BY 1, 2",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
                row.get(2),
            )
        })
        .collect())
}

/// For each table of `publication` (`schema.table`), the catalog rows that put it there: its
/// `pg_publication_rel` row and, on PostgreSQL 15+, the `pg_publication_namespace` row of its
/// schema (`[0]` under `FOR ALL TABLES`). A table removed from the publication and added back
/// has none of the rows it had, even when no check saw it gone.
pub async fn publication_membership(
    client: &tokio_postgres::Client,
    publication: &str,
) -> Result<BTreeMap<String, BTreeSet<u32>>, SourceError> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .get(0);
    let schemas = if version >= 150000 {
        " UNION ALL \
         SELECT n.nspname::text, c.relname::text, pn.oid \
         FROM pg_publication p \
         JOIN pg_publication_namespace pn ON pn.pnpubid = p.oid \
         JOIN pg_namespace n ON n.oid = pn.pnnspid \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') \
         WHERE p.pubname = $1"
    } else {
        ""
    };
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, pr.oid \
                 FROM pg_publication p \
                 JOIN pg_publication_rel pr ON pr.prpubid = p.oid \
                 JOIN pg_class c ON c.oid = pr.prrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE p.pubname = $1{schemas} \
                 UNION ALL \
                 SELECT t.schemaname::text, t.tablename::text, 0::oid \
                 FROM pg_publication p JOIN pg_publication_tables t ON t.pubname = p.pubname \
                 WHERE p.pubname = $1 AND p.puballtables"
            ),
            &[&publication],
        )
        .await?;
    let mut members: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for row in &rows {
        let table = TableName::new(row.get::<_, String>(0), row.get::<_, String>(1));
        members
            .entry(table.to_string())
            .or_default()
            .insert(row.get::<_, u32>(2));
    }
    Ok(members)
}

/// The table exists and has a key StarRocks can use.
async fn check_table(
    client: &tokio_postgres::Client,
    table: &TableName,
    keyed: &KeyOverrides,
) -> Result<(), SetupError> {
    let row = client
        .query_opt(
            "SELECT c.relreplident::text, \
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid \
                            AND (i.indisprimary OR i.indisreplident)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(SourceError::from)?;
    let Some(row) = row else {
        return Err(SetupError::TableMissing {
            table: table.clone(),
        });
    };
    let has_key: bool = row.get(1);
    if !has_key && !keyed.covers(table) {
        return Err(SetupError::NoPrimaryKey {
            table: table.clone(),
        });
    }
    Ok(())
}

/// Where streaming starts and whether the slot was just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStart {
    pub start: Lsn,
    pub created: bool,
    pub snapshot_name: Option<String>,
}

/// Creates the slot when missing (without exporting a snapshot); otherwise checks it can be
/// streamed from.
pub async fn ensure_slot(
    client: &mut ReplicationClient,
    slot: &str,
    database: &str,
) -> Result<SlotStart, SetupError> {
    ensure_slot_with(client, slot, database, SnapshotAction::NoExport).await
}

/// [`ensure_slot`], creating a missing slot with `snapshot` (`Export`: the snapshot lives
/// until the next command on `client`).
pub async fn ensure_slot_with(
    client: &mut ReplicationClient,
    slot: &str,
    database: &str,
    snapshot: SnapshotAction,
) -> Result<SlotStart, SetupError> {
    match client.slot_info(slot).await? {
        Some(info) => {
            check_slot(&info, slot, database)?;
            let start = info.confirmed_flush_lsn.unwrap_or(Lsn::ZERO);
            Ok(SlotStart {
                start,
                created: false,
                snapshot_name: None,
            })
        }
        None => {
            tracing::info!(
                slot,
                "creating the replication slot (it waits for the transactions open now to end)"
            );
            let created = client.create_logical_slot(slot, snapshot).await?;
            tracing::info!(slot, consistent_point = %created.consistent_point, "created replication slot");
            Ok(SlotStart {
                start: created.consistent_point,
                created: true,
                snapshot_name: created.snapshot_name,
            })
        }
    }
}

fn check_slot(info: &SlotInfo, slot: &str, database: &str) -> Result<(), SetupError> {
    let unusable = |problem: String| SetupError::UnusableSlot {
        slot: slot.to_string(),
        problem,
    };
    if info.slot_type != "logical" {
        return Err(unusable(format!("is a {} slot", info.slot_type)));
    }
    if info.plugin.as_deref() != Some("pgoutput") {
        return Err(unusable(format!(
            "uses the output plugin {:?}, not pgoutput",
            info.plugin.as_deref().unwrap_or("")
        )));
    }
    if info.database.as_deref() != Some(database) {
        return Err(unusable(format!(
            "belongs to database {:?}, not {database:?}",
            info.database.as_deref().unwrap_or("")
        )));
    }
    if info.is_invalidated() {
        return Err(SourceError::SlotInvalidated {
            slot: slot.to_string(),
            reason: info
                .invalidation_reason
                .clone()
                .unwrap_or_else(|| "wal_status = lost".to_string()),
        }
        .into());
    }
    if info.active {
        return Err(SourceError::SlotInUse {
            slot: slot.to_string(),
            pid: info.active_pid,
            client: info.active_client.clone(),
        }
        .into());
    }
    Ok(())
}

/// The `tables` the connected user may not SELECT from (the snapshot reads them): checked
/// before the slot is created, so a missing grant does not leave a slot holding WAL.
pub async fn check_select_privilege(
    client: &tokio_postgres::Client,
    user: &str,
    tables: &[TableName],
) -> Result<(), SetupError> {
    let schemas: Vec<&str> = tables.iter().map(|table| table.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
    let rows = client
        .query(
            "SELECT format('%I.%I', s, n) FROM unnest($1::text[], $2::text[]) AS t(s, n) \
             WHERE NOT has_table_privilege(format('%I.%I', s, n), 'SELECT')",
            &[&schemas, &names],
        )
        .await
        .map_err(SourceError::from)?;
    if rows.is_empty() {
        return Ok(());
    }
    let denied: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    Err(SetupError::NoSelect {
        user: user.to_string(),
        tables: denied.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_sql_quotes_names_as_postgresql_needs() {
        let message = SetupError::NoPublicationNoTables {
            publication: "MyPub".into(),
        }
        .to_string();
        // Unquoted, PostgreSQL would create `mypub` and the check would fail again.
        assert!(
            message.contains("CREATE PUBLICATION \"MyPub\" FOR TABLE ..."),
            "{message}"
        );
        let message = SetupError::NoPrimaryKey {
            table: TableName::new("Sales Data", "Orders"),
        }
        .to_string();
        assert!(
            message.contains("ALTER TABLE \"Sales Data\".\"Orders\" ADD PRIMARY KEY"),
            "{message}"
        );
    }
}
