//! Schema changes of a StarRocks table: a changed Relation becomes ADD / DROP / safe MODIFY
//! COLUMN clauses, each run over MySQL and waited for before rows of the new shape load.

use crate::schema::type_map::{map_pg_type, StarRocksType};
use crate::schema::{ColumnOrigin, ColumnSchema, TableSchema};
use crate::sink::starrocks::ddl::{quote, ColumnDef, DescribedColumn};
use crate::sink::starrocks::defaults::added_column_default;
use crate::sink::SinkError;

use super::{Loader, StarRocksSink};

/// One ALTER of a schema change, run and waited for in order.
enum Clause {
    /// `ADD COLUMN …` with a DEFAULT, and the same without it (see `run_add_column`).
    Add {
        column: String,
        clause: String,
        without_default: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// `DROP COLUMN` / `MODIFY COLUMN`.
    Other(String),
}

impl Clause {
    fn sql(&self) -> String {
        match self {
            Clause::Add { clause, .. } | Clause::Other(clause) => clause.clone(),
            Clause::Rename { from, to } => {
                format!("RENAME COLUMN {} TO {}", quote(from), quote(to))
            }
        }
    }
}

impl<L: Loader> StarRocksSink<L> {
    /// A changed shape: ADD / DROP / RENAME / safe MODIFY COLUMN, each waited for.
    pub(super) async fn alter_table(
        &self,
        old: &TableSchema,
        new: &TableSchema,
    ) -> Result<(), SinkError> {
        let table = new.name.name.as_str();
        // The name each column had in `old` (a renamed column had another).
        let old_name = |column: &ColumnSchema| match &column.origin {
            Some(ColumnOrigin::RenamedFrom(from)) => from.clone(),
            _ => column.name.clone(),
        };
        let old_keys: Vec<&str> = old
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.as_str())
            .collect();
        let new_keys: Vec<String> = new
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(old_name)
            .collect();
        if old_keys != new_keys {
            let new_keys: Vec<&str> = new
                .columns
                .iter()
                .filter(|c| c.is_key)
                .map(|c| c.name.as_str())
                .collect();
            return Err(self.error(
                new,
                format!(
                    "primary key changed from ({}) to ({}): StarRocks cannot change a Primary Key \
                     table's key; recreate the StarRocks table and re-snapshot it",
                    old_keys.join(", "),
                    new_keys.join(", ")
                ),
            ));
        }
        let map = |column: &ColumnSchema| {
            map_pg_type(column.type_oid, column.type_modifier, &self.type_options())
                .map(|mapping| mapping.starrocks_type)
                .map_err(|error| self.error(new, format!("column {}: {error}", column.name)))
        };
        // What StarRocks has now: a change may be applied already (a run that stopped before
        // the slot moved past it, or a table created from a newer shape by the snapshot), and
        // StarRocks refuses to add a column twice. No table: `prepare_table` creates it. A
        // schema change an earlier run left running is waited for first, so what it does is
        // seen here.
        self.ddl
            .settled_alter_job(table, self.options.alter_timeout)
            .await
            .map_err(|error| self.error(new, error.to_string()))?;
        let Some(described) = self
            .ddl
            .describe(table)
            .await
            .map_err(|error| self.error(new, error.to_string()))?
        else {
            return Ok(());
        };
        let described_type = |name: &str| {
            described
                .iter()
                .find(|column| column.name.eq_ignore_ascii_case(name))
                .map(|column| column.sql_type.replace(' ', "").to_ascii_lowercase())
        };
        let mut clauses = Vec::new();
        let mut renamed_from: Vec<String> = Vec::new();
        for column in &new.columns {
            let from = old_name(column);
            let previous = old.columns.iter().find(|old| old.name == from);
            let recreated = column.origin == Some(ColumnOrigin::Recreated);
            if from != column.name && previous.is_some() {
                renamed_from.push(from.clone());
                if described_type(&from).is_some() && described_type(&column.name).is_none() {
                    clauses.push(Clause::Rename {
                        from: from.clone(),
                        to: column.name.clone(),
                    });
                }
            }
            if recreated && described_type(&column.name).is_some() {
                // Its rows' values in StarRocks belong to the dropped column.
                clauses.push(Clause::Other(format!(
                    "DROP COLUMN {}",
                    quote(&column.name)
                )));
            }
            let exists = (described_type(&column.name).is_some() && !recreated)
                || clauses
                    .iter()
                    .any(|c| matches!(c, Clause::Rename { to, .. } if *to == column.name));
            if recreated || !exists {
                let (clause, without_default) = self.add_column_clause(new, column)?;
                clauses.push(Clause::Add {
                    column: column.name.clone(),
                    clause,
                    without_default,
                });
                continue;
            }
            match previous {
                None => {
                    tracing::info!(table = %new.name, column = %column.name,
                        "column already in StarRocks: not added again");
                }
                Some(previous)
                    if previous.type_oid != column.type_oid
                        || previous.type_modifier != column.type_modifier =>
                {
                    let (from, to) = (map(previous)?, map(column)?);
                    let already = described_type(&column.name)
                        .is_some_and(|current| current == to.to_sql().to_ascii_lowercase());
                    if from != to && !already {
                        if is_safe_widening(&to, &from) {
                            // Narrowed in PostgreSQL (text → varchar(30), bigint → int): the
                            // wider StarRocks column holds every value, and StarRocks could
                            // not shorten it anyway.
                            tracing::info!(table = %new.name, column = %column.name,
                                starrocks = %from.to_sql(), postgres = %to.to_sql(),
                                "column narrowed in PostgreSQL: the wider StarRocks column is kept");
                            continue;
                        }
                        if column.is_key {
                            return Err(self.error(
                                new,
                                format!(
                                    "key column {} changed from {} to {}: StarRocks cannot change \
                                     the type of a Primary Key table's key column; drop the \
                                     StarRocks table, restart dbmazz (it creates the table \
                                     again) and copy the rows with `dbmazz snapshot --table {}`",
                                    column.name,
                                    from.to_sql(),
                                    to.to_sql(),
                                    new.name
                                ),
                            ));
                        }
                        if !is_safe_widening(&from, &to) {
                            return Err(self.error(
                                new,
                                format!(
                                    "column {} changed from {} to {}, which StarRocks cannot convert in place; \
                                     change the StarRocks column yourself and restart",
                                    column.name,
                                    from.to_sql(),
                                    to.to_sql()
                                ),
                            ));
                        }
                        let current = described
                            .iter()
                            .find(|d| d.name.eq_ignore_ascii_case(&column.name));
                        // StarRocks may be wider already: a replay after StarRocks took later
                        // widenings ahead of the slot (it would refuse to shorten the column).
                        let wider = current
                            .and_then(|current| StarRocksType::parse_scalar(&current.sql_type))
                            .is_some_and(|current| {
                                current == to || is_safe_widening(&to, &current)
                            });
                        if wider {
                            tracing::info!(table = %new.name, column = %column.name,
                                postgres = %to.to_sql(),
                                "StarRocks column already as wide or wider: kept");
                            continue;
                        }
                        clauses.push(Clause::Other(format!(
                            "MODIFY COLUMN {} {} NULL{}",
                            quote(&column.name),
                            to.to_sql(),
                            same_default(current)
                        )));
                    }
                }
                Some(_) => {}
            }
        }
        for column in &old.columns {
            if !new.columns.iter().any(|new| new.name == column.name)
                && !renamed_from.contains(&column.name)
                && described_type(&column.name).is_some()
            {
                clauses.push(Clause::Other(format!(
                    "DROP COLUMN {}",
                    quote(&column.name)
                )));
            }
        }
        if clauses.is_empty() {
            return Ok(());
        }
        if !self.options.create_tables && self.state(new.relation_oid).is_none() {
            // Changes made while dbmazz was stopped, found at start: with create_tables off,
            // dbmazz leaves existing StarRocks tables as they are.
            let statements: Vec<String> = clauses
                .iter()
                .map(|clause| format!("ALTER TABLE {} {};", quote(table), clause.sql()))
                .collect();
            return Err(self.error(
                new,
                format!(
                    "the PostgreSQL table changed while dbmazz was stopped and create_tables is \
                     off: run {} in StarRocks (or set create_tables = true) and restart",
                    statements.join(" ")
                ),
            ));
        }
        for clause in clauses {
            match clause {
                Clause::Add {
                    column,
                    clause,
                    without_default,
                } => {
                    self.run_add_column(new, &column, &clause, &without_default)
                        .await?
                }
                Clause::Rename { from, to } => {
                    tracing::info!(table = %new.name, from, to, "renaming StarRocks column");
                    self.ddl
                        .rename_column(table, &from, &to, self.options.alter_timeout)
                        .await
                        .map_err(|error| self.error(new, error.to_string()))?;
                }
                Clause::Other(clause) => {
                    tracing::info!(table = %new.name, clause, "altering StarRocks table");
                    self.ddl
                        .alter_and_wait(table, &clause, self.options.alter_timeout)
                        .await
                        .map_err(|error| self.error(new, error.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// Runs an `ADD COLUMN` clause; when StarRocks refuses its DEFAULT (a rule `defaults` did
    /// not predict), the column is added without it: it has to exist, and its older rows are
    /// a known, reported gap.
    pub(super) async fn run_add_column(
        &self,
        schema: &TableSchema,
        column: &str,
        clause: &str,
        without_default: &str,
    ) -> Result<(), SinkError> {
        let table = schema.name.name.as_str();
        tracing::info!(table = %schema.name, clause, "altering StarRocks table");
        match self
            .ddl
            .alter_and_wait(table, clause, self.options.alter_timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(error)
                if clause != without_default
                    && error.to_string().contains("Invalid default value") =>
            {
                self.report_unfilled(schema, column, "default_refused", &error.to_string());
                self.ddl
                    .alter_and_wait(table, without_default, self.options.alter_timeout)
                    .await
                    .map_err(|error| self.error(schema, error.to_string()))
            }
            Err(error) if error.to_string().contains("already exists in column id") => Err(self
                .error(
                    schema,
                    format!(
                        "{error}; StarRocks keeps the first name of a renamed column as its \
                         internal id, so no column of that name can be added while the renamed \
                         one exists: drop the StarRocks table, restart dbmazz (it creates the \
                         table again) and copy the rows with `dbmazz snapshot --table {}`",
                        schema.name
                    ),
                )),
            Err(error) => Err(self.error(schema, error.to_string())),
        }
    }

    /// Logs and counts an added column whose older rows stay NULL in StarRocks.
    fn report_unfilled(
        &self,
        table: &TableSchema,
        column: &str,
        reason: &'static str,
        detail: &str,
    ) {
        let table_name = table.name.to_string();
        crate::ops::metrics().count_unfilled_added_column(&table_name, column, reason);
        tracing::warn!(
            table = %table_name,
            column,
            reason,
            detail,
            "rows that existed before this column was added are NULL in StarRocks but may hold \
             a value in PostgreSQL; re-snapshot the table to repair them \
             (dbmazz snapshot --table {table_name})"
        );
    }

    /// `ADD COLUMN c T NULL [DEFAULT v]`: the DEFAULT gives rows older than the column
    /// PostgreSQL's value for them (see [`super::defaults`]); when StarRocks cannot be given
    /// it, the column is added without one, and the gap is logged and counted. Returns the
    /// clause, and the same clause without its DEFAULT.
    pub(super) fn add_column_clause(
        &self,
        table: &TableSchema,
        column: &crate::schema::ColumnSchema,
    ) -> Result<(String, String), SinkError> {
        let mapping = map_pg_type(column.type_oid, column.type_modifier, &self.type_options())
            .map_err(|error| self.error(table, format!("column {}: {error}", column.name)))?;
        let default = match added_column_default(column.existing_rows.as_ref(), &mapping) {
            Ok(Some(literal)) => format!(" DEFAULT {literal}"),
            Ok(None) => String::new(),
            Err(unfilled) => {
                self.report_unfilled(table, &column.name, unfilled.reason, &unfilled.detail);
                String::new()
            }
        };
        let without_default = format!(
            "ADD COLUMN {} {} NULL",
            quote(&column.name),
            mapping.starrocks_type.to_sql()
        );
        Ok((format!("{without_default}{default}"), without_default))
    }
}

/// StarRocks can widen these in place (schema change without rewriting keys).
/// The value columns `wanted` (the table's shape now) that StarRocks has (`described`) with a
/// narrower type they can be widened from in place — widened in PostgreSQL while dbmazz was
/// not applying it — each with the `MODIFY COLUMN` clause that widens it.
pub(super) fn narrower_columns(
    wanted: &[ColumnDef],
    described: &[DescribedColumn],
) -> Vec<(String, String)> {
    wanted
        .iter()
        .filter_map(|column| {
            let current = described
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(&column.name))?;
            let from = StarRocksType::parse_scalar(&current.sql_type)?;
            let to = StarRocksType::parse_scalar(&column.sql_type)?;
            (from != to && is_safe_widening(&from, &to)).then(|| {
                let null = if column.nullable { "NULL" } else { "NOT NULL" };
                let clause = format!(
                    "MODIFY COLUMN {} {} {null}{}",
                    quote(&column.name),
                    column.sql_type,
                    same_default(Some(current))
                );
                (
                    format!("{} {} → {}", column.name, current.sql_type, column.sql_type),
                    clause,
                )
            })
        })
        .collect()
}

/// The `DEFAULT` clause that keeps a column's default through a `MODIFY COLUMN`: StarRocks
/// refuses a MODIFY whose default differs from the column's ("Can not change default value";
/// no default counts as `DEFAULT NULL`), and dbmazz adds columns with defaults.
fn same_default(current: Option<&DescribedColumn>) -> String {
    match current.and_then(|column| column.default.as_deref()) {
        None => String::new(),
        Some(function) if function.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => {
            " DEFAULT CURRENT_TIMESTAMP".to_string()
        }
        Some(value) => format!(
            " DEFAULT '{}'",
            value.replace('\\', "\\\\").replace('\'', "''")
        ),
    }
}

fn is_safe_widening(from: &StarRocksType, to: &StarRocksType) -> bool {
    use StarRocksType as T;
    let rank = |t: &StarRocksType| match t {
        T::TinyInt => Some(1),
        T::SmallInt => Some(2),
        T::Int => Some(3),
        T::BigInt => Some(4),
        T::LargeInt => Some(5),
        _ => None,
    };
    match (from, to) {
        (T::Varchar { bytes: a }, T::Varchar { bytes: b }) => b >= a,
        (T::Float, T::Double) => true,
        (
            T::Decimal {
                precision: p1,
                scale: s1,
            },
            T::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 == s2 && p2 >= p1,
        _ => matches!((rank(from), rank(to)), (Some(a), Some(b)) if b >= a),
    }
}
