//! `pgshadow run`: dry-runs a plan on a shadow loaded with a source, writes the reports and maps the verdict to the
//! exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use pgshadow::report::Rehearsal;
use pgshadow::{DryRunOptions, LocalOptions, Plan, Report, RunOptions, Schema, Verdict};

use super::args::{byte_size, percent, ProviderArgs};
use super::output::{self, write_atomically, Format};
use super::{fail, interrupted, logging, progress};

const EXAMPLES: &str = "\
Examples:
  pgshadow run plan.sql --schema schema.sql
  pgshadow run plan.sql --schema schema.sql --format json --output report.json
  pgshadow run plan.sql --snapshot prod.dump                 # a pg_dump -Fc/-Fd/-Ft archive, with its data
  pgshadow run plan.sql --from-url \"$DATABASE_URL\"           # clone a live database's schema, read-only
  pgshadow run plan.sql --schema db/structure.sql --profile db/profile.json   # with production's sizes
  pgshadow run plan.sql --schema db/structure.sql --profile db/profile.json --synthesize   # rows shaped like prod's
  pgshadow run plan.sql --from-url \"$DATABASE_URL\" --role agent   # ... and run as the agent's role
  pgshadow run plan.sql --schema schema.sql --pg-version 17          # exactly PostgreSQL 17 (pgshadow postgres install 17)
  pgshadow run plan.sql --schema schema.sql --pg-version 15,17       # upgrade rehearsal: where the outcomes differ
  pgshadow run plan.sql --schema schema.sql --shadow container --image postgis/postgis:16-3.4   # sealed container
  cat plan.sql | pgshadow run - --schema schema.sql
  pgshadow run plan.json --schema schema.sql      # {\"statements\": [\"...\"], \"agent\": \"...\"}
  pgshadow run migrations/ --schema schema.sql    # every *.sql and *.json in name order
  pgshadow run plan.sql -s schema.sql -f json -o report.json -f markdown -o comment.md -f github

Each --output goes with the --format before it; one --format may be left without an --output: it goes to stdout.
The policy is --policy FILE, else ./pgshadow.toml if present, else the built-in one (`pgshadow policy --default`).

