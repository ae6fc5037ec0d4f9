//! `pgshadow apply`: runs an approved proposal on its target, committing only inside what was approved. The only
//! command that writes to a database pgshadow did not create.

use std::path::PathBuf;
use std::process::ExitCode;

use pgshadow::apply::{Request, Targets};
use pgshadow::proposal::tokens::Action;

use super::store::{refused_or_failed, runtime, StoreArgs};
use super::{fail, logging};

const EXAMPLES: &str = "\
Examples:
  PGSHADOW_TARGET_PRODUCTION_URL=postgresql://deployer@db/app pgshadow apply 7 --target production
  pgshadow apply 7 --target production --config serve.toml       # the URL from its [targets]
  pgshadow apply 7 --target production --plan migrations/0042.sql # run this file, if it is the approved plan

Before committing, apply checks in order: approved, not expired, not applied; the plan's SHA-256 is the approved
one; the target's catalog matches the one the plan was measured on; then it runs the plan in one transaction and
commits only if no table changed more rows than approved (times the policy's tolerance) and nothing was dropped that
the report did not list. Every refusal is in the audit log. A COMMIT whose answer is lost is asked about on a new
connection; if its outcome cannot be learned, the proposal stays applied and the audit log names the transaction.

Exit codes: 0 applied, 1 refused (nothing was changed on the target), 2 could not apply (store or target
unreachable, bad input) or the COMMIT is in doubt.";

/// `pgshadow apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ApplyArgs {
    /// The proposal's number.
    id: i64,

    /// The target: a name of the configuration's [targets] or of a --targets file, or PGSHADOW_TARGET_<NAME>_URL.
    #[arg(long, value_name = "NAME")]
    target: String,

    /// A file holding [targets] (name = URL), instead of the configuration's.
    #[arg(long, value_name = "FILE", env = "PGSHADOW_TARGETS")]
    targets: Option<PathBuf>,

    /// The plan file to run; its SHA-256 must be the approved plan's. Default: the plan stored with the proposal.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,

    #[command(flatten)]
    store: StoreArgs,

    /// Print only errors on standard error.
    #[arg(short, long)]
    quiet: bool,
}

pub(crate) fn run(args: ApplyArgs) -> ExitCode {
    logging::init(args.quiet, 0);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(apply(&args)) {
        Ok(record) => {
            let counts = record.outcome.map(|o| o.counts).unwrap_or_default();
            println!("proposal {} applied on {}", args.id, args.target);
            for (table, c) in &counts.tables {
                println!("  {table}: {} inserted, {} updated, {} deleted", c.inserted, c.updated, c.deleted);
            }
            for dropped in &counts.dropped {
                println!("  dropped {dropped}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => refused_or_failed(&e),
    }
}

async fn apply(args: &ApplyArgs) -> pgshadow::Result<pgshadow::proposal::Record> {
    let caller = args.store.caller(Action::Apply)?;
    let targets = match (&args.targets, args.store.config()?) {
        (Some(file), _) => Targets::read(file)?,
        (None, Some(config)) => Targets::from_map(config.targets),
        (None, None) => Targets::default(),
    };
    let plan_text = match &args.plan {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| pgshadow::Error::io(path, e))?),
        None => None,
    };
    let store = args.store.open().await?;
    let request = Request { id: args.id, target: args.target.clone(), by: caller.name, plan_text };
    pgshadow::apply::apply(&store, &targets, &request).await
}
