//! The StarRocks half of `dbmazz check`: FE HTTP (reachability and the credentials Stream Load
//! will send), BE HTTP when loading straight to BEs, the MySQL protocol (auth, version), the
//! database, and each table against what the PostgreSQL shape needs (the sink's own
//! [`required_columns`] / [`missing_columns`], so the check and `dbmazz run` agree).

use std::time::Duration;

use crate::config::{Config, LoadViaConfig, StarRocksConfig};
use crate::schema::TableSchema;
use crate::sink::starrocks::ddl::{create_table_sql, quote};
use crate::sink::starrocks::stream_load::{RequestError, StreamLoadClient, StreamLoadConfig};
use crate::sink::starrocks::{
    column_name_problem_with, missing_columns, required_columns, same_destination, DdlError,
    DeleteMode, EncoderOptions, StarRocksDdl, COLUMN_NAME_FIX, SAME_DESTINATION_FIX,
};

use super::{be_probe, CheckLine, CheckReport, CheckStatus};

/// The label asked about to probe the FE; it never names a real load.
const PROBE_LABEL: &str = "dbmazz_check_probe";
/// How long a BE address may take to accept a TCP connection.
const BE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn check(config: &Config, tables: &[TableSchema], report: &mut CheckReport) {
    let Some(starrocks) = &config.sink.starrocks else {
        report.push(CheckLine::fail(
            "sink.starrocks",
            "missing",
            "add a [sink.starrocks] section with fe_http, mysql, user, password, database",
        ));
        return;
    };
    let names: Vec<_> = tables.iter().map(|table| table.name.clone()).collect();
    if let Some((first, second)) = same_destination(&names) {
        report.push(CheckLine::fail(
            "StarRocks table names",
            format!(
                "{first} and {second} would both go to {}.{} (a StarRocks table takes the \
                 PostgreSQL table's name without its schema), merging their rows",
                starrocks.database, first.name
            ),
            SAME_DESTINATION_FIX,
        ));
    }
    let fe_line = fe_http_line(starrocks).await;
    let fe_reachable = fe_line.status != CheckStatus::Fail;
    report.push(fe_line);
    match starrocks.load_via {
        LoadViaConfig::Be => {
            for address in &starrocks.be_http {
                report.push(be_http_line(address).await);
            }
        }
        // The BE the FE redirects to; probed with a table dbmazz will load.
        LoadViaConfig::Fe if fe_reachable => {
            if let Some(table) = tables.first() {
                report.push(be_probe::be_via_fe_line(starrocks, &table.name.name).await);
            }
        }
        LoadViaConfig::Fe => {}
    }
    let ddl = match StarRocksDdl::connect(
        &starrocks.mysql,
        &starrocks.user,
        &starrocks.password,
        &starrocks.database,
    )
    .await
    {
        Ok(ddl) => ddl,
        Err(error) => {
            let fix = match &error {
                DdlError::Auth { .. } => "check sink.starrocks.user and sink.starrocks.password",
                _ => "check sink.starrocks.mysql (the FE's query port, 9030 by default) and that the FE is up",
            };
            report.push(CheckLine::fail(
                "StarRocks MySQL protocol",
                error.problem(),
                fix,
            ));
            return;
        }
    };
    report.push(CheckLine::ok(
        "StarRocks MySQL protocol",
        format!("{} accepted user {:?}", starrocks.mysql, starrocks.user),
    ));
    match ddl.version().await {
        Ok(version) => report.push(version_line(&version)),
        Err(error) => report.push(CheckLine::warn(
            "StarRocks version",
            format!("cannot read it: {error}"),
            "dbmazz is built and tested for StarRocks 3.x",
        )),
    }
    let database = &starrocks.database;
    let subject = format!("StarRocks database {database}");
    match ddl.database_exists().await {
        Ok(true) => report.push(CheckLine::ok(subject, "exists")),
        Ok(false) if starrocks.create_tables => report.push(CheckLine::ok(
            subject,
            "does not exist yet: dbmazz creates it with the first table (create_tables = true)",
        )),
        Ok(false) => {
            report.push(CheckLine::fail(
                subject,
                "does not exist (and create_tables = false)",
                format!("CREATE DATABASE {};", quote(database)),
            ));
            return;
        }
        Err(error) => {
            report.push(CheckLine::fail(
                subject,
                error.to_string(),
                "see the message",
            ));
            return;
        }
    }
    let encoder = EncoderOptions {
        delete_mode: starrocks.delete_mode,
        audit_columns: starrocks.audit_columns,
        key_columns: None,
        not_null_columns: Vec::new(),
    };
    let mut described = std::collections::HashSet::new();
    for table in tables {
        // Tables sharing a StarRocks name are reported once above; one line per StarRocks table.
        if !described.insert(table.name.name.as_str()) {
            continue;
        }
        if let Some(line) = table_line(starrocks, &ddl, table, &encoder).await {
            report.push(line);
        }
    }
}

