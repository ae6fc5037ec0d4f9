//! Approve, then apply, end to end through the binary: a real PostgreSQL server started here plays production. An
//! agent's token proposes, a reviewer's approves, the applier's applies; every refusal leaves production as it was
//! (rows counted, catalog read), is in the audit log, and the chain verifies until a row is edited by hand.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{json_of, stderr_of, Sandbox, SourceServer};

/// Customers and their orders, deleted with them; the shadow gets 6 customers with 3 orders each.
const SCHEMA: &str = "CREATE TABLE customers (id int PRIMARY KEY, region text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE, total numeric);
CREATE INDEX orders_customer ON orders (customer_id);
";
const SHADOW_ROWS: &str =
    "INSERT INTO customers SELECT g, CASE WHEN g <= 2 THEN 'test' ELSE 'eu' END FROM generate_series(1, 6) g;
INSERT INTO orders SELECT g, (g - 1) / 3 + 1, g FROM generate_series(1, 18) g;
";
const PLAN: &str = "DELETE FROM customers WHERE region = 'test';\n";

const TOKENS: &str = r#"
[[tokens]]
token = "agent-token-000000000001"
name = "deploy-bot"
role = "agent"

[[tokens]]
token = "carol-agent-token-000001"
name = "carol"
role = "agent"

[[tokens]]
token = "carol-review-token-00001"
name = "carol"
role = "reviewer"

[[tokens]]
token = "alice-review-token-00001"
name = "alice"
role = "reviewer"

[[tokens]]
token = "pipeline-token-000000001"
name = "pipeline"
role = "applier"
"#;

const AGENT: &str = "agent-token-000000000001";
const CAROL_AGENT: &str = "carol-agent-token-000001";
const CAROL_REVIEWER: &str = "carol-review-token-00001";
const ALICE: &str = "alice-review-token-00001";
const PIPELINE: &str = "pipeline-token-000000001";

struct Loop {
    sandbox: Sandbox,
    production: SourceServer,
    store: PathBuf,
    tokens: PathBuf,
    schema: &'static str,
}

impl Loop {
    fn new() -> Loop {
        Loop::with_schema(SCHEMA, SHADOW_ROWS)
    }

    /// A loop whose shadow loads `schema` and `shadow_rows`, and whose production databases `schema`.
    fn with_schema(schema: &'static str, shadow_rows: &str) -> Loop {
        let sandbox = Sandbox::new().with_builds();
        let production = SourceServer::start();
        let store = sandbox.input("store/proposals.sqlite");
        let tokens = sandbox.input("tokens.toml");
        std::fs::write(&tokens, TOKENS).expect("write tokens");
        std::fs::write(sandbox.input("schema.sql"), format!("{schema}{shadow_rows}")).expect("write schema");
        std::fs::write(sandbox.input("plan.sql"), PLAN).expect("write plan");
        Loop { sandbox, production, store, tokens, schema }
    }

    /// A production database `name` holding the schema and `rows` (SQL).
    fn database_with(&self, name: &str, rows: &str) {
        self.production.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.production.psql(name, self.schema);
        if !rows.is_empty() {
            self.production.psql(name, rows);
        }
    }

    /// A production database `name` holding the schema and `factor` times the shadow's rows.
    fn database(&self, name: &str, factor: u32) {
        self.production.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.production.psql(name, SCHEMA);
        let customers = 6 * factor;
        self.production.psql(
            name,
            &format!(
                "INSERT INTO customers SELECT g, CASE WHEN g % 3 = 1 THEN 'test' ELSE 'eu' END \
                 FROM generate_series(1, {customers}) g;
                 INSERT INTO orders SELECT g, (g - 1) / 3 + 1, g FROM generate_series(1, {}) g;",
                customers * 3
            ),
        );
    }

    fn pgshadow(&self, token: &str, database: &str, args: &[&str]) -> Output {
        self.sandbox
            .command(args)
            .env("PGSHADOW_STORE", &self.store)
            .env("PGSHADOW_TOKENS", &self.tokens)
            .env("PGSHADOW_TOKEN", token)
            .env("PGSHADOW_TARGET_PRODUCTION_URL", self.production.url(database))
            .output()
            .expect("run pgshadow")
    }

