//! The `server` provider: scratch databases on a Postgres server a team runs for shadows (`--shadow server
//! --shadow-url URL`), for the same major version and extensions as production.
//!
//! The admin URL (a superuser: the measuring machinery uses event triggers) is only used to create what a run
//! needs and to drop it again: two roles of its own (`pgshadow_loader_<run>`, `pgshadow_plan_<run>`, with random
//! passwords; the plan still logs in as a non-superuser) and scratch databases named `pgshadow_scratch_<run>_<n>`,
//! created from `template0` and marked with a comment naming the run. A database is only ever dropped when this run
//! created it and its comment still says so; plans only ever run in those databases. Everything is removed on
//! shutdown, and on drop as a fallback. Roles a source names as owners are created on the server (without login)
//! and stay, as they would for any restore there.

use std::io::Read as _;
use std::str::FromStr;
use std::sync::Mutex;

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
    /// Local client tools (`pg_restore`), when the machine has them.
    pub(crate) binaries: Option<PgBinaries>,
    /// The scratch databases this run created (and has not dropped yet).
    pub(crate) created: Mutex<Vec<String>>,
    /// Set while there is nothing of this run's on the server: before its roles are created, and once its
    /// databases and roles are gone (or their removal was attempted on drop).
    pub(crate) removed: std::sync::atomic::AtomicBool,
}

impl ServerShadow {
    /// The part of a server that belongs to a new run, with nothing created there yet.
    pub(crate) fn new(admin: String, binaries: Option<PgBinaries>) -> Result<ServerShadow> {
        let run_id = random_hex(6)?;
        Ok(ServerShadow {
            loader: format!("pgshadow_loader_{run_id}"),
            plan: format!("pgshadow_plan_{run_id}"),
            run_id,
            admin,
            binaries,
            created: Mutex::default(),
            removed: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The comment that marks a scratch database of this run.
    pub(crate) fn marker(&self) -> String {
        format!("pgshadow scratch database of run {}", self.run_id)
    }
}

/// A connection configuration from a URL or connection string, with the libpq environment variables (`PGHOST`,
/// `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`) for what it leaves out.
pub(crate) fn config_from_url(url: &str) -> Result<Config> {
    let fail = |message: String| Error::Source {
        path: crate::source::live::redact(url).into(),
        message,
        detail: String::new(),
    };
    let mut config = Config::from_str(url).map_err(|e| fail(format!("not a connection URL: {e}")))?;
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
    Ok(config.application_name("pgshadow").clone())
}

/// Random lower-case hex, `bytes` bytes of it, from the kernel.
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buffer))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}