/// Asks the FE for the state of a label that does not exist: any answer but 401 proves the
/// address and the HTTP credentials Stream Load will use.
async fn fe_http_line(starrocks: &StarRocksConfig) -> CheckLine {
    let subject = "StarRocks FE HTTP";
    let client = match StreamLoadClient::new(StreamLoadConfig::new(
        &starrocks.fe_http,
        &starrocks.user,
        &starrocks.password,
    )) {
        Ok(client) => client,
        Err(error) => {
            return CheckLine::fail(subject, error.to_string(), "check sink.starrocks.fe_http")
        }
    };
    match client
        .get_load_state(&starrocks.database, PROBE_LABEL)
        .await
    {
        Ok(_) => CheckLine::ok(
            subject,
            format!("{} answers and accepts the credentials", starrocks.fe_http),
        ),
        Err(error @ RequestError::Unauthorized { .. }) => CheckLine::fail(
            subject,
            error.to_string(),
            "check sink.starrocks.user and sink.starrocks.password (the user needs INSERT on the tables)",
        ),
        Err(error @ RequestError::Status { .. }) => CheckLine::warn(
            subject,
            format!("{error} (get_load_state is StarRocks 3.x's label API)"),
            "check that sink.starrocks.fe_http is a StarRocks FE's HTTP port (8030 by default)",
        ),
        Err(error) => CheckLine::fail(
            subject,
            error.to_string(),
            "check sink.starrocks.fe_http (the FE's HTTP port, 8030 by default) and that the FE is up",
        ),
    }
}

/// With `load_via = "be"`, dbmazz connects to each BE itself: the address must accept TCP.
async fn be_http_line(address: &str) -> CheckLine {
    let subject = format!("StarRocks BE HTTP {address}");
    let host_port = address
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    match tokio::time::timeout(
        BE_CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&host_port),
    )
    .await
    {
        Ok(Ok(_)) => CheckLine::ok(subject, "accepts connections"),
        Ok(Err(error)) => CheckLine::fail(
            subject,
            format!("cannot connect: {error}"),
            "check sink.starrocks.be_http (the BEs' HTTP port, 8040 by default)",
        ),
        Err(_) => CheckLine::fail(
            subject,
            format!("no connection within {BE_CONNECT_TIMEOUT:?}"),
            "check sink.starrocks.be_http and the network between dbmazz and the BEs",
        ),
    }
}

fn version_line(version: &str) -> CheckLine {
    let subject = "StarRocks version";
    if version.trim_start().starts_with("3.") {
        return CheckLine::ok(subject, version.to_string());
    }
    CheckLine::warn(
        subject,
        format!("{version:?} is not a 3.x release"),
        "dbmazz is built and tested for StarRocks 3.x (docs/starrocks-spec.md); other versions may differ",
    )
}

