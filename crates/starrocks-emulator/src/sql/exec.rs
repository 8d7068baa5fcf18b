//! Statement execution against the catalog (spec §6): DDL, async ALTER jobs, introspection and
//! the SELECT subset.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::catalog::{
    apply_alter, unknown_table, AlterJob, AlterOp, AlterState, SqlError, TableSchema, TableState,
};
use crate::engine::Engine;
use crate::faults::FaultKind;
use crate::sql::eval::{eval, eval_aggregate, has_aggregate, truthy, EvalContext};
use crate::sql::parser::{parse, AlterAction, Expr, Lit, Position, Select, SelectItem, Statement};
use crate::types::{ColumnType, Value};

/// A result-set column.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumn {
    /// Column label.
    pub name: String,
    /// Type (drives the MySQL column type).
    pub ty: ColumnType,
}

/// What a statement returns.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutput {
    /// An OK packet.
    Ok {
        /// Affected rows.
        affected_rows: u64,
    },
    /// A result set.
    Rows {
        /// Columns.
        columns: Vec<ResultColumn>,
        /// Rows.
        rows: Vec<Vec<Value>>,
    },
}

impl QueryOutput {
    /// The rows, or an empty list for OK.
    pub fn rows(&self) -> &[Vec<Value>] {
        match self {
            QueryOutput::Rows { rows, .. } => rows,
            QueryOutput::Ok { .. } => &[],
        }
    }
}

/// Session state of one MySQL connection.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// `USE`d database.
    pub database: Option<String>,
}

/// The StarRocks version reported by `current_version()`.
pub const STARROCKS_VERSION: &str = "3.3.9-emulator";
/// The MySQL server version string (FE `mysql_server_version`, 3.x default).
pub const MYSQL_SERVER_VERSION: &str = "5.1.0";

fn text_col(name: &str) -> ResultColumn {
    ResultColumn {
        name: name.to_string(),
        ty: ColumnType::Varchar(65533),
    }
}

fn int_col(name: &str) -> ResultColumn {
    ResultColumn {
        name: name.to_string(),
        ty: ColumnType::BigInt,
    }
}

fn s(text: impl Into<String>) -> Value {
    Value::Str(text.into())
}

/// Format a system time as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_time(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Execute one SQL statement.
pub fn execute(
    engine: &Arc<Engine>,
    session: &mut Session,
    sql: &str,
) -> Result<QueryOutput, SqlError> {
    let statement = parse(sql)?;
    let ok = Ok(QueryOutput::Ok { affected_rows: 0 });
    let resolve_db = |db: Option<String>, session: &Session| -> Result<String, SqlError> {
        db.or_else(|| session.database.clone())
            .ok_or_else(|| SqlError::with_code(1046, "No database selected"))
    };
    match statement {
        Statement::Noop => ok,
        Statement::CreateDatabase(name, ine) => {
            engine.catalog.lock().create_database(&name, ine)?;
            ok
        }
        Statement::DropDatabase(name, ie) => {
            engine.catalog.lock().drop_database(&name, ie)?;
            if session.database.as_deref() == Some(name.as_str()) {
                session.database = None;
            }
            ok
        }
        Statement::Use(name) => {
            if name != "information_schema" {
                engine.catalog.lock().database(&name)?;
            }
            session.database = Some(name);
            ok
        }
        Statement::CreateTable {
            db,
            schema,
            if_not_exists,
        } => {
            let db = resolve_db(db, session)?;
            engine
                .catalog
                .lock()
                .create_table(&db, schema, if_not_exists)?;
            ok
        }
        Statement::DropTable(db, table, ie) => {
            let db = resolve_db(db, session)?;
            engine.catalog.lock().drop_table(&db, &table, ie)?;
            ok
        }
        Statement::Truncate(db, table) => {
            let db = resolve_db(db, session)?;
            engine.catalog.lock().truncate_table(&db, &table)?;
            ok
        }
        Statement::Alter(db, table, action) => {
            let db = resolve_db(db, session)?;
            start_alter(engine, &db, &table, action)?;
            ok
        }
        Statement::Desc(db, table) => {
            let db = resolve_db(db, session)?;
            desc(engine, &db, &table)
        }
        Statement::ShowDatabases => {
            let catalog = engine.catalog.lock();
            let mut rows = vec![vec![s("_statistics_")], vec![s("information_schema")]];
            rows.extend(catalog.databases.keys().map(|n| vec![s(n.clone())]));
            rows.push(vec![s("sys")]);
            Ok(QueryOutput::Rows {
                columns: vec![text_col("Database")],
                rows,
            })
        }
        Statement::ShowTables(db) => {
            let db = resolve_db(db, session)?;
            let catalog = engine.catalog.lock();
            let database = catalog.database(&db)?;
            Ok(QueryOutput::Rows {
                columns: vec![text_col(&format!("Tables_in_{db}"))],
                rows: database.tables.keys().map(|n| vec![s(n.clone())]).collect(),
            })
        }
        Statement::ShowCreateTable(db, table) => {
            let db = resolve_db(db, session)?;
            let catalog = engine.catalog.lock();
            let schema = catalog.table(&db, &table)?.schema.clone();
            Ok(QueryOutput::Rows {
                columns: vec![text_col("Table"), text_col("Create Table")],
                rows: vec![vec![s(table), s(show_create(&schema))]],
            })
        }
        Statement::ShowAlter(db, select) => {
            let db = resolve_db(db, session)?;
            let relation = alter_relation(engine, &db)?;
            run_select(engine, session, &select, relation)
        }
        Statement::ShowEmpty(names) => Ok(QueryOutput::Rows {
            columns: names.iter().map(|n| text_col(n)).collect(),
            rows: Vec::new(),
        }),
        Statement::Select(select) => {
            let relation = match &select.from {
                None => Relation::single_empty_row(),
                Some((db, table)) => {
                    let db_name = db.clone().or_else(|| session.database.clone());
                    relation_for(engine, db_name.as_deref(), table)?
                }
            };
            run_select(engine, session, &select, relation)
        }
        Statement::Insert {
            db,
            table,
            columns,
            rows,
        } => {
            let db = resolve_db(db, session)?;
            insert(engine, session, &db, &table, columns, rows)
        }
    }
}

