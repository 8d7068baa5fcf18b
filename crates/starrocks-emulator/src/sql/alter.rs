//! ALTER TABLE ... COLUMN. ADD/DROP/MODIFY are asynchronous jobs (spec §6.3): validated at
//! once, applied when the job finishes (PENDING → RUNNING → FINISHED, or CANCELLED), one job
//! per table at a time. RENAME COLUMN is synchronous metadata, with no job (§6.3a).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::catalog::{
    apply_alter, check_column_name, AlterJob, AlterOp, AlterState, SqlError, TableState,
};
use crate::engine::Engine;
use crate::faults::FaultKind;
use crate::sql::meta::column_sql;
use crate::sql::parser::{AlterAction, Position};
use crate::sql::schema_change::check_schema_change_allowed;

/// A DEFAULT StarRocks refuses, as `AlterTableClauseAnalyzer` words it.
fn validate_column_default(column: &crate::catalog::Column) -> Result<(), SqlError> {
    crate::defaults::validate_default(column).map_err(|detail| {
        SqlError::new(format!(
            "Getting analyzing error from line 1, column 0 to line 1, column 1. Detail message: \
             Column definition is wrong. {detail}."
        ))
    })
}

/// Validate an ALTER and start its job.
pub(crate) fn start_alter(
    engine: &Arc<Engine>,
    db: &str,
    table: &str,
    action: AlterAction,
) -> Result<(), SqlError> {
    let mut catalog = engine.catalog.lock();
    let target = catalog.table(db, table)?;
    if let AlterAction::RenameColumn { old, new } = &action {
        // AlterTableClauseAnalyzer.visitColumnRenameClause, before the executor's state check.
        if old.is_empty() {
            return Err(SqlError::new(
                "Getting analyzing error. Detail message: Column name is not set.",
            ));
        }
        if new.is_empty() {
            return Err(SqlError::new(
                "Getting analyzing error. Detail message: New column name is not set.",
            ));
        }
        check_column_name(new)?;
    }
    if target.state != TableState::Normal {
        // AlterJobExecutor.visitAlterTableStatement: InvalidOlapTableStateException (3.3+).
        return Err(SqlError::new(format!(
            "A schema change operation is in progress on the table \"{table}\". Please wait until \
             the current operation completes.\nTo check the status of the operation, see \
             https://docs.starrocks.io/docs/sql-reference/sql-statements/data-manipulation/SHOW_ALTER"
        )));
    }
    let schema = target.schema.clone();
    let mut names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
    let mut ops = Vec::new();
    match action {
        AlterAction::Add(columns) => {
            for (column, _, position) in columns {
                // Analysis (ColumnDef.analyze) comes before the schema change handler's checks.
                check_column_name(&column.name)?;
                if names.iter().any(|n| n.eq_ignore_ascii_case(&column.name)) {
                    return Err(SqlError::new(format!(
                        "Can not add column which already exists in base table: {}",
                        column.name
                    )));
                }
                validate_column_default(&column)?;
                if !column.nullable && column.default.is_none() {
                    return Err(SqlError::new(format!(
                        "Getting analyzing error from line 1, column 0 to line 1, column 1. Detail message: Field '{}' is not null but doesn't have a default value.",
                        column.name
                    )));
                }
                // SchemaChangeHandler, after analysis: a renamed column keeps its old name as its
                // ColumnId, which a new column may not take.
                if let Some(i) = schema.column_index_by_id(&column.name) {
                    return Err(SqlError::new(format!(
                        "Can not add column which already exists in column id: {}, you can remove {} and try again.",
                        column.name,
                        column_sql(&schema.columns[i])
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
            validate_column_default(&column)?;
            let old = &schema.columns[i];
            let unchanged = old.ty == column.ty
                && old.nullable == column.nullable
                && old.default == column.default
                && old.comment == column.comment;
            if unchanged {
                // SchemaChangeHandler: nothing changed, so no job is created.
                return Ok(());
            }
            check_schema_change_allowed(old, &column)?;
            let mut column = column;
            column.name = old.name.clone();
            column.column_id = old.column_id.clone();
            ops.push(AlterOp::Modify(column));
        }
        AlterAction::RenameColumn { old, new } => {
            return catalog.table_mut(db, table)?.rename_column(&old, &new);
        }
    }
    let job_id = catalog.next_job_id();
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
