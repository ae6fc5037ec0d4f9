//! A consistent sample of a live database's rows (`--from-url URL --sample PERCENT`), for sources too big to copy:
//! each table's rows are sampled (`TABLESAMPLE BERNOULLI`), then the rows they reference are fetched until every
//! foreign key holds (the foreign-key closure), all in one read-only snapshot of the source. Sequences are set to
//! the source's values. The report then gives both what was measured on the sample and the estimate scaled to the
//! whole database.
//!
//! The source connection is pgshadow's own (tokio-postgres): it honours the URL and `PGHOST`, `PGPORT`, `PGUSER`,
//! `PGPASSWORD`, `PGDATABASE`, and TLS as `sslmode` asks (`crate::tls`), but not `~/.pgpass`.

use std::collections::BTreeMap;

use futures_util::{pin_mut, SinkExt, TryStreamExt};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::report::SampledTable;
use crate::shadow::{ForeignKey, Role, Session};
use crate::text::{quote_ident, quote_literal};

/// Where to sample from, and how much.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The source's URL (or `key=value` connection string).
    pub url: String,
    /// The share of each table's rows to sample, in percent (0 < percent <= 100).
    pub percent: f64,
}

/// Keys fetched per query while closing the foreign keys.
const BATCH: usize = 500;

/// Copies a sample of the source's rows into the shadow database `database` (which holds the source's schema).
/// Returns the rows copied, and per table its rows in the source, sampled and added by the closure.
pub(super) async fn copy(target: &super::load::Loader<'_>, sample: &Sample) -> Result<(u64, Vec<SampledTable>)> {
    let source = connect(sample).await?;
    let fail = |doing: &str, e: tokio_postgres::Error| Error::Source {
        path: crate::text::redact_url(&sample.url).into(),
        message: format!("{doing}: {}", e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())),
        detail: String::new(),
    };
    source
        .batch_execute("SET default_transaction_read_only = on; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| fail("starting a read-only snapshot of the source", e))?;
    let loader = replica_session(target).await?;

    let mut copied = 0;
    let mut counts: BTreeMap<String, SampledTable> = BTreeMap::new();
    for (table, columns) in tables(&loader).await? {
        tracing::info!(target: "pgshadow::progress", "sampling {table}");
        let query = format!("SELECT {columns} FROM ONLY {table} TABLESAMPLE BERNOULLI ({})", sample.percent);
        let rows = transfer(&source, &loader, &query, &table, &columns)
            .await
            .map_err(|e| fail(&format!("sampling {table}"), e))?;
        copied += rows;
        let (source_rows, rows_counted, bytes, index_bytes) =
            source_size(&source, &table).await.map_err(|e| fail(&format!("reading the size of {table}"), e))?;
        let (bytes, index_bytes) = (Some(bytes), Some(index_bytes));
        let sampled = SampledTable {
            table: table.clone(),
            source_rows,
            rows_counted,
            sampled: rows,
            closure: 0,
            bytes,
            index_bytes,
        };
        counts.insert(table, sampled);
    }
    // Close the foreign keys: fetch the referenced rows the sample lacks, until none is missing.
    // A partition's copy of its parent's key adds nothing: the parent's key covers its rows.
    let keys: Vec<ForeignKey> =
        crate::shadow::foreign_keys(&loader).await?.into_iter().filter(|k| !k.inherited).collect();
    loop {
        let mut added = 0;
        for key in &keys {
            let rows = close(&source, &loader, key)
                .await
                .map_err(|e| fail(&format!("fetching rows {} references", key.child), e))?;
            if let Some(counts) = counts.get_mut(&key.parent) {
                counts.closure += rows;
            }
            added += rows;
        }
        copied += added;
        if added == 0 {
            break;
        }
    }
    set_sequences(&source, &loader).await.map_err(|e| fail("reading the source's sequences", e))?;
    source.batch_execute("COMMIT").await.map_err(|e| fail("ending the snapshot", e))?;
    tracing::info!(rows = copied, percent = sample.percent, "sample copied");
    Ok((copied, counts.into_values().collect()))
}

