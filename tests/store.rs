//! The proposals store: one test body ([`suite`]) run against both backends, an SQLite file and a real PostgreSQL
//! server the test starts, including writers racing from separate threads and a tampered audit row.

mod common;

use std::sync::Arc;

use common::SourceServer;
use pgshadow::proposal::tokens::{Caller, Role};
use pgshadow::proposal::{audit::Event, Draft, State, Store, Verdict};
use pgshadow::{DryRunOptions, Plan, Policy, Schema};

const SCHEMA: &str = "CREATE TABLE accounts (id int PRIMARY KEY, active bool NOT NULL DEFAULT true);
INSERT INTO accounts SELECT g, true FROM generate_series(1, 40) g;";
const PLAN: &str = "UPDATE accounts SET active = false WHERE id <= 12;";

/// A draft of a real dry-run of [`PLAN`], judged by `policy`.
async fn draft(policy: &str) -> Draft {
    let policy = Policy::parse("test-policy.toml", policy).expect("policy parses");
    let plan = Plan::parse("plan.sql", PLAN).expect("plan parses");
    let schema = Schema::sql("schema.sql", SCHEMA);
    let options = DryRunOptions { policy: policy.clone(), ..DryRunOptions::default() };
    let (report, catalog) = pgshadow::dry_run_described(&plan, Some(&schema), &options).await.expect("dry-run");
    assert!(catalog.as_ref().is_some_and(|c| c.objects.contains_key("column public.accounts.active")));
    Draft {
        proposer: "bot".into(),
        intent: Some("deactivate the first accounts".into()),
        target: Some("production".into()),
        replaces: None,
        report,
        plan_text: PLAN.into(),
        plan,
        policy,
        catalog,
    }
}

