//! Serving dry-runs to an approval service or an agent: a source is prepared once (loaded into a template database,
//! its fidelity reported), then many plans are dry-run against it concurrently, each on a clone of its own.
//!
//! Isolation: every dry-run gets a clone of the source's template to itself, so a `DROP TABLE` in one run neither
//! blocks nor is seen by another. After a run that ended normally the clone is put back as it was — the dry-run's
//! transaction was rolled back; sequences are set back and grown tables vacuumed — and serves a later run; a clone
//! that a statement outside the transaction changed (spoiled), or whose run failed, timed out or was cancelled, is
//! dropped, never reused. A pool of ready clones per source is refilled in the background so that a dry-run does not
//! wait for `CREATE DATABASE`.

pub mod config;
mod pool;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::profile::Profile;
use crate::report::{Fidelity, ProfileInfo, SchemaInfo};
use crate::{measure, source, LocalOptions, Plan, Policy, Provider, Report, RunOptions, Schema, Shadow, Verdict};
use pool::Pool;

/// How a [`Service`] runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Where the one shadow every source is loaded into runs ([`Provider::Auto`] by default): a local cluster or
    /// one container, shared by every dry-run through clones of template databases.
    pub provider: Provider,
    /// How to start a local shadow (uncached: the service keeps its own templates), and the start-up time limit.
    pub shadow: LocalOptions,
    /// How many ready clones to keep per source.
    pub pool_size: usize,
    /// How plans run.
    pub run: RunOptions,
    /// The most one dry-run may take; it is then cancelled, its clone dropped, and [`Error::Timeout`] returned.
    pub timeout: Duration,
    /// The most entries a report's lists hold ([`Report::truncate`]).
    pub max_report_items: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            provider: Provider::default(),
            shadow: LocalOptions::default(),
            pool_size: 4,
            run: RunOptions::default(),
            timeout: Duration::from_secs(30),
            max_report_items: 1000,
        }
    }
}

/// A source prepared for dry-runs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SourceInfo {
    /// The name dry-runs refer to it by.
    pub name: String,
    /// The SHA-256 of the source's content: a report's `shadow.schema.sha256` equals it.
    pub sha256: String,
    /// The schema file and how much of it loaded.
    pub schema: Option<SchemaInfo>,
    /// How faithful the shadow is to the source.
    pub fidelity: Fidelity,
    /// Clones ready for dry-runs right now.
    pub ready: usize,
    /// The `server_version` of the shadow the source runs on: its own major version when that is installed here
    /// (a service serves a 13 and an 18 source each on its own), else the service's first shadow's.
    pub server_version: String,
    /// The profile of production registered with it, checked against what loaded; absent without one. Every
    /// report of a dry-run against the source carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileInfo>,
}

/// Counters for monitoring (Prometheus text in `pgshadow serve`'s `/v1/metrics`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Dry-runs finished with a report, by verdict.
    pub pass: AtomicU64,
    /// See `pass`.
    pub warn: AtomicU64,
    /// See `pass`.
    pub fail: AtomicU64,
    /// Dry-runs that ended in an error (timeout, shadow failure, ...).
    pub errors: AtomicU64,
    /// Dry-runs cut by their timeout.
    pub timeouts: AtomicU64,
    /// Sum of the dry-runs' wall times, in microseconds.
    pub duration_micros: AtomicU64,
    /// Clones made.
    pub clones: AtomicU64,
}

/// A shadow that serves dry-runs of many plans against prepared sources, concurrently.
pub struct Service {
    /// The shadow started with the service: sources run on it unless they came from another major version.
    shadow: Arc<Shadow>,
    /// Shadows of other major versions, each started for the first source that came from that version.
    by_version: tokio::sync::Mutex<Vec<(u32, Arc<Shadow>)>>,
    sources: RwLock<HashMap<String, Arc<Prepared>>>,
    options: ServiceOptions,
    metrics: Arc<Metrics>,
}

