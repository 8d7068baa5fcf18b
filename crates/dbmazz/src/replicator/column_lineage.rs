//! Which column is which across schema changes, by PostgreSQL attribute number.
//!
//! A Relation message names a table's columns but does not number them, so `RENAME COLUMN`
//! looks like a column dropped and another added, and a column dropped and added back under
//! its name looks unchanged. `pg_attribute.attnum` tells them apart: a rename keeps the
//! number, an added column always gets a new one. The catalog is read when the Relation is
//! applied, not as of its LSN, so the numbers are trusted only when the catalog's columns are
//! exactly the Relation's; otherwise the table changed again since (dbmazz is behind, or
//! replays after a restart) and columns are matched by name, as pgoutput gives them.

use std::collections::HashMap;

use crate::checkpoint::{NumberedColumn, NumberedShape};
use crate::schema::{ColumnOrigin, ColumnSchema, TableSchema};
use crate::source::SourceError;

/// A live column of a table in `pg_attribute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    pub attnum: i16,
    pub type_oid: u32,
    pub type_modifier: i32,
    /// A generated column: published only when the publication says so (PostgreSQL 18).
    pub generated: bool,
}

/// The table's live columns, in attribute-number order.
pub async fn read_catalog_columns(
    client: &tokio_postgres::Client,
    relation_oid: u32,
) -> Result<Vec<CatalogColumn>, SourceError> {
    let rows = client
        .query(
            "SELECT attname::text, attnum, atttypid, atttypmod, attgenerated <> '' \
             FROM pg_catalog.pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&relation_oid],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(CatalogColumn {
                name: row.try_get(0)?,
                attnum: row.try_get(1)?,
                type_oid: row.try_get(2)?,
                type_modifier: row.try_get(3)?,
                generated: row.try_get(4)?,
            })
        })
        .collect()
}

