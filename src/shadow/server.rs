//! The `server` provider: scratch databases on a Postgres server a team runs for shadows (`--shadow server
//! --shadow-url URL`), for the same major version and extensions as production.
//!
//! The admin URL (a superuser: the measuring machinery uses event triggers) is only used to create what a run
//! needs and to drop it again: roles of its own (`pgshadow_loader_<run>` and `pgshadow_plan_<run>`, non-superusers
//! with random passwords that sources and plans log in as; `pgshadow_owner_<run>` and `pgshadow_installer_<run>`
//! without login, see `super::Role`) and scratch databases named `pgshadow_scratch_<run>_<n>`,
//! created from `template0` and marked with a comment naming the run. A database is only ever dropped when this run
//! created it and its comment still says so; plans only ever run in those databases. Everything is removed on
//! shutdown, and on drop as a fallback. Roles a source names as owners are created on the server (without login)
//! and stay, as they would for any restore there.
//!
//! A run killed with SIGKILL removes nothing, so every run holds, for as long as it lives, a session-level advisory
//! lock on the server named after its id (its own connection: the server releases the lock when the process dies),
//! and comments its roles with that id. A later run, on any machine, sweeps the runs whose roles say so and whose
//! lock nobody holds: it drops their scratch databases (those whose comment names that run) and their roles. Runs
//! that never took such a lock (older versions) have no such comment and are left alone.

use std::io::Read as _;
use std::str::FromStr;
use std::sync::Mutex;

use tokio_postgres::config::SslMode;
use tokio_postgres::Config;

use super::PgBinaries;
use crate::error::{Error, Result};

/// Where the shadow server is.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// A superuser's URL (or `key=value` connection string) of the shadow server.
    pub url: String,
}

/// The part of a server that belongs to one run.
#[derive(Debug)]
pub(crate) struct ServerShadow {
    /// Random, so that concurrent runs on one server never meet.
    pub(crate) run_id: String,
    /// The admin URL's user.
    pub(crate) admin: String,
    /// The run's loader role, `pgshadow_loader_<run>`.
    pub(crate) loader: String,
    /// The run's plan role, `pgshadow_plan_<run>`.
    pub(crate) plan: String,
    /// The role that owns a database while a source loads into it, `pgshadow_owner_<run>`.
    pub(crate) load_owner: String,
    /// The superuser without login that pgshadow's own load steps act as, `pgshadow_installer_<run>`.
    pub(crate) installer: String,
    /// Local client tools (`pg_restore`), when the machine has them.
    pub(crate) binaries: Option<PgBinaries>,
    /// The scratch databases this run created (and has not dropped yet).
    pub(crate) created: Mutex<Vec<String>>,
    /// Set while there is nothing of this run's on the server: before its roles are created, and once its
    /// databases and roles are gone (or their removal was attempted on drop).
    pub(crate) removed: std::sync::atomic::AtomicBool,
    /// The connection holding this run's advisory lock ([`lock_key`]), released last.
    pub(crate) alive: Mutex<Option<super::Session>>,
}

impl ServerShadow {
    /// The part of a server that belongs to a new run, with nothing created there yet.
    pub(crate) fn new(admin: String, binaries: Option<PgBinaries>) -> Result<ServerShadow> {
        let run_id = random_hex(6)?;
        Ok(ServerShadow {
            loader: format!("pgshadow_loader_{run_id}"),
            plan: format!("pgshadow_plan_{run_id}"),
            load_owner: format!("pgshadow_owner_{run_id}"),
            installer: format!("pgshadow_installer_{run_id}"),
            run_id,
            admin,
            binaries,
            created: Mutex::default(),
            removed: std::sync::atomic::AtomicBool::new(true),
            alive: Mutex::default(),
        })
    }

    /// The comment on this run's roles, which lets a later run find them should this one be killed.
    pub(crate) fn role_marker(&self) -> String {
        role_marker(&self.run_id)
    }

    /// The comment that marks a scratch database of this run.
    pub(crate) fn marker(&self) -> String {
        database_marker(&self.run_id)
    }
}

/// The comment on the scratch databases of run `run_id`.
fn database_marker(run_id: &str) -> String {
    format!("pgshadow scratch database of run {run_id}")
}

/// The comment on the roles of run `run_id`.
fn role_marker(run_id: &str) -> String {
    format!("pgshadow run {run_id}, alive while it holds its advisory lock")
}

/// The advisory lock (`pg_advisory_lock(int4, int4)`) a run holds while it lives: a fixed class ("pgsh") and the
/// run id's first 32 bits. Two runs sharing a key only make a dead one look alive, never the reverse.
pub(crate) fn lock_key(run_id: &str) -> (i32, i32) {
    let id = u32::from_str_radix(run_id.get(..8).unwrap_or(run_id), 16).unwrap_or(0);
    (0x7067_7368, id as i32)
}

