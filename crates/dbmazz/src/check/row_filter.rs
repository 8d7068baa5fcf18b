//! A publication row filter (PostgreSQL 15+) on a column outside the table's replica
//! identity: PostgreSQL then refuses every UPDATE and DELETE on the table ("Column used in the
//! publication WHERE expression is not part of the replica identity") — the application
//! breaks, not only the replication.

use crate::schema::TableName;
use crate::source::{quote_ident, quote_table, SourceError};

use super::CheckLine;

/// The line for `table`'s row filter in `publication`, when it has one that names a column
/// its replica identity does not hold while updates or deletes are published.
pub(super) async fn row_filter_line(
    client: &tokio_postgres::Client,
    publication: &str,
    table: &TableName,
    relation_oid: u32,
    version_num: u32,
) -> Result<Option<CheckLine>, SourceError> {
    if version_num < 150_000 {
        return Ok(None);
    }
    // The filter's parse tree names its columns as `:varattno N`; the identity's columns are
    // those of the primary key (DEFAULT) or of the identity index (USING INDEX).
    let row = client
        .query_opt(
            "SELECT pr.prqual::text, pg_get_expr(pr.prqual, pr.prrelid), c.relreplident::text, \
                    (p.pubupdate OR p.pubdelete), \
                    (SELECT i.indkey::text FROM pg_index i WHERE i.indrelid = c.oid AND \
                       CASE c.relreplident WHEN 'd' THEN i.indisprimary \
                                           WHEN 'i' THEN i.indisreplident ELSE false END) \
             FROM pg_publication p \
             JOIN pg_publication_rel pr ON pr.prpubid = p.oid \
             JOIN pg_class c ON c.oid = pr.prrelid \
             WHERE p.pubname = $1 AND pr.prrelid = $2 AND pr.prqual IS NOT NULL",
            &[&publication, &relation_oid],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (tree, filter, identity, changes): (String, String, String, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let identity_columns: Vec<i16> = row
        .get::<_, Option<String>>(4)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|attnum| attnum.parse().ok())
        .collect();
    if !changes || identity == "f" {
        return Ok(None);
    }
    let outside: Vec<i16> = filter_columns(&tree)
        .into_iter()
        .filter(|attnum| !identity_columns.contains(attnum))
        .collect();
    if outside.is_empty() {
        return Ok(None);
    }
    let names = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum = ANY($2) \
             ORDER BY attnum",
            &[&relation_oid, &outside],
        )
        .await?
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Some(CheckLine::fail(
        format!("row filter of {table}"),
        format!(
            "publication {publication} filters {table} on {names} (WHERE {filter}), which its \
             replica identity does not hold: PostgreSQL refuses every UPDATE and DELETE on it"
        ),
        format!(
            "ALTER TABLE {} REPLICA IDENTITY FULL; or filter on key columns only (ALTER \
             PUBLICATION {} SET TABLE … WHERE …)",
            quote_table(table),
            quote_ident(publication)
        ),
    )))
}

/// The attribute numbers a row filter's parse tree (`pg_node_tree` text) uses.
fn filter_columns(tree: &str) -> Vec<i16> {
    let mut columns: Vec<i16> = tree
        .split(":varattno ")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    columns.sort_unstable();
    columns.dedup();
    columns
}

#[cfg(test)]
mod tests {
    use super::filter_columns;

    #[test]
    fn columns_are_read_from_the_parse_tree() {
        let tree = "{OPEXPR :opno 521 :args ({VAR :varno 1 :varattno 3 :vartype 23} \
                    {CONST :consttype 23}) } {VAR :varno 1 :varattno 1 :vartype 23} \
                    {VAR :varno 1 :varattno 3 :vartype 23}";
        assert_eq!(filter_columns(tree), [1, 3]);
        assert!(filter_columns("{CONST :consttype 16}").is_empty());
    }
}
