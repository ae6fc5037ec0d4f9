//! Shadows: throw-away Postgres servers that plans are dry-run on, and their lifecycle.
//!
//! A [`Shadow`] is a server that pgshadow created and owns — a private local cluster (`local`) — or, on a shared
//! shadow server, the scratch databases and roles one run created there ([`server`]). Each source loaded into it
//! gets a database of its own ([`crate::source::load`]); plans run there as a non-superuser role. Dropping the
//! shadow removes everything it made; [`Shadow::shutdown`] does the same from async code.

pub mod cache;
pub mod container;
pub mod database;
mod keys;
mod local;
mod plan_role;
pub mod provider;
pub mod server;
pub(crate) mod session;
pub mod warm;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::text::hex_digest;

pub use crate::postgres::PgBinaries;
pub use cache::CacheOptions;
pub use container::{ContainerOptions, Pull, Reach};
pub use database::Database;
pub(crate) use keys::foreign_keys;
pub use keys::ForeignKey;
pub use local::LocalOptions;
pub(crate) use plan_role::{is_reserved, prepare_plan_role};
pub use provider::Provider;
pub use server::ServerOptions;

use crate::error::{Error, Result};
use local::LocalCluster;
pub(crate) use session::Session;

/// The roles a shadow works with. Their names are fixed in a local cluster (pgshadow owns it) and unique per run on a
/// shared server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The superuser that sets shadows up. Plans never log in as it unless `--superuser` is asked for.
    Admin,
    /// The role a source's own statements run as: **not** a superuser (sources are untrusted input, as plans are),
    /// with no predefined role that reaches the host. It owns what it creates until that is handed to the plan role.
    Loader,
    /// Owns a database while a source loads into it (no login, not a superuser). The loader and the roles the source
    /// names as owners are its members: they get the database owner's rights (`CREATE` in `public`), so `OWNER TO`
    /// works as in production. It owns nothing once the load is done.
    LoadOwner,
    /// A superuser without login that pgshadow itself acts as (`SET ROLE` from the admin) for the steps of a load
    /// that need one: creating the extensions the source asks for from the shadow's own installation, and a
    /// `--trust-source` load. What it creates is handed to the plan role like the loader's.
    Installer,
    /// The non-superuser role plans run as. It owns (or is a member of the owners of) everything a source loads.
    Plan,
}

/// Every role name pgshadow makes starts with this; a source's roles never may.
pub(crate) const ROLE_PREFIX: &str = "pgshadow_";

/// How to reach a shadow's server: where it is, and the passwords of the roles that need one.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// Host (a socket directory or a host name), port and options; user and database are set per connection.
    pub(crate) base: tokio_postgres::Config,
    pub(crate) passwords: std::collections::HashMap<String, String>,
    /// For a server every role needs a password on (a container reached through a port): each role's password is
    /// derived from this ([`Endpoint::derive`]), so that roles made later (a clone's login role) have one too.
    pub(crate) secret: Option<String>,
    /// TLS to a shadow server (its URL's `sslmode`); `None` for shadows pgshadow starts.
    pub(crate) tls: Option<crate::tls::Connector>,
    /// `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` for client programs, as the shadow server's URL
    /// asked.
    pub(crate) libpq_env: Vec<(&'static str, String)>,
}

impl Endpoint {
    /// The password `role` logs in with, if it needs one.
    pub(crate) fn password(&self, role: &str) -> Option<String> {
        match (self.passwords.get(role), &self.secret) {
            (Some(password), _) => Some(password.clone()),
            (None, Some(secret)) => Some(Endpoint::derive(secret, role)),
            (None, None) => None,
        }
    }

    /// A role's password from the server's secret: a digest of both, so no role's password tells another's.
    pub(crate) fn derive(secret: &str, role: &str) -> String {
        hex_digest(format!("{secret}\0{role}").as_bytes())
    }

