//! Metadata statements and virtual tables: DESC, SHOW CREATE TABLE, information_schema,
//! SHOW ALTER TABLE COLUMN (spec §6.3, §6.4).

use crate::catalog::{unknown_table, Column, SqlError, TableSchema};
use crate::engine::Engine;
use crate::sql::exec::{format_time, int_col, s, text_col, QueryOutput, ResultColumn};
use crate::types::{ColumnType, Value};

/// DESC / SHOW COLUMNS: `Field, Type, Null, Key, Default, Extra`; `Key` is `true`/`false`.
pub(crate) fn desc(engine: &Engine, db: &str, table: &str) -> Result<QueryOutput, SqlError> {
    let catalog = engine.catalog.lock();
    let schema = catalog.table(db, table)?.schema.clone();
    let rows = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                s(c.name.clone()),
                s(c.ty.desc_name()),
                s(if c.nullable { "YES" } else { "NO" }),
                s(if i < schema.key_count {
                    "true"
                } else {
                    "false"
                }),
                c.default.clone().map(Value::Str).unwrap_or(Value::Null),
                s(""),
            ]
        })
        .collect();
    Ok(QueryOutput::Rows {
        columns: ["Field", "Type", "Null", "Key", "Default", "Extra"]
            .iter()
            .map(|n| text_col(n))
            .collect(),
        rows,
    })
}

/// SHOW [FULL] COLUMNS (`ShowExecutor.visitShowColumnStatement`): unlike DESC, `Key` is
/// `YES`/`NO`; FULL adds `Collation` (empty), `Privileges` (empty) and `Comment`.
pub(crate) fn show_columns(
    engine: &Engine,
    db: &str,
    table: &str,
    full: bool,
) -> Result<(Vec<ResultColumn>, Vec<Vec<Value>>), SqlError> {
    let catalog = engine.catalog.lock();
    let schema = catalog.table(db, table)?.schema.clone();
    drop(catalog);
    let names: &[&str] = if full {
        &[
            "Field",
            "Type",
            "Collation",
            "Null",
            "Key",
            "Default",
            "Extra",
            "Privileges",
            "Comment",
        ]
    } else {
        &["Field", "Type", "Null", "Key", "Default", "Extra"]
    };
    let rows = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let null = s(if c.nullable { "YES" } else { "NO" });
            let key = s(if i < schema.key_count { "YES" } else { "NO" });
            let default = c.default.clone().map(Value::Str).unwrap_or(Value::Null);
            let name = s(c.name.clone());
            let ty = s(c.ty.desc_name());
            if full {
                vec![
                    name,
                    ty,
                    s(""),
                    null,
                    key,
                    default,
                    s(""),
                    s(""),
                    s(c.comment.clone()),
                ]
            } else {
                vec![name, ty, null, key, default, s("")]
            }
        })
        .collect();
    Ok((names.iter().map(|n| text_col(n)).collect(), rows))
}

/// A column as `Column.toSql` writes it: `` `c` int(11) NULL DEFAULT "0" COMMENT "" ``.
pub(crate) fn column_sql(c: &Column) -> String {
    let mut line = format!(
        "`{}` {} {}",
        c.name,
        c.ty.info_schema_column_type(),
        if c.nullable { "NULL" } else { "NOT NULL" }
    );
    if let Some(d) = &c.default {
        if d == "CURRENT_TIMESTAMP" {
            line.push_str(" DEFAULT CURRENT_TIMESTAMP");
        } else {
            line.push_str(&format!(" DEFAULT \"{d}\""));
        }
    }
    line.push_str(&format!(" COMMENT \"{}\"", c.comment));
    line
}

