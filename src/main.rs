//! The `pgshadow` command: a thin layer over the library. It parses flags and hands them to the command's module in
//! [`cli`], which calls the library, writes the output and turns the outcome into an exit code: 0 pass, 1 fail,
//! 2 could not dry-run.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cli;

const EXIT_CODES: &str = "\
Exit codes:
  0  the verdict is pass (or warn, unless --fail-on warn)
  1  the verdict is fail (the report says why)
  2  the plan could not be dry-run: bad input, no Postgres, a schema that failed in strict mode, a timeout, ...
  130, 143  interrupted by SIGINT or SIGTERM (the shadow is removed first)
  (propose: 0 stored; proposals approve|reject and apply: 1 refused; audit verify: 1 the chain is broken)";

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
    Run(Box<cli::run::RunArgs>),
    /// Print the built-in policy (`--default`), or check a policy file.
    Policy(cli::policy::PolicyArgs),
    /// List the rules of the findings catalog.
    Rules,
    /// Read production's sizes and shape from a live database, read-only, into a profile for `run --profile`.
    Profile(cli::profile::ProfileArgs),
    /// Print the JSON Schema of the `--format json` report (--rehearsal: of an upgrade rehearsal's; --profile: of a
    /// profile).
    Schema(cli::schema::SchemaArgs),
    /// Explain a rule: what it catches, why it matters, and a bad and a safe example.
    Explain(cli::explain::ExplainArgs),
    /// See or clear the shadow cache (clusters and template databases kept between runs).
    #[command(subcommand)]
    Cache(cli::cache::CacheCommand),
    /// Serve dry-runs over HTTP to an approval service (JSON API, OpenAPI at /v1/openapi.json, Prometheus metrics).
    Serve(Box<cli::serve::ServeArgs>),
    /// List, install and remove the PostgreSQL versions a shadow can run on.
    #[command(subcommand)]
    Postgres(cli::postgres::PostgresCommand),
    /// Serve dry-runs to an AI agent over the Model Context Protocol (stdio).
    Mcp(cli::mcp::McpArgs),
    /// Dry-run a plan and store it as a proposal, to wait for approval (then `pgshadow apply`).
    Propose(Box<cli::propose::ProposeArgs>),
    /// List, show, approve and reject proposals.
    #[command(subcommand)]
    Proposals(cli::proposals::ProposalsCommand),
    /// Apply an approved proposal on its target: one transaction, committed only inside what was approved.
    Apply(Box<cli::apply::ApplyArgs>),
    /// Verify or export the proposals' hash-chained audit log.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
}

fn main() -> ExitCode {
    cli::restore_sigpipe();
    let matches = Cli::command().get_matches();
    let parsed = match Cli::from_arg_matches(&matches) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    };
    match parsed.command {
        Command::Run(args) => {
            let run_matches = matches.subcommand_matches("run").expect("the run subcommand matched");
            cli::run::run(*args, run_matches)
        }
        Command::Policy(args) => cli::policy::run(&args),
        Command::Profile(args) => cli::profile::run(&args),
        Command::Rules => cli::rules::run(),
        Command::Schema(args) => cli::schema::run(&args),
        Command::Explain(args) => cli::explain::run(&args),
        Command::Cache(command) => cli::cache::run(&command),
        Command::Serve(args) => cli::serve::run(*args),
        Command::Postgres(command) => cli::postgres::run(&command),
        Command::Mcp(args) => cli::mcp::run(args),
        Command::Propose(args) => {
            let propose_matches = matches.subcommand_matches("propose").expect("the propose subcommand matched");
            cli::propose::run(*args, propose_matches)
        }
        Command::Proposals(command) => cli::proposals::run(command),
        Command::Apply(args) => cli::apply::run(*args),
        Command::Audit(command) => cli::audit::run(command),
    }
}