    /// The host for client tools (`--host`): a socket directory or a host name.
    pub(crate) fn host(&self) -> String {
        match self.base.get_hosts().first() {
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            Some(tokio_postgres::config::Host::Tcp(name)) => name.clone(),
            None => String::new(),
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.base.get_ports().first().copied().unwrap_or(5432)
    }
}

/// What a shadow runs on.
enum Backend {
    Local(LocalCluster),
    Server(server::ServerShadow),
    /// A cached cluster a keep-warm supervisor runs ([`warm`]): this run was lent a clone of it.
    Warm(warm::Attached),
}

/// A running shadow Postgres, created and owned by pgshadow.
pub struct Shadow {
    backend: Backend,
    endpoint: Endpoint,
    server_version: String,
    /// Why this provider (`auto: ...`, `asked for with --shadow local`).
    provider_reason: String,
    /// The build this run installed on first use, if it did.
    installed: Option<crate::postgres::Fetched>,
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
    /// Starts the shadow `provider` gives ([`Provider::Auto`]: the best one here for the sources to load, of
    /// `options.postgres.source`'s version and with the extensions they create, which `extensions` gives when asked:
    /// [`crate::source::extensions_of`]), and says which and why on stderr.
    pub async fn start(
        provider: &Provider,
        options: &LocalOptions,
        extensions: impl FnOnce() -> Vec<String> + Send + 'static,
    ) -> Result<Shadow> {
        let decision = provider::decide(provider, &options.postgres, extensions).await?;
        Shadow::start_decided(decision, provider, options).await
    }

    /// [`Shadow::start`] once [`provider::decide`] decided where.
    pub(crate) async fn start_decided(
        decision: provider::Decision,
        provider: &Provider,
        options: &LocalOptions,
    ) -> Result<Shadow> {
        let mut shadow = match (&decision, provider) {
            (provider::Decision::Container(container, _), _) => Shadow::start_container(options, container).await?,
            (provider::Decision::Server, Provider::Server(server)) => Shadow::start_server(server).await?,
            (provider::Decision::Installed { builds, .. }, _) => {
                let mut options = options.clone();
                options.postgres.builds = Some(builds.clone());
                Shadow::start_local(&options).await?
            }
            _ => Shadow::start_local(options).await?,
        };
        shadow.provider_reason = decision.reason().to_owned();
        if let provider::Decision::Installed { fetched, .. } = decision {
            shadow.installed = fetched;
        }
        shadow.say_chosen();
        Ok(shadow)
    }

    /// Says on stderr which shadow the run got, and why.
    pub(crate) fn say_chosen(&self) {
        tracing::info!(
            target: "pgshadow::choice",
            "dry-running on a {} shadow, PostgreSQL {}: {}",
            self.provider(),
            crate::postgres::Version::parse(&self.server_version).map_or_else(String::new, |v| v.to_string()),
            self.provider_reason
        );
    }