/// The size of `table` in the source: its rows (`reltuples`, or counted when the source has never analyzed it: -1, or
/// 0 with pages), whether they were counted, its heap and TOAST bytes, and its indexes' bytes.
async fn source_size(source: &Client, table: &str) -> Result<(u64, bool, u64, u64), tokio_postgres::Error> {
    let row = source
        .query_one(
            "SELECT reltuples::pg_catalog.float8, relpages, pg_catalog.pg_table_size(oid), \
             pg_catalog.pg_indexes_size(oid) FROM pg_catalog.pg_class \
             WHERE oid = $1::pg_catalog.text::pg_catalog.regclass",
            &[&table],
        )
        .await?;
    let (reltuples, relpages): (f64, i32) = (row.get(0), row.get(1));
    let (bytes, index_bytes) = (row.get::<_, i64>(2).max(0) as u64, row.get::<_, i64>(3).max(0) as u64);
    // A table never analyzed may say 0 rows in 0 pages (PostgreSQL 13 and before) though it holds some: its storage
    // tells, and it is counted.
    if reltuples > 0.0 || (reltuples == 0.0 && relpages == 0 && bytes == 0) {
        return Ok((reltuples.round() as u64, false, bytes, index_bytes));
    }
    let counted = source.query_one(&format!("SELECT pg_catalog.count(*) FROM ONLY {table}"), &[]).await?;
    Ok((counted.get::<_, i64>(0).max(0) as u64, true, bytes, index_bytes))
}

/// A session of the loader with `session_replication_role = replica`: rows arrive parents-after-children (or, for
/// synthetic rows, with their keys made right by construction), so foreign-key (and user) triggers must wait, as with `pg_restore --disable-triggers`. The setting is a superuser's,
/// so the admin gives it to the loader in this database for the one login (the loader itself stays what it is).
pub(super) async fn replica_session(target: &super::load::Loader<'_>) -> Result<Session> {
    let (shadow, database) = (target.shadow, target.database);
    if target.trusted {
        let session = target.session().await?;
        let set = session.client().batch_execute("SET session_replication_role = replica").await;
        set.map_err(|e| Error::pg("preparing the sample load", e))?;
        return Ok(session);
    }
    let in_database = format!("ALTER ROLE {} IN DATABASE {}", shadow.role(Role::Loader), quote_ident(database));
    let set = format!("{in_database} SET session_replication_role = replica");
    target.admin.client().batch_execute(&set).await.map_err(|e| Error::pg("preparing the sample load", e))?;
    let session = target.session().await;
    let reset = format!("{in_database} RESET session_replication_role");
    target.admin.client().batch_execute(&reset).await.map_err(|e| Error::pg("preparing the sample load", e))?;
    session
}

/// Connects to the source: the URL, with the libpq environment variables for what it leaves out.
async fn connect(sample: &Sample) -> Result<Client> {
    let shown = crate::text::redact_url(&sample.url);
    let fail = |message: String| Error::Source { path: shown.clone().into(), message, detail: String::new() };
    let remote = crate::shadow::server::config_from_url(&sample.url)?;
    let mut config = remote.config;
    config.application_name("pgshadow").options("-c default_transaction_read_only=on");
    let fail = |e: tokio_postgres::Error| {
        fail(format!("could not connect to the source to sample it: {}", crate::error::with_causes(&e)))
    };
    let (client, _driver) = crate::tls::connect(&config, remote.tls.as_ref(), "source").await.map_err(fail)?;
    Ok(client)
}

/// Every table that holds rows (partitions, not their parents), with its columns that take values (not generated).
async fn tables(loader: &Session) -> Result<Vec<(String, String)>> {
    let rows = loader
        .client()
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), \
                    pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                  AND a.attgenerated = '' \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshadow_internal') \
               AND n.nspname NOT LIKE 'pg\\_%' \
             GROUP BY n.nspname, c.relname ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| Error::pg("listing the tables to sample", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Streams the rows of `query` on the source into `table` of the shadow; returns how many.
