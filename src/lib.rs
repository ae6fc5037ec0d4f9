//! pgshadow answers one question before anything touches production: *what exactly would this SQL do?*
//!
//! It starts a throw-away **shadow** Postgres, loads a schema into it, runs the plan there inside a transaction
//! that is always rolled back, **measures** what every statement did — rows inserted, updated and deleted per table
//! including foreign-key cascades and triggers, every object dropped including what a CASCADE took, rows destroyed —
//! and turns that into a [`Report`] with a pass/fail [`Verdict`] from a [`Policy`].
//!
//! The command-line tool is a thin layer over this library: an approval service can do everything it does.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pgshadow::Error> {
//! use pgshadow::{dry_run, DryRunOptions, Plan, Schema, Verdict};
//!
//! let schema = Schema::sql(
//!     "schema.sql",
//!     "CREATE TABLE users (id int PRIMARY KEY);
//!      CREATE TABLE orders (id int, user_id int REFERENCES users ON DELETE CASCADE);
//!      INSERT INTO users VALUES (1), (2);
//!      INSERT INTO orders VALUES (10, 1), (11, 1), (12, 2);",
//! );
//! let plan = Plan::parse("plan.sql", "DELETE FROM users WHERE id = 1;")?;
//! let report = dry_run(&plan, Some(&schema), &DryRunOptions::default()).await?;
//!
//! // The cascade is measured, not guessed: two orders went with the user, so the default policy fails the plan.
//! assert_eq!(report.summary.rows_deleted, 3);
//! assert_eq!(report.verdict, Verdict::Fail);
//! assert_eq!(report.findings[0].rule, "cascade-delete");
//! println!("{}", pgshadow::report::render_table(&report));
//! # Ok(())
//! # }
//! ```
//!
//! The pieces are public too: [`Shadow::start_local`] starts a shadow that can serve many dry-runs,
//! [`source::load`] loads a schema into a fresh database of it, [`measure::run_plan`] runs and measures a plan,
//! and [`Policy::evaluate`] gives the verdict; [`dry_run_on`] strings them together on a shadow you keep.
//!
//! A [`Profile`] of production ([`profile::take`], `pgshadow profile`) holds its sizes and statistics without its
//! rows; given in [`DryRunOptions::profile`], the report says whether it describes the schema the shadow loaded.
//!
//! Proposals ([`proposal`]) keep a plan with its report in a [`proposal::Store`] until people approve it;
//! [`apply::apply`] then runs it on a named target in one transaction and commits only what was approved.
//!
//! # Layers
//!
//! The modules form layers that point one way: each uses only the modules of the lines above its own, never one of
//! its own line or below. When a module needs something of a higher one, that thing moves down. `tests/layers.rs`
//! reads the `crate::` paths of `src/` and fails on any that goes against this order, which it reads from here.
//!
//! ```text
//! text, error, test_server  leaves, importing nothing of ours: quoting, digests, redaction; errors; a test server
//! plan                      reading, splitting and classifying plans
//! report                    the report model every layer above shares, and its renderers
//! postgres, tls             the PostgreSQL builds a shadow runs on; TLS to servers pgshadow does not own
//! shadow                    servers, their databases, sessions and roles; the cache. Knows no source, measure, policy
//! measure                   runs a plan on a database of a shadow and measures every statement
//! profile                   production's sizes and shape read from a live database; the catalog fingerprint and
//!                            the canonical catalog description apply's drift check compares
//! synth                     rows generated from a profile into a loaded database (synthetic shadows)
//! source                    loads a source into a new database of a shadow, with measure's machinery installed
//! estimate                  production's counts estimated from a profile's statistics, or scaled from a sample
//! policy                    judges a report: findings and a verdict
//! proposal                  proposals, their approval rules, tokens and roles, their store and hash-chained audit log
//! apply                     the one path that writes to a database pgshadow did not create: an approved plan
//!                            on its target, committed only inside what was approved
//! warm_runs                 plans a keep-warm supervisor runs for the runs that hand them over
//! lib                       this file's orchestration: dry_run, dry_run_on, rehearse, keep_warm
//! service                   prepared sources and pools of clones for concurrent dry-runs
//! serve, mcp                the HTTP API and the MCP server
//! ```

pub mod apply;
pub mod error;
pub mod estimate;
pub mod mcp;
pub mod measure;
pub mod plan;
pub mod policy;
pub mod postgres;
pub mod profile;
pub mod proposal;
pub mod report;
pub mod serve;
pub mod service;
pub mod shadow;
pub mod source;
pub mod synth;
#[cfg(test)]
pub(crate) mod test_server;
pub mod text;
mod tls;
mod warm_runs;