Exit codes: 0 pass (or warn), 1 fail (or warn with --fail-on warn), 2 could not dry-run.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct RunArgs {
    /// The plan: a SQL file, a JSON plan ({"statements": [...], ...}), - for standard input, or a folder of
    /// them. Several plans run one after the other, as they would be applied, and are reported per file and in total.
    #[arg(value_name = "PLAN", required = true)]
    pub(crate) plans: Vec<String>,

    /// Schema to load into the shadow first: plain SQL, such as `pg_dump --schema-only` output or a DDL file,
    /// optionally with data (COPY ... FROM stdin blocks, INSERTs).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) schema: Option<PathBuf>,

    /// Clone the schema of a live database into the shadow, read-only (pg_dump in a read-only session; nothing
    /// is ever written to it). A postgresql:// URL or a key=value connection string; PG* variables and
    /// ~/.pgpass apply, as for psql; TLS as its sslmode says (prefer by default; verify-full with sslrootcert
    /// checks the certificate). Example: --from-url "$DATABASE_URL".
    #[arg(long, value_name = "URL", conflicts_with_all = ["schema", "snapshot"])]
    from_url: Option<String>,

    /// With --from-url: copy the rows too (for small databases), so row counts are measured on real data.
    #[arg(long, requires = "from_url")]
    with_data: bool,

    /// With --from-url: copy a consistent sample of PERCENT of each table's rows, plus the rows their foreign keys
    /// need, in one read-only snapshot. The report gives what was measured on the sample and, labelled as an
    /// estimate, the counts scaled to the whole database; policy row limits apply to the estimate.
    #[arg(long, value_name = "PERCENT", requires = "from_url", conflicts_with = "with_data", value_parser = percent)]
    sample: Option<f64>,

    /// A pg_dump archive to restore into the shadow first, with its data: custom (-Fc), directory (-Fd) or tar
    /// (-Ft) format, told apart by content (a plain SQL file works too). Restored with the shadow's pg_restore.
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "schema")]
    snapshot: Option<PathBuf>,

    /// A profile of production (`pgshadow profile`), with --schema, --snapshot or --from-url: the report says
    /// whether it describes the schema the shadow loaded, and names the tables and columns that differ.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_PROFILE")]
    pub(crate) profile: Option<PathBuf>,

    /// With --profile: fill the shadow's tables with ROWS rows in all (default 100000) generated from the profile,
    /// shaped like production's (nulls, distinct values, value ranges, foreign keys' fan-out and skew), before the
    /// plan runs. Cascades, WHERE clauses and data-dependent errors are then measured, and each table's counts are
    /// scaled by production rows / synthetic rows into estimates; policy row limits apply to the estimates. No row
    /// of production is read. Cached like any source.
    #[arg(long, value_name = "ROWS", num_args = 0..=1, default_missing_value = "100000", requires = "profile",
          conflicts_with_all = ["sample", "with_data"])]
    synthesize: Option<u64>,

    /// The seed of --synthesize: the same profile, schema, budget and seed give the same rows.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "synthesize")]
    synthesize_seed: u64,

    /// Output format; repeat it, each with its --output, for several reports from one run. Default: table.
    #[arg(short, long, value_enum, action = clap::ArgAction::Append)]
    pub(crate) format: Vec<Format>,

    /// Write the report of the --format before it to FILE (written whole, or not at all).
    #[arg(short, long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub(crate) output: Vec<PathBuf>,

    /// The policy (TOML). Default: ./pgshadow.toml if present, else the built-in policy.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_POLICY")]
    policy: Option<PathBuf>,

    /// The verdict that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    fail_on: FailOn,

    /// The --format/--output pairs, worked out after parsing.
    #[arg(skip)]
    pub(crate) outputs: Vec<(Format, Option<PathBuf>)>,

    /// Run the plan as the shadow's superuser instead of a non-superuser role that owns the schema.
    /// A superuser can run programs on the host (COPY ... TO PROGRAM): use only for plans you trust.
    #[arg(long, conflicts_with = "role")]
    superuser: bool,

    /// Run the plan as this role of the source (say, the agent's), with only the privileges the source grants it:
    /// "permission denied" on the shadow predicts "permission denied" in production. Role memberships are not in a
    /// pg_dump, so the role gets what is granted to it by name (and to PUBLIC).
    #[arg(long, value_name = "NAME")]
    role: Option<String>,

    /// Exit 2 if any statement of the schema fails to load, instead of reporting it as a fidelity warning.
    #[arg(long)]
    strict_schema: bool,

    /// Load the source (--schema, --snapshot, --from-url) as a superuser. By default a source is untrusted input,
    /// like a plan: it loads as a role that is not a superuser, so a schema or dump cannot run programs or read and
    /// write files on this machine (COPY ... PROGRAM, lo_export, pg_read_file), and what needs a superuser
    /// (untrusted-language functions, event triggers, ALTER SYSTEM) does not load and is reported. RISK: a trusted
    /// source can run any command as the server's OS user (as `postgres` when pgshadow runs as root, else as you).
    /// Use it only for sources you would run as root yourself; the report says it was used.
    #[arg(long)]
    pub(crate) trust_source: bool,

    /// Keep the shadow cluster, and the loaded schema as a template database, in this directory between runs, so
    /// that the next run on the same schema skips initdb and loading. Default: $XDG_CACHE_HOME/pgshadow, else
    /// ~/.cache/pgshadow (as root: /var/cache/pgshadow). See `pgshadow cache list`.
    #[arg(long, value_name = "DIR", env = "PGSHADOW_CACHE_DIR", value_parser = super::args::absolute_dir)]
    cache_dir: Option<PathBuf>,

    /// Start from scratch: a new cluster, the schema loaded anew, nothing kept afterwards.
    #[arg(long)]
    no_cache: bool,

    /// Keep the cached cluster running this long after the run (30s, 2m, 500ms; off by default): a later run on
    /// the same source then gets a fresh clone of its template from the running cluster instead of starting it. A
    /// small supervisor process (`pgshadow keep-warm`) owns the cluster and stops it when the time passes with no
    /// run, or on SIGTERM. Nothing a plan did reaches another run: each gets a clone of its own.
    #[arg(long, value_name = "DURATION", env = "PGSHADOW_KEEP_WARM", default_value = "0",
          value_parser = super::warm::idle_time)]
    keep_warm: Duration,

    /// The most the cached template databases of one cluster may take (e.g. 500M, 10G); the least recently used
    /// are dropped beyond it.
    #[arg(long, value_name = "SIZE", env = "PGSHADOW_CACHE_MAX_SIZE", default_value = "4G", value_parser = byte_size)]
    cache_max_size: u64,

    #[command(flatten)]
    provider: ProviderArgs,

    /// With --shadow server: a superuser URL of the shadow server (never production). Only scratch databases
    /// and roles pgshadow creates there for the run are used, and they are dropped at the end. TLS as its sslmode
    /// says, as for --from-url.
    #[arg(long, value_name = "URL", env = "PGSHADOW_SHADOW_URL")]
    shadow_url: Option<String>,

    /// The PostgreSQL version the shadow runs (17, 17.9, latest), installed on this machine or by `pgshadow
    /// postgres install`. Several, comma-separated (15,17), rehearse the plan on each and show where the outcomes
    /// differ. Default: the source's major version (its dump header, or the live server) when installed, else the
    /// newest installed, with a warning when they differ.
    #[arg(long, value_name = "VERSION[,VERSION...]", value_delimiter = ',', env = "PGSHADOW_PG_VERSION")]
    pg_version: Vec<pgshadow::postgres::VersionRequest>,

    /// With --pg-version: install a version that is missing (`pgshadow postgres install`), from the npm registry.
    #[arg(long, requires = "pg_version")]
    pg_install: bool,

    /// Never install PostgreSQL on first use. Without it, --shadow auto on a machine with no PostgreSQL (and no
    /// Docker image for it) installs the build it needs into the cache, as `pgshadow postgres install` would.
    /// PGSHADOW_INSTALL=never does the same.
    #[arg(long, conflicts_with = "pg_install")]
    no_install: bool,

    /// Directory holding the PostgreSQL server binaries to use (initdb, postgres), instead of choosing by version.
    #[arg(long, value_name = "DIR", env = "PGSHADOW_PG_BIN", conflicts_with = "pg_version")]
    pg_bin: Option<PathBuf>,

    /// When running as root: the OS user to run the shadow server as (default: postgres, else nobody).
    #[arg(long, value_name = "NAME")]
    os_user: Option<String>,

    /// Stop the whole dry-run after this many seconds (exit 2).
    #[arg(long, value_name = "SECONDS", default_value_t = pgshadow::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,

    /// Print only errors on standard error.
    #[arg(short, long, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// More detail on standard error (-v: progress, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    /// Exit 1 on a fail verdict only.
    Fail,
    /// Exit 1 on a warn verdict too.
    Warn,
}