fn desc(engine: &Engine, db: &str, table: &str) -> Result<QueryOutput, SqlError> {
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

/// The `SHOW CREATE TABLE` text.
pub fn show_create(schema: &TableSchema) -> String {
    let mut out = format!("CREATE TABLE `{}` (\n", schema.name);
    let lines: Vec<String> = schema
        .columns
        .iter()
        .map(|c| {
            let mut line = format!(
                "  `{}` {} {}",
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
        })
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
struct Relation {
    columns: Vec<ResultColumn>,
    rows: Vec<Vec<Value>>,
    /// Set when the relation is a user table (for the COUNT(*) fast path).
    count_only: Option<usize>,
}

impl Relation {
    fn single_empty_row() -> Relation {
        Relation {
            columns: Vec::new(),
            rows: vec![Vec::new()],
            count_only: None,
        }
    }
}

fn relation_for(engine: &Engine, db: Option<&str>, table: &str) -> Result<Relation, SqlError> {
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

fn alter_relation(engine: &Engine, db: &str) -> Result<Relation, SqlError> {
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

fn eval_context(engine: &Engine, session: &Session) -> EvalContext {
    EvalContext {
        version: STARROCKS_VERSION.to_string(),
        server_version: MYSQL_SERVER_VERSION.to_string(),
        database: session.database.clone(),
        user: engine.user.clone(),
    }
}

fn expr_label(expr: &Expr) -> String {
    match expr {
        Expr::Column(n) => n.clone(),
        Expr::SysVar(v) => format!("@@{v}"),
        Expr::Lit(Lit::Num(n)) => n.clone(),
        Expr::Lit(Lit::Str(s)) => s.clone(),
        Expr::Lit(Lit::Null) => "NULL".into(),
        Expr::Lit(Lit::Bool(b)) => b.to_string().to_uppercase(),
        Expr::Func { name, args, star } => {
            if *star {
                format!("{name}(*)")
            } else {
                let parts: Vec<String> = args.iter().map(expr_label).collect();
                format!("{name}({})", parts.join(", "))
            }
        }
        _ => "expr".into(),
    }
}

fn run_select(
    engine: &Engine,
    session: &Session,
    select: &Select,
    relation: Relation,
) -> Result<QueryOutput, SqlError> {
    let ctx = eval_context(engine, session);
    let columns = relation.columns;
    let index_of = |name: &str| -> Option<usize> {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    };
    let lookup_row = |row: &Vec<Value>, name: &str| -> Option<Value> {
        index_of(name).map(|i| row.get(i).cloned().unwrap_or(Value::Null))
    };
    let err = |m: String| SqlError::new(format!("Getting analyzing error. Detail message: {m}."));
    let aggregate = select.items.iter().any(|item| match item {
        SelectItem::Expr(e, _) => has_aggregate(e),
        SelectItem::Star => false,
    });
    // Fast path: SELECT COUNT(*) FROM t.
    if let (Some(count), true, None) = (relation.count_only, aggregate, &select.filter) {
        if let [SelectItem::Expr(
            Expr::Func {
                name, star: true, ..
            },
            alias,
        )] = select.items.as_slice()
        {
            if name == "count" {
                return Ok(QueryOutput::Rows {
                    columns: vec![int_col(alias.as_deref().unwrap_or("count(*)"))],
                    rows: vec![vec![Value::Int(count as i128)]],
                });
            }
        }
    }
    let mut rows: Vec<&Vec<Value>> = Vec::with_capacity(relation.rows.len());
    for row in &relation.rows {
        let keep = match &select.filter {
            None => true,
            Some(f) => truthy(&eval(f, &|n| lookup_row(row, n), &ctx).map_err(err)?),
        };
        if keep {
            rows.push(row);
        }
    }
    // Output columns.
    let mut out_columns = Vec::new();
    let mut exprs: Vec<Expr> = Vec::new();
    for item in &select.items {
        match item {
            SelectItem::Star => {
                for c in &columns {
                    out_columns.push(c.clone());
                    exprs.push(Expr::Column(c.name.clone()));
                }
            }
            SelectItem::Expr(e, alias) => {
                let ty = match e {
                    Expr::Column(n) => index_of(n)
                        .map(|i| columns[i].ty.clone())
                        .ok_or_else(|| err(format!("Column '{n}' cannot be resolved")))?,
                    Expr::Func { name, .. } if name == "count" => ColumnType::BigInt,
                    Expr::Func { name, args, .. } if name == "min" || name == "max" => {
                        match args.first() {
                            Some(Expr::Column(n)) => index_of(n)
                                .map(|i| columns[i].ty.clone())
                                .unwrap_or(ColumnType::Varchar(65533)),
                            _ => ColumnType::Varchar(65533),
                        }
                    }
                    Expr::Lit(Lit::Num(n)) if n.parse::<i64>().is_ok() => ColumnType::BigInt,
                    _ => ColumnType::Varchar(65533),
                };
                out_columns.push(ResultColumn {
                    name: alias.clone().unwrap_or_else(|| expr_label(e)),
                    ty,
                });
                exprs.push(e.clone());
            }
        }
    }
    if aggregate {
        let row = exprs
            .iter()
            .map(|e| eval_aggregate(e, &rows, &lookup_row, &ctx))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        return Ok(QueryOutput::Rows {
            columns: out_columns,
            rows: vec![row],
        });
    }
    // ORDER BY on source rows (aliases and ordinals resolve to select items).
    if !select.order.is_empty() {
        let mut keyed: Vec<(Vec<Value>, &Vec<Value>)> = Vec::with_capacity(rows.len());
        for row in rows {
            let mut keys = Vec::with_capacity(select.order.len());
            for (expr, _) in &select.order {
                let resolved = match expr {
                    Expr::Lit(Lit::Num(n)) => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| exprs.get(i.wrapping_sub(1)))
                        .unwrap_or(expr),
                    Expr::Column(n) if index_of(n).is_none() => out_columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(n))
                        .map(|i| &exprs[i])
                        .unwrap_or(expr),
                    other => other,
                };
                keys.push(eval(resolved, &|n| lookup_row(row, n), &ctx).map_err(err)?);
            }
            keyed.push((keys, row));
        }
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                let desc = select.order[i].1;
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Less,
                    (false, true) => std::cmp::Ordering::Greater,
                    _ => crate::sql::eval::compare(x, y).unwrap_or(std::cmp::Ordering::Equal),
                };
                let ord = if desc { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
        rows = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let offset = select.offset as usize;
    let limit = select.limit.map_or(usize::MAX, |l| l as usize);
    let mut out_rows = Vec::new();
    for row in rows.into_iter().skip(offset).take(limit) {
        let projected = exprs
            .iter()
            .map(|e| eval(e, &|n| lookup_row(row, n), &ctx))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        out_rows.push(projected);
    }
    Ok(QueryOutput::Rows {
        columns: out_columns,
        rows: out_rows,
    })
}

fn start_alter(
    engine: &Arc<Engine>,
    db: &str,
    table: &str,
    action: AlterAction,
) -> Result<(), SqlError> {
    let mut catalog = engine.catalog.lock();
    let job_id = catalog.next_job_id();
    let target = catalog.table(db, table)?;
    if target.state != TableState::Normal {
        return Err(SqlError::new(format!(
            "Table[{table}]'s state(SCHEMA_CHANGE) is not NORMAL. Do not allow doing ALTER ops"
        )));
    }
    let schema = target.schema.clone();
    let mut names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
    let mut ops = Vec::new();
    match action {
        AlterAction::Add(columns) => {
            for (column, _, position) in columns {
                if names.iter().any(|n| n.eq_ignore_ascii_case(&column.name)) {
                    return Err(SqlError::new(format!(
                        "Can not add column which already exists in base table: {}",
                        column.name
                    )));
                }
                if ["__op", "__row"]
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&column.name))
                {
                    return Err(SqlError::new(format!(
                        "Getting analyzing error. Detail message: Column name [{}] is a system reserved name. Please choose a different one.",
                        column.name
                    )));
                }
                if !column.nullable && column.default.is_none() {
                    return Err(SqlError::new(format!(
                        "Getting analyzing error from line 1, column 0 to line 1, column 1. Detail message: Field '{}' is not null but doesn't have a default value.",
                        column.name
                    )));
                }
                let index = match position {
                    Position::Last => names.len(),
                    Position::First => schema.key_count,
                    Position::After(after) => {
                        let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&after))
                        else {
                            return Err(SqlError::new(format!("Column[{after}] does not exists")));
                        };
                        if i + 1 < schema.key_count {
                            return Err(SqlError::new(
                                "Can not add value column before key column",
                            ));
                        }
                        i + 1
                    }
                };
                names.insert(index, column.name.clone());
                ops.push(AlterOp::Add {
                    column,
                    position: index,
                });
            }
        }
        AlterAction::Drop(name) => {
            let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&name)) else {
                return Err(SqlError::new(format!("Column does not exists: {name}")));
            };
            if i < schema.key_count {
                return Err(SqlError::new(
                    "Can not drop key column in primary data model table",
                ));
            }
            ops.push(AlterOp::Drop(name));
        }
        AlterAction::Modify(column) => {
            let Some(i) = names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&column.name))
            else {
                return Err(SqlError::new(format!(
                    "Column[{}] does not exists",
                    column.name
                )));
            };
            if i < schema.key_count {
                return Err(SqlError::new(format!(
                    "Can not modify key column: {} for primary key table",
                    column.name
                )));
            }
            let old = &schema.columns[i];
            if old.nullable && !column.nullable {
                return Err(SqlError::new(format!(
                    "Can not change nullable column {} to not nullable",
                    column.name
                )));
            }
            let mut column = column;
            column.name = old.name.clone();
            ops.push(AlterOp::Modify(column));
        }
    }
    let fault = engine.faults.lock().take_alter(db, table);
    let duration = match &fault {
        Some(rule) if rule.kind == FaultKind::AlterSlow => {
            Duration::from_millis(rule.delay_ms.unwrap_or(5000))
        }
        _ => engine.settings.lock().alter_duration,
    };
    let fail_message = fault.filter(|r| r.kind == FaultKind::AlterFail).map(|r| {
        r.message
            .unwrap_or_else(|| "emulator: injected ALTER failure".into())
    });
    let schema_version = schema.schema_version + 1;
    let database = catalog.database_mut(db)?;
    database.alter_jobs.push(AlterJob {
        job_id,
        table: table.to_string(),
        create_time: SystemTime::now(),
        finish_time: None,
        state: AlterState::Pending,
        msg: String::new(),
        timeout_s: 86_400,
        ops,
        schema_version,
    });
    if let Some(t) = database.tables.get_mut(table) {
        t.state = TableState::SchemaChange;
    }
    drop(catalog);
    let engine = engine.clone();
    let db = db.to_string();
    let table = table.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(duration / 2).await;
        set_job_state(&engine, &db, job_id, AlterState::Running);
        tokio::time::sleep(duration / 2).await;
        finish_job(&engine, &db, &table, job_id, fail_message);
    });
    Ok(())
}