/// One table: missing (created or not), or present with every column the shape needs.
async fn table_line(
    starrocks: &StarRocksConfig,
    ddl: &StarRocksDdl,
    table: &TableSchema,
    encoder: &EncoderOptions,
) -> Option<CheckLine> {
    let name = &table.name.name;
    let subject = format!("StarRocks table {}.{name}", starrocks.database);
    let names = table.columns.iter().map(|column| column.name.as_str());
    if let Some(problem) = column_name_problem_with(names, encoder) {
        return Some(CheckLine::fail(
            &subject,
            format!("{}: {problem}", table.name),
            COLUMN_NAME_FIX,
        ));
    }
    // An unsupported column is reported by the PostgreSQL checks already.
    let (keys, values) = required_columns(table, &starrocks.type_map_options(), encoder).ok()?;
    if keys.is_empty() {
        // No usable key: reported by the PostgreSQL checks.
        return None;
    }
    let described = match ddl.describe(name).await {
        Ok(described) => described,
        Err(error) => {
            return Some(CheckLine::fail(
                subject,
                error.to_string(),
                "see the message",
            ))
        }
    };
    let Some(described) = described else {
        if starrocks.create_tables {
            return Some(CheckLine::ok(
                subject,
                "does not exist yet: dbmazz creates it (create_tables = true) and, if it copied \
                 the table before, copies it again",
            ));
        }
        let properties: Vec<(String, String)> = starrocks
            .table_properties
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let qualified = format!("{}.{}", quote(&starrocks.database), quote(name));
        return Some(CheckLine::fail(
            subject,
            "does not exist (and create_tables = false)",
            format!(
                "create it: {}; (or set sink.starrocks.create_tables = true)",
                create_table_sql(&qualified, &keys, &values, &properties).replace('\n', " ")
            ),
        ));
    };
    let missing = missing_columns(&keys, &values, &described);
    let has = |name: &str| described.iter().any(|d| d.name.eq_ignore_ascii_case(name));
    let lacks_a_key = keys.iter().any(|key| !has(&key.name));
    // As the sink does: with create_tables it adds missing value columns at start.
    if !missing.is_empty() && starrocks.create_tables && !lacks_a_key {
        return Some(CheckLine::warn(
            subject,
            format!(
                "lacks columns: {}; dbmazz adds them at start (create_tables = true)",
                missing.join(", ")
            ),
            "rows already in StarRocks get NULL (or the PostgreSQL value of a column added with \
             a constant DEFAULT) in those columns: re-snapshot the table if they need the values",
        ));
    }
    if !missing.is_empty() {
        return Some(CheckLine::fail(
            subject,
            format!("lacks columns: {}", missing.join(", ")),
            format!(
                "ALTER TABLE {}.{} ADD COLUMN ...; for each (or drop the table and let \
                 create_tables recreate it, then re-snapshot)",
                quote(&starrocks.database),
                quote(name)
            ),
        ));
    }
    // Upserts and deletes find rows by the StarRocks key: it must be PostgreSQL's.
    let mut wanted_key: Vec<String> = keys
        .iter()
        .map(|key| key.name.to_ascii_lowercase())
        .collect();
    let mut actual_key: Vec<String> = described
        .iter()
        .filter(|column| column.is_key)
        .map(|column| column.name.to_ascii_lowercase())
        .collect();
    wanted_key.sort();
    actual_key.sort();
    if !actual_key.is_empty() && actual_key != wanted_key {
        return Some(CheckLine::fail(
            subject,
            format!(
                "its key is ({}) but the PostgreSQL key is ({}): rows would be matched wrongly",
                actual_key.join(", "),
                wanted_key.join(", ")
            ),
            "recreate the StarRocks table with PRIMARY KEY on the PostgreSQL key (or drop it and \
             let create_tables create it), then re-snapshot",
        ));
    }
    let soft = if starrocks.delete_mode == DeleteMode::Soft {
        ", soft deletes"
    } else {
        ""
    };
    Some(CheckLine::ok(
        subject,
        format!(
            "exists with the {} columns dbmazz writes{soft}",
            keys.len() + values.len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starrocks_3_is_ok_and_others_warn() {
        assert_eq!(version_line("3.3.5-abc").status, CheckStatus::Ok);
        assert_eq!(version_line("2.5.4").status, CheckStatus::Warn);
    }
}