/// Dry-runs the plan and writes its reports; the exit code says the verdict (`matches`: the command's, where each
/// --output stands next to its --format).
pub(crate) fn run(mut args: RunArgs, matches: &clap::ArgMatches) -> ExitCode {
    logging::init(args.quiet, args.verbose);
    args.outputs = match output::pair(&args.format, &args.output, matches) {
        Ok(outputs) => outputs,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // This process exits once its reports are written: a keep-warm supervisor that ran its plan waits for that.
    pgshadow::shadow::warm::hold_until_exit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&pgshadow::Error::io("<tokio runtime>", e)),
    };
    let (code, finished) = runtime.block_on(run_until_signal(args));
    // A run that finished has awaited everything it started (its shadow is removed, its reports written), so the
    // runtime's idle threads need not be woken and joined one by one: that took a warm run 2-3 ms at exit. An
    // interrupted one waits for its blocking work (a pg_dump, say) as the runtime's drop does.
    if finished {
        runtime.shutdown_background();
    }
    code
}

/// The exit code, and whether the dry-run finished with a report (not with an error, nor interrupted).
async fn run_until_signal(args: RunArgs) -> (ExitCode, bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut sigterm), Ok(mut sigint)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        let error = pgshadow::Error::io("<signal handlers>", std::io::Error::other("could not install"));
        return (fail(&error), false);
    };
    // Whichever finishes first, the others are dropped: a dropped dry-run removes its shadow before we exit.
    tokio::select! {
        outcome = dry_run(&args) => {
            progress::clear();
            match outcome {
                Ok(outcome) => (finish(&args, &outcome), true),
                Err(e) => (fail(&e), false),
            }
        },
        _ = sigterm.recv() => (interrupted("SIGTERM", 143), false),
        _ = sigint.recv() => (interrupted("SIGINT", 130), false),
    }
}

