//! Taking a profile of a live database: one connection of pgshadow's own (tokio-postgres, as `--sample`'s: the URL,
//! `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, TLS as `sslmode` asks; not `~/.pgpass`), started with
//! `default_transaction_read_only = on`, and every query in one `REPEATABLE READ, READ ONLY` transaction: the
//! profile is one consistent moment, and nothing, not even a function a query calls, can write. pgshadow never runs
//! ANALYZE: a table the server has no statistics of is reported as such.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{
    ColumnProfile, ColumnStats, IntegerKey, Profile, ProfileValues, SequenceProfile, TableKind, TableName,
    TableProfile, PROFILE_VERSION,
};
use crate::error::{Error, Result};
use crate::text::quote_ident;

/// How to take a profile.
#[derive(Debug, Clone, Default)]
pub struct ProfileOptions {
    /// How much of the columns' values to keep.
    pub values: ProfileValues,
}

/// How long a query of the profile waits for a lock (a size function, or `max()` of a key, behind a migration's
/// ACCESS EXCLUSIVE): it gives up rather than queue production's queries behind it.
const LOCK_TIMEOUT: &str = "5s";

/// Profiles the database at `url` (a URL or `key=value` string; empty for the `PG*` variables alone).
pub async fn take(url: &str, options: &ProfileOptions) -> Result<Profile> {
    let shown = crate::text::redact_url(url);
    let fail = |doing: &str, e: tokio_postgres::Error| Error::Source {
        path: shown.clone().into(),
        message: format!("{doing}: {}", e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())),
        detail: String::new(),
    };
    let client = connect(url).await?;
    tracing::info!(target: "pgshadow::progress", "profiling {shown} (read-only)");
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL search_path = pg_catalog; \
             SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
        ))
        .await
        .map_err(|e| fail("starting a read-only snapshot of the source", e))?;
    let server_version = client
        .query_one("SELECT pg_catalog.current_setting('server_version'), pg_catalog.current_database()::text", &[])
        .await
        .map_err(|e| fail("reading the server's version", e))?;
    let catalog = super::catalog(&client).await?;
    let mut tables = tables(&client).await.map_err(|e| fail("reading the tables' sizes", e))?;
    let values = options.values.as_str();
    let columns = client
        .query(super::queries::columns_sql().as_str(), &[&values])
        .await
        .map_err(|e| fail("reading the columns' statistics", e))?;
    for row in &columns {
        let key = (row.get::<_, String>(0), row.get::<_, String>(1));
        if let Some(table) = tables.get_mut(&key) {
            table.columns.push(column(row));
        }
    }
    let mut sequences = sequences(&client).await.map_err(|e| fail("reading the sequences", e))?;
    integer_keys(&client, &mut tables).await.map_err(|e| fail("reading the integer keys", e))?;
    client.batch_execute("COMMIT").await.map_err(|e| fail("ending the snapshot", e))?;
    // Sorted here, by bytes, not by the server's collation: the same schema gives the same file on every server.
    for table in tables.values_mut() {
        table.columns.sort_by(|a, b| a.name.cmp(&b.name));
        table.integer_keys.sort_by(|a, b| a.column.cmp(&b.column));
        table.partitions.sort();
    }
    sequences.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(Profile {
        profile_version: PROFILE_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        server_version: server_version.get(0),
        database: server_version.get(1),
        values: options.values,
        catalog_sha256: catalog.sha256,
        tables: tables.into_values().collect(),
        sequences,
        file: String::new(),
        text_sha256: String::new(),
    })
}

/// Connects to the source, read-only from the first statement on.
async fn connect(url: &str) -> Result<Client> {
    let shown = crate::text::redact_url(url);
    let remote = crate::shadow::server::config_from_url(url)?;
    let mut config = remote.config;
    config.options("-c default_transaction_read_only=on");
    let (client, _driver) =
        crate::tls::connect(&config, remote.tls.as_ref(), "source").await.map_err(|e| Error::Source {
            path: shown.into(),
            message: format!("could not connect to the source to profile it: {}", crate::error::with_causes(&e)),
            detail: String::new(),
        })?;
    Ok(client)
}

type Tables = BTreeMap<(String, String), TableProfile>;

async fn tables(client: &Client) -> Result<Tables, tokio_postgres::Error> {
    let rows = client.query(super::queries::tables_sql().as_str(), &[]).await?;
    let mut tables = BTreeMap::new();
    for row in rows {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let parent: (Option<String>, Option<String>) = (row.get(13), row.get(14));
        let kind = match (row.get::<_, String>(2).as_str(), &parent.0) {
            ("p", _) => TableKind::Partitioned,
            (_, Some(_)) => TableKind::Partition,
            _ => TableKind::Table,
        };
        let (schemas, names): (Vec<String>, Vec<String>) = (row.get(15), row.get(16));
        let stats_rows: bool = row.get(17);
        let (last_analyze, last_autoanalyze): (Option<String>, Option<String>) = (row.get(11), row.get(12));
        let table = TableProfile {
            schema: schema.clone(),
            name: name.clone(),
            kind,
            reltuples: Some(row.get::<_, f64>(3)).filter(|r| *r >= 0.0),
            relpages: row.get(4),
            heap_bytes: row.get(5),
            toast_bytes: row.get(6),
            index_bytes: row.get(7),
            total_bytes: row.get(8),
            analyzed: stats_rows || last_analyze.is_some() || last_autoanalyze.is_some(),
            last_vacuum: row.get(9),
            last_autovacuum: row.get(10),
            last_analyze,
            last_autoanalyze,
            partition_of: match parent {
                (Some(schema), Some(name)) => Some(TableName { schema, name }),
                _ => None,
            },
            partitions: schemas.into_iter().zip(names).map(|(schema, name)| TableName { schema, name }).collect(),
            columns: Vec::new(),
            integer_keys: Vec::new(),
        };
        tables.insert((schema, name), table);
    }
    Ok(tables)
}

