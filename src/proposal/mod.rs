//! Proposals: a plan an agent wants run in production, with the report of its dry-run, waiting for people to
//! approve it (or reject it) before `pgshadow apply` runs it.
//!
//! A [`Proposal`] is immutable once stored: the plan text and its SHA-256, the statements, the fingerprints of the
//! schema it was measured on (and of the profile, if one was used), the full report, the policy's name and hash, who
//! proposed it and why, the target it is meant for, and the proposal it replaces. What changes is its [`State`],
//! moved only by [`rules`]: decisions ([`Decision`]) by reviewers, then an apply that either commits ([`State::Applied`])
//! or is refused ([`State::Refused`]); an approval that was not applied in time expires ([`State::Expired`]).
//!
//! Everything is kept in a [`store::Store`] (SQLite by default, or a team's Postgres), which appends every event to
//! a hash-chained [`audit`] log. Who may do what is a [`tokens`] file's business.

pub mod audit;
pub mod envelope;
pub mod rules;
pub mod store;
pub mod tokens;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use envelope::Envelope;
pub use store::Store;

use crate::plan::Plan;
use crate::policy::Policy;
use crate::profile::Description;
use crate::report::Report;

/// A proposal's number in its store: 1, 2, 3, ...
pub type ProposalId = i64;

/// A plan waiting for approval, with everything its review and its apply rest on. Immutable once stored.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Proposal {
    /// Its number in the store.
    pub id: ProposalId,
    /// When it was stored (RFC 3339, UTC).
    pub created_at: String,
    /// Who proposed it: the JSON plan's `agent`, `--by`, or the name of the token that proposed it.
    pub proposer: String,
    /// Why: the JSON plan's `intent`, or `--intent`.
    pub intent: Option<String>,
    /// The name of the target it is meant for (a name of the configuration; never a URL).
    pub target: Option<String>,
    /// The proposal this one is a new version of.
    pub replaces: Option<ProposalId>,
    /// The plan.
    pub plan: PlanText,
    /// The fingerprints of what it was measured on.
    pub fingerprints: Fingerprints,
    /// The policy that judged it.
    pub policy: PolicyRef,
    /// The verdict of the dry-run: `pass`, `warn` or `fail`.
    pub verdict: String,
    /// True when the policy found a fail-level finding (then the policy's `approval.fail-approvals` applies).
    pub fail_findings: bool,
    /// The approval and apply rules the policy set when it was proposed: they bind the proposal.
    pub rules: rules::Rules,
    /// What an apply may do: rows per table, dropped objects, statements that cannot be guarded.
    pub envelope: Envelope,
    /// The canonical description of the shadow's catalog after the source loaded: what `apply` compares with the
    /// target's. `null` when the plan ran on an empty shadow (no source).
    pub catalog: Option<Description>,
    /// Statements of the source the shadow could not load (their first 2,000 characters): objects they name are left
    /// out of the drift comparison and listed.
    pub fidelity_losses: Vec<String>,
    /// The full report of the dry-run (`docs/report.schema.json`).
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub report: serde_json::Value,
}

/// A proposal's plan.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanText {
    /// Where it was read from (a file name, `-`, or `request`).
    pub source: String,
    /// The exact text.
    pub text: String,
    /// The SHA-256 of `text` (hex).
    pub sha256: String,
    /// The format it is in: `sql` or `json`.
    pub format: String,
    /// Its statements, as split.
    pub statements: Vec<String>,
}

/// The fingerprints of what a proposal was measured on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Fingerprints {
    /// The catalog fingerprint of the shadow's database after the source loaded (the same digest a profile has,
    /// `catalog_sha256`); `null` without a source.
    pub source_catalog: Option<String>,
    /// The SHA-256 of the source's content as read (the report's `shadow.schema.sha256`).
    pub source_content: Option<String>,
    /// The profile's catalog fingerprint, when a profile was used.
    pub profile: Option<String>,
}

/// The policy a proposal was judged by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyRef {
    /// Where it came from: a file name, or `built-in`.
    pub name: String,
    /// The SHA-256 of its text.
    pub sha256: String,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "ProposalState")]
pub enum State {
    /// Waiting for decisions.
    Proposed,
    /// Approved by as many reviewers as its rules need; may be applied until its approval expires.
    Approved,
    /// A reviewer rejected it.
    Rejected,
    /// Applied: the plan committed on its target.
    Applied,
    /// An apply was refused (drift, an envelope exceeded, a changed plan, an error) and rolled back.
    Refused,
    /// Its approval expired before it was applied.
    Expired,
}

impl State {
    /// Every state, in the order of the loop.
    pub const ALL: [State; 6] =
        [State::Proposed, State::Approved, State::Rejected, State::Applied, State::Refused, State::Expired];