/// A prepared source: what loaded, and its pool of clones of the template database.
struct Prepared {
    info: SourceInfo,
    pool: Pool,
    /// The shadow its template and clones live on.
    shadow: Arc<Shadow>,
    /// Its profile of production ([`Service::profile`]).
    profile: Option<Arc<Profile>>,
    /// The foreign keys of its schema, which the profile's cascade estimates follow (read only with a profile).
    keys: Vec<crate::estimate::ForeignKey>,
}

impl Service {
    /// Starts the service's shadow.
    pub async fn start(options: ServiceOptions) -> Result<Service> {
        Service::start_for(options, &[]).await
    }

    /// Starts the service's shadow, one that has the extensions `sources` create if `auto` can find one.
    async fn start_for(options: ServiceOptions, sources: &[Schema]) -> Result<Service> {
        if let Provider::Server(_) = options.provider {
            return Err(Error::Source {
                path: "--shadow server".into(),
                message: "a service runs on a local or container shadow (auto, local, container)".into(),
                detail: String::new(),
            });
        }
        let mut shadow_options = options.shadow.clone();
        // The service keeps its templates for as long as it runs; a kept cluster is the CLI's business.
        shadow_options.cache = None;
        let sources = sources.to_vec();
        let extensions = move || source::extensions_of(&sources);
        let shadow = Shadow::start(&options.provider, &shadow_options, extensions).await?;
        Ok(Service {
            shadow: Arc::new(shadow),
            by_version: Default::default(),
            sources: RwLock::default(),
            options,
            metrics: Arc::default(),
        })
    }

    /// Starts a service as `config` says, on the shadow `provider` and `shadow` give, and prepares the sources
    /// it lists (a source that fails to read or load is an error: a server must not start half ready).
    pub async fn from_config(config: &config::Config, provider: Provider, mut shadow: LocalOptions) -> Result<Service> {
        let schemas = config
            .sources
            .iter()
            .map(|(name, path)| {
                let mut schema =
                    Schema { trusted: config.trusted.contains(name), ..Schema::read(&path.to_string_lossy())? };
                if let (Some(&(rows, seed)), Some(profile)) = (config.synthesize.get(name), config.profiles.get(name)) {
                    let profile = Arc::new(Profile::read(profile)?);
                    schema.synthesis = Some(crate::synth::Synthesis::new(profile, rows, seed)?);
                }
                Ok((name, path, schema))
            })
            .collect::<Result<Vec<_>>>()?;
        if shadow.postgres.source.is_none() {
            // The first shadow runs the first source's major version when that is installed; a source of another
            // version gets a shadow of its own ([`Service::register`]).
            shadow.postgres.source = schemas.first().and_then(|(_, _, schema)| schema.source_version());
        }
        let options = ServiceOptions {
            provider,
            shadow,
            pool_size: config.pool_size,
            run: RunOptions::default(),
            timeout: config.timeout,
            max_report_items: config.max_report_items,
        };
        let sources: Vec<Schema> = schemas.iter().map(|(_, _, schema)| schema.clone()).collect();
        let service = Service::start_for(options, &sources).await?;
        for (name, path, schema) in &schemas {
            let profile = config.profiles.get(*name).map(|p| Profile::read(p)).transpose()?;
            tracing::info!(target: "pgshadow::progress", "preparing the source {name} ({})", path.display());
            service.register_with_profile(name, schema, profile).await?;
        }
        Ok(service)
    }

    /// The service's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The shadow's `server_version`.
    pub fn server_version(&self) -> &str {
        self.shadow.server_version()
    }

    /// The shadow's provider (`local`, `container`) and why it was chosen.
    pub fn provider(&self) -> (&str, &str) {
        (self.shadow.provider(), self.shadow.provider_reason())
    }

    /// Loads `schema` as the source `name` (replacing nothing: a name is registered once) and starts filling its
    /// pool. Returns what loaded.
    pub async fn register(&self, name: &str, schema: &Schema) -> Result<SourceInfo> {
        self.register_with_profile(name, schema, None).await
    }