/// The `SHOW CREATE TABLE` text.
pub fn show_create(schema: &TableSchema) -> String {
    let mut out = format!("CREATE TABLE `{}` (\n", schema.name);
    let lines: Vec<String> = schema
        .columns
        .iter()
        .map(|c| format!("  {}", column_sql(c)))
        .collect();
    out.push_str(&lines.join(",\n"));
    let keys: Vec<String> = schema
        .key_columns()
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    let dist: Vec<String> = schema
        .distributed_by
        .iter()
        .map(|c| format!("`{c}`"))
        .collect();
    out.push_str(&format!(
        "\n) ENGINE=OLAP \nPRIMARY KEY({})\nCOMMENT \"OLAP\"\nDISTRIBUTED BY HASH({})",
        keys.join(", "),
        dist.join(", ")
    ));
    if let Some(b) = schema.buckets {
        out.push_str(&format!(" BUCKETS {b}"));
    }
    out.push_str(" \nPROPERTIES (\n");
    let mut props: Vec<(String, String)> = vec![
        ("compression".into(), "LZ4".into()),
        ("enable_persistent_index".into(), "true".into()),
        ("fast_schema_evolution".into(), "true".into()),
        ("replicated_storage".into(), "true".into()),
        ("replication_num".into(), "3".into()),
    ];
    for (k, v) in &schema.properties {
        match props.iter_mut().find(|(pk, _)| pk == k) {
            Some(entry) => entry.1 = v.clone(),
            None => props.push((k.clone(), v.clone())),
        }
    }
    let prop_lines: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
        .collect();
    out.push_str(&prop_lines.join(",\n"));
    out.push_str("\n);");
    out
}

/// Rows to run a SELECT over.
pub(crate) struct Relation {
    pub(crate) columns: Vec<ResultColumn>,
    pub(crate) rows: Vec<Vec<Value>>,
    /// Set when the relation is a user table (for the COUNT(*) fast path).
    pub(crate) count_only: Option<usize>,
}

impl Relation {
    pub(crate) fn single_empty_row() -> Relation {
        Relation {
            columns: Vec::new(),
            rows: vec![Vec::new()],
            count_only: None,
        }
    }
}

pub(crate) fn relation_for(
    engine: &Engine,
    db: Option<&str>,
    table: &str,
) -> Result<Relation, SqlError> {
    let db = db.ok_or_else(|| SqlError::with_code(1046, "No database selected"))?;
    if db.eq_ignore_ascii_case("information_schema") {
        return information_schema(engine, &table.to_ascii_lowercase());
    }
    let catalog = engine.catalog.lock();
    let t = catalog.table(db, table)?;
    let columns = t
        .schema
        .columns
        .iter()
        .map(|c| ResultColumn {
            name: c.name.clone(),
            ty: c.ty.clone(),
        })
        .collect();
    Ok(Relation {
        columns,
        rows: t.rows.values().cloned().collect(),
        count_only: Some(t.rows.len()),
    })
}