use std::time::Duration;

pub use error::{Error, Result};
pub use measure::RunOptions;
pub use plan::Plan;
pub use policy::Policy;
pub use profile::Profile;
pub use report::{Report, Verdict};
pub use shadow::{CacheOptions, LocalOptions, Provider, ServerOptions, Shadow};
pub use source::Schema;

/// Everything about how a [`dry_run`] is done.
#[derive(Debug, Clone)]
pub struct DryRunOptions {
    /// Where the shadow runs; by default the best provider this machine has ([`Provider::Auto`]).
    pub provider: Provider,
    /// How to start a local shadow (and, for any provider, the start-up time limit and the source's version).
    pub shadow: LocalOptions,
    /// How to run the plan.
    pub run: RunOptions,
    /// Fail with [`Error::SchemaFidelity`] when any statement of the schema did not load.
    pub strict_schema: bool,
    /// The policy that gives the verdict.
    pub policy: Policy,
    /// The most the whole dry-run may take, shadow start-up included. When it passes, the dry-run is stopped, the
    /// shadow is removed and [`Error::Timeout`] is returned.
    pub timeout: Duration,
    /// A profile of production (`run --profile`): the report says whether it describes the schema the shadow
    /// loaded (`profile` in the report), and names what differs.
    pub profile: Option<profile::Profile>,
}

/// The default time limit of a dry-run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for DryRunOptions {
    fn default() -> Self {
        DryRunOptions {
            provider: Provider::default(),
            shadow: LocalOptions::default(),
            run: RunOptions::default(),
            strict_schema: false,
            policy: Policy::default(),
            timeout: DEFAULT_TIMEOUT,
            profile: None,
        }
    }
}

/// Starts a shadow, loads `schema` into it, dry-runs `plan` and removes the shadow again, on every path.
pub async fn dry_run(plan: &Plan, schema: Option<&Schema>, options: &DryRunOptions) -> Result<Report> {
    Ok(dry_run_inner(plan, schema, options, false).await?.0)
}

/// [`dry_run`], and the [catalog description](profile::describe) of the shadow's database once `schema` loaded, as
/// a proposal keeps it for apply's drift check (`None` without a schema).
pub async fn dry_run_described(
    plan: &Plan,
    schema: Option<&Schema>,
    options: &DryRunOptions,
) -> Result<(Report, Option<profile::Description>)> {
    dry_run_inner(plan, schema, options, schema.is_some()).await
}

async fn dry_run_inner(
    plan: &Plan,
    schema: Option<&Schema>,
    options: &DryRunOptions,
    describe: bool,
) -> Result<(Report, Option<profile::Description>)> {
    let mut shadow_options = options.shadow.clone();
    if shadow_options.postgres.source.is_none() {
        // Without a version asked for, the shadow runs the source's major version when it is installed.
        shadow_options.postgres.source = schema.and_then(Schema::source_version);
    }
    let trusted = schema.is_some_and(|s| s.trusted);
    if (options.run.superuser || trusted) && shadow_options.cache.take().is_some() {
        // A superuser plan, or a source loaded as one, could change the cluster itself (roles, ALTER SYSTEM): never
        // on a cluster that is kept.
        tracing::info!("--superuser or --trust-source: not using the shadow cache");
    }
    let on_server = matches!(options.provider, Provider::Server(_));
    if on_server && (options.shadow.postgres.version.is_some() || options.shadow.postgres.pg_bin.is_some()) {
        return Err(Error::Source {
            path: "--shadow server".into(),
            message: "--pg-version and --pg-bin choose a local shadow's PostgreSQL; a shadow server runs its own"
                .into(),
            detail: String::new(),
        });
    }
    if on_server && (options.run.superuser || options.run.role.is_some()) {
        return Err(Error::Source {
            path: "--shadow server".into(),
            message: "--superuser and --role are not available on a shared shadow server: pgshadow runs plans there \
                      only as a role it created for the run"
                .into(),
            detail: String::new(),
        });
    }
    if let Some(synthesis) = schema.and_then(|s| s.synthesis.as_ref()) {
        synthesis.check_time(options.timeout)?;
    }
    let work = async {
        let sources: Vec<Schema> = schema.into_iter().cloned().collect();
        let extensions = move || source::extensions_of(&sources);
        let decision = shadow::provider::decide(&options.provider, &shadow_options.postgres, extensions).await?;
        tracing::debug!(reason = decision.reason(), "provider decided");
        // A proposal's dry-run (describe) reads the catalog description from a cluster of its own.
        if !describe {
            if let Some(report) = dry_run_warm(&decision, plan, schema, options, &shadow_options).await? {
                return Ok((report, None));
            }
        }
        let shadow = Shadow::start_decided(decision, &options.provider, &shadow_options).await?;
        // A cached run that ended normally leaves its cluster to a keep-warm supervisor, for the next run.
        let keep_warm =
            shadow_options.cache.as_ref().filter(|c| c.keep_warm.is_some() && shadow.cache_slot().is_some());
        let binaries = shadow.binaries().to_path_buf();
        let result = dry_run_on_inner(&shadow, plan, schema, options, describe).await;
        shadow.shutdown().await?;
        if let (Some(cache), Ok(_)) = (keep_warm, &result) {
            if let Some(keep) = &cache.keep_warm {
                shadow::warm::spawn(keep, cache, &binaries, shadow_options.os_user.as_deref()).await;
            }
        }
        result
    };
    // On timeout the future is dropped, and with it the shadow, which stops its server and deletes its files.
    tokio::time::timeout(options.timeout, work).await.map_err(|_| Error::Timeout(options.timeout))?
}

