//! The source database's domains and the types under them: pgoutput and the catalog give a
//! column's domain OID, while its values are those of the base type.

use std::collections::BTreeMap;

use super::SourceError;

/// Domain OID → (base type OID, typmod): domains over domains are followed to the final
/// base type, and the nearest typmod set on the way is kept (`CREATE DOMAIN d AS
/// numeric(10,2)`).
pub async fn read_domains(
    client: &tokio_postgres::Client,
) -> Result<BTreeMap<u32, (u32, i32)>, SourceError> {
    let rows = client
        .query(
            "WITH RECURSIVE d(domain, base, modifier) AS ( \
               SELECT oid, typbasetype, typtypmod FROM pg_catalog.pg_type WHERE typtype = 'd' \
               UNION ALL \
               SELECT d.domain, t.typbasetype, \
                      CASE WHEN d.modifier = -1 THEN t.typtypmod ELSE d.modifier END \
               FROM d JOIN pg_catalog.pg_type t ON t.oid = d.base WHERE t.typtype = 'd') \
             SELECT d.domain, d.base, d.modifier FROM d \
             JOIN pg_catalog.pg_type t ON t.oid = d.base WHERE t.typtype <> 'd'",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?))))
        .collect()
}
