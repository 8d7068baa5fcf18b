//! Statement execution against the catalog (spec §6): DDL, the SELECT subset and INSERT.
//! ALTER jobs live in `alter.rs`, metadata and virtual tables in `meta.rs`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::SqlError;
use crate::engine::Engine;
use crate::sql::aggregate::{distinct_rows, eval_aggregate};
use crate::sql::alter::start_alter;
use crate::sql::eval::{eval, has_aggregate, truthy, EvalContext};
use crate::sql::meta::{alter_relation, desc, relation_for, show_columns, show_create, Relation};
use crate::sql::parser::{parse, Expr, Lit, Select, SelectItem, Statement};
use crate::sql::show::filter_rows;
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

pub(crate) fn text_col(name: &str) -> ResultColumn {
    ResultColumn {
        name: name.to_string(),
        ty: ColumnType::Varchar(65533),
    }
}

pub(crate) fn int_col(name: &str) -> ResultColumn {
    ResultColumn {
        name: name.to_string(),
        ty: ColumnType::BigInt,
    }
}

pub(crate) fn s(text: impl Into<String>) -> Value {
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
        Statement::SetFrontendConfig(key, value) => {
            set_frontend_config(engine, &key, &value)?;
            ok
        }
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
        Statement::ShowDatabases(filter) => {
            let catalog = engine.catalog.lock();
            // ShowExecutor collects the names in a TreeSet: sorted.
            let mut names: Vec<String> = ["_statistics_", "information_schema", "sys"]
                .iter()
                .map(|n| n.to_string())
                .chain(catalog.databases.keys().cloned())
                .collect();
            drop(catalog);
            names.sort();
            let rows = names.into_iter().map(|n| vec![s(n)]).collect();
            let ctx = eval_context(engine, session);
            filter_rows(vec![text_col("Database")], rows, &filter, true, &ctx)
        }
        Statement::ShowTables { db, full, filter } => {
            let db = resolve_db(db, session)?;
            let catalog = engine.catalog.lock();
            let database = catalog.database(&db)?;
            let mut columns = vec![text_col(&format!("Tables_in_{db}"))];
            if full {
                columns.push(text_col("Table_type"));
            }
            let rows = database
                .tables
                .keys()
                .map(|n| {
                    let mut row = vec![s(n.clone())];
                    if full {
                        row.push(s("BASE TABLE"));
                    }
                    row
                })
                .collect();
            drop(catalog);
            let ctx = eval_context(engine, session);
            filter_rows(columns, rows, &filter, true, &ctx)
        }
        Statement::ShowColumns {
            db,
            table,
            full,
            filter,
        } => {
            let db = resolve_db(db, session)?;
            let (columns, rows) = show_columns(engine, &db, &table, full)?;
            let ctx = eval_context(engine, session);
            filter_rows(columns, rows, &filter, false, &ctx)
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
        Statement::Delete { db, table, filter } => {
            let db = resolve_db(db, session)?;
            delete(engine, session, &db, &table, filter.as_ref())
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
        Expr::Func {
            name,
            args,
            star,
            distinct,
        } => {
            // AstToStringBuilder.visitFunctionCall: `count(*)`, `count(DISTINCT s)`.
            if *star {
                format!("{name}(*)")
            } else {
                let parts: Vec<String> = args.iter().map(expr_label).collect();
                let distinct = if *distinct { "DISTINCT " } else { "" };
                format!("{name}({distinct}{})", parts.join(", "))
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
    let project = |row: &Vec<Value>| {
        exprs
            .iter()
            .map(|e| eval(e, &|n| lookup_row(row, n), &ctx))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)
    };
    let out_rows = if select.distinct {
        // DISTINCT applies to the projected rows, before OFFSET/LIMIT.
        let all = rows
            .into_iter()
            .map(project)
            .collect::<Result<Vec<_>, _>>()?;
        distinct_rows(all)
            .into_iter()
            .skip(offset)
            .take(limit)
            .collect()
    } else {
        rows.into_iter()
            .skip(offset)
            .take(limit)
            .map(project)
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(QueryOutput::Rows {
        columns: out_columns,
        rows: out_rows,
    })
}

/// DELETE on a Primary Key table: the rows the WHERE (SELECT's evaluation) keeps are removed
/// at once, as one new version; the OK packet counts them.
fn delete(
    engine: &Engine,
    session: &Session,
    db: &str,
    table: &str,
    filter: Option<&Expr>,
) -> Result<QueryOutput, SqlError> {
    let ctx = eval_context(engine, session);
    let err = |m: String| SqlError::new(format!("Getting analyzing error. Detail message: {m}."));
    let mut catalog = engine.catalog.lock();
    let target = catalog.table_mut(db, table)?;
    let schema = target.schema.clone();
    let mut doomed = Vec::new();
    for (key, row) in &target.rows {
        let keep = match filter {
            None => true,
            Some(f) => {
                let lookup = |name: &str| {
                    schema
                        .column_index(name)
                        .map(|i| row.get(i).cloned().unwrap_or(Value::Null))
                };
                truthy(&eval(f, &lookup, &ctx).map_err(err)?)
            }
        };
        if keep {
            doomed.push(key.clone());
        }
    }
    for key in &doomed {
        target.rows.remove(key);
    }
    target.stats.versions += 1;
    Ok(QueryOutput::Ok {
        affected_rows: doomed.len() as u64,
    })
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
        match crate::load::build_row(
            &plan,
            |i| cells.get(i).copied().unwrap_or(crate::load::Cell::Missing),
            crate::load::Cell::Missing,
            true,
        ) {
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

/// `ADMIN SET FRONTEND CONFIG`: the FE configs the emulator models; others are accepted and
/// ignored.
fn set_frontend_config(engine: &Engine, key: &str, value: &str) -> Result<(), SqlError> {
    let number = || {
        value
            .trim()
            .parse::<u64>()
            .map_err(|_| SqlError::new(format!("Invalid value '{value}' for config '{key}'")))
    };
    let mut settings = engine.settings.lock();
    match key {
        "label_keep_max_second" => {
            settings.label_retention.keep_max = std::time::Duration::from_secs(number()?)
        }
        "label_keep_max_num" => settings.label_retention.keep_max_num = number()? as usize,
        "empty_load_as_error" => settings.empty_load_as_error = value.eq_ignore_ascii_case("true"),
        _ => {}
    }
    Ok(())
}
