//! The audit log: every event of every proposal, appended to a hash chain in the store. Each entry carries the
//! SHA-256 of the one before it, and its own SHA-256 over all its fields and that link, so that changing, removing or
//! reordering any entry breaks the chain from there on ([`verify`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Fingerprints, ProposalId};

/// The SHA-256 the first entry links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A proposal was stored.
    Proposed,
    /// A reviewer approved it.
    Approved,
    /// A reviewer rejected it.
    Rejected,
    /// It was applied: the plan committed on the target.
    Applied,
    /// Something was refused: an apply (with why), or a decision that broke the rules.
    Refused,
    /// Its approval expired before it was applied.
    Expired,
    /// The connection to the target broke at an apply's COMMIT, and the target confirmed afterwards that the
    /// transaction committed: the apply stands.
    Confirmed,
    /// The connection to the target broke at an apply's COMMIT and whether it committed could not be learned: the
    /// proposal stays applied (it must never be applied twice); the detail names the transaction to check.
    InDoubt,
}

impl Event {
    /// Its name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Proposed => "proposed",
            Event::Approved => "approved",
            Event::Rejected => "rejected",
            Event::Applied => "applied",
            Event::Refused => "refused",
            Event::Expired => "expired",
            Event::Confirmed => "confirmed",
            Event::InDoubt => "in_doubt",
        }
    }

    /// The event named `name`.
    pub fn parse(name: &str) -> Option<Event> {
        [
            Event::Proposed,
            Event::Approved,
            Event::Rejected,
            Event::Applied,
            Event::Refused,
            Event::Expired,
            Event::Confirmed,
            Event::InDoubt,
        ]
        .into_iter()
        .find(|e| e.as_str() == name)
    }
}

/// One event, before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fact {
    /// What happened.
    pub event: Event,
    /// The proposal it happened to.
    pub proposal: ProposalId,
    /// Who did it (a token's name, `--by`, or the OS user).
    pub actor: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The SHA-256 of the proposal's plan.
    pub plan_sha256: String,
    /// The proposal's fingerprints.
    pub fingerprints: Fingerprints,
    /// What was measured: the dry-run's rows per table for `proposed`, the target's for `applied` and `refused`.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub counts: serde_json::Value,
    /// The comment of a decision, the reason of a refusal, the target of an apply.
    pub detail: Option<String>,
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// 1, 2, 3, ... in the order they were appended.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub fact: Fact,
    /// The SHA-256 of the entry before ([`GENESIS`] for the first).
    pub prev_sha256: String,
    /// The SHA-256 of this entry: of its `seq`, its fact and `prev_sha256`, as canonical JSON.
    pub sha256: String,
}

impl Entry {
    /// The entry `fact` makes as number `seq` after the entry whose SHA-256 is `prev`.
    pub fn chain(seq: i64, fact: Fact, prev: &str) -> Entry {
        let sha256 = digest(seq, &fact, prev);
        Entry { seq, fact, prev_sha256: prev.to_owned(), sha256 }
    }
}

/// The SHA-256 of an entry's content: canonical JSON (keys sorted, no spaces) of its number, fact and link.
fn digest(seq: i64, fact: &Fact, prev: &str) -> String {
    // serde_json's maps are sorted by key, so the same entry always gives the same text.
    let value = serde_json::json!({ "seq": seq, "fact": fact, "prev_sha256": prev });
    crate::text::hex_digest(value.to_string().as_bytes())
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Verification {
    /// Entries checked.
    pub entries: usize,
    /// The first entry that breaks the chain, and how; `null` when the chain holds.
    pub broken: Option<String>,
}

/// Checks the chain of `entries` (in order): each links to the one before and its digest is its content's.
pub fn verify(entries: &[Entry]) -> Verification {
    let mut prev = GENESIS.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let broken = if entry.seq != expected_seq {
            Some(format!("entry {expected_seq} is missing (found {} in its place)", entry.seq))
        } else if entry.prev_sha256 != prev {
            Some(format!("entry {} does not link to the entry before it", entry.seq))
        } else if digest(entry.seq, &entry.fact, &entry.prev_sha256) != entry.sha256 {
            Some(format!(
                "entry {} ({} of proposal {}) was changed after it was written: its content does not match its SHA-256",
                entry.seq,
                entry.fact.event.as_str(),
                entry.fact.proposal
            ))
        } else {
            None
        };
        if broken.is_some() {
            return Verification { entries: entries.len(), broken };
        }
        prev = entry.sha256.clone();
    }
    Verification { entries: entries.len(), broken: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(event: Event, detail: &str) -> Fact {
        Fact {
            event,
            proposal: 1,
            actor: "alice".into(),
            at: "2026-01-01T00:00:00Z".into(),
            plan_sha256: "ab".into(),
            fingerprints: Fingerprints::default(),
            counts: serde_json::json!({"public.t": {"deleted": 3}}),
            detail: Some(detail.into()),
        }
    }

    #[test]
    fn a_changed_entry_breaks_the_chain() {
        let first = Entry::chain(1, fact(Event::Proposed, "a"), GENESIS);
        let second = Entry::chain(2, fact(Event::Approved, "ok"), &first.sha256);
        let third = Entry::chain(3, fact(Event::Refused, "drift"), &second.sha256);
        let mut log = vec![first, second, third];
        assert_eq!(verify(&log).broken, None);
        log[1].fact.detail = Some("changed".into());
        let broken = verify(&log).broken.expect("broken");
        assert!(broken.starts_with("entry 2 (approved of proposal 1) was changed"), "{broken}");
        log[1].fact.detail = Some("ok".into());
        log.remove(1);
        assert!(verify(&log).broken.is_some_and(|b| b.contains("entry 2 is missing")));
    }
}
