//! `pgshadow propose`: dry-runs a plan as `run` does and stores it as a proposal, waiting for approval.

use std::process::ExitCode;

use pgshadow::proposal::tokens::Action;
use pgshadow::proposal::{Draft, Proposal};

use super::run::RunArgs;
use super::store::StoreArgs;
use super::{fail, logging, output};

const EXAMPLES: &str = "\
Examples:
  pgshadow propose plan.sql --schema db/structure.sql --profile db/profile.json --target production
  pgshadow propose plan.json --snapshot prod.dump --target production   # agent and intent from the JSON plan
  pgshadow propose plan.sql --source seed --config serve.toml --target production --by deploy-bot \\
      --intent \"remove the test accounts\"
  pgshadow propose fixed.sql --schema db/structure.sql --replaces 7     # a new version of proposal 7

The report is written as `run` writes it (--format, --output); the proposal's number goes to standard error, and
`pgshadow proposals show N` shows it. Exit codes: 0 stored (whatever the verdict), 2 could not dry-run or store.";

/// `pgshadow propose`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ProposeArgs {
    /// The dry-run, with the same options as `pgshadow run` (one plan file).
    #[command(flatten)]
    pub(crate) run: RunArgs,

    /// A source of the configuration (--config serve.toml) to dry-run against, instead of --schema: its schema,
    /// profile and trust_source.
    #[arg(long, value_name = "NAME", requires = "config", conflicts_with_all = ["schema", "snapshot", "from_url"])]
    source: Option<String>,

    /// The target the plan is meant for: a name of the configuration's [targets] (or PGSHADOW_TARGET_<NAME>_URL),
    /// never a URL.
    #[arg(long, value_name = "NAME")]
    target: Option<String>,

    /// Why: the plan's intent. Default: a JSON plan's `intent`.
    #[arg(long, value_name = "TEXT")]
    intent: Option<String>,

    /// The proposal this one is a new version of.
    #[arg(long, value_name = "ID")]
    replaces: Option<i64>,

    #[command(flatten)]
    store: StoreArgs,
}

/// Dry-runs the plan and stores the proposal.
pub(crate) fn run(mut args: ProposeArgs, matches: &clap::ArgMatches) -> ExitCode {
    logging::init(args.run.quiet, args.run.verbose);
    args.run.outputs = match output::pair(&args.run.format, &args.run.output, matches) {
        Ok(outputs) => outputs,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match super::store::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(propose(&mut args)) {
        Ok((id, report)) => {
            if let Err(code) = super::run::write_report(&args.run, report) {
                return code;
            }
            eprintln!("pgshadow: stored as proposal {id}; `pgshadow proposals show {id}` shows it");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn propose(args: &mut ProposeArgs) -> pgshadow::Result<(i64, pgshadow::Report)> {
    let caller = args.store.caller(Action::Propose)?;
    if let Some(name) = &args.source {
        let config = args.store.config()?.expect("--source requires --config");
        let schema = config.sources.iter().find(|(n, _)| n == name).map(|(_, path)| path.clone());
        args.run.schema = Some(schema.ok_or_else(|| pgshadow::Error::UnknownSource(name.clone()))?);
        args.run.profile = args.run.profile.take().or_else(|| config.profiles.get(name).cloned());
        args.run.trust_source = args.run.trust_source || config.trusted.contains(name);
    }
    let [path] = args.run.plans.as_slice() else {
        return Err(bad_plan("propose takes one plan file"));
    };
    let plan_text = match std::path::Path::new(path).is_file() {
        true => std::fs::read_to_string(path).map_err(|e| pgshadow::Error::io(path, e))?,
        false => return Err(bad_plan("propose takes one plan file (not standard input or a folder)")),
    };
    let store = args.store.open().await?;
    let (plan, schema, options) = super::run::prepare(&args.run).await?;
    if plan.sha256 != pgshadow::text::hex_digest(plan_text.as_bytes()) {
        return Err(bad_plan("the plan file changed while it was read"));
    }
    let (report, catalog) = pgshadow::dry_run_described(&plan, schema.as_ref(), &options).await?;
    let (agent, intent) = Proposal::named_in(&plan);
    let draft = Draft {
        // A token's name or --by says who proposes; else the JSON plan's agent; else $USER.
        proposer: agent.filter(|_| args.store.by.is_none() && !args.store.authenticated()).unwrap_or(caller.name),
        intent: args.intent.clone().or(intent),
        target: args.target.clone(),
        replaces: args.replaces,
        report: report.clone(),
        plan,
        plan_text,
        policy: options.policy,
        catalog,
    };
    let record = store.propose(draft).await?;
    Ok((record.proposal.id, report))
}

fn bad_plan(message: &str) -> pgshadow::Error {
    pgshadow::Error::Input { file: "PLAN".into(), line: 1, column: 1, message: message.to_owned() }
}