    /// Its name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Proposed => "proposed",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Applied => "applied",
            State::Refused => "refused",
            State::Expired => "expired",
        }
    }

    /// The state named `name` (as in JSON).
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "DecisionVerdict")]
pub enum Verdict {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
}

impl Verdict {
    /// `approve` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// A reviewer's decision on a proposal, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// 1 for the proposal's first decision, 2 for the next, ...
    pub seq: i64,
    /// The reviewer's name.
    pub reviewer: String,
    /// Approve or reject.
    pub verdict: Verdict,
    /// What the reviewer wrote.
    pub comment: Option<String>,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The SHA-256 of the plan the reviewer approved or rejected.
    pub plan_sha256: String,
    /// An approval that accepts the plan's unguarded statements (`CREATE INDEX CONCURRENTLY`, `VACUUM`, ...), which
    /// run outside any transaction, so that apply cannot roll them back (`proposals approve --unguarded`).
    #[serde(default)]
    pub unguarded: bool,
}

/// A proposal with where it stands: what the store and the API give.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    /// The proposal.
    pub proposal: Proposal,
    /// Where it stands.
    pub state: State,
    /// Every decision, in order.
    pub decisions: Vec<Decision>,
    /// Distinct reviewers who approved it.
    pub approvals: usize,
    /// Approvals it needs.
    pub approvals_required: usize,
    /// When its approval expires (RFC 3339, UTC); set once approved.
    pub expires_at: Option<String>,
    /// When it was applied, or its apply refused, and what happened (the refusal's reason).
    pub outcome: Option<Outcome>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who applied (the applier's name).
    pub by: String,
    /// The target's name.
    pub target: String,
    /// Why it was refused; `null` when it was applied.
    pub refused: Option<String>,
    /// What was measured on the target, per table.
    pub counts: envelope::Counts,
}

/// A proposal before it is stored: everything but its number and time.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Who proposes it.
    pub proposer: String,
    /// Why.
    pub intent: Option<String>,
    /// The target's name.
    pub target: Option<String>,
    /// The proposal it replaces.
    pub replaces: Option<ProposalId>,
    /// The dry-run's report.
    pub report: Report,
    /// The plan that ran.
    pub plan: Plan,
    /// Its text, exactly.
    pub plan_text: String,
    /// The policy that judged it.
    pub policy: Policy,
    /// The shadow's catalog after the source loaded.
    pub catalog: Option<Description>,
}

impl Draft {
    /// The proposal this draft becomes, numbered `id` at `created_at`.
    pub fn into_proposal(self, id: ProposalId, created_at: String) -> Proposal {
        let report = &self.report;
        let fail_findings = report.findings.iter().any(|f| f.severity == crate::report::Severity::Error);
        let fidelity_losses =
            report.shadow.fidelity.warnings.iter().map(|w| w.statement.chars().take(2000).collect()).collect();
        Proposal {
            id,
            created_at,
            proposer: self.proposer,
            intent: self.intent,
            target: self.target,
            replaces: self.replaces,
            plan: PlanText {
                source: self.plan.source.clone(),
                sha256: crate::text::hex_digest(self.plan_text.as_bytes()),
                text: self.plan_text,
                format: json_name(&self.plan.format),
                statements: self.plan.statements.iter().map(|s| s.raw.text.clone()).collect(),
            },
            fingerprints: Fingerprints {
                source_catalog: self.catalog.as_ref().map(|c| c.fingerprint.clone()),
                source_content: report.shadow.schema.as_ref().map(|s| s.sha256.clone()),
                profile: report.profile.as_ref().map(|p| p.catalog_sha256.clone()),
            },
            policy: PolicyRef { name: self.policy.source().to_owned(), sha256: self.policy.sha256().to_owned() },
            verdict: json_name(&report.verdict),
            fail_findings,
            rules: rules::Rules::of(&self.policy),
            envelope: Envelope::of(report, &self.plan),
            catalog: self.catalog,
            fidelity_losses,
            report: serde_json::to_value(report).expect("a report serializes"),
        }
    }
}

impl Proposal {
    /// The agent and intent a JSON plan names (`agent`, `intent` in its metadata).
    pub fn named_in(plan: &Plan) -> (Option<String>, Option<String>) {
        let get = |key: &str| plan.metadata.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        (get("agent"), get("intent"))
    }
}

/// The name a unit enum variant has in JSON (`fail`, `sql`).
fn json_name(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The JSON Schema of a proposal record, as the API returns it.
pub fn json_schema() -> String {
    let mut out = serde_json::to_string_pretty(&schemars::schema_for!(Record)).expect("a schema serializes");
    out.push('\n');
    out
}