/// A dry-run on a cached cluster a keep-warm supervisor runs ([`shadow::warm`]), on a clone it lends: `None` when
/// no supervisor runs for this source, or the run needs what only a cluster of its own gives (`--role`, a profile,
/// `--strict-schema`).
async fn dry_run_warm(
    decision: &shadow::provider::Decision,
    plan: &Plan,
    schema: Option<&Schema>,
    options: &DryRunOptions,
    shadow_options: &LocalOptions,
) -> Result<Option<Report>> {
    let Some(cache) = shadow_options.cache.as_ref().filter(|c| c.keep_warm.is_some()) else {
        return Ok(None);
    };
    if options.run.role.is_some() || options.strict_schema || options.profile.is_some() {
        return Ok(None);
    }
    let mut selection = shadow_options.postgres.clone();
    let reason = match decision {
        shadow::provider::Decision::Local(reason) => reason,
        shadow::provider::Decision::Installed { reason, builds, fetched: None } => {
            selection.builds = Some(builds.clone());
            reason
        }
        _ => return Ok(None),
    };
    let Ok(Ok(choice)) = tokio::task::spawn_blocking(move || postgres::select(&selection)).await else {
        return Ok(None);
    };
    tracing::debug!(binaries = %choice.installation.binaries.dir.display(), "binaries chosen");
    // The supervisor runs the plan itself when it can (`superuser` never reaches a cached cluster).
    let request = warm_runs::request(plan);
    let Some((shadow, mut database, served)) = source::warm(cache, &choice, reason, schema, request.as_deref()).await?
    else {
        tracing::debug!("no warm cluster has this source");
        return Ok(None);
    };
    tracing::debug!(database = database.name(), "a warm cluster lent a clone or ran the plan on one");
    shadow.say_chosen();
    if !database.fidelity.warnings.is_empty() {
        database.fidelity.newer_version = newer_version(&shadow, &options.shadow.postgres).await;
    }
    let statements = match served {
        // Its connection is held until this process exits, when it asked for it ([`shadow::warm::hold_until_exit`]).
        shadow::warm::Served::Ran(ran) => warm_runs::statements(&ran.answer),
        shadow::warm::Served::Lent(lease) => {
            let statements = measure::run_plan(&shadow, &database, plan, &options.run).await;
            let clean = statements.is_ok() && !database.spoiled.load(std::sync::atomic::Ordering::SeqCst);
            lease.finish(clean).await;
            statements
        }
    };
    Ok(Some(report_of(&shadow, &database, plan, statements?, &options.policy, &options.run, None)))
}

/// Runs a keep-warm supervisor (`pgshadow keep-warm`, [`shadow::warm`]): takes a clean cached cluster of `options`
/// that no run holds, starts it, calls `ready` once runs can reach it, and serves runs (lending them a clone, or
/// running the plan they hand over on one) until `idle` passes with no run, SIGTERM or SIGINT, or a run that did not
/// end cleanly.
pub async fn keep_warm(options: &LocalOptions, idle: std::time::Duration, ready: impl FnOnce()) -> Result<()> {
    shadow::warm::supervise(options, idle, ready, Some(std::sync::Arc::new(warm_runs::MeasureRunner))).await
}