/// Drops the scratch databases and roles of runs that were killed (their roles carry the run's comment, and
/// nobody holds its lock): what a SIGKILLed run could not remove. `admin` is a superuser's session.
pub(crate) async fn sweep_killed_runs(admin: &super::Session, own_run: &str) -> Result<()> {
    let client = admin.client();
    let fail = |what: &'static str| move |e| Error::pg(what, e);
    let rows = client
        .query(
            "SELECT DISTINCT run FROM (SELECT r.oid, (pg_catalog.regexp_match(r.rolname, \
             '^pgshadow_(?:loader|plan)_([0-9a-f]{12})$'))[1] AS run FROM pg_catalog.pg_roles r) AS runs \
             WHERE run IS NOT NULL AND pg_catalog.shobj_description(oid, 'pg_authid') = \
             'pgshadow run ' || run || ', alive while it holds its advisory lock'",
            &[],
        )
        .await
        .map_err(fail("listing the runs on the shadow server"))?;
    for run in rows.iter().map(|row| row.get::<_, String>(0)).filter(|run| run != own_run) {
        let (class, id) = lock_key(&run);
        let dead: bool = client
            .query_one("SELECT pg_catalog.pg_try_advisory_lock($1, $2)", &[&class, &id])
            .await
            .map_err(fail("checking whether a run on the shadow server is alive"))?
            .get(0);
        if !dead {
            continue;
        }
        tracing::info!(run = %run, "removing what a killed run left on the shadow server");
        let databases = client
            .query(
                "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'pgshadow\\_scratch\\_%' \
                 AND pg_catalog.shobj_description(oid, 'pg_database') = $1",
                &[&database_marker(&run)],
            )
            .await
            .map_err(fail("listing a killed run's scratch databases"))?;
        // One statement at a time: DROP DATABASE cannot run in the implicit transaction of a batch.
        let mut drops: Vec<String> = databases
            .iter()
            .map(|row| {
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", crate::text::quote_ident(&row.get::<_, String>(0)))
            })
            .collect();
        for role in ["plan", "loader", "owner", "installer"] {
            drops.push(format!("DROP ROLE IF EXISTS pgshadow_{role}_{run}"));
        }
        for sql in &drops {
            if let Err(e) = client.batch_execute(sql).await {
                tracing::warn!(run = %run, error = %Error::pg("removing what a killed run left", e), "{sql} failed");
            }
        }
        let _ = client.execute("SELECT pg_catalog.pg_advisory_unlock($1, $2)", &[&class, &id]).await;
    }
    Ok(())
}

/// A server pgshadow connects to but does not own: how to reach it, and how to secure the connection.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub(crate) config: Config,
    /// `None`: no TLS (`sslmode=disable`).
    pub(crate) tls: Option<crate::tls::Connector>,
    /// `PGSSLMODE` and `PGSSLROOTCERT` for client programs (`pg_restore`), as the URL asked.
    pub(crate) libpq_env: Vec<(&'static str, String)>,
}

/// A connection configuration from a URL or connection string, with the libpq environment variables (`PGHOST`,
/// `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`) for what it leaves out, and its TLS
/// ([`crate::tls`]).
pub(crate) fn config_from_url(url: &str) -> Result<Remote> {
    let shown = crate::text::redact_url(url);
    let fail = |message: String| Error::Source { path: shown.clone().into(), message, detail: String::new() };
    let (url, request) = crate::tls::split(url);
    let mut config =
        Config::from_str(&url).map_err(|e| fail(format!("not a connection URL: {}", crate::error::with_causes(&e))))?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(host) if host.starts_with('/') => config.host_path(host),
            Some(host) => config.host(host),
            None => config.host_path("/var/run/postgresql"),
        };
    }
    if config.get_ports().is_empty() {
        config.port(env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432));
    }
    if config.get_user().is_none() {
        if let Some(user) = env("PGUSER").or_else(|| env("USER")) {
            config.user(user);
        }
    }
    if config.get_password().is_none() {
        if let Some(password) = env("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(db) = env("PGDATABASE") {
            config.dbname(db);
        }
    }
    config.application_name("pgshadow");
    // A Unix socket is never encrypted, and the connector could not even be made for its path.
    let local = config.get_hosts().iter().all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
    let mode = if local { SslMode::Disable } else { config.get_ssl_mode() };
    let tls = crate::tls::connector(mode, &request, &shown)?;
    let libpq_env = request.libpq_env(config.get_ssl_mode());
    Ok(Remote { config, tls, libpq_env })
}

/// Random lower-case hex, `bytes` bytes of it, from the kernel.
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buffer))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(crate::text::hex(&buffer))
}