fn set_job_state(engine: &Engine, db: &str, job_id: i64, state: AlterState) {
    let mut catalog = engine.catalog.lock();
    if let Ok(database) = catalog.database_mut(db) {
        if let Some(job) = database.alter_jobs.iter_mut().find(|j| j.job_id == job_id) {
            if !job.state.is_final() {
                job.state = state;
            }
        }
    }
}

fn finish_job(engine: &Engine, db: &str, table: &str, job_id: i64, fail: Option<String>) {
    let mut catalog = engine.catalog.lock();
    let Ok(database) = catalog.database_mut(db) else {
        return;
    };
    let Some(job_index) = database.alter_jobs.iter().position(|j| j.job_id == job_id) else {
        return;
    };
    let ops = database.alter_jobs[job_index].ops.clone();
    let schema_version = database.alter_jobs[job_index].schema_version;
    let outcome = match (fail, database.tables.get_mut(table)) {
        (Some(message), Some(t)) => {
            t.state = TableState::Normal;
            Err(message)
        }
        (_, None) => Err("table was dropped".to_string()),
        (None, Some(t)) => {
            let applied = apply_alter(t, &ops, schema_version);
            t.state = TableState::Normal;
            applied
        }
    };
    let job = &mut database.alter_jobs[job_index];
    job.finish_time = Some(SystemTime::now());
    match outcome {
        Ok(()) => job.state = AlterState::Finished,
        Err(message) => {
            job.state = AlterState::Cancelled;
            job.msg = message;
        }
    }
}

