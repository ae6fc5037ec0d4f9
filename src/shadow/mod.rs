//! Shadows: throw-away Postgres servers that plans are dry-run on, and their lifecycle.
//!
//! A [`Shadow`] is a running server that pgshadow created and owns. Each source loaded into it gets a database of
//! its own ([`crate::source::load`]); plans run there as a non-superuser role. Dropping the shadow stops the server
//! and deletes everything it wrote; [`Shadow::shutdown`] does the same from async code.

mod binaries;
pub mod cache;
mod local;
pub(crate) mod session;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use binaries::PgBinaries;
pub use cache::CacheOptions;
pub use local::LocalOptions;

use crate::error::{Error, Result};
use local::LocalCluster;
pub(crate) use session::Session;

/// The superuser that sets shadows up. Plans never log in as it unless `--superuser` is asked for.
pub(crate) const ADMIN_ROLE: &str = local::ADMIN_ROLE;
/// A superuser that loads sources, so that what it created can be handed to [`PLAN_ROLE`] afterwards (objects of
/// the bootstrap superuser cannot be reassigned).
pub(crate) const LOADER_ROLE: &str = "pgshadow_loader";
/// The non-superuser role plans run as. It owns (or is a member of the owners of) everything a source loads.
pub(crate) const PLAN_ROLE: &str = "pgshadow_plan";

/// How to reach a shadow's server.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) socket_dir: PathBuf,
    pub(crate) port: u16,
}

/// A running shadow Postgres, created and owned by pgshadow.
pub struct Shadow {
    cluster: LocalCluster,
    endpoint: Endpoint,
    server_version: String,
    next_database: AtomicUsize,
    /// For each database made on this shadow: its `spoiled` flag, and for a template used in place, whether it was
    /// put back. A cached cluster is only kept when no database is spoiled and every template was put back.
    databases: Mutex<Vec<Tracked>>,
}

/// A database's flags, as [`Shadow::shutdown`] checks them.
struct Tracked {
    spoiled: Arc<AtomicBool>,
    put_back: Option<Arc<AtomicBool>>,
}

impl Shadow {
    /// Starts a private local cluster ([`LocalOptions`]) and prepares its roles.
    pub async fn start_local(options: &LocalOptions) -> Result<Shadow> {
        let options = options.clone();
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&options))
            .await
            .map_err(|e| Error::ShadowStart { message: format!("start-up task failed: {e}"), log: String::new() })??;
        let endpoint = Endpoint { socket_dir: cluster.socket_dir().to_path_buf(), port: local::PORT };
        let mut shadow = Shadow {
            cluster,
            endpoint,
            server_version: String::new(),
            next_database: AtomicUsize::new(1),
            databases: Mutex::default(),
        };
        shadow.server_version = shadow.prepare_roles().await?;
        tracing::info!(
            provider = shadow.provider(),
            server_version = %shadow.server_version,
            binaries = %shadow.binaries().display(),
            "shadow ready"
        );
        Ok(shadow)
    }

    /// Creates the loader and plan roles (a cached cluster has them already); returns the server's version.
    async fn prepare_roles(&self) -> Result<String> {
        let admin = self.connect(ADMIN_ROLE, "postgres").await?;
        if self.cluster.slot().is_none_or(|slot| slot.fresh) {
            let setup = format!(
                "CREATE ROLE {LOADER_ROLE} LOGIN SUPERUSER; \
                 CREATE ROLE {PLAN_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;"
            );
            admin.client().batch_execute(&setup).await.map_err(|e| Error::pg("creating the shadow's roles", e))?;
        }
        let row = admin
            .client()
            .query_one("SELECT pg_catalog.current_setting('server_version')", &[])
            .await
            .map_err(|e| Error::pg("reading the server version", e))?;
        Ok(row.get(0))
    }

    /// Which provider made this shadow.
    pub fn provider(&self) -> &'static str {
        "local"
    }

    /// The server's `server_version` (`15.18 (Debian 15.18-0+deb12u1)`).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The directory of the server binaries in use.
    pub fn binaries(&self) -> &Path {
        &self.cluster.binaries.dir
    }

    /// How the binaries were found (`PATH`, `--pg-bin`, ...).
    pub fn binaries_origin(&self) -> &'static str {
        self.cluster.binaries.origin
    }

    /// Stops the server and deletes its directory. Dropping the shadow does the same, blocking, but only this
    /// keeps a cached cluster for the next run: when no plan spoiled a database and every database was dropped.
    pub async fn shutdown(mut self) -> Result<()> {
        if self.cluster.slot().is_some() {
            let spoiled = self.databases.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|t| {
                t.spoiled.load(Ordering::SeqCst) || t.put_back.as_ref().is_some_and(|p| !p.load(Ordering::SeqCst))
            });
            if !spoiled {
                match self.tidy_cache().await {
                    Ok(()) => self.cluster.reusable = true,
                    Err(e) => tracing::warn!(error = %e, "could not tidy the cached cluster; it will be rebuilt"),
                }
            }
        }
        tokio::task::spawn_blocking(move || drop(self))
            .await
            .map_err(|e| Error::ShadowStart { message: format!("shutdown task failed: {e}"), log: String::new() })
    }

    /// Drops what runs left in the cached cluster (their databases) and the least recently used templates beyond
    /// the size cap.
    async fn tidy_cache(&self) -> Result<()> {
        let Some(slot) = self.cluster.slot() else {
            return Ok(());
        };
        let admin = self.connect(ADMIN_ROLE, "postgres").await?;
        let leftovers = admin
            .client()
            .query("SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'shadow\\_%'", &[])
            .await
            .map_err(|e| Error::pg("listing the shadow's databases", e))?;
        let mut drops: Vec<String> = leftovers.iter().map(|row| row.get(0)).collect();
        let templates = slot.templates();
        let mut total: u64 = templates.iter().map(|(t, _)| t.size_bytes).sum();
        // Least recently used first; the most recently used template (the last) always stays.
        for (template, _) in templates.iter().take(templates.len().saturating_sub(1)) {
            if total <= slot.max_size {
                break;
            }
            tracing::info!(source = %template.source, size = template.size_bytes, "dropping a cached template over the size cap");
            slot.forget(&template.key);
            drops.push(template.database.clone());
            total -= template.size_bytes;
        }
        for name in drops {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", crate::source::quote_ident(&name));
            admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("dropping a database of a run", e))?;
        }
        Ok(())
    }

    /// How to reach the server (for tools such as `pg_restore`).
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The cached cluster this shadow runs on, if any.
    pub(crate) fn cache_slot(&self) -> Option<&cache::Slot> {
        self.cluster.slot()
    }

    /// Registers a database, so that a cached cluster a plan committed into, or whose template was not put back
    /// after a dry-run, is not kept.
    pub(crate) fn track(&self, database: &crate::source::Database) {
        let put_back = database.in_place.as_ref().map(|p| Arc::clone(&p.released));
        let tracked = Tracked { spoiled: Arc::clone(&database.spoiled), put_back };
        self.databases.lock().unwrap_or_else(|e| e.into_inner()).push(tracked);
    }

    pub(crate) async fn connect(&self, role: &str, database: &str) -> Result<Session> {
        Session::connect(&self.endpoint, role, database)
            .await
            .map_err(|e| Error::pg(format!("connecting to the shadow as {role}"), e))
    }

    /// A database name not used before in this shadow.
    pub(crate) fn new_database_name(&self) -> String {
        format!("shadow_{}", self.next_database.fetch_add(1, Ordering::Relaxed))
    }
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