    /// [`Service::register`] with a profile of production (`pgshadow profile`): it is checked against what loaded
    /// (`SourceInfo::profile`), and the reports of dry-runs against the source say so.
    pub async fn register_with_profile(
        &self,
        name: &str,
        schema: &Schema,
        profile: Option<Profile>,
    ) -> Result<SourceInfo> {
        if self.sources.read().unwrap_or_else(|e| e.into_inner()).contains_key(name) {
            return Err(Error::SourceExists(name.to_owned()));
        }
        let shadow = self.shadow_for(schema).await?;
        let mut template = source::load(&shadow, Some(schema)).await?;
        template.row_counts = Some(Arc::new(source::count_rows(&shadow, &template).await?));
        let checked = match &profile {
            Some(profile) => {
                Some(crate::profile::compare(profile, &crate::profile::of_database(&shadow, &template).await?))
            }
            None => None,
        };
        let keys = match &profile {
            Some(_) => crate::estimate::foreign_keys(&shadow, &template).await?,
            None => Vec::new(),
        };
        let sha256 = template.schema.as_ref().map(|s| s.sha256.clone()).unwrap_or_default();
        let info = SourceInfo {
            name: name.to_owned(),
            sha256,
            schema: template.schema.clone(),
            fidelity: template.fidelity.clone(),
            ready: 0,
            server_version: shadow.server_version().to_owned(),
            profile: checked,
        };
        let pool = Pool::start(Arc::clone(&shadow), template, self.options.pool_size, Arc::clone(&self.metrics));
        let prepared = Arc::new(Prepared { info: info.clone(), pool, shadow, profile: profile.map(Arc::new), keys });
        let mut sources = self.sources.write().unwrap_or_else(|e| e.into_inner());
        if sources.contains_key(name) {
            return Err(Error::SourceExists(name.to_owned()));
        }
        sources.insert(name.to_owned(), prepared);
        Ok(info)
    }

    /// The profile of production the source `name` was registered with, if any.
    pub fn profile(&self, name: &str) -> Option<Arc<Profile>> {
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        sources.get(name).and_then(|p| p.profile.clone())
    }

    /// The shadow `schema` runs on: one of its own major version when it says which, no version was pinned
    /// (`--pg-version`) and that version is installed here; else the service's first shadow. A shadow of another
    /// version is started once, for the first source that needs it, and serves every later one.
    async fn shadow_for(&self, schema: &Schema) -> Result<Arc<Shadow>> {
        let own = crate::postgres::Version::parse(self.shadow.server_version()).map(|v| v.major);
        let Some(wanted) = schema.source_version().filter(|v| Some(v.major) != own) else {
            return Ok(Arc::clone(&self.shadow));
        };
        if self.options.shadow.postgres.version.is_some() || self.options.shadow.postgres.pg_bin.is_some() {
            return Ok(Arc::clone(&self.shadow));
        }
        let mut shadows = self.by_version.lock().await;
        if let Some((_, shadow)) = shadows.iter().find(|(major, _)| *major == wanted.major) {
            return Ok(Arc::clone(shadow));
        }
        let builds = self.options.shadow.postgres.builds.clone();
        let found = tokio::task::spawn_blocking(move || crate::postgres::discover(builds.as_deref()))
            .await
            .map_err(|e| Error::io("<discovery task>", std::io::Error::other(e)))?;
        if !found.iter().any(|f| f.version.major == wanted.major) {
            tracing::warn!(
                "the source {} came from PostgreSQL {}, which is not installed here: it runs on the service's {}",
                schema.file,
                wanted.major,
                self.shadow.server_version()
            );
            return Ok(Arc::clone(&self.shadow));
        }
        let mut options = self.options.shadow.clone();
        options.cache = None;
        options.postgres.source = Some(wanted);
        let sources = vec![schema.clone()];
        let extensions = move || source::extensions_of(&sources);
        let shadow = Arc::new(Shadow::start(&self.options.provider, &options, extensions).await?);
        shadows.push((wanted.major, Arc::clone(&shadow)));
        Ok(shadow)
    }

