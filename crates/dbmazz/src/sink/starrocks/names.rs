//! Which StarRocks table a PostgreSQL table goes to: the one of the same name (without its
//! schema) in `sink.starrocks.database`. Two published tables of the same name in different
//! schemas would share one StarRocks table — their rows merged by key, a delete in one
//! removing the other's row — so dbmazz refuses that.

use crate::schema::TableName;

/// The first two `tables` that would go to the same StarRocks table.
pub fn same_destination<'a>(
    tables: impl IntoIterator<Item = &'a TableName>,
) -> Option<(&'a TableName, &'a TableName)> {
    let mut seen: std::collections::HashMap<&str, &TableName> = Default::default();
    for table in tables {
        match seen.get(table.name.as_str()) {
            Some(first) if *first != table => return Some((first, table)),
            Some(_) => {}
            None => {
                seen.insert(&table.name, table);
            }
        }
    }
    None
}

/// What to do about two tables of one name.
pub const SAME_DESTINATION_FIX: &str = "publish only one of them, or replicate the other with a \
     second dbmazz (its own publication, slot, state_dir and sink.starrocks.database)";

/// Why two tables cannot be replicated together into `database`, and what to do.
pub fn same_destination_message(first: &TableName, second: &TableName, database: &str) -> String {
    format!(
        "tables {first} and {second} would both go to StarRocks table {database}.{} (a StarRocks \
         table takes the PostgreSQL table's name without its schema), merging their rows: \
         {SAME_DESTINATION_FIX}",
        first.name
    )
}

/// What to do about a column name StarRocks cannot take.
pub const COLUMN_NAME_FIX: &str =
    "rename the column in PostgreSQL (ALTER TABLE ... RENAME COLUMN), \
     or leave it out of the publication's column list (PostgreSQL 15+)";

/// Why StarRocks cannot take these column names of one table, if it cannot: what
/// `FeNameFormat.checkColumnName` refuses (`= < > ! *`, NUL; `__op`, `__row`; the
/// `__starrocks_shadow_` and `__generated_partition_column_` prefixes), two names that differ
/// only in case (StarRocks compares them case-insensitively), a line break (the Stream Load
/// `columns` header cannot carry it), and the `audit` columns dbmazz adds.
pub fn column_name_problem<'a>(
    columns: impl IntoIterator<Item = &'a str>,
    audit: &[&str],
) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for name in columns {
        let lower = name.to_lowercase();
        if name.contains(['=', '<', '>', '!', '*', '\0']) {
            return Some(format!(
                "column {name:?} has a character StarRocks refuses in column names (= < > ! *)"
            ));
        }
        if name.contains(['\n', '\r']) {
            return Some(format!(
                "column {name:?} has a line break, which the Stream Load columns header cannot carry"
            ));
        }
        if ["__op", "__row"].contains(&lower.as_str())
            || lower.starts_with("__starrocks_shadow_")
            || lower.starts_with("__generated_partition_column_")
        {
            return Some(format!("column {name:?} has a name StarRocks reserves"));
        }
        if let Some(audit) = audit.iter().find(|audit| audit.eq_ignore_ascii_case(name)) {
            return Some(format!(
                "column {name:?} takes the name of the audit column {audit} dbmazz adds \
                 (sink.starrocks.audit_columns, delete_mode = \"soft\")"
            ));
        }
        if let Some(first) = seen.iter().find(|seen| seen.to_lowercase() == lower) {
            return Some(format!(
                "columns {first:?} and {name:?} differ only in case, and StarRocks column names \
                 ignore case"
            ));
        }
        seen.push(name);
    }
    None
}

/// [`column_name_problem`] with the audit columns `options` add.
pub fn column_name_problem_with<'a>(
    columns: impl IntoIterator<Item = &'a str>,
    options: &super::EncoderOptions,
) -> Option<String> {
    let audit = super::audit_columns(options);
    let audit: Vec<&str> = audit.iter().map(|(name, _)| *name).collect();
    column_name_problem(columns, &audit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_starrocks_refuses_are_found() {
        let problem =
            |names: &[&str], audit: &[&str]| column_name_problem(names.iter().copied(), audit);
        assert_eq!(problem(&["id", "Order", "a b", "café", "x.y"], &[]), None);
        for (names, expected) in [
            (
                &["id", "a=b"][..],
                "\"a=b\" has a character StarRocks refuses",
            ),
            (&["id", "bang!"][..], "\"bang!\" has a character"),
            (&["id", "new\nline"][..], "has a line break"),
            (
                &["id", "__OP"][..],
                "\"__OP\" has a name StarRocks reserves",
            ),
            (
                &["id", "Val", "val"][..],
                "columns \"Val\" and \"val\" differ only in case",
            ),
        ] {
            let found = problem(names, &[]).unwrap_or_default();
            assert!(found.contains(expected), "{names:?}: {found}");
        }
        let found = problem(&["id", "DBMAZZ_IS_DELETED"], &["dbmazz_is_deleted"]).unwrap();
        assert!(found.contains("audit column dbmazz_is_deleted"), "{found}");
    }

    fn names(list: &[&str]) -> Vec<TableName> {
        list.iter()
            .filter_map(|text| TableName::parse(text))
            .collect()
    }

    #[test]
    fn tables_of_one_name_in_two_schemas_share_a_destination() {
        let tables = names(&["public.orders", "public.items", "sales.orders"]);
        let (first, second) = same_destination(&tables).unwrap();
        assert_eq!(
            (first.to_string(), second.to_string()),
            ("public.orders".into(), "sales.orders".into())
        );
        let message = same_destination_message(first, second, "shop");
        assert!(message.contains("shop.orders"), "{message}");
    }

    #[test]
    fn distinct_names_and_repeats_of_one_table_do_not() {
        assert!(same_destination(&names(&["public.a", "public.b", "public.a"])).is_none());
        // StarRocks table names are case-sensitive.
        assert!(same_destination(&names(&["public.Orders", "sales.orders"])).is_none());
    }
}
