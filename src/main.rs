//! The `pgshadow` command: a thin layer over the library. It parses flags, calls [`pgshadow::dry_run`], renders the
//! report and turns the outcome into an exit code: 0 pass, 1 fail, 2 could not dry-run.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pgshadow::{DryRunOptions, LocalOptions, Plan, Report, RunOptions, Schema, Verdict};

const EXIT_CODES: &str = "\
Exit codes:
  0  the verdict is pass
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
    Run(RunArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  pgshadow run plan.sql --schema schema.sql
  pgshadow run plan.sql --schema schema.sql --format json --output report.json
  cat plan.sql | pgshadow run - --schema schema.sql
  pgshadow run plan.json --schema schema.sql      # {\"statements\": [\"...\"], \"agent\": \"...\"}

Exit codes: 0 pass, 1 fail, 2 could not dry-run.";

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The plan: a SQL file, a JSON plan ({"statements": [...], ...}), or - for standard input.
    #[arg(value_name = "PLAN")]
    plan: String,

    /// Schema to load into the shadow first: plain SQL, such as `pg_dump --schema-only` output or a DDL file,
    /// optionally with data (COPY ... FROM stdin blocks, INSERTs).
    #[arg(short, long, value_name = "FILE")]
    schema: Option<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Write the report to FILE instead of standard output (written whole, or not at all).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Run the plan as the shadow's superuser instead of a non-superuser role that owns the schema.
    /// A superuser can run programs on the host (COPY ... TO PROGRAM): use only for plans you trust.
    #[arg(long)]
    superuser: bool,

    /// Exit 2 if any statement of the schema fails to load, instead of reporting it as a fidelity warning.
    #[arg(long)]
    strict_schema: bool,

    /// Directory holding the PostgreSQL server binaries (initdb, postgres). Default: PATH, then
    /// `pg_config --bindir`, then the newest /usr/lib/postgresql/<N>/bin.
    #[arg(long, value_name = "DIR", env = "PGSHADOW_PG_BIN")]
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
    /// The JSON report (see docs/report.md).
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            init_logging(args.quiet, args.verbose);
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(&pgshadow::Error::io("<tokio runtime>", e)),
            };
            runtime.block_on(run(args))
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut sigterm), Ok(mut sigint)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return fail(&pgshadow::Error::io("<signal handlers>", std::io::Error::other("could not install")));
    };
    // Whichever finishes first, the others are dropped: a dropped dry-run removes its shadow before we exit.
    tokio::select! {
        outcome = dry_run(&args) => match outcome {
            Ok(report) => finish(&args, &report),
            Err(e) => fail(&e),
        },
        _ = sigterm.recv() => interrupted("SIGTERM", 143),
        _ = sigint.recv() => interrupted("SIGINT", 130),
    }
}

async fn dry_run(args: &RunArgs) -> pgshadow::Result<Report> {
    let plan = Plan::read(&args.plan)?;
    let schema = match &args.schema {
        Some(path) => Some(Schema::read(&path.to_string_lossy())?),
        None => None,
    };
    let options = DryRunOptions {
        shadow: LocalOptions { pg_bin: args.pg_bin.clone(), os_user: args.os_user.clone(), ..LocalOptions::default() },
        run: RunOptions { superuser: args.superuser },
        strict_schema: args.strict_schema,
        timeout: Duration::from_secs(args.timeout),
        ..DryRunOptions::default()
    };
    pgshadow::dry_run(&plan, schema.as_ref(), &options).await
}

/// Writes the report and maps the verdict to the exit code.
fn finish(args: &RunArgs, report: &Report) -> ExitCode {
    let text = match args.format {
        Format::Table => pgshadow::report::render_table(report),
        Format::Json => pgshadow::report::render_json(report),
    };
    let written = match &args.output {
        Some(path) => write_atomically(path, &text),
        None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| pgshadow::Error::io("<stdout>", e)),
    };
    if let Err(e) = written {
        return fail(&e);
    }
    match report.verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    }
}

/// Writes `text` to a temporary file beside `path` and renames it, so a reader never sees half a report.
fn write_atomically(path: &Path, text: &str) -> pgshadow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| pgshadow::Error::io(dir, e))?;
    file.write_all(text.as_bytes()).map_err(|e| pgshadow::Error::io(path, e))?;
    file.persist(path).map_err(|e| pgshadow::Error::io(path, e.error))?;
    Ok(())
}

fn fail(error: &pgshadow::Error) -> ExitCode {
    eprintln!("error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(2)
}

fn interrupted(signal: &str, code: u8) -> ExitCode {
    eprintln!("pgshadow: interrupted by {signal}; the shadow was removed");
    ExitCode::from(code)
}

fn init_logging(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "pgshadow=info",
        (false, _) => "pgshadow=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(color).init();
}