    /// Starts a private local cluster ([`LocalOptions`]) and prepares its roles.
    pub async fn start_local(options: &LocalOptions) -> Result<Shadow> {
        let options = options.clone();
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&options))
            .await
            .map_err(|e| Error::ShadowStart { message: format!("start-up task failed: {e}"), log: String::new() })??;
        Shadow::over_cluster(cluster).await
    }

    /// A cached cluster for a keep-warm supervisor ([`warm::supervise`]): only a clean one that no run holds, never
    /// a new one.
    pub(crate) async fn start_warm(options: &LocalOptions) -> Result<Shadow> {
        let options = options.clone();
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start_with(&options, true))
            .await
            .map_err(|e| Error::ShadowStart { message: format!("start-up task failed: {e}"), log: String::new() })??;
        Shadow::over_cluster(cluster).await
    }

    /// The shadow of a started cluster (local or in a container): reached through its socket, its roles prepared.
    async fn over_cluster(cluster: LocalCluster) -> Result<Shadow> {
        let mut base = tokio_postgres::Config::new();
        base.application_name("pgshadow");
        let mut secret = None;
        match cluster.container.as_ref().map(|c| &c.reached) {
            Some(container::Reached::Port { port, secret: s, .. }) => {
                base.host("127.0.0.1").port(*port);
                secret = Some(s.clone());
            }
            _ => {
                base.host_path(cluster.socket_dir()).port(local::PORT);
            }
        }
        let endpoint = Endpoint { base, passwords: Default::default(), secret, tls: None, libpq_env: Vec::new() };
        let mut shadow = Shadow {
            backend: Backend::Local(cluster),
            endpoint,
            server_version: String::new(),
            provider_reason: String::new(),
            installed: None,
            next_database: AtomicUsize::new(1),
            databases: Mutex::default(),
        };
        shadow.server_version = shadow.prepare_roles().await?;
        tracing::info!(
            provider = shadow.provider(),
            server_version = %shadow.server_version,
            binaries = %shadow.binaries().display(),
            image = shadow.container_image().unwrap_or(""),
            "shadow ready"
        );
        Ok(shadow)
    }

    /// Starts a container shadow ([`ContainerOptions`]: any PostgreSQL image, sealed off from the network) and
    /// prepares its roles. `options` gives the start-up time limit; its cache and PostgreSQL choice do not apply.
    pub async fn start_container(options: &LocalOptions, container: &ContainerOptions) -> Result<Shadow> {
        let image = container.image.clone().unwrap_or_else(|| provider::image_for(&options.postgres));
        Shadow::over_cluster(LocalCluster::start_container(options, &image, container).await?).await
    }

    /// Uses a shared shadow server ([`ServerOptions`]): checks the admin URL is a superuser's, and creates this
    /// run's roles there.
    pub async fn start_server(options: &ServerOptions) -> Result<Shadow> {
        let server::Remote { config: base, tls, libpq_env } = server::config_from_url(&options.url)?;
        let admin = base.get_user().unwrap_or_default().to_owned();
        let mut passwords = std::collections::HashMap::new();
        if let Some(password) = base.get_password() {
            passwords.insert(admin.clone(), String::from_utf8_lossy(password).into_owned());
        }
        let backend = server::ServerShadow::new(admin, PgBinaries::find(None).ok())?;
        passwords.insert(backend.loader.clone(), server::random_hex(16)?);
        passwords.insert(backend.plan.clone(), server::random_hex(16)?);
        let mut shadow = Shadow {
            backend: Backend::Server(backend),
            endpoint: Endpoint { base, passwords, secret: None, tls, libpq_env },
            server_version: String::new(),
            provider_reason: String::new(),
            installed: None,
            next_database: AtomicUsize::new(1),
            databases: Mutex::default(),
        };
        let database = shadow.endpoint.base.get_dbname().unwrap_or("postgres").to_owned();
        let admin = shadow.admin(&database).await?;
        let superuser: bool = admin
            .client()
            .query_one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", &[])
            .await
            .map_err(|e| Error::pg("checking the --shadow-url user", e))?
            .get(0);
        if !superuser {
            return Err(Error::ShadowStart {
                message: format!(
                    "the --shadow-url user {} is not a superuser: pgshadow needs one on a shadow server to create its \
                     scratch databases, roles and event triggers (it never runs a plan outside its own scratch \
                     databases)",
                    shadow.role(Role::Admin)
                ),
                log: String::new(),
            });
        }
        if let Backend::Server(server) = &shadow.backend {
            server::sweep_killed_runs(&admin, &server.run_id).await?;
            // Held until this run's databases and roles are gone: a later run tells a killed one by its free lock.
            let alive = shadow.admin(&database).await?;
            let (class, id) = server::lock_key(&server.run_id);
            alive
                .client()
                .execute("SELECT pg_catalog.pg_advisory_lock($1, $2)", &[&class, &id])
                .await
                .map_err(|e| Error::pg("taking the run's advisory lock on the shadow server", e))?;
            *server.alive.lock().unwrap_or_else(|e| e.into_inner()) = Some(alive);
        }
        shadow.server_version = shadow.prepare_roles_on(&admin).await?;
        tracing::info!(provider = "server", server_version = %shadow.server_version, "shadow ready");
        Ok(shadow)
    }

    /// Creates the loader and plan roles (a cached cluster has them already); returns the server's version.
    async fn prepare_roles(&self) -> Result<String> {
        let admin = self.admin("postgres").await?;
        self.prepare_roles_on(&admin).await
    }

    async fn prepare_roles_on(&self, admin: &Session) -> Result<String> {
        if self.cache_slot().is_none_or(|slot| slot.fresh) {
            let (loader, plan) = (self.role(Role::Loader), self.role(Role::Plan));
            let (owner, installer) = (self.role(Role::LoadOwner), self.role(Role::Installer));
            let password = |role: &str| self.password_clause(role);
            let unprivileged = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
            let mut setup = format!(
                "CREATE ROLE {loader} LOGIN {unprivileged}{}; \
                 CREATE ROLE {plan} LOGIN {unprivileged}{}; \
                 CREATE ROLE {owner} NOLOGIN {unprivileged}; \
                 GRANT {owner} TO {loader}; \
                 CREATE ROLE {installer} NOLOGIN SUPERUSER;",
                password(loader),
                password(plan)
            );
            if let Backend::Server(server) = &self.backend {
                for role in [loader, plan, owner, installer] {
                    setup.push_str(&format!(" COMMENT ON ROLE {role} IS '{}';", server.role_marker()));
                }
            }
            admin.client().batch_execute(&setup).await.map_err(|e| Error::pg("creating the shadow's roles", e))?;
            if let Backend::Server(server) = &self.backend {
                // From here on there is something of this run's on the server to remove.
                server.removed.store(false, Ordering::SeqCst);
            }
        }
        let row = admin
            .client()
            .query_one("SELECT pg_catalog.current_setting('server_version')", &[])
            .await
            .map_err(|e| Error::pg("reading the server version", e))?;
        Ok(row.get(0))
    }

    /// Which provider made this shadow: `local`, `container` or `server`.
    pub fn provider(&self) -> &'static str {
        match &self.backend {
            Backend::Local(cluster) if cluster.container.is_some() => "container",
            Backend::Local(_) | Backend::Warm(_) => "local",
            Backend::Server(_) => "server",
        }
    }

    /// Why this provider: asked for, or what `--shadow auto` found.
    pub fn provider_reason(&self) -> &str {
        &self.provider_reason
    }

    /// The PostgreSQL build this run installed into the cache on first use (`--shadow auto` on a machine with no
    /// PostgreSQL), if it did.
    pub fn installed(&self) -> Option<&crate::postgres::Fetched> {
        self.installed.as_ref()
    }

    /// The image a container shadow runs (`postgres:17`), `None` for other shadows.
    pub fn container_image(&self) -> Option<&str> {
        match &self.backend {
            Backend::Local(cluster) => cluster.container.as_ref().map(|c| c.image.as_str()),
            Backend::Server(_) | Backend::Warm(_) => None,
        }
    }

    /// For a container shadow: whether it was sealed off from the network, and how pgshadow reached its server.
    pub fn container_reach(&self) -> Option<(bool, String)> {
        match &self.backend {
            Backend::Local(cluster) => cluster.container.as_ref().map(|c| c.reached.describe()),
            Backend::Server(_) | Backend::Warm(_) => None,
        }
    }

    /// The server's `server_version` (`15.18 (Debian 15.18-0+deb12u1)`).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The directory of the server binaries in use (for a shadow server: of the local client tools, if any).
    pub fn binaries(&self) -> &Path {
        match &self.backend {
            Backend::Local(cluster) => &cluster.binaries.dir,
            Backend::Warm(warm) => &warm.binaries.dir,
            Backend::Server(server) => server.binaries.as_ref().map_or(Path::new(""), |b| &b.dir),
        }
    }

    /// Why the shadow runs the PostgreSQL version it runs (a shadow server: because it is that server's).
    pub fn version_reason(&self) -> &str {
        match &self.backend {
            Backend::Local(cluster) => &cluster.reason,
            Backend::Warm(warm) => &warm.reason,
            Backend::Server(_) => "the shadow server's own, --shadow-url",
        }
    }

    /// How the binaries were found (`PATH`, `--pg-bin`, ...).
    pub fn binaries_origin(&self) -> &'static str {
        match &self.backend {
            Backend::Local(cluster) => cluster.binaries.origin,
            Backend::Warm(warm) => warm.binaries.origin,
            Backend::Server(server) => server.binaries.as_ref().map_or("nowhere", |b| b.origin),
        }
    }

    /// Stops the server and deletes its directory. Dropping the shadow does the same, blocking, but only this
    /// keeps a cached cluster for the next run: when no plan spoiled a database and every database was dropped.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Backend::Server(_) = self.backend {
            return self.remove_from_server().await;
        }
        if let Backend::Local(cluster) = &mut self.backend {
            if let Some(container) = cluster.container.take() {
                (*container).remove().await?;
            }
        }
        if self.cache_slot().is_some() {
            let spoiled = self.databases.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|t| {
                t.spoiled.load(Ordering::SeqCst) || t.put_back.as_ref().is_some_and(|p| !p.load(Ordering::SeqCst))
            });
            if !spoiled {
                match self.tidy_cache().await {
                    Ok(()) => {
                        if let Backend::Local(cluster) = &mut self.backend {
                            cluster.reusable = true;
                        }
                    }
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
        let Some(slot) = self.cache_slot() else {
            return Ok(());
        };
        let admin = self.admin("postgres").await?;
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
        drop(admin);
        for name in drops {
            self.drop_database(&name).await?;
        }
        Ok(())
    }

    /// The name of one of the shadow's roles.
    pub(crate) fn role(&self, role: Role) -> &str {
        match (&self.backend, role) {
            (Backend::Local(_) | Backend::Warm(_), Role::Admin) => local::ADMIN_ROLE,
            (Backend::Local(_) | Backend::Warm(_), Role::Loader) => "pgshadow_loader",
            (Backend::Local(_) | Backend::Warm(_), Role::LoadOwner) => "pgshadow_load_owner",
            (Backend::Local(_) | Backend::Warm(_), Role::Installer) => "pgshadow_installer",
            (Backend::Local(_) | Backend::Warm(_), Role::Plan) => "pgshadow_plan",
            (Backend::Server(server), Role::Admin) => &server.admin,
            (Backend::Server(server), Role::Loader) => &server.loader,
            (Backend::Server(server), Role::LoadOwner) => &server.load_owner,
            (Backend::Server(server), Role::Installer) => &server.installer,
            (Backend::Server(server), Role::Plan) => &server.plan,
        }
    }

    /// Creates the database `name` owned by `owner` (the plan role, or [`Role::LoadOwner`] for a database a source
    /// is about to load into), from `template` (a local cluster's default when `None`). On a shadow server it comes
    /// from `template0` and is marked as this run's.
    pub(crate) async fn create_database(&self, name: &str, template: Option<&str>, owner: Role) -> Result<()> {
        let admin = self.admin(self.maintenance_database()).await?;
        let ident = crate::text::quote_ident(name);
        let template = match (&self.backend, template) {
            (_, Some(t)) => format!(" TEMPLATE {}", crate::text::quote_ident(t)),
            (Backend::Server(_), None) => " TEMPLATE template0".to_owned(),
            (Backend::Local(_) | Backend::Warm(_), None) => String::new(),
        };
        let sql = format!("CREATE DATABASE {ident}{template} OWNER {}", self.role(owner));
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("creating the shadow database", e))?;
        if let Backend::Server(server) = &self.backend {
            server.created.lock().unwrap_or_else(|e| e.into_inner()).push(name.to_owned());
            let comment = format!("COMMENT ON DATABASE {ident} IS '{}'", server.marker());
            admin.client().batch_execute(&comment).await.map_err(|e| Error::pg("marking the scratch database", e))?;
        }
        Ok(())
    }

    /// Drops a database this shadow created, disconnecting anything still in it. On a shadow server, only a
    /// database this run created whose mark still names this run.
    pub(crate) async fn drop_database(&self, name: &str) -> Result<()> {
        let admin = self.admin(self.maintenance_database()).await?;
        if let Backend::Server(server) = &self.backend {
            let ours = server.created.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == name);
            let mark: Option<String> = admin
                .client()
                .query_opt(
                    "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database \
                     WHERE datname = $1",
                    &[&name],
                )
                .await
                .map_err(|e| Error::pg("checking a scratch database's mark", e))?
                .and_then(|row| row.get(0));
            if !ours || mark.as_deref() != Some(server.marker().as_str()) {
                tracing::warn!(database = name, "not dropping a database this run cannot prove it created");
                return Ok(());
            }
        }
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", crate::text::quote_ident(name));
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("dropping the shadow database", e))?;
        if let Backend::Server(server) = &self.backend {
            server.created.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| n != name);
        }
        Ok(())
    }

    /// Creates a login role that is a member of the plan role (with its privileges), for one database's plans.
    pub(crate) async fn create_login_role(&self, name: &str) -> Result<()> {
        let admin = self.admin(self.maintenance_database()).await?;
        let sql =
            format!("CREATE ROLE {name} LOGIN INHERIT IN ROLE {}{}", self.role(Role::Plan), self.password_clause(name));
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("creating a login role for a clone", e))
    }

    /// ` PASSWORD '...'` for a role that needs one on this shadow, else nothing.
    fn password_clause(&self, role: &str) -> String {
        self.endpoint.password(role).map_or_else(String::new, |p| format!(" PASSWORD '{p}'"))
    }

    /// Drops a role [`Shadow::create_login_role`] made (its database must be gone first).
    pub(crate) async fn drop_login_role(&self, name: &str) -> Result<()> {
        let admin = self.admin(self.maintenance_database()).await?;
        let sql = format!("DROP ROLE IF EXISTS {name}");
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("dropping a clone's login role", e))
    }

    /// The database admin connections use when they need none in particular.
    pub(crate) fn maintenance_database(&self) -> &str {
        match &self.backend {
            Backend::Local(_) | Backend::Warm(_) => "postgres",
            Backend::Server(_) => self.endpoint.base.get_dbname().unwrap_or("postgres"),
        }
    }

    /// Removes this run from a shadow server: its scratch databases (proven), then its roles.
    async fn remove_from_server(&self) -> Result<()> {
        let Backend::Server(server) = &self.backend else {
            return Ok(());
        };
        let created: Vec<String> = server.created.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for name in created {
            self.drop_database(&name).await?;
        }
        let admin = self.admin(self.maintenance_database()).await?;
        let sql = [&server.plan, &server.loader, &server.load_owner, &server.installer]
            .map(|role| format!("DROP ROLE IF EXISTS {role};"))
            .concat();
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("dropping the run's roles", e))?;
        server.removed.store(true, Ordering::SeqCst);
        // Nothing of this run's is left: its lock goes with its connection.
        drop(server.alive.lock().unwrap_or_else(|e| e.into_inner()).take());
        Ok(())
    }

    /// How to reach the server (for tools such as `pg_restore`).
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The cached cluster this shadow runs on, if any.
    pub(crate) fn cache_slot(&self) -> Option<&cache::Slot> {
        match &self.backend {
            Backend::Local(cluster) => cluster.slot(),
            Backend::Server(_) | Backend::Warm(_) => None,
        }
    }

    /// The directory of the cached cluster this shadow runs on, if any (for a warm one too).
    pub(crate) fn cache_cluster(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Warm(warm) => Some(&warm.slot),
            _ => self.cache_slot().map(|slot| slot.dir()),
        }
    }

    /// Marks the shadow as holding a database something may have been committed to: a cached cluster is then not
    /// kept.
    pub(crate) fn spoil(&self) {
        let tracked = Tracked { spoiled: Arc::new(AtomicBool::new(true)), put_back: None };
        self.databases.lock().unwrap_or_else(|e| e.into_inner()).push(tracked);
    }

    /// Registers a database, so that a cached cluster a plan committed into, or whose template was not put back
    /// after a dry-run, is not kept.
    pub(crate) fn track(&self, database: &Database) {
        let put_back = database.in_place.as_ref().map(|p| Arc::clone(&p.released));
        let tracked = Tracked { spoiled: Arc::clone(&database.spoiled), put_back };
        self.databases.lock().unwrap_or_else(|e| e.into_inner()).push(tracked);
    }

    /// A session of `role` in `database`, as the plan or a source would have it.
    pub(crate) async fn connect(&self, role: &str, database: &str) -> Result<Session> {
        Session::connect(&self.endpoint, role, database, false)
            .await
            .map_err(|e| Error::pg(format!("connecting to the shadow as {role}"), e))
    }

    /// A session of the admin (a superuser) in `database`, with its `search_path` pinned to `pg_catalog, pg_temp`:
    /// what pgshadow itself does in a database a source loaded into never resolves to an object of the source's.
    pub(crate) async fn admin(&self, database: &str) -> Result<Session> {
        let role = self.role(Role::Admin);
        Session::connect(&self.endpoint, role, database, true)
            .await
            .map_err(|e| Error::pg(format!("connecting to the shadow as {role}"), e))
    }

    /// A database name not used before in this shadow.
    pub(crate) fn new_database_name(&self) -> String {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            Backend::Local(_) | Backend::Warm(_) => format!("shadow_{n}"),
            Backend::Server(server) => format!("pgshadow_scratch_{}_{n}", server.run_id),
        }
    }
}

