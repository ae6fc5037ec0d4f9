//! The rules a proposal moves by: who may decide, how many approvals it needs, when an approval expires, and how
//! much more than approved an apply may do. Pure logic; the store runs it inside its transactions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Decision, Record, State, Verdict};
use crate::policy::Policy;

/// The approval and apply rules of a policy, copied into each proposal when it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rules {
    /// Distinct approvals a plan with fail-level findings needs (policy `approval.fail-approvals`); others need one.
    pub fail_approvals: usize,
    /// Seconds an approval stays good (policy `approval.expires-after-hours`, 24 h by default).
    pub expires_after_seconds: u64,
    /// An apply may change up to the approved rows times this (policy `apply.tolerance-factor`, 1.5) ...
    pub tolerance_factor: f64,
    /// ... plus this many rows (policy `apply.tolerance-rows`, 10), per table and kind of change.
    pub tolerance_rows: u64,
    /// The target's `lock_timeout` during an apply, in milliseconds (policy `apply.lock-timeout-ms`).
    pub lock_timeout_ms: u64,
    /// The target's `statement_timeout` during an apply, in milliseconds (policy `apply.statement-timeout-ms`).
    pub statement_timeout_ms: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules::of(&Policy::default())
    }
}

impl Rules {
    /// The rules `policy` sets.
    pub fn of(policy: &Policy) -> Rules {
        let a = policy.approval();
        Rules {
            fail_approvals: a.fail_approvals,
            expires_after_seconds: a.expires_after_hours * 3600,
            tolerance_factor: a.tolerance_factor,
            tolerance_rows: a.tolerance_rows,
            lock_timeout_ms: a.lock_timeout_ms,
            statement_timeout_ms: a.statement_timeout_ms,
        }
    }

    /// The most rows an apply may change where `approved` were approved.
    pub fn limit(&self, approved: u64) -> u64 {
        (approved as f64 * self.tolerance_factor).floor() as u64 + self.tolerance_rows
    }

    /// Approvals a proposal needs.
    pub fn required(&self, fail_findings: bool) -> usize {
        if fail_findings {
            self.fail_approvals.max(1)
        } else {
            1
        }
    }
}

/// What a decision does to a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The decision to store.
    pub decision: Decision,
    /// The proposal's state after it.
    pub state: State,
    /// When its approval expires, once approved.
    pub expires_at: Option<String>,
}

/// The state of `record` at `now`: an approval past its time is expired, whether or not the store says so yet.
pub fn state_at(record: &Record, now: jiff::Timestamp) -> State {
    match (&record.state, &record.expires_at) {
        (State::Approved, Some(expires)) if expired(expires, now) => State::Expired,
        (state, _) => *state,
    }
}

/// Whether the time `expires` (RFC 3339) is past at `now`; an unreadable one is.
pub fn expired(expires: &str, now: jiff::Timestamp) -> bool {
    expires.parse::<jiff::Timestamp>().map_or(true, |t| t <= now)
}

/// The time now, as stored (RFC 3339, UTC, to the microsecond).
pub fn timestamp(now: jiff::Timestamp) -> String {
    now.round(jiff::Unit::Microsecond).map_or_else(|_| now.to_string(), |t| t.to_string())
}

/// What `reviewer`'s `verdict` on `record` does at `now` (an approval with `unguarded` accepts the plan's unguarded
/// statements), or why it is refused.
pub fn decide(
    record: &Record,
    reviewer: &str,
    verdict: Verdict,
    unguarded: bool,
    comment: Option<String>,
    now: jiff::Timestamp,
) -> Result<Transition, String> {
    let proposal = &record.proposal;
    let state = state_at(record, now);
    if state != State::Proposed {
        return Err(format!("proposal {} is {state}: it takes no more decisions", proposal.id));
    }
    if verdict == Verdict::Approve && reviewer == proposal.proposer {
        return Err(format!("{reviewer} proposed proposal {}: nobody approves their own proposal", proposal.id));
    }
    if record.decisions.iter().any(|d| d.reviewer == reviewer) {
        return Err(format!("{reviewer} has decided on proposal {} already", proposal.id));
    }
    let approvals = record.approvals + usize::from(verdict == Verdict::Approve);
    let (state, expires_at) = match verdict {
        Verdict::Reject => (State::Rejected, None),
        Verdict::Approve if approvals >= record.approvals_required => {
            let seconds = i64::try_from(proposal.rules.expires_after_seconds).unwrap_or(i64::MAX / 2);
            let until = now.checked_add(jiff::SignedDuration::from_secs(seconds)).unwrap_or(jiff::Timestamp::MAX);
            (State::Approved, Some(timestamp(until)))
        }
        Verdict::Approve => (State::Proposed, None),
    };
    let decision = Decision {
        seq: record.decisions.len() as i64 + 1,
        reviewer: reviewer.to_owned(),
        verdict,
        comment,
        at: timestamp(now),
        plan_sha256: proposal.plan.sha256.clone(),
        // Only an approval accepts the unguarded statements.
        unguarded: unguarded && verdict == Verdict::Approve,
    };
    Ok(Transition { decision, state, expires_at })
}

/// Why `record` cannot be applied at `now`, if it cannot: not approved, expired, or applied already (the first of
/// apply's checks).
pub fn applicable(record: &Record, now: jiff::Timestamp) -> Result<(), String> {
    let id = record.proposal.id;
    match state_at(record, now) {
        State::Approved => Ok(()),
        State::Expired => Err(format!(
            "proposal {id}'s approval expired at {}: ask for a new approval",
            record.expires_at.as_deref().unwrap_or("?")
        )),
        State::Applied => Err(format!("proposal {id} is applied already")),
        State::Proposed => Err(format!(
            "proposal {id} is not approved ({} of {} approvals)",
            record.approvals, record.approvals_required
        )),
        state => Err(format!("proposal {id} is {state}: only an approved proposal is applied")),
    }
}