/// Upgrade rehearsal: dry-runs `plan` on each PostgreSQL version in `versions` (one shadow after the other, each
/// as [`dry_run`] with `options`), and compares the reports ([`report::rehearse`]). A version that is not installed
/// (nor, with `auto`, in an image Docker has) is an error before anything runs.
pub async fn rehearse(
    plan: &Plan,
    schema: Option<&Schema>,
    options: &DryRunOptions,
    versions: &[postgres::VersionRequest],
) -> Result<report::Rehearsal> {
    let builds = options.shadow.postgres.builds.clone();
    let found = tokio::task::spawn_blocking(move || postgres::discover(builds.as_deref()))
        .await
        .map_err(|e| Error::io("<discovery task>", std::io::Error::other(e)))?;
    for version in versions {
        let selection = postgres::Selection { version: Some(*version), ..options.shadow.postgres.clone() };
        match &options.provider {
            Provider::Auto(_) => {
                shadow::provider::decide(&options.provider, &selection, Vec::new).await?;
            }
            Provider::Local => {
                postgres::choose(&found, Some(*version), None)?;
            }
            Provider::Container(_) | Provider::Server(_) => {}
        }
    }
    let mut reports = Vec::with_capacity(versions.len());
    for version in versions {
        let mut options = options.clone();
        options.shadow.postgres.version = Some(*version);
        tracing::info!(target: "pgshadow::progress", "rehearsing on PostgreSQL {version}");
        reports.push(dry_run(plan, schema, &options).await?);
    }
    Ok(report::rehearse(reports))
}

/// Dry-runs `plan` on a shadow you started: loads `schema` into a fresh database, runs and measures the plan in a
/// transaction that is rolled back, applies the policy, and drops the database again.
pub async fn dry_run_on(
    shadow: &Shadow,
    plan: &Plan,
    schema: Option<&Schema>,
    options: &DryRunOptions,
) -> Result<Report> {
    Ok(dry_run_on_inner(shadow, plan, schema, options, false).await?.0)
}

async fn dry_run_on_inner(
    shadow: &Shadow,
    plan: &Plan,
    schema: Option<&Schema>,
    options: &DryRunOptions,
    describe: bool,
) -> Result<(Report, Option<profile::Description>)> {
    let mut database = source::load(shadow, schema).await?;
    if !database.fidelity.warnings.is_empty() {
        database.fidelity.newer_version = newer_version(shadow, &options.shadow.postgres).await;
    }
    if options.strict_schema {
        if let (Some(first), Some(info)) = (database.fidelity.warnings.first(), &database.schema) {
            source::release(shadow, &database).await?;
            return Err(Error::SchemaFidelity {
                file: info.file.clone(),
                failed: info.failed,
                first: format!("{}:{}: {}", first.line, first.column, first.message),
            });
        }
    }
    let profile = match &options.profile {
        Some(profile) => Some(profile_info(shadow, &database, profile).await),
        None => None,
    };
    let description = match describe {
        true => Some(profile::describe_database(shadow, &database).await),
        false => None,
    };
    let keys = match &options.profile {
        Some(_) => Some(estimate::foreign_keys(shadow, &database).await),
        None => None,
    };
    let statements = measure::run_plan(shadow, &database, plan, &options.run).await;
    let rewrote = statements.as_ref().is_ok_and(|m| m.statements.iter().any(|s| !s.rewritten_tables.is_empty()));
    let rewrite_rate = match options.profile.is_some() && rewrote {
        // Measured only when it is needed: a rewrite of a table the profile knows gets an estimated duration.
        true => estimate::rewrite_rate(shadow, &database).await.inspect_err(|e| tracing::warn!("{e}")).ok(),
        false => None,
    };
    source::release(shadow, &database).await?;
    let keys = keys.transpose()?;
    let production = options.profile.as_ref().zip(keys.as_deref()).map(|(profile, keys)| estimate::Production {
        profile,
        keys,
        rewrite_rate,
    });
    let mut report =
        report_of(shadow, &database, plan, statements?, &options.policy, &options.run, production.as_ref());
    report.profile = profile.transpose()?;
    Ok((report, description.transpose()?))
}