impl Drop for Shadow {
    /// A shadow server's run that was not shut down (an error, a timeout, a panic) is removed here, on a thread of
    /// its own with a time limit. A local cluster removes itself.
    fn drop(&mut self) {
        let Backend::Server(server) = &self.backend else {
            return;
        };
        if server.removed.swap(true, Ordering::SeqCst) {
            return;
        }
        let shadow = Shadow {
            backend: Backend::Server(server::ServerShadow {
                run_id: server.run_id.clone(),
                admin: server.admin.clone(),
                loader: server.loader.clone(),
                load_owner: server.load_owner.clone(),
                installer: server.installer.clone(),
                plan: server.plan.clone(),
                binaries: None,
                created: Mutex::new(std::mem::take(&mut *server.created.lock().unwrap_or_else(|e| e.into_inner()))),
                removed: AtomicBool::new(true),
                alive: Mutex::new(server.alive.lock().unwrap_or_else(|e| e.into_inner()).take()),
            }),
            endpoint: self.endpoint.clone(),
            server_version: String::new(),
            provider_reason: String::new(),
            installed: None,
            next_database: AtomicUsize::new(0),
            databases: Mutex::default(),
        };
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                let work = async {
                    tokio::time::timeout(std::time::Duration::from_secs(15), shadow.remove_from_server()).await
                };
                if !matches!(runtime.block_on(work), Ok(Ok(()))) {
                    tracing::warn!("could not remove this run's scratch databases and roles from the shadow server");
                }
            }
        });
        let _ = cleanup.join();
    }
}