    /// Proposes the plan with `policy` (TOML, may be empty) as the token `token`; the proposal's number.
    fn propose(&self, token: &str, policy: &str) -> i64 {
        let (id, report) = self.propose_file(token, policy, "plan.sql");
        assert_eq!(report["summary"]["rows_deleted"], 2 + 6, "2 customers and their 6 orders on the shadow");
        id
    }

    /// Proposes the plan in the input file `plan`; the proposal's number and its report.
    fn propose_file(&self, token: &str, policy: &str, plan: &str) -> (i64, serde_json::Value) {
        let policy_file = self.sandbox.input("policy.toml");
        std::fs::write(&policy_file, policy).expect("write policy");
        let (plan, schema) = (self.sandbox.input(plan), self.sandbox.input("schema.sql"));
        let out = self.pgshadow(
            token,
            "postgres",
            &[
                "propose",
                plan.to_str().expect("utf-8"),
                "--schema",
                schema.to_str().expect("utf-8"),
                "--policy",
                policy_file.to_str().expect("utf-8"),
                "--target",
                "production",
                "--intent",
                "remove the test customers",
                "--format",
                "json",
                "--quiet",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "propose: {}", stderr_of(&out));
        let report = json_of(&out);
        let said = stderr_of(&out);
        let id = said.split("stored as proposal ").nth(1).and_then(|r| r.split(';').next()).expect("the number");
        (id.trim().parse().expect("a number"), report)
    }

    fn approve(&self, token: &str, id: i64) -> Output {
        self.pgshadow(token, "postgres", &["proposals", "approve", &id.to_string(), "--comment", "as measured"])
    }

    fn apply(&self, database: &str, id: i64, extra: &[&str]) -> Output {
        let id = id.to_string();
        let mut args = vec!["apply", id.as_str(), "--target", "production"];
        args.extend_from_slice(extra);
        self.pgshadow(PIPELINE, database, &args)
    }

    /// Production's rows (per table) and catalog, to compare before and after a refusal.
    fn state(&self, database: &str) -> String {
        self.production.psql(
            database,
            "SELECT (SELECT string_agg(table_name || ':' || (xpath('/row/c/text()', query_to_xml(format( \
                     'SELECT count(*) AS c FROM %I', table_name), false, true, '')))[1]::text, ',' ORDER BY table_name) \
                 FROM information_schema.tables WHERE table_schema = 'public') || '; ' \
             || (SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' \
                                   ORDER BY table_name, column_name) \
                 FROM information_schema.columns WHERE table_schema = 'public') \
             || '; ' || (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint \
                         WHERE connamespace = 'public'::regnamespace) \
             || '; ' || (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes \
                         WHERE schemaname = 'public')",
        )
    }

    /// Applies `id` to `database`, expecting a refusal that says `why` and leaves production as it was.
    fn refused(&self, database: &str, id: i64, extra: &[&str], why: &str) {
        let before = self.state(database);
        let out = self.apply(database, id, extra);
        assert_eq!(out.status.code(), Some(1), "apply should be refused: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(why), "expected {why:?} in: {}", stderr_of(&out));
        assert_eq!(self.state(database), before, "a refused apply leaves production as it was");
    }
}

#[test]
fn approve_then_apply_and_every_refusal() {
    let l = Loop::new();

    // The loop: the agent proposes, the agent cannot approve, a reviewer approves, the applier applies.
    l.database("prod", 1);
    let id = l.propose(AGENT, "");
    let out = l.approve(AGENT, id);
    assert_eq!(out.status.code(), Some(1), "an agent cannot approve: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("needs the role reviewer"), "{}", stderr_of(&out));
    let out = l.approve(ALICE, id);
    assert_eq!(out.status.code(), Some(0), "approve: {}", stderr_of(&out));
    let out = l.apply("prod", id, &[]);
    assert_eq!(out.status.code(), Some(0), "apply: {}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("public.orders: 0 inserted, 0 updated, 6 deleted"));
    assert_eq!(l.state("prod").split(';').next(), Some("customers:4,orders:12"));
    assert_eq!(l.production.psql("prod", "SELECT count(*) FROM customers WHERE region = 'test'"), "0");

    // Already applied.
    l.refused("prod", id, &[], "is applied already");

    // The plan text changed after approval.
    l.database("changed", 1);
    let id = l.propose(AGENT, "");
    assert_eq!(l.approve(ALICE, id).status.code(), Some(0));
    let changed = l.sandbox.input("changed.sql");
    std::fs::write(&changed, "DELETE FROM customers WHERE region <> 'nobody';\n").expect("write");
    l.refused("changed", id, &["--plan", changed.to_str().expect("utf-8")], "changed after it was approved");

    // Drift: a column added to production after the dry-run.
    l.database("drifted", 1);
    let id = l.propose(AGENT, "");
    assert_eq!(l.approve(ALICE, id).status.code(), Some(0));
    l.production.psql("drifted", "ALTER TABLE orders ADD COLUMN note text");
    l.refused("drifted", id, &[], "column public.orders.note: on the target only");

    // Production holds 100 times the shadow's rows: outside the envelope, rolled back.
    l.database("grown", 100);
    let id = l.propose(AGENT, "");
    assert_eq!(l.approve(ALICE, id).status.code(), Some(0));
    l.refused("grown", id, &[], "public.customers: 200 rows deleted, approved 2 (at most 13");

    // The approval expired.
    l.database("late", 1);
    let id = l.propose(AGENT, "[approval]\nexpires-after-hours = 0\n");
    assert_eq!(l.approve(ALICE, id).status.code(), Some(0));
    l.refused("late", id, &[], "approval expired");

    // The proposer approving their own proposal (with a reviewer's token in the same name).
    let id = l.propose(CAROL_AGENT, "");
    let out = l.approve(CAROL_REVIEWER, id);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("nobody approves their own proposal"), "{}", stderr_of(&out));

    // A statement that cannot run in a transaction: refused unless every approval accepts it, then run unguarded.
    l.database("indexed", 1);
    std::fs::write(l.sandbox.input("index.sql"), "CREATE INDEX CONCURRENTLY orders_total ON orders (total);\n")
        .expect("write");
    let index_exists =
        || l.production.psql("indexed", "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_total'");
    let (id, _) = l.propose_file(AGENT, "", "index.sql");
    assert_eq!(l.approve(ALICE, id).status.code(), Some(0));
    l.refused("indexed", id, &[], "--unguarded");
    assert_eq!(index_exists(), "0");
    let (id, _) = l.propose_file(AGENT, "", "index.sql");
    let out = l.pgshadow(ALICE, "postgres", &["proposals", "approve", &id.to_string(), "--unguarded"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = l.apply("indexed", id, &[]);
    assert_eq!(out.status.code(), Some(0), "an accepted unguarded plan applies: {}", stderr_of(&out));
    assert_eq!(index_exists(), "1");

    // Every refusal is in the audit log, and the chain holds.
    let out = l.pgshadow(PIPELINE, "postgres", &["audit", "export"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let entries: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let refusals: Vec<&str> =
        entries.iter().filter(|e| e["event"] == "refused").filter_map(|e| e["detail"].as_str()).collect();
    for why in ["applied already", "changed after it was approved", "on the target only", "rows deleted", "expired"] {
        assert!(refusals.iter().any(|r| r.contains(why)), "no refusal for {why:?} in {refusals:#?}");
    }
    assert!(refusals.iter().any(|r| r.contains("nobody approves their own")));
    assert!(refusals.iter().any(|r| r.contains("approve refused: not allowed: deploy-bot has the role agent")));
    assert_eq!(entries.iter().filter(|e| e["event"] == "applied").count(), 2);
    assert!(entries.iter().all(|e| !e.to_string().contains(&l.production.url("prod"))), "no target URL is logged");
    let out = l.pgshadow(PIPELINE, "postgres", &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    // A tampered entry breaks it.
    let connection = rusqlite::Connection::open(&l.store).expect("open the store");
    connection.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2", []).expect("tamper");
    let out = l.pgshadow(PIPELINE, "postgres", &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("entry 2"), "{}", stderr_of(&out));
    l.sandbox.assert_clean();
}

/// Parents, and children whose reference to them is checked only at COMMIT; `tripwire` and `shutdown_wire` have
/// deferred triggers that, at COMMIT, end the apply's session and shut the whole server down. The dry-run fires them
/// where the plan would commit, as the plan's role, which may not run a program (its report says the plan fails at
/// COMMIT). The shutdown is sent by a detached process after the COPY returned: the
/// postmaster signals the backend's whole process group as it shuts down, and a program still in it would die and
/// fail the COPY, an ERROR that rolls the transaction back (refused, not in doubt). The program reads what COPY
/// writes first, or the write could meet a closed pipe (an ERROR too).
const COMMIT_SCHEMA: &str = "CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE tripwire (id int);
CREATE FUNCTION end_session() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NULL; END$$;
CREATE CONSTRAINT TRIGGER ends_session AFTER INSERT ON tripwire DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION end_session();
CREATE TABLE shutdown_wire (id int);
CREATE FUNCTION shut_down() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; setsid sh -c \"sleep 0.3; kill -INT $(head -1 postmaster.pid)\" </dev/null >/dev/null 2>&1 &';
  PERFORM pg_sleep(10); RETURN NULL; END$$;
CREATE CONSTRAINT TRIGGER shuts_down AFTER INSERT ON shutdown_wire DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION shut_down();
";
const PARENTS: &str = "INSERT INTO parent SELECT generate_series(1, 3);\n";
/// The same parents as a dump's data: the shadow then knows it holds every table's rows (no children: 0, not
/// unknown).
const PARENTS_DUMPED: &str = "COPY parent (id) FROM stdin;\n1\n2\n3\n\\.\n";

impl Loop {
    /// Proposes `plan` (written to the input file `name`) and has it approved; the proposal's number.
    fn approved(&self, name: &str, plan: &str) -> i64 {
        self.approved_under(name, plan, "").0
    }

    /// [`Loop::approved`] under `policy` (TOML); with the dry-run's report.
    fn approved_under(&self, name: &str, plan: &str, policy: &str) -> (i64, serde_json::Value) {
        std::fs::write(self.sandbox.input(name), plan).expect("write plan");
        let (id, report) = self.propose_file(AGENT, policy, name);
        assert_eq!(self.approve(ALICE, id).status.code(), Some(0));
        (id, report)
    }

    /// Proposal `id`'s state.
    fn state_of(&self, id: i64) -> String {
        let out = self.pgshadow(PIPELINE, "postgres", &["proposals", "show", &id.to_string(), "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        json_of(&out)["state"].as_str().expect("a state").to_owned()
    }

    /// The audit log's entries about proposal `id`.
    fn audit_of(&self, id: i64) -> Vec<serde_json::Value> {
        let out = self.pgshadow(PIPELINE, "postgres", &["audit", "export"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let entries =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        let entries: Vec<serde_json::Value> = entries;
        entries.into_iter().filter(|e| e["proposal"] == id).collect()
    }
}

#[test]
fn a_commit_that_does_not_happen_is_never_recorded_applied() {
    let l = Loop::with_schema(COMMIT_SCHEMA, PARENTS);
    let rows = "SELECT (SELECT count(*) FROM parent) || ' parents, ' || (SELECT count(*) FROM child) || ' children'";

    // The dry-run checks deferred constraints where the plan commits, and `fails-at-commit` fails these plans; a
    // policy that allows it lets them be approved, so that apply's own check at COMMIT is what is tested here.
    let allow = "[rules]\nfails-at-commit = \"allow\"\n";

    // A deferred foreign key, violated only at COMMIT: the server answers COMMIT with an error, so it rolled back.
    l.database_with("deferred", PARENTS);
    let (id, report) = l.approved_under("orphan.sql", "INSERT INTO child VALUES (1, 42);\n", allow);
    assert_eq!(report["commit_error"]["sqlstate"], "23503", "the dry-run saw it: {}", report["commit_error"]);
    l.refused("deferred", id, &[], "violates foreign key constraint");
    assert_eq!(l.production.psql("deferred", rows), "3 parents, 0 children");
    assert_eq!(l.state_of(id), "refused");
    let last = l.audit_of(id).pop().expect("entries");
    assert_eq!(last["event"], "refused", "{last}");
    assert!(last["detail"].as_str().is_some_and(|d| d.contains("COMMIT failed on the target")), "{last}");

    // The session ends at COMMIT (a FATAL error, which could also come after a commit): the target, asked again on
    // a new connection, says the transaction aborted.
    l.database_with("ended", PARENTS);
    let (id, report) = l.approved_under("trip.sql", "INSERT INTO tripwire VALUES (1);\n", allow);
    assert!(report["commit_error"].is_object(), "the dry-run's session ended at its COMMIT too: {report}");
    l.refused("ended", id, &[], "aborted, as the target said on a new connection");
    assert_eq!(l.production.psql("ended", "SELECT count(*) FROM tripwire"), "0");
    assert_eq!(l.state_of(id), "refused");

    // The server goes away at COMMIT: the outcome cannot be learned. The proposal stays applied, the audit log
    // says it is in doubt and names the transaction, and apply ends in an error that says so.
    l.database_with("gone", PARENTS);
    let (id, _) = l.approved_under("shutdown.sql", "INSERT INTO shutdown_wire VALUES (1);\n", allow);
    let out = l.apply("gone", id, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let said = stderr_of(&out);
    assert!(said.contains("is in doubt") && said.contains("pg_xact_status"), "{said}");
    let xid = said.split("its transaction ").nth(1).and_then(|r| r.split(' ').next()).expect("a transaction id");
    assert!(xid.parse::<u64>().is_ok(), "{said}");
    assert_eq!(l.state_of(id), "applied");
    let last = l.audit_of(id).pop().expect("entries");
    assert_eq!(last["event"], "in_doubt", "{last}");
    assert!(last["detail"].as_str().is_some_and(|d| d.contains(&format!("transaction {xid}"))), "{last}");
    l.sandbox.assert_clean();
}

#[test]
fn a_truncate_cascade_counts_every_table_it_empties_on_the_target() {
    let l = Loop::with_schema(COMMIT_SCHEMA, PARENTS_DUMPED);
    let children = "INSERT INTO child SELECT g, g % 3 + 1 FROM generate_series(1, 50) g;";
    let plan = "TRUNCATE parent CASCADE;\n";

    // The shadow's children were none, so the dry-run saw the CASCADE empty no rows of them; production has 50.
    l.database_with("children", &format!("{PARENTS}{children}"));
    let id = l.approved("truncate.sql", plan);
    l.refused("children", id, &[], "public.child: 50 rows deleted, approved 0");
    assert_eq!(l.production.psql("children", "SELECT count(*) FROM child"), "50");

    // A table referencing parent that production gained after the dry-run: drift.
    l.database_with("gained", PARENTS);
    let id = l.approved("truncate.sql", plan);
    l.production.psql("gained", "CREATE TABLE late (parent_id int REFERENCES parent); INSERT INTO late VALUES (1)");
    l.refused("gained", id, &[], "on the target only");
    assert_eq!(l.production.psql("gained", "SELECT count(*) FROM late"), "1");

    // As the dry-run saw it: applied.
    l.database_with("as_seen", PARENTS);
    let id = l.approved("truncate.sql", plan);
    let out = l.apply("as_seen", id, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(l.production.psql("as_seen", "SELECT count(*) FROM parent"), "0");
    l.sandbox.assert_clean();
}