fn refused(result: pgshadow::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(pgshadow::Error::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Everything a store must do, on `store`; `tamper` edits the audit entry `seq`'s detail behind the store's back.
async fn suite(store: Store, tamper: impl Fn(i64)) {
    let plain = draft("").await;
    let strict = draft("[limits]\nmax-rows-updated = 5\n[approval]\nfail-approvals = 2\n").await;
    let instant = draft("[approval]\nexpires-after-hours = 0\n").await;

    // Propose, read back unchanged.
    let first = store.propose(plain.clone()).await.expect("propose");
    assert_eq!((first.proposal.id, first.state, first.approvals_required), (1, State::Proposed, 1));
    let read = store.get(1).await.expect("get");
    assert_eq!(read.proposal.plan.text, PLAN);
    assert_eq!(read.proposal.plan.sha256, pgshadow::text::hex_digest(PLAN.as_bytes()));
    assert_eq!(read.proposal.report, first.proposal.report);
    assert_eq!(read.proposal.envelope.tables["public.accounts"].updated, Some(12));
    assert!(read.proposal.fingerprints.source_catalog.is_some());
    assert!(matches!(store.get(99).await, Err(pgshadow::Error::UnknownProposal(99))));
    let schema: serde_json::Value = serde_json::from_str(&pgshadow::proposal::json_schema()).expect("a schema");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let json = serde_json::to_value(&read).expect("a record serializes");
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "a record matches docs/proposal.schema.json: {errors:?}");

    // A role that may not decide is refused, and the refusal audited, by the store, whatever door it came through.
    let agent = Caller { name: "bot".into(), role: Role::Agent };
    let forbidden = store.decide_as(1, &agent, Verdict::Reject, None, false).await.expect_err("an agent may not");
    assert!(matches!(forbidden, pgshadow::Error::Forbidden(_)), "{forbidden:?}");
    let last = store.audit().await.expect("audit").pop().expect("an entry");
    assert_eq!((last.fact.event, last.fact.actor.as_str()), (Event::Refused, "bot"));
    let expected = "reject refused: not allowed: bot has the role agent; this needs the role reviewer";
    assert_eq!(last.fact.detail.as_deref(), Some(expected));
    let before = store.audit().await.expect("audit").len();
    assert!(matches!(
        store.decide_as(99, &agent, Verdict::Approve, None, false).await,
        Err(pgshadow::Error::Forbidden(_))
    ));
    assert_eq!(store.audit().await.expect("audit").len(), before, "no entry for a proposal that does not exist");

    // Nobody approves their own proposal.
    assert!(refused(store.decide(1, "bot", Verdict::Approve, None).await).contains("nobody approves their own"));
    let approved = store.decide(1, "alice", Verdict::Approve, Some("looks right".into())).await.expect("approve");
    assert_eq!((approved.state, approved.approvals), (State::Approved, 1));
    assert!(approved.expires_at.is_some());
    assert!(refused(store.decide(1, "carol", Verdict::Approve, None).await).contains("is approved"));

    // A plan with a fail-level finding needs two distinct approvals under this policy; a new version links back.
    let mut second = strict.clone();
    second.replaces = Some(1);
    let second = store.propose(second).await.expect("propose");
    assert_eq!((second.proposal.id, second.approvals_required, second.proposal.replaces), (2, 2, Some(1)));
    assert_eq!(store.decide(2, "alice", Verdict::Approve, None).await.expect("first").state, State::Proposed);
    assert!(refused(store.decide(2, "alice", Verdict::Approve, None).await).contains("already"));
    assert_eq!(store.decide(2, "dave", Verdict::Approve, None).await.expect("second").state, State::Approved);
    let mut orphan = plain.clone();
    orphan.replaces = Some(42);
    assert!(matches!(store.propose(orphan).await, Err(pgshadow::Error::UnknownProposal(42))));

    // Rejection; an approval that expires.
    store.propose(plain.clone()).await.expect("propose");
    assert_eq!(
        store.decide(3, "alice", Verdict::Reject, Some("no".into())).await.expect("reject").state,
        State::Rejected
    );
    store.propose(instant.clone()).await.expect("propose");
    store.decide(4, "alice", Verdict::Approve, None).await.expect("approve");
    assert_eq!(store.get(4).await.expect("get").state, State::Expired);
    assert_eq!(store.expire(4, "applier").await.expect("expire").state, State::Expired);

    // Apply outcomes, from approved only.
    let outcome = |refused: Option<&str>| pgshadow::proposal::Outcome {
        at: "2026-01-01T00:00:00Z".into(),
        by: "pipeline".into(),
        target: "production".into(),
        refused: refused.map(str::to_owned),
        counts: Default::default(),
    };
    assert_eq!(store.finish(1, outcome(None)).await.expect("applied").state, State::Applied);
    assert!(refused(store.finish(1, outcome(None)).await).contains("applied"));
    assert_eq!(store.finish(2, outcome(Some("drift"))).await.expect("refused").state, State::Refused);

    let listed = store.list(None).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| (s.id, s.state)).collect::<Vec<_>>(),
        [(4, State::Expired), (3, State::Rejected), (2, State::Refused), (1, State::Applied),]
    );
    assert_eq!(store.list(Some(State::Rejected)).await.expect("list").len(), 1);

    // Two reviewers racing on a proposal that needs one approval: exactly one decision, on every try.
    let store = Arc::new(store);
    for _ in 0..4 {
        let id = store.propose(plain.clone()).await.expect("propose").proposal.id;
        let (a, b) = (Arc::clone(&store), Arc::clone(&store));
        let (x, y) = tokio::join!(
            tokio::spawn(async move { a.decide(id, "erin", Verdict::Approve, None).await }),
            tokio::spawn(async move { b.decide(id, "frank", Verdict::Approve, None).await }),
        );
        let (x, y) = (x.expect("task"), y.expect("task"));
        assert!(x.is_ok() != y.is_ok(), "exactly one approval wins: {x:?} / {y:?}");
        let record = store.get(id).await.expect("get");
        assert_eq!((record.decisions.len(), record.state), (1, State::Approved));
    }

    // A COMMIT that did not happen: only this apply's `applied` moves to refused, in one go.
    assert_eq!(store.finish(5, outcome(None)).await.expect("applied").state, State::Applied);
    let other = pgshadow::proposal::Outcome { by: "someone else".into(), ..outcome(None) };
    assert!(refused(store.rolled_back(5, other, "deferred".into()).await).contains("not applied by this apply"));
    assert_eq!(store.get(5).await.expect("get").state, State::Applied);
    let record = store.rolled_back(5, outcome(None), "deferred".into()).await.expect("rolled back");
    assert_eq!(record.state, State::Refused);
    assert_eq!(record.outcome.and_then(|o| o.refused).as_deref(), Some("deferred"));
    assert!(refused(store.rolled_back(5, outcome(None), "again".into()).await).contains("refused now"));
    store.confirmed(1, "pipeline", "committed after all").await.expect("confirmed");
    store.in_doubt(1, "pipeline", "transaction 1234 in doubt").await.expect("in doubt");
    assert_eq!(store.get(1).await.expect("get").state, State::Applied);

    // The audit chain holds every event, and breaks where a row was edited by hand.
    let entries = store.audit().await.expect("audit");
    let count = |e: Event| entries.iter().filter(|x| x.fact.event == e).count();
    assert_eq!(count(Event::Proposed), 8);
    assert_eq!(count(Event::Applied), 2);
    assert_eq!((count(Event::Confirmed), count(Event::InDoubt)), (1, 1));
    assert_eq!(count(Event::Expired), 1);
    assert!(count(Event::Refused) >= 4 + 4, "refused decisions and applies are logged");
    assert!(entries.iter().all(|e| e.fact.plan_sha256.len() == 64));
    assert_eq!(store.verify().await.expect("verify").broken, None);
    tamper(3);
    let broken = store.verify().await.expect("verify").broken.expect("the chain is broken");
    assert!(broken.starts_with("entry 3 "), "{broken}");
}

#[test]
fn the_published_proposal_schema_is_current() {
    let published = std::fs::read_to_string(common::root().join("docs/proposal.schema.json")).expect("schema");
    assert!(
        published == pgshadow::proposal::json_schema(),
        "docs/proposal.schema.json is out of date: run `cargo run -- schema --proposal > docs/proposal.schema.json`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/proposals.sqlite");
    let location = path.to_string_lossy().into_owned();
    let store = Store::open(&location).await.expect("open");
    // Opening again migrates nothing and keeps what is there.
    Store::open(&location).await.expect("open again");
    let tamper = |seq: i64| {
        let connection = rusqlite::Connection::open(&path).expect("open the file");
        connection.execute("UPDATE audit SET detail = 'edited' WHERE seq = ?1", [seq]).expect("tamper");
    };
    suite(store, tamper).await;
    let connection = rusqlite::Connection::open(&path).expect("open the file");
    connection.execute("UPDATE schema_version SET version = 99", []).expect("bump");
    let newer = Store::open(&location).await.expect_err("a newer store is refused");
    assert!(newer.to_string().contains("newer than this pgshadow"), "{newer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store() {
    let server = SourceServer::start();
    server.psql("postgres", "CREATE DATABASE store");
    let url = server.url("store");
    let store = Store::open(&url).await.expect("open");
    Store::open(&url).await.expect("open again");
    let tamper = |seq: i64| {
        server.psql("store", &format!("UPDATE pgshadow.audit SET detail = 'edited' WHERE seq = {seq}"));
    };
    suite(store, tamper).await;
    assert_eq!(server.psql("store", "SELECT version FROM pgshadow.schema_version"), "2");
}