/// What a run produced: one report, or with several --pg-version a rehearsal.
enum Outcome {
    Report(Box<Report>),
    Rehearsal(Box<Rehearsal>),
}

impl Outcome {
    fn verdict(&self) -> Verdict {
        match self {
            Outcome::Report(report) => report.verdict,
            Outcome::Rehearsal(rehearsal) => rehearsal.verdict,
        }
    }
}

/// With --pg-install: installs each --pg-version that no build here matches.
async fn install_missing(args: &RunArgs, builds: Option<PathBuf>) -> pgshadow::Result<()> {
    let Some(builds) = builds.filter(|_| args.pg_install) else {
        return Ok(());
    };
    let versions = args.pg_version.clone();
    let installing = tokio::task::spawn_blocking(move || {
        let found = pgshadow::postgres::discover(Some(&builds));
        for version in versions {
            if !found.iter().any(|f| version.matches(&f.version)) {
                pgshadow::postgres::install(&builds, version, &pgshadow::postgres::InstallSource::Registry)?;
            }
        }
        Ok(())
    });
    installing.await.map_err(|e| pgshadow::Error::io("<install task>", std::io::Error::other(e)))?
}

async fn dry_run(args: &RunArgs) -> pgshadow::Result<Outcome> {
    let (plan, schema, options) = prepare(args).await?;
    install_missing(args, options.shadow.postgres.builds.clone()).await?;
    if args.pg_version.len() > 1 {
        let rehearsal = pgshadow::rehearse(&plan, schema.as_ref(), &options, &args.pg_version).await?;
        return Ok(Outcome::Rehearsal(Box::new(rehearsal)));
    }
    Ok(Outcome::Report(Box::new(pgshadow::dry_run(&plan, schema.as_ref(), &options).await?)))
}

