//! `pgshadow proposals list|show|approve|reject`: the approval queue from a terminal.

use std::io::Write;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use pgshadow::proposal::tokens::Action;
use pgshadow::proposal::{Record, State, Verdict};

use super::fail;
use super::store::{refused_or_failed, runtime, StoreArgs};

const EXAMPLES: &str = "\
Examples:
  pgshadow proposals list --state proposed
  pgshadow proposals show 7
  pgshadow proposals approve 7 --comment \"90 rows, as expected\"
  pgshadow proposals reject 7 --comment \"use a batch\"

Exit codes: 0 done, 1 refused (the rules or the role do not allow it; the audit log records a refused decision),
2 could not read or write the store.";

/// `pgshadow proposals ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProposalsCommand {
    /// List proposals, newest first.
    #[command(after_help = EXAMPLES)]
    List {
        /// Only those in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one proposal: its state, decisions, what it may do, and its plan.
    #[command(after_help = EXAMPLES)]
    Show {
        /// The proposal's number.
        id: i64,
        /// Output format (json: the whole record, report included).
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Approve a proposal (a reviewer; nobody approves their own).
    #[command(after_help = EXAMPLES)]
    Approve(DecideArgs),
    /// Reject a proposal.
    #[command(after_help = EXAMPLES)]
    Reject(DecideArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct DecideArgs {
    /// The proposal's number.
    id: i64,
    /// What you have to say about it (kept with the decision and in the audit log).
    #[arg(long, short, value_name = "TEXT")]
    comment: Option<String>,
    /// Approve: accept the plan's statements that cannot run inside a transaction (CREATE INDEX CONCURRENTLY,
    /// VACUUM, ...). Apply runs such a plan statement by statement and cannot roll it back.
    #[arg(long)]
    unguarded: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    /// Lines for a terminal.
    Table,
    /// JSON.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StateArg {
    Proposed,
    Approved,
    Rejected,
    Applied,
    Refused,
    Expired,
}

impl StateArg {
    fn state(self) -> State {
        match self {
            StateArg::Proposed => State::Proposed,
            StateArg::Approved => State::Approved,
            StateArg::Rejected => State::Rejected,
            StateArg::Applied => State::Applied,
            StateArg::Refused => State::Refused,
            StateArg::Expired => State::Expired,
        }
    }
}

pub(crate) fn run(command: ProposalsCommand) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let outcome = runtime.block_on(async {
        match command {
            ProposalsCommand::List { state, format, store } => {
                store.caller(Action::Read)?;
                let list = store.open().await?.list(state.map(StateArg::state)).await?;
                Ok(match format {
                    ListFormat::Json => serde_json::to_string_pretty(&list).expect("a list serializes") + "\n",
                    ListFormat::Table => list
                        .iter()
                        .map(|s| {
                            format!(
                                "{:>5}  {:<9} {:<5} {}/{} approvals  {}  by {}{}\n",
                                s.id,
                                s.state,
                                s.verdict,
                                s.approvals,
                                s.approvals_required,
                                s.created_at,
                                s.proposer,
                                s.intent.as_deref().map(|i| format!(": {i}")).unwrap_or_default()
                            )
                        })
                        .collect(),
                })
            }
            ProposalsCommand::Show { id, format, store } => {
                store.caller(Action::Read)?;
                let record = store.open().await?.get(id).await?;
                Ok(match format {
                    ListFormat::Json => serde_json::to_string_pretty(&record).expect("a record serializes") + "\n",
                    ListFormat::Table => show(&record),
                })
            }
            ProposalsCommand::Approve(args) => decide(args, Verdict::Approve).await,
            ProposalsCommand::Reject(args) => decide(args, Verdict::Reject).await,
        }
    });
    match outcome {
        Ok(text) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => refused_or_failed(&e),
    }
}

async fn decide(args: DecideArgs, verdict: Verdict) -> pgshadow::Result<String> {
    let caller = args.store.identify(Action::Decide)?;
    let store = args.store.open().await?;
    let record = store.decide_as(args.id, &caller, verdict, args.comment, args.unguarded).await?;
    Ok(format!(
        "proposal {}: {} by {} ({} of {} approvals){}\n",
        record.proposal.id,
        verdict.as_str().replace("approve", "approved").replace("reject", "rejected"),
        caller.name,
        record.approvals,
        record.approvals_required,
        record.expires_at.as_deref().map(|t| format!("; the approval expires at {t}")).unwrap_or_default()
    ))
}

/// A proposal for a terminal.
fn show(record: &Record) -> String {
    let p = &record.proposal;
    let mut out = format!(
        "proposal {}: {} ({} of {} approvals), verdict {}\nproposed by {} at {}{}\ntarget: {}\nplan: {} (sha256 {})\n\
         policy: {} (sha256 {})\n",
        p.id,
        record.state,
        record.approvals,
        record.approvals_required,
        p.verdict,
        p.proposer,
        p.created_at,
        p.intent.as_deref().map(|i| format!(": {i}")).unwrap_or_default(),
        p.target.as_deref().unwrap_or("(none)"),
        p.plan.source,
        p.plan.sha256,
        p.policy.name,
        p.policy.sha256
    );
    if let Some(old) = p.replaces {
        out.push_str(&format!("replaces proposal {old}\n"));
    }
    out.push_str(&format!("\nrows it may change ({}), per table:\n", p.envelope.basis));
    let shown = |n: Option<u64>| n.map_or_else(|| "unknown".to_owned(), pgshadow::text::thousands);
    for (table, e) in &p.envelope.tables {
        out.push_str(&format!(
            "  {table}: {} inserted, {} updated, {} deleted\n",
            shown(e.inserted),
            shown(e.updated),
            shown(e.deleted)
        ));
    }
    for dropped in &p.envelope.dropped {
        out.push_str(&format!("  drops {dropped}\n"));
    }
    for d in &record.decisions {
        out.push_str(&format!(
            "\n{} by {} at {}{}",
            d.verdict.as_str(),
            d.reviewer,
            d.at,
            d.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
        ));
    }
    if let Some(outcome) = &record.outcome {
        match &outcome.refused {
            Some(why) => out.push_str(&format!("\napply on {} refused at {}: {why}", outcome.target, outcome.at)),
            None => out.push_str(&format!("\napplied on {} at {} by {}", outcome.target, outcome.at, outcome.by)),
        }
    }
    out.push_str("\n\n");
    for (i, line) in p.plan.text.lines().enumerate() {
        out.push_str(&format!("{:>4}  {line}\n", i + 1));
    }
    out
}