    /// Every registered source, by name.
    pub fn sources(&self) -> Vec<SourceInfo> {
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<SourceInfo> =
            sources.values().map(|p| SourceInfo { ready: p.pool.ready(), ..p.info.clone() }).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Dry-runs `plan` against the source `name` on a clone of its own, with `policy`'s verdict. Afterwards the clone
    /// is put back as it was after a clean run, else dropped; the report is bounded by `max_report_items`.
    pub async fn dry_run(&self, name: &str, plan: &Plan, policy: &Policy) -> Result<Report> {
        Ok(self.dry_run_described(name, plan, policy, false).await?.0)
    }

    /// [`Service::dry_run`], and with `describe` the [catalog description](crate::profile::describe) of the clone
    /// before the plan ran, as a proposal keeps it for apply's drift check.
    pub async fn dry_run_described(
        &self,
        name: &str,
        plan: &Plan,
        policy: &Policy,
        describe: bool,
    ) -> Result<(Report, Option<crate::profile::Description>)> {
        let started = Instant::now();
        let outcome = self.dry_run_inner(name, plan, policy, describe).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.duration_micros.fetch_add(micros, Ordering::Relaxed);
        let counter = match &outcome {
            Ok((report, _)) => match report.verdict {
                Verdict::Pass => &self.metrics.pass,
                Verdict::Warn => &self.metrics.warn,
                Verdict::Fail => &self.metrics.fail,
            },
            Err(Error::Timeout(_)) => {
                self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                &self.metrics.errors
            }
            Err(_) => &self.metrics.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    async fn dry_run_inner(
        &self,
        name: &str,
        plan: &Plan,
        policy: &Policy,
        describe: bool,
    ) -> Result<(Report, Option<crate::profile::Description>)> {
        let prepared = self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownSource(name.to_owned()))?;
        let started = Instant::now();
        let mut lease = prepared.pool.take().await?;
        let took = started.elapsed();
        let description = match describe {
            true => Some(crate::profile::describe_database(&prepared.shadow, lease.database()).await?),
            false => None,
        };
        let carried = lease.carried();
        let run = measure::run_plan_in(&prepared.shadow, lease.database(), plan, &self.options.run, carried);
        // On a timeout the lease is dropped, and with it the clone (WITH (FORCE) ends the statement still running).
        let (statements, carried) = tokio::time::timeout(self.options.timeout, run)
            .await
            .map_err(|_| Error::Timeout(self.options.timeout))??;
        let production = prepared.profile.as_deref().map(|profile| crate::estimate::Production {
            profile,
            keys: &prepared.keys,
            rewrite_rate: None,
        });
        let (database, run) = (lease.database(), &self.options.run);
        let mut report =
            crate::report_of(&prepared.shadow, database, plan, statements, policy, run, production.as_ref());
        report.profile = prepared.info.profile.clone();
        lease.give_back(carried);
        tracing::debug!(
            clone_us = took.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "dry-run served (the clone is put back in the background)"
        );
        report.truncate(self.options.max_report_items);
        Ok((report, description))
    }

    /// [`Service::shutdown`] for a service shared with requests or tool calls: waits up to `wait` for them to let
    /// go of it. Should one still hold it then, its shadow is removed when that last holder is dropped.
    pub async fn shutdown_shared(mut service: Arc<Service>, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            match Arc::try_unwrap(service) {
                Ok(service) => return service.shutdown().await,
                Err(shared) if Instant::now() < deadline => {
                    service = shared;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => {
                    tracing::warn!("a request still holds the service; its shadow goes when that request is dropped");
                    return Ok(());
                }
            }
        }
    }

    /// Stops the pools, then the shadow: every clone, template and process goes, and the temporary directory too.
    pub async fn shutdown(self) -> Result<()> {
        let sources: Vec<Arc<Prepared>> =
            self.sources.write().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, p)| p).collect();
        for prepared in &sources {
            prepared.pool.stop().await;
        }
        drop(sources);
        let others = self.by_version.into_inner().into_iter().map(|(_, shadow)| shadow);
        let mut outcome = Ok(());
        for shadow in others.chain([self.shadow]) {
            // A dry-run may still hold one (a cancelled request's task): dropping the last reference removes it.
            if let Ok(shadow) = Arc::try_unwrap(shadow) {
                outcome = outcome.and(shadow.shutdown().await);
            }
        }
        outcome
    }
}