fn insert(
    engine: &Engine,
    session: &Session,
    db: &str,
    table: &str,
    columns: Option<Vec<String>>,
    rows: Vec<Vec<Expr>>,
) -> Result<QueryOutput, SqlError> {
    let ctx = eval_context(engine, session);
    let columns_header = columns.map(|c| c.join(","));
    let label = format!("insert_{}", uuid::Uuid::new_v4().simple());
    let mut headers: Vec<(&str, &str)> = vec![("label", &label)];
    if let Some(h) = &columns_header {
        headers.push(("columns", h));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
    };
    let params = crate::load::LoadParams::from_headers(&get).map_err(SqlError::new)?;
    let txn_id = engine
        .begin_txn(db, table, &label)
        .map_err(|r| SqlError::new(r.message.clone()))?;
    let plan = match engine.plan_load(db, table, &params) {
        Ok(plan) => plan,
        Err(message) => {
            engine.abort_txn(db, txn_id, &message);
            return Err(SqlError::new(message));
        }
    };
    let mut scanned = crate::load::Scanned::empty();
    for row in &rows {
        if row.len() != plan.fields.len() {
            engine.abort_txn(db, txn_id, "column count mismatch");
            return Err(SqlError::new(format!(
                "Getting analyzing error. Detail message: Inserted target column count: {} doesn't match select/value column count: {}.",
                plan.fields.len(),
                row.len()
            )));
        }
        let values: Vec<Value> = row
            .iter()
            .map(|e| eval(e, &|_| None, &ctx))
            .collect::<Result<_, _>>()
            .map_err(SqlError::new)?;
        let texts: Vec<Option<String>> = values.iter().map(Value::to_text).collect();
        let cells: Vec<crate::load::Cell<'_>> = texts
            .iter()
            .map(|t| match t {
                Some(t) => crate::load::Cell::Text(t),
                None => crate::load::Cell::Null,
            })
            .collect();
        match crate::load::build_row(&plan, &cells, crate::load::Cell::Missing, true) {
            Ok(r) => {
                scanned.total += 1;
                scanned.rows.push(r);
            }
            Err(reason) => {
                engine.abort_txn(db, txn_id, &reason);
                return Err(SqlError::new(format!(
                    "Insert has filtered data in strict mode: {reason}"
                )));
            }
        }
    }
    let count = scanned.rows.len() as u64;
    let mut result = crate::response::LoadResult::fail(txn_id, &label, "");
    let outcome = engine.commit_scanned(
        db,
        table,
        txn_id,
        &plan,
        &params,
        scanned,
        None,
        engine.generation(),
        &mut result,
    );
    if outcome != crate::engine::CommitOutcome::Committed {
        return Err(SqlError::new(result.message));
    }
    Ok(QueryOutput::Ok {
        affected_rows: count,
    })
}
