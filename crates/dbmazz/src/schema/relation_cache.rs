//! The Relation cache: relation OID → current `Arc<TableSchema>`.

use std::collections::HashMap;
use std::sync::Arc;

use super::{KeyOverrides, TableSchema};
use crate::decode::RelationBody;

/// What a Relation message meant for the cache.
#[derive(Debug, Clone)]
pub enum RelationUpdate {
    /// First time we see this relation in this session.
    New(Arc<TableSchema>),
    /// Sent again with the same shape (PostgreSQL resends after cache invalidations).
    Unchanged(Arc<TableSchema>),
    /// The shape differs from what we had: a schema change.
    Changed {
        old: Arc<TableSchema>,
        new: Arc<TableSchema>,
    },
}

impl RelationUpdate {
    pub fn schema(&self) -> &Arc<TableSchema> {
        match self {
            RelationUpdate::New(schema) | RelationUpdate::Unchanged(schema) => schema,
            RelationUpdate::Changed { new, .. } => new,
        }
    }
}

#[derive(Debug, Default)]
pub struct RelationCache {
    by_oid: HashMap<u32, Arc<TableSchema>>,
    next_version: u64,
    keys: KeyOverrides,
}

impl RelationCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Key columns from the configuration for tables whose replica identity has none.
    pub fn set_key_overrides(&mut self, keys: KeyOverrides) {
        self.keys = keys;
    }

    pub fn get(&self, relation_oid: u32) -> Option<&Arc<TableSchema>> {
        self.by_oid.get(&relation_oid)
    }

    pub fn apply(&mut self, relation: &RelationBody) -> RelationUpdate {
        self.next_version += 1;
        let mut candidate = TableSchema::from_relation(relation, self.next_version);
        if let Err(error) = self.keys.apply(&mut candidate) {
            // Checked at start against the catalog; a later change can still break it.
            tracing::warn!(table = %candidate.name, %error, "configured key columns not applied");
        }
        match self.by_oid.get(&relation.oid) {
            Some(existing) if existing.same_shape(&candidate) => {
                RelationUpdate::Unchanged(Arc::clone(existing))
            }
            Some(existing) => {
                let old = Arc::clone(existing);
                let new = Arc::new(candidate);
                self.by_oid.insert(relation.oid, Arc::clone(&new));
                RelationUpdate::Changed { old, new }
            }
            None => {
                let new = Arc::new(candidate);
                self.by_oid.insert(relation.oid, Arc::clone(&new));
                RelationUpdate::New(new)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{RelationColumn, ReplicaIdentity};

    fn relation(columns: &[(&str, u32, bool)]) -> RelationBody {
        RelationBody {
            xid: None,
            oid: 16384,
            namespace: "public".into(),
            name: "orders".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: columns
                .iter()
                .map(|(name, type_oid, is_key)| RelationColumn {
                    is_key: *is_key,
                    name: name.to_string(),
                    type_oid: *type_oid,
                    type_modifier: -1,
                })
                .collect(),
        }
    }

    #[test]
    fn detects_new_unchanged_and_changed_relations() {
        let mut cache = RelationCache::new();
        let first = relation(&[("id", 23, true), ("note", 25, false)]);
        let RelationUpdate::New(schema) = cache.apply(&first) else {
            panic!("first sight is New");
        };
        assert_eq!(schema.key_indexes().collect::<Vec<_>>(), vec![0]);
        assert!(matches!(cache.apply(&first), RelationUpdate::Unchanged(_)));

        let widened = relation(&[("id", 20, true), ("note", 25, false)]);
        let RelationUpdate::Changed { old, new } = cache.apply(&widened) else {
            panic!("type change is Changed");
        };
        assert_eq!(old.columns[0].type_oid, 23);
        assert_eq!(new.columns[0].type_oid, 20);
        assert_ne!(old.version, new.version);
        assert_eq!(cache.get(16384).map(|s| s.version), Some(new.version));
    }
}
