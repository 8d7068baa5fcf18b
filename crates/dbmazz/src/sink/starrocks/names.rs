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

#[cfg(test)]
mod tests {
    use super::*;

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