async fn transfer(
    source: &Client,
    loader: &Session,
    query: &str,
    table: &str,
    columns: &str,
) -> Result<u64, tokio_postgres::Error> {
    source.batch_execute("SAVEPOINT pgshadow_sample").await?;
    let rows = source.copy_out(&format!("COPY ({query}) TO STDOUT")).await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            source.batch_execute("ROLLBACK TO SAVEPOINT pgshadow_sample").await?;
            return Err(e);
        }
    };
    pin_mut!(rows);
    let sink = loader.client().copy_in::<_, bytes::Bytes>(&format!("COPY {table} ({columns}) FROM STDIN")).await?;
    pin_mut!(sink);
    while let Some(chunk) = rows.try_next().await? {
        sink.send(chunk).await?;
    }
    sink.finish().await
}

/// Fetches the rows of `key.parent` that sampled rows of `key.child` reference but the shadow lacks; returns how many.
async fn close(source: &Client, loader: &Session, key: &ForeignKey) -> Result<u64, tokio_postgres::Error> {
    let child: Vec<String> = key.child_columns.iter().map(|c| format!("c.{}", quote_ident(c))).collect();
    let matches: Vec<String> = key
        .child_columns
        .iter()
        .zip(&key.parent_columns)
        .map(|(c, p)| format!("p.{} = c.{}", quote_ident(p), quote_ident(c)))
        .collect();
    let missing_sql = format!(
        "SELECT DISTINCT {} FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
        child.iter().map(|c| format!("{c}::pg_catalog.text")).collect::<Vec<_>>().join(", "),
        key.child,
        child.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND "),
        key.parent,
        matches.join(" AND "),
    );
    let missing = loader.client().query(missing_sql.as_str(), &[]).await?;
    let mut added = 0;
    for batch in missing.chunks(BATCH) {
        let arrays: Vec<String> = (0..key.parent_columns.len())
            .map(|i| {
                let values: Vec<String> = batch.iter().map(|row| quote_literal(&row.get::<_, String>(i))).collect();
                format!("ARRAY[{}]::pg_catalog.text[]", values.join(", "))
            })
            .collect();
        let names: Vec<String> = (0..key.parent_columns.len()).map(|i| format!("k{i}")).collect();
        let on: Vec<String> = key
            .parent_columns
            .iter()
            .zip(&key.parent_types)
            .zip(&names)
            .map(|((column, ty), k)| format!("p.{} = k.{k}::{ty}", quote_ident(column)))
            .collect();
        let columns = &key.parent_stored_columns;
        let selected: Vec<String> = columns.split(", ").map(|c| format!("p.{c}")).collect();
        let query = format!(
            "SELECT {} FROM {} p JOIN pg_catalog.unnest({}) AS k({}) ON {}",
            selected.join(", "),
            key.parent,
            arrays.join(", "),
            names.join(", "),
            on.join(" AND ")
        );
        added += transfer(source, loader, &query, &key.parent, columns).await?;
    }
    Ok(added)
}

/// Sets every sequence of the shadow to the source's value, so that inserts do not collide with sampled rows.
async fn set_sequences(source: &Client, loader: &Session) -> Result<(), tokio_postgres::Error> {
    let rows = source
        .query(
            "SELECT pg_catalog.format('%I.%I', schemaname, sequencename), last_value FROM pg_catalog.pg_sequences \
             WHERE last_value IS NOT NULL",
            &[],
        )
        .await?;
    for row in rows {
        let (name, value): (String, i64) = (row.get(0), row.get(1));
        let set = "SELECT pg_catalog.setval($1::pg_catalog.text::pg_catalog.regclass, $2)";
        if let Err(e) = loader.client().execute(set, &[&name, &value]).await {
            // A sequence the shadow lacks (it failed to load) is reported with the fidelity warnings already.
            tracing::debug!(sequence = %name, error = %e, "could not set a sequence of the sample");
        }
    }
    Ok(())
}
