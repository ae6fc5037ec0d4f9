//! The rate at which the shadow rewrites a table: a scratch table of a few megabytes is rewritten (a column's type
//! changed) in the shadow's database, and its bytes over the time taken give the rate a production rewrite's
//! duration is estimated with. Stated with every estimate, as production's disks and load differ.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::shadow::Shadow;
use crate::source::Database;

/// Bytes per second a rewrite of a scratch table ran at in `database` (the table is dropped again).
pub async fn rewrite_rate(shadow: &Shadow, database: &Database) -> Result<f64> {
    let admin = shadow.admin(database.name()).await?;
    let client = admin.client();
    let fail = |e| Error::pg("measuring the shadow's rewrite rate", e);
    client
        .batch_execute(
            "CREATE TEMPORARY TABLE pgshadow_rewrite_rate AS \
             SELECT g::integer AS id, pg_catalog.md5(g::text) AS filler FROM pg_catalog.generate_series(1, 50000) g",
        )
        .await
        .map_err(fail)?;
    let bytes: i64 = client
        .query_one("SELECT pg_catalog.pg_total_relation_size('pg_temp.pgshadow_rewrite_rate')", &[])
        .await
        .map_err(fail)?
        .get(0);
    let started = Instant::now();
    client
        .batch_execute("ALTER TABLE pg_temp.pgshadow_rewrite_rate ALTER COLUMN id TYPE bigint")
        .await
        .map_err(fail)?;
    let seconds = started.elapsed().as_secs_f64().max(1e-3);
    client.batch_execute("DROP TABLE pg_temp.pgshadow_rewrite_rate").await.map_err(fail)?;
    Ok(bytes as f64 / seconds)
}