/// What these arguments ask to dry-run: the plan, the source (read, or dumped from --from-url) and the options.
/// `pgshadow propose` takes the same arguments and prepares its dry-run here too.
pub(crate) async fn prepare(args: &RunArgs) -> pgshadow::Result<(Plan, Option<Schema>, DryRunOptions)> {
    let plan = Plan::read_all(&args.plans)?;
    let policy = pgshadow::Policy::discover(args.policy.as_deref())?;
    let has_source = args.schema.is_some() || args.snapshot.is_some() || args.from_url.is_some();
    // Read before any source is dumped or loaded: a profile that cannot be used stops the run at once.
    let profile = match &args.profile {
        None => None,
        Some(path) if has_source => Some(pgshadow::profile::Profile::read(path)?),
        Some(path) => {
            return Err(pgshadow::Error::Source {
                path: path.clone(),
                message: "--profile describes production's schema: it goes with --schema, --snapshot or --from-url"
                    .into(),
                detail: String::new(),
            })
        }
    };
    // Checked before any source is dumped or loaded too.
    let synthesis = match (args.synthesize, &profile) {
        (Some(rows), Some(profile)) => {
            let synthesis =
                pgshadow::synth::Synthesis::new(std::sync::Arc::new(profile.clone()), rows, args.synthesize_seed)?;
            synthesis.check_time(Duration::from_secs(args.timeout))?;
            Some(synthesis)
        }
        _ => None,
    };
    let mut schema = match (args.schema.as_ref().or(args.snapshot.as_ref()), &args.from_url) {
        (Some(path), _) => Some(Schema::read(&path.to_string_lossy())?),
        (None, Some(url)) => {
            let (url, with_data, sample, pg_bin) = (url.clone(), args.with_data, args.sample, args.pg_bin.clone());
            let dump = tokio::task::spawn_blocking(move || {
                pgshadow::source::live::dump(&url, with_data, sample, pg_bin.as_deref())
            });
            Some(dump.await.map_err(|e| pgshadow::Error::io("<pg_dump task>", std::io::Error::other(e)))??)
        }
        (None, None) => None,
    };
    if let Some(schema) = &mut schema {
        schema.trusted = args.trust_source;
        schema.synthesis = synthesis;
    }
    let provider = args.provider.provider(args.shadow_url.as_deref())?;
    let options = DryRunOptions {
        provider,
        shadow: LocalOptions {
            postgres: pgshadow::postgres::Selection {
                pg_bin: args.pg_bin.clone(),
                version: args.pg_version.first().copied(),
                source: None,
                builds: args.cache_dir.clone().or_else(pgshadow::CacheOptions::default_dir),
                no_install: args.no_install,
            },
            os_user: args.os_user.clone(),
            cache: if args.no_cache {
                None
            } else {
                let dir = args.cache_dir.clone().or_else(pgshadow::CacheOptions::default_dir);
                let keep_warm = std::env::current_exe()
                    .ok()
                    .filter(|_| !args.keep_warm.is_zero())
                    .map(|program| pgshadow::shadow::warm::KeepWarm { idle: args.keep_warm, program });
                dir.map(|dir| pgshadow::CacheOptions {
                    max_size: args.cache_max_size,
                    keep_warm,
                    ..pgshadow::CacheOptions::new(dir)
                })
            },
            ..LocalOptions::default()
        },
        run: RunOptions { superuser: args.superuser, role: args.role.clone() },
        strict_schema: args.strict_schema,
        timeout: Duration::from_secs(args.timeout),
        policy,
        profile,
    };
    Ok((plan, schema, options))
}

/// Writes every report and maps the verdict to the exit code.
fn finish(args: &RunArgs, outcome: &Outcome) -> ExitCode {
    if let Err(code) = write_reports(args, outcome) {
        return code;
    }
    match (outcome.verdict(), args.fail_on) {
        (Verdict::Fail, _) | (Verdict::Warn, FailOn::Warn) => ExitCode::from(1),
        (Verdict::Pass | Verdict::Warn, _) => ExitCode::SUCCESS,
    }
}

/// Writes every report of `outcome` as the --format/--output pairs say; the exit code of a failure.
fn write_reports(args: &RunArgs, outcome: &Outcome) -> Result<(), ExitCode> {
    use pgshadow::report::{self, rehearsal};
    for (format, output) in &args.outputs {
        let text = match (format, outcome) {
            (Format::Table, Outcome::Report(r)) => report::render_table(r),
            (Format::Json, Outcome::Report(r)) => report::render_json(r),
            (Format::Markdown, Outcome::Report(r)) => report::render_markdown(r),
            (Format::Github, Outcome::Report(r)) => report::render_github(r),
            (Format::Html, Outcome::Report(r)) => report::render_html(r),
            (Format::Table, Outcome::Rehearsal(r)) => rehearsal::render_table(r),
            (Format::Json, Outcome::Rehearsal(r)) => rehearsal::render_json(r),
            (Format::Markdown, Outcome::Rehearsal(r)) => rehearsal::render_markdown(r),
            (Format::Github, Outcome::Rehearsal(r)) => r.reports.iter().map(report::render_github).collect(),
            (Format::Html, Outcome::Rehearsal(r)) => rehearsal::render_html(r),
        };
        let written = match &output {
            Some(path) => write_atomically(path, &text),
            None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| pgshadow::Error::io("<stdout>", e)),
        };
        if let Err(e) = written {
            return Err(fail(&e));
        }
    }
    Ok(())
}

/// Writes `report` as the --format/--output pairs of `args` say (`pgshadow propose` writes its report so).
pub(crate) fn write_report(args: &RunArgs, report: Report) -> Result<(), ExitCode> {
    write_reports(args, &Outcome::Report(Box::new(report)))
}