fn information_schema(engine: &Engine, table: &str) -> Result<Relation, SqlError> {
    let catalog = engine.catalog.lock();
    match table {
        "columns" => {
            let names = [
                "TABLE_CATALOG",
                "TABLE_SCHEMA",
                "TABLE_NAME",
                "COLUMN_NAME",
                "ORDINAL_POSITION",
                "COLUMN_DEFAULT",
                "IS_NULLABLE",
                "DATA_TYPE",
                "CHARACTER_MAXIMUM_LENGTH",
                "CHARACTER_OCTET_LENGTH",
                "NUMERIC_PRECISION",
                "NUMERIC_SCALE",
                "DATETIME_PRECISION",
                "CHARACTER_SET_NAME",
                "COLLATION_NAME",
                "COLUMN_TYPE",
                "COLUMN_KEY",
                "EXTRA",
                "PRIVILEGES",
                "COLUMN_COMMENT",
            ];
            let mut rows = Vec::new();
            for (db_name, database) in &catalog.databases {
                for (table_name, t) in &database.tables {
                    for (i, c) in t.schema.columns.iter().enumerate() {
                        let (char_len, precision, scale) = match &c.ty {
                            ColumnType::Varchar(n) | ColumnType::Char(n) => {
                                (Value::Int(i128::from(*n)), Value::Null, Value::Null)
                            }
                            ColumnType::Decimal { precision, scale } => (
                                Value::Null,
                                Value::Int(i128::from(*precision)),
                                Value::Int(i128::from(*scale)),
                            ),
                            _ => (Value::Null, Value::Null, Value::Null),
                        };
                        rows.push(vec![
                            Value::Null,
                            s(db_name.clone()),
                            s(table_name.clone()),
                            s(c.name.clone()),
                            Value::Int(i as i128 + 1),
                            Value::Null,
                            // Hard-coded "NO" in the 3.x versions read (spec §6.4).
                            s("NO"),
                            s(c.ty.info_schema_data_type()),
                            char_len.clone(),
                            char_len,
                            precision,
                            scale,
                            Value::Null,
                            Value::Null,
                            Value::Null,
                            s(c.ty.info_schema_column_type()),
                            s(if i < t.schema.key_count { "PRI" } else { "" }),
                            s(""),
                            s("SELECT,INSERT,UPDATE,REFERENCES"),
                            s(c.comment.clone()),
                        ]);
                    }
                }
            }
            Ok(Relation {
                columns: names
                    .iter()
                    .map(|n| {
                        if *n == "ORDINAL_POSITION" {
                            int_col(n)
                        } else {
                            text_col(n)
                        }
                    })
                    .collect(),
                rows,
                count_only: None,
            })
        }
        "tables" => {
            let names = [
                "TABLE_CATALOG",
                "TABLE_SCHEMA",
                "TABLE_NAME",
                "TABLE_TYPE",
                "ENGINE",
                "TABLE_ROWS",
                "TABLE_COMMENT",
            ];
            let mut rows = Vec::new();
            for (db_name, database) in &catalog.databases {
                for (table_name, t) in &database.tables {
                    rows.push(vec![
                        s("def"),
                        s(db_name.clone()),
                        s(table_name.clone()),
                        s("BASE TABLE"),
                        s("StarRocks"),
                        Value::Int(t.rows.len() as i128),
                        s("OLAP"),
                    ]);
                }
            }
            Ok(Relation {
                columns: names.iter().map(|n| text_col(n)).collect(),
                rows,
                count_only: None,
            })
        }
        "schemata" => {
            let mut rows: Vec<Vec<Value>> = vec![vec![s("def"), s("information_schema")]];
            rows.extend(
                catalog
                    .databases
                    .keys()
                    .map(|n| vec![s("def"), s(n.clone())]),
            );
            Ok(Relation {
                columns: vec![text_col("CATALOG_NAME"), text_col("SCHEMA_NAME")],
                rows,
                count_only: None,
            })
        }
        other => Err(unknown_table("information_schema", other)),
    }
}

pub(crate) fn alter_relation(engine: &Engine, db: &str) -> Result<Relation, SqlError> {
    let catalog = engine.catalog.lock();
    let database = catalog.database(db)?;
    let names = [
        "JobId",
        "TableName",
        "CreateTime",
        "FinishTime",
        "IndexName",
        "IndexId",
        "OriginIndexId",
        "SchemaVersion",
        "TransactionId",
        "State",
        "Msg",
        "Progress",
        "Timeout",
    ];
    let rows = database
        .alter_jobs
        .iter()
        .map(|job| {
            vec![
                Value::Int(i128::from(job.job_id)),
                s(job.table.clone()),
                s(format_time(job.create_time)),
                job.finish_time
                    .map(|t| s(format_time(t)))
                    .unwrap_or(Value::Null),
                s(job.table.clone()),
                Value::Int(i128::from(job.job_id + 1)),
                Value::Int(i128::from(job.job_id - 1)),
                s(format!("{}:0", job.schema_version)),
                Value::Int(i128::from(job.job_id + 2)),
                s(job.state.name()),
                s(job.msg.clone()),
                Value::Null,
                Value::Int(i128::from(job.timeout_s)),
            ]
        })
        .collect();
    Ok(Relation {
        columns: names
            .iter()
            .map(|n| {
                if [
                    "JobId",
                    "IndexId",
                    "OriginIndexId",
                    "TransactionId",
                    "Timeout",
                ]
                .contains(n)
                {
                    int_col(n)
                } else {
                    text_col(n)
                }
            })
            .collect(),
        rows,
        count_only: None,
    })
}