/// The report of `plan`'s `statements`, measured on `database` of `shadow`, with `policy`'s verdict; `production`
/// gives the estimates of a profile.
pub(crate) fn report_of(
    shadow: &Shadow,
    database: &source::Database,
    plan: &Plan,
    measured: measure::Measured,
    policy: &Policy,
    run: &RunOptions,
    production: Option<&estimate::Production<'_>>,
) -> Report {
    let measure::Measured { mut statements, mut commit_error } = measured;
    // On a sample, each table's counts are scaled to the whole source; with a profile, the counts the shadow could
    // not know are estimated from it. Limits and rules judge the estimates.
    let estimate = match (&database.sample, &database.fidelity.synthetic, production) {
        (Some(sample), _, _) => {
            // The sizes the limits and rules judge are the source's, not the sample's.
            estimate::sample_sizes(&mut statements, sample);
            report::scale_measured(&mut statements, estimate::sample_scales(sample), report::EstimateBasis::Sample)
        }
        (None, Some(synthetic), _) => {
            // What fails on rows shaped like production's is predicted to fail there: a statement, or the COMMIT
            // that ends the plan.
            let statement_errors = statements.iter_mut().filter_map(|s| s.error.as_mut());
            let errors = statement_errors.map(|e| e as &mut dyn estimate::Predictable);
            for error in errors.chain(commit_error.as_mut().map(|e| e as &mut dyn estimate::Predictable)) {
                estimate::predict(error, production.map(|p| p.profile));
            }
            // The sizes the limits and rules judge are production's, not the synthesized rows'.
            if let Some(production) = production {
                estimate::production_sizes(&mut statements, production);
            }
            let scales = estimate::synthetic_scales(synthetic);
            report::scale_measured(&mut statements, scales, report::EstimateBasis::Synthetic)
        }
        (None, None, Some(production)) => estimate::estimate(&mut statements, production),
        (None, None, None) => None,
    };
    let (findings, verdict) = policy.evaluate(plan, &statements, commit_error.as_ref());
    let version = postgres::Version::parse(shadow.server_version()).map(|v| v.to_string()).unwrap_or_default();
    let disagreements = policy.disagreements(plan, &statements, &version);
    let summary = report::summarize(&statements);
    Report {
        format_version: report::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        verdict,
        plan: report::PlanInfo {
            source: plan.source.clone(),
            files: plan
                .files
                .iter()
                .map(|file| report::FileSummary {
                    file: file.clone(),
                    summary: report::summarize(statements.iter().filter(|s| &s.file == file)),
                })
                .collect(),
            format: plan.format,
            statements: plan.statements.len(),
            metadata: plan.metadata.clone(),
            sha256: plan.sha256.clone(),
            nondeterministic: statements.iter().any(|s| s.nondeterministic.is_some() && !s.rolled_back),
        },
        policy: report::PolicyInfo { source: policy.source().to_owned() },
        shadow: report::ShadowInfo {
            provider: shadow.provider().to_owned(),
            provider_reason: shadow.provider_reason().to_owned(),
            container: shadow.container_image().zip(shadow.container_reach()).map(|(image, (sealed, reached))| {
                report::ContainerInfo { image: image.to_owned(), sealed, reached_through: reached }
            }),
            server_version: shadow.server_version().to_owned(),
            version,
            version_reason: shadow.version_reason().to_owned(),
            binaries: format!("{} (from {})", shadow.binaries().display(), shadow.binaries_origin()),
            role: measure::login_role(shadow, database, run).to_owned(),
            superuser: run.superuser,
            schema: database.schema.clone(),
            fidelity: database.fidelity.clone(),
            sample: database.sample.clone(),
            installed: shadow.installed().map(|f| report::InstalledInfo {
                package: f.package.clone(),
                registry: f.registry.clone(),
                bytes: f.bytes,
            }),
            cache: shadow.cache_cluster().zip(database.template_reused).map(|(cluster, reused)| report::CacheInfo {
                cluster: cluster.display().to_string(),
                template_reused: reused,
            }),
        },
        summary,
        commit_error,
        estimate,
        statements,
        findings,
        disagreements,
        truncated: None,
        profile: None,
    }
}

/// What the report says of `profile`: checked against the catalog of the loaded `database`.
async fn profile_info(
    shadow: &Shadow,
    database: &source::Database,
    profile: &profile::Profile,
) -> Result<report::ProfileInfo> {
    let catalog = profile::of_database(shadow, database).await?;
    let info = profile::compare(profile, &catalog);
    if let Some(warning) = &info.warning {
        tracing::warn!(profile = %info.file, "{warning}");
    }
    Ok(info)
}

/// A newer PostgreSQL than `shadow`'s that is installed here, named for a source that did not load in full.
async fn newer_version(shadow: &Shadow, selection: &postgres::Selection) -> Option<String> {
    let current = postgres::Version::parse(shadow.server_version())?;
    let builds = selection.builds.clone();
    let found = tokio::task::spawn_blocking(move || postgres::discover(builds.as_deref())).await.ok()?;
    let newest = found.into_iter().next().filter(|f| f.version.major > current.major)?;
    Some(format!(
        "PostgreSQL {} ({}) is installed: what failed on {current} may load there (--pg-version {})",
        newest.version, newest.binaries.origin, newest.version.major
    ))
}