/// A row of [`super::queries::columns_sql`].
fn column(row: &tokio_postgres::Row) -> ColumnProfile {
    let number = |i: usize| row.get::<_, Option<String>>(i).and_then(|t| t.parse::<f64>().ok());
    let numbers = |i: usize| {
        row.get::<_, Option<Vec<Option<String>>>>(i)
            .map(|list| list.into_iter().map(|t| t.and_then(|t| t.parse().ok()).unwrap_or(0.0)).collect())
    };
    let texts = |i: usize| {
        row.get::<_, Option<Vec<Option<String>>>>(i)
            .map(|list| list.into_iter().map(|t| t.unwrap_or_else(|| "NULL".to_owned())).collect())
    };
    let has_stats: bool = row.get(6);
    ColumnProfile {
        name: row.get(2),
        r#type: row.get(3),
        not_null: row.get(4),
        key_like: row.get(5),
        stats: has_stats.then(|| ColumnStats {
            null_frac: number(7).unwrap_or(0.0),
            n_distinct: number(8).unwrap_or(0.0),
            avg_width: row.get(9),
            correlation: number(10),
            most_common_vals: texts(11),
            most_common_freqs: numbers(12),
            histogram_bounds: texts(13),
            most_common_elems: texts(14),
            most_common_elem_freqs: numbers(15),
            elem_count_histogram: numbers(16),
        }),
    }
}

async fn sequences(client: &Client) -> Result<Vec<SequenceProfile>, tokio_postgres::Error> {
    let rows = client.query(super::queries::SEQUENCES_SQL, &[]).await?;
    Ok(rows
        .iter()
        .map(|row| SequenceProfile {
            schema: row.get(0),
            name: row.get(1),
            r#type: row.get(2),
            last_value: row.get(3),
            max_value: row.get(4),
            increment: row.get(5),
            cycle: row.get(6),
            owned_by: row.get(7),
        })
        .collect())
}

/// Fills in each table's integer keys: the last value of the key's sequence, else the largest value in the column
/// when it leads the primary key (one end of its index), inside a savepoint so that a lock wait given up on costs
/// that value only.
async fn integer_keys(client: &Client, tables: &mut Tables) -> Result<(), tokio_postgres::Error> {
    let by_name = sequences_by_name(client).await?;
    let rows = client.query(super::queries::integer_keys_sql().as_str(), &[]).await?;
    for row in rows {
        let (schema, name, qualified, column): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let sequence: Option<String> = row.get(6);
        let (leads, readable): (bool, bool) = (row.get(7), row.get(8));
        let last_value = match &sequence {
            Some(sequence) => last_value_of(sequence, &by_name),
            None if leads && readable => largest(client, &qualified, &column).await?,
            None => None,
        };
        let key = IntegerKey { column, r#type: row.get(4), max_value: row.get(5), sequence, last_value };
        if let Some(table) = tables.get_mut(&(schema, name)) {
            table.integer_keys.push(key);
        }
    }
    Ok(())
}

/// The last value of `sequence` (as `pg_get_serial_sequence` names it), from the sequences already read.
fn last_value_of(sequence: &str, by_name: &BTreeMap<String, Option<i64>>) -> Option<i64> {
    by_name.get(sequence).copied().flatten()
}

/// Every sequence's last value, by its name as the server writes it (quoted only where needed, as
/// `pg_get_serial_sequence` does).
async fn sequences_by_name(client: &Client) -> Result<BTreeMap<String, Option<i64>>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', schemaname, sequencename), last_value FROM pg_catalog.pg_sequences",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `max(column)` of `table`, or `None` when it cannot be read without waiting (a lock timeout, a right missing).
async fn largest(client: &Client, table: &str, column: &str) -> Result<Option<i64>, tokio_postgres::Error> {
    client.batch_execute("SAVEPOINT pgshadow_profile").await?;
    let query = format!("SELECT max({})::pg_catalog.int8 FROM {table}", quote_ident(column));
    match client.query_one(query.as_str(), &[]).await {
        Ok(row) => {
            client.batch_execute("RELEASE SAVEPOINT pgshadow_profile").await?;
            Ok(row.get(0))
        }
        Err(e) => {
            tracing::warn!(table, column, error = %e, "could not read the largest key; the profile leaves it out");
            client.batch_execute("ROLLBACK TO SAVEPOINT pgshadow_profile").await?;
            Ok(None)
        }
    }
}
