//! The publication: exists and covers the configured tables, or will be created by
//! `dbmazz run` (if the role may), and publishes inserts, updates and deletes.

use crate::config::Config;
use crate::schema::TableName;
use crate::source::{published_tables, quote_ident, quote_table, SetupError, SourceError};

use super::postgres::Role;
use super::{CheckLine, CheckReport};

/// Checks the publication; returns the tables to check (the configured ones, or those the
/// publication publishes when none are configured).
pub(super) async fn check_publication(
    config: &Config,
    client: &tokio_postgres::Client,
    role: &Role,
    report: &mut CheckReport,
) -> Result<Vec<TableName>, SourceError> {
    let publication = &config.source.publication;
    let subject = format!("publication {publication}");
    let configured = config.tables();
    let row = client
        .query_opt(
            "SELECT pubinsert, pubupdate, pubdelete FROM pg_publication WHERE pubname = $1",
            &[publication],
        )
        .await?;
    let Some(row) = row else {
        report.push(missing_publication_line(config, client, role, &configured, &subject).await?);
        return Ok(configured);
    };
    let published = match published_tables(client, publication).await {
        Ok(published) => published,
        Err(error @ SourceError::UnaddressableTable { .. }) => {
            report.push(CheckLine::fail(
                &subject,
                crate::one_line(&error),
                "rename the table (ALTER TABLE ... RENAME TO a name without a dot), or publish \
                 only the tables to replicate (CREATE PUBLICATION ... FOR TABLE ...)",
            ));
            return Ok(configured);
        }
        Err(error) => return Err(error),
    };
    let missing: Vec<&TableName> = configured
        .iter()
        .filter(|table| !published.contains(table))
        .collect();
    let actions: Vec<&str> = [(0, "insert"), (1, "update"), (2, "delete")]
        .into_iter()
        .filter(|(index, _)| !row.get::<_, bool>(*index))
        .map(|(_, action)| action)
        .collect();
    report.push(if !missing.is_empty() {
        CheckLine::fail(
            &subject,
            format!(
                "does not publish {}",
                missing
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "ALTER PUBLICATION {} ADD TABLE {};",
                quote_ident(publication),
                missing
                    .iter()
                    .map(|table| quote_table(table))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else if published.is_empty() {
        CheckLine::fail(
            &subject,
            "publishes no tables",
            format!(
                "ALTER PUBLICATION {} ADD TABLE ...; (or list the tables in source.tables)",
                quote_ident(publication)
            ),
        )
    } else if !actions.is_empty() {
        CheckLine::warn(
            &subject,
            format!(
                "does not publish {}: StarRocks will miss those changes",
                actions.join(", ")
            ),
            format!(
                "ALTER PUBLICATION {} SET (publish = 'insert, update, delete, truncate');",
                quote_ident(publication)
            ),
        )
    } else {
        CheckLine::ok(&subject, format!("publishes {} table(s)", published.len()))
    });
    Ok(if configured.is_empty() {
        published
    } else {
        configured
    })
}

/// A missing publication: `dbmazz run` creates it for the configured tables if it may.
async fn missing_publication_line(
    config: &Config,
    client: &tokio_postgres::Client,
    role: &Role,
    configured: &[TableName],
    subject: &str,
) -> Result<CheckLine, SourceError> {
    let publication = &config.source.publication;
    if configured.is_empty() {
        return Ok(CheckLine::fail(
            subject,
            SetupError::NoPublicationNoTables {
                publication: publication.clone(),
            }
            .to_string(),
            "list the tables in source.tables, or CREATE PUBLICATION ... FOR TABLE ...",
        ));
    }
    let list = configured
        .iter()
        .map(quote_table)
        .collect::<Vec<_>>()
        .join(", ");
    let create = format!(
        "CREATE PUBLICATION {} FOR TABLE {list};",
        quote_ident(publication)
    );
    // CREATE PUBLICATION ... FOR TABLE needs CREATE on the database and ownership of each table.
    let mut not_owned = Vec::new();
    for table in configured {
        let owned = client
            .query_opt(
                "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema, &table.name],
            )
            .await?
            .is_none_or(|row| row.get::<_, bool>(0));
        if !owned {
            not_owned.push(table.to_string());
        }
    }
    if role.superuser || (role.may_create_in_database && not_owned.is_empty()) {
        return Ok(CheckLine::warn(
            subject,
            format!("does not exist; dbmazz will create it at the first start: {create}"),
            "nothing to do, or create it yourself beforehand",
        ));
    }
    let mut reasons = Vec::new();
    if !role.may_create_in_database {
        reasons.push("has no CREATE privilege on the database".to_string());
    }
    if !not_owned.is_empty() {
        reasons.push(format!("does not own {}", not_owned.join(", ")));
    }
    Ok(CheckLine::fail(
        subject,
        format!(
            "does not exist, and {:?} cannot create it: it {}",
            role.name,
            reasons.join(" and ")
        ),
        format!("as the tables' owner or a superuser: {create}"),
    ))
}