/// `schema` with each column's attribute number, when the catalog's published columns are
/// exactly the Relation's — names, types, order. `None` when they differ: the table changed
/// again after this Relation (or a publication column list leaves columns out), so the
/// numbers could belong to another shape.
pub fn number_columns(schema: &TableSchema, catalog: &[CatalogColumn]) -> Option<NumberedShape> {
    let published: Vec<&CatalogColumn> = catalog
        .iter()
        .filter(|column| !column.generated || schema.columns.iter().any(|c| c.name == column.name))
        .collect();
    if published.len() != schema.columns.len() {
        return None;
    }
    let columns = schema
        .columns
        .iter()
        .zip(published)
        .map(|(column, catalog)| {
            let same = column.name == catalog.name
                && column.type_oid == catalog.type_oid
                && column.type_modifier == catalog.type_modifier;
            same.then(|| NumberedColumn {
                name: column.name.clone(),
                attnum: catalog.attnum,
                type_oid: column.type_oid,
                type_modifier: column.type_modifier,
                is_key: column.is_key,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(NumberedShape {
        relation_oid: schema.relation_oid,
        columns,
    })
}

/// `schema` numbered as far as the catalog and the shape numbered `before` can tell, for a
/// Relation older than the catalog (dbmazz is behind, or the table changed while it was
/// stopped): a column the catalog has under its name and type takes that number; one the
/// catalog no longer has so (dropped, renamed or retyped since) takes the number it had
/// `before`. `None` when a column is in neither, or the numbers do not rise in column order
/// (the order pgoutput sends them in).
pub fn number_columns_partly(
    schema: &TableSchema,
    catalog: &[CatalogColumn],
    before: Option<&NumberedShape>,
) -> Option<NumberedShape> {
    let mut columns = Vec::with_capacity(schema.columns.len());
    for column in &schema.columns {
        let current = catalog.iter().find(|c| {
            c.name == column.name
                && c.type_oid == column.type_oid
                && c.type_modifier == column.type_modifier
        });
        let attnum = match current {
            Some(current) => current.attnum,
            None => {
                before?
                    .columns
                    .iter()
                    .find(|b| b.name == column.name)?
                    .attnum
            }
        };
        if columns
            .last()
            .is_some_and(|last: &NumberedColumn| last.attnum >= attnum)
        {
            return None;
        }
        columns.push(NumberedColumn {
            name: column.name.clone(),
            attnum,
            type_oid: column.type_oid,
            type_modifier: column.type_modifier,
            is_key: column.is_key,
        });
    }
    Some(NumberedShape {
        relation_oid: schema.relation_oid,
        columns,
    })
}

/// `schema` numbered as far as anything tells — the catalog by name and type, else the shape
/// numbered `before` by name — and 0 for a column neither knows (dropped, or renamed or
/// retyped, since this Relation). Recorded when [`number_columns_partly`] cannot number a
/// shape the sink applied, so that the next run still knows StarRocks got that column: 0 is
/// never a live attribute number, so the column counts as dropped unless a Relation names it.
pub fn number_columns_loosely(
    schema: &TableSchema,
    catalog: &[CatalogColumn],
    before: Option<&NumberedShape>,
) -> NumberedShape {
    let columns = schema
        .columns
        .iter()
        .map(|column| {
            let current = catalog.iter().find(|c| {
                c.name == column.name
                    && c.type_oid == column.type_oid
                    && c.type_modifier == column.type_modifier
            });
            let earlier = || {
                before?
                    .columns
                    .iter()
                    .find(|b| b.name == column.name)
                    .map(|b| b.attnum)
            };
            NumberedColumn {
                name: column.name.clone(),
                attnum: current.map(|c| c.attnum).or_else(earlier).unwrap_or(0),
                type_oid: column.type_oid,
                type_modifier: column.type_modifier,
                is_key: column.is_key,
            }
        })
        .collect();
    NumberedShape {
        relation_oid: schema.relation_oid,
        columns,
    }
}

/// `now` with the columns renamed since the sink's shape under their old names: the `old`
/// side of a change first seen at a table's first Relation of a run, so that the sink
/// renames (or recreates) them instead of adding new ones.
pub fn before_renames(now: &TableSchema, origins: &HashMap<String, Lineage>) -> TableSchema {
    let mut old = now.clone();
    for column in &mut old.columns {
        if let Some(Lineage::Renamed(from)) = origins.get(&column.name) {
            column.name = from.clone();
        }
        column.existing_rows = None;
        column.origin = None;
    }
    old
}

/// What the columns of `now` are to those of `before`, for columns whose name alone would
/// mislead. `old_names` are the columns of the shape the sink holds (a rename can only be
/// applied to a column it has). Columns not in the map are the same column under the same
/// name, or new.
pub fn column_origins(
    before: &NumberedShape,
    now: &NumberedShape,
    old_names: &[&str],
) -> HashMap<String, Lineage> {
    let mut origins = HashMap::new();
    let in_now = |name: &str| now.columns.iter().any(|c| c.name == name);
    for column in &now.columns {
        let same_number = before.columns.iter().find(|b| b.attnum == column.attnum);
        let same_name = before.columns.iter().find(|b| b.name == column.name);
        let lineage = match (same_number, same_name) {
            (Some(previous), _) if previous.name != column.name => {
                if old_names.contains(&previous.name.as_str()) && !in_now(&previous.name) {
                    Lineage::Renamed(previous.name.clone())
                } else {
                    // Names swapped or passed along (a → b while b → c): no single RENAME
                    // says it, and the values under this name are another column's.
                    Lineage::RenamedAmongOthers(previous.name.clone())
                }
            }
            // Attribute number 0: a loosely numbered shape did not know this column's number,
            // so nothing says it is another column than the one of this name.
            (None, Some(previous))
                if previous.attnum != 0 && old_names.contains(&column.name.as_str()) =>
            {
                Lineage::Recreated
            }
            _ => continue,
        };
        origins.insert(column.name.clone(), lineage);
    }
    origins
}

/// Without an earlier numbered shape to compare with: the `added` columns (absent from the
/// old shape by name) numbered below a column the old shape had (`survivors`). PostgreSQL
/// numbers an added column above every existing one, so such a column was there before —
/// renamed. (A rename of the last column cannot be told from a drop and an add this way.)
pub fn renamed_by_position(
    catalog: &[CatalogColumn],
    added: &[String],
    survivors: &[String],
) -> Vec<String> {
    let number = |name: &String| {
        catalog
            .iter()
            .find(|column| column.name == *name)
            .map(|column| column.attnum)
    };
    let Some(newest_survivor) = survivors.iter().filter_map(number).max() else {
        return Vec::new();
    };
    added
        .iter()
        .filter(|name| number(name).is_some_and(|attnum| attnum < newest_survivor))
        .cloned()
        .collect()
}

/// How a column of the new shape came to be, by attribute number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lineage {
    /// The old shape's column of this name, renamed.
    Renamed(String),
    /// Renamed from this name while other columns took names in the same change: the
    /// sink cannot follow it column by column.
    RenamedAmongOthers(String),
    /// Dropped and added back under its name.
    Recreated,
}

impl Lineage {
    pub fn origin(&self) -> ColumnOrigin {
        match self {
            Lineage::Renamed(from) => ColumnOrigin::RenamedFrom(from.clone()),
            Lineage::RenamedAmongOthers(_) | Lineage::Recreated => ColumnOrigin::Recreated,
        }
    }
}

/// `shape` as the schema the sink last applied: the `old` side of a change made while dbmazz
/// was stopped. Name and replica identity come from `now` (the same relation).
pub fn applied_schema(shape: &NumberedShape, now: &TableSchema) -> TableSchema {
    TableSchema {
        relation_oid: shape.relation_oid,
        name: now.name.clone(),
        replica_identity: now.replica_identity,
        columns: shape
            .columns
            .iter()
            .map(|column| {
                ColumnSchema::new(
                    column.name.clone(),
                    column.type_oid,
                    column.type_modifier,
                    column.is_key,
                )
            })
            .collect(),
        version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ReplicaIdentity;
    use crate::schema::TableName;

    fn catalog(columns: &[(&str, i16)]) -> Vec<CatalogColumn> {
        columns
            .iter()
            .map(|(name, attnum)| CatalogColumn {
                name: name.to_string(),
                attnum: *attnum,
                type_oid: 23,
                type_modifier: -1,
                generated: false,
            })
            .collect()
    }

    fn schema(names: &[&str]) -> TableSchema {
        TableSchema {
            relation_oid: 7,
            name: TableName::new("public", "t"),
            replica_identity: ReplicaIdentity::Default,
            columns: names
                .iter()
                .enumerate()
                .map(|(index, name)| ColumnSchema::new(name.to_string(), 23, -1, index == 0))
                .collect(),
            version: 1,
        }
    }

    fn numbered(columns: &[(&str, i16)]) -> NumberedShape {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        number_columns(&schema(&names), &catalog(columns)).expect("numbered")
    }

    #[test]
    fn numbers_are_trusted_only_when_the_catalog_matches_the_relation() {
        let shape = number_columns(&schema(&["id", "b"]), &catalog(&[("id", 1), ("b", 3)]));
        let attnums: Vec<i16> = shape
            .expect("matches")
            .columns
            .iter()
            .map(|c| c.attnum)
            .collect();
        assert_eq!(attnums, [1, 3]);
        // The table gained a column after this Relation.
        assert!(number_columns(
            &schema(&["id", "b"]),
            &catalog(&[("id", 1), ("b", 3), ("c", 4)])
        )
        .is_none());
        // A column renamed after this Relation.
        assert!(number_columns(&schema(&["id", "b"]), &catalog(&[("id", 1), ("x", 3)])).is_none());
        // A type changed after this Relation (int4 → int8).
        let mut widened = catalog(&[("id", 1), ("b", 3)]);
        widened[1].type_oid = 20;
        assert!(number_columns(&schema(&["id", "b"]), &widened).is_none());
    }

    #[test]
    fn unpublished_generated_columns_are_not_expected_in_the_relation() {
        let mut columns = catalog(&[("id", 1), ("g", 2), ("b", 3)]);
        columns[1].generated = true;
        assert!(number_columns(&schema(&["id", "b"]), &columns).is_some());
        assert!(number_columns(&schema(&["id", "g", "b"]), &columns).is_some());
    }

    #[test]
    fn without_an_earlier_shape_a_column_numbered_below_a_survivor_was_renamed() {
        let now = catalog(&[("id", 1), ("c", 2), ("b", 3), ("d", 4)]);
        let added = vec!["c".to_string(), "d".to_string()];
        let survivors = vec!["id".to_string(), "b".to_string()];
        assert_eq!(renamed_by_position(&now, &added, &survivors), ["c"]);
        assert!(renamed_by_position(&now, &added, &[]).is_empty());
    }

    #[test]
    fn a_relation_older_than_the_catalog_is_numbered_from_both() {
        let before = numbered(&[("id", 1), ("a", 2), ("b", 3), ("c", 4)]);
        // Relation after `RENAME a TO a2`; `DROP COLUMN c` came after it.
        let now = catalog(&[("id", 1), ("a2", 2), ("b", 3)]);
        let relation = schema(&["id", "a2", "b", "c"]);
        assert!(number_columns(&relation, &now).is_none());
        let partly = number_columns_partly(&relation, &now, Some(&before)).expect("numbered");
        let attnums: Vec<i16> = partly.columns.iter().map(|c| c.attnum).collect();
        assert_eq!(attnums, [1, 2, 3, 4]);
        let origins = column_origins(&before, &partly, &["id", "a", "b", "c"]);
        assert_eq!(origins.get("a2"), Some(&Lineage::Renamed("a".into())));
        assert_eq!(origins.len(), 1);
        let old = before_renames(&relation, &origins);
        let names: Vec<&str> = old.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "a", "b", "c"]);
        // A column neither the catalog nor the earlier shape knows: no numbers.
        assert!(number_columns_partly(&schema(&["id", "x"]), &now, Some(&before)).is_none());
        assert!(number_columns_partly(&relation, &now, None).is_none());
    }

    #[test]
    fn a_shape_the_catalog_cannot_number_is_recorded_with_unknown_numbers() {
        let before = numbered(&[("id", 1), ("a", 2)]);
        // Relation with `x`, added and dropped again since; `a` retyped since.
        let mut now = catalog(&[("id", 1), ("a", 2)]);
        now[1].type_oid = 20;
        let relation = schema(&["id", "a", "x"]);
        assert!(number_columns_partly(&relation, &now, Some(&before)).is_none());
        let loose = number_columns_loosely(&relation, &now, Some(&before));
        let attnums: Vec<i16> = loose.columns.iter().map(|c| c.attnum).collect();
        assert_eq!(attnums, [1, 2, 0]);
        // A later shape with a column of that name is not taken for a recreated one.
        let later = numbered(&[("id", 1), ("a", 2), ("x", 5)]);
        assert!(column_origins(&loose, &later, &["id", "a", "x"]).is_empty());
    }

    #[test]
    fn a_rename_keeps_the_attribute_number() {
        let before = numbered(&[("id", 1), ("a", 2), ("b", 3)]);
        // The last column renamed: by name alone, b dropped and c added.
        let now = numbered(&[("id", 1), ("a", 2), ("c", 3)]);
        let origins = column_origins(&before, &now, &["id", "a", "b"]);
        assert_eq!(origins.get("c"), Some(&Lineage::Renamed("b".into())));
        assert_eq!(origins.len(), 1);
    }

    #[test]
    fn a_column_dropped_and_added_back_is_recreated() {
        let before = numbered(&[("id", 1), ("a", 2)]);
        let now = numbered(&[("id", 1), ("a", 3)]);
        let origins = column_origins(&before, &now, &["id", "a"]);
        assert_eq!(origins.get("a"), Some(&Lineage::Recreated));
    }

    #[test]
    fn swapped_names_cannot_be_followed_one_by_one() {
        let before = numbered(&[("id", 1), ("a", 2), ("b", 3)]);
        let now = numbered(&[("id", 1), ("b", 2), ("a", 3)]);
        let origins = column_origins(&before, &now, &["id", "a", "b"]);
        assert_eq!(
            origins.get("b"),
            Some(&Lineage::RenamedAmongOthers("a".into()))
        );
        assert_eq!(
            origins.get("a"),
            Some(&Lineage::RenamedAmongOthers("b".into()))
        );
    }

    #[test]
    fn added_and_dropped_columns_have_no_lineage() {
        let before = numbered(&[("id", 1), ("a", 2)]);
        let now = numbered(&[("id", 1), ("c", 3)]);
        assert!(column_origins(&before, &now, &["id", "a"]).is_empty());
    }

    #[test]
    fn a_rename_the_sink_has_not_seen_the_old_name_of_is_not_a_rename_for_it() {
        let before = numbered(&[("id", 1), ("a", 2)]);
        let now = numbered(&[("id", 1), ("c", 2)]);
        let origins = column_origins(&before, &now, &["id"]);
        assert_eq!(
            origins.get("c"),
            Some(&Lineage::RenamedAmongOthers("a".into()))
        );
    }
}
