//! What the engine measures, on real shadows: effects through triggers, truncations against rewrites, error
//! positions, the plan's own BEGIN/COMMIT, ownership from the schema, and a shadow serving several dry-runs.

mod common;

use pgshadow::report::{Status, TableEffect};
use pgshadow::{DryRunOptions, Plan, Schema, Shadow, Verdict};

const SHOP: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE audit (id serial PRIMARY KEY, what text);
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (what) VALUES (TG_OP || ' ' || TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION log_change();
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 40) AS g;
";

fn effect(report: &pgshadow::Report, statement: usize, table: &str) -> TableEffect {
    report.statements[statement - 1]
        .table_effects
        .iter()
        .find(|e| e.table == table)
        .unwrap_or_else(|| {
            panic!("no effect on {table} in statement {statement}: {:?}", report.statements[statement - 1])
        })
        .clone()
}

#[tokio::test]
async fn rows_a_trigger_writes_are_indirect_effects() {
    let report = common::dry_run(SHOP, "UPDATE customers SET name = upper(name) WHERE id <= 3;").await;
    let direct = effect(&report, 1, "public.customers");
    assert_eq!((direct.updated, direct.direct), (Some(3), true));
    let audit = effect(&report, 1, "public.audit");
    assert_eq!((audit.inserted, audit.direct), (3, false));
    let called = &report.statements[0].functions_called;
    assert_eq!(called.len(), 1, "{called:?}");
    assert_eq!((called[0].function.as_str(), called[0].calls), ("public.log_change", 3));
    assert_eq!(called[0].triggers, ["customers_audit on public.customers"]);
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
}

#[tokio::test]
async fn a_statement_on_a_table_whose_name_holds_a_dot_or_a_quote_is_its_direct_effect() {
    let schema = "CREATE SCHEMA \"odd.schema\";\n\
         CREATE TABLE \"odd.schema\".\"weird.name\" (id int);\n\
         INSERT INTO \"odd.schema\".\"weird.name\" VALUES (1), (2);\n\
         CREATE TABLE \"say \"\"hi\"\"\" (id int);\n\
         INSERT INTO \"say \"\"hi\"\"\" VALUES (1);\n";
    let plan = "DELETE FROM \"odd.schema\".\"weird.name\" WHERE id = 1;\nUPDATE \"say \"\"hi\"\"\" SET id = 2;\n";
    let report = common::dry_run(schema, plan).await;
    let weird = effect(&report, 1, "\"odd.schema\".\"weird.name\"");
    assert_eq!((weird.deleted, weird.direct), (Some(1), true));
    let quoted = effect(&report, 2, "public.\"say \"\"hi\"\"\"");
    assert_eq!((quoted.updated, quoted.direct), (Some(1), true));
}

#[tokio::test]
async fn truncate_destroys_rows_but_a_rewrite_does_not() {
    let plan = "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\nTRUNCATE customers, audit;\nINSERT INTO customers VALUES (1, 'x');";
    let report = common::dry_run(SHOP, plan).await;
    assert!(report.statements.iter().all(|s| s.status == Status::Ok), "{:?}", report.statements);
    assert!(report.statements[0].table_effects.is_empty(), "a rewrite changes no rows: {:?}", report.statements[0]);
    assert_eq!(report.statements[0].rows_destroyed, 0);
    let truncated = effect(&report, 2, "public.customers");
    assert_eq!((truncated.truncated, truncated.deleted), (Some(40), Some(0)));
    assert_eq!(report.statements[1].rows_destroyed, 40);
    assert_eq!(effect(&report, 3, "public.customers").inserted, 1);
    assert_eq!(report.summary.rows_destroyed, 40);
    assert!(report.findings.iter().any(|f| f.rule == "truncate" && f.statement == Some(2)));
}

#[tokio::test]
async fn a_dropped_table_counts_the_rows_it_held_after_earlier_statements() {
    let plan =
        "DELETE FROM customers WHERE id > 30;\nINSERT INTO customers VALUES (100, 'new');\nDROP TABLE customers;";
    let report = common::dry_run(SHOP, plan).await;
    let dropped = &report.statements[2].dropped_objects;
    let table = dropped.iter().find(|o| o.identity == "public.customers").expect("customers dropped");
    assert_eq!(table.rows, Some(31));
    assert!(!table.cascaded);
    assert_eq!(report.summary.rows_destroyed, 10 + 31);
    assert_eq!(report.summary.tables_dropped, 1);
}

#[tokio::test]
async fn an_error_is_positioned_in_the_plan_and_stops_it() {
    let plan = "UPDATE customers SET name = 'a' WHERE id = 1;\n-- next one is broken\n  SELECT nme FROM customers;\nDELETE FROM customers;";
    let report = common::dry_run(SHOP, plan).await;
    let statuses: Vec<_> = report.statements.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Status::Ok, Status::Error, Status::NotRun]);
    let error = report.statements[1].error.as_ref().expect("error");
    assert_eq!(error.sqlstate.as_deref(), Some("42703"));
    assert_eq!((error.line, error.column), (3, 10));
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("name")), "{error:?}");
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.findings.len(), 1, "the not-run DELETE must not be judged: {:?}", report.findings);
}

#[tokio::test]
async fn the_plans_own_transactions_commit_or_roll_back_as_written() {
    let plan = "BEGIN;\nDELETE FROM customers WHERE id = 1;\nCOMMIT;\n\
                BEGIN;\nDELETE FROM customers;\nROLLBACK;\n\
                DELETE FROM customers WHERE id <= 3;";
    let report = common::dry_run(SHOP, plan).await;
    assert!(report.statements.iter().all(|s| s.status == Status::Ok), "{:?}", report.statements);
    let rolled_back: Vec<_> = report.statements.iter().map(|s| s.rolled_back).collect();
    assert_eq!(rolled_back, [false, false, false, true, true, true, false]);
    assert_eq!(report.statements[4].rows_affected, Some(39), "measured, then undone by the plan");
    assert_eq!(report.statements[6].rows_affected, Some(2), "customer 1 was deleted for good, 2 and 3 remain");
    assert_eq!(report.summary.rows_deleted, 1 + 2, "rolled-back deletes count for nothing");
    // What the plan rolled back is not judged; only how it uses transactions is (it commits, then goes on).
    let rules: Vec<_> = report.findings.iter().map(|f| (f.rule.as_str(), f.statement)).collect();
    assert_eq!(rules, [("transaction-hygiene", Some(3))], "the DELETE without WHERE was rolled back");
    assert_eq!(report.verdict, Verdict::Warn);

    let report = common::dry_run(SHOP, "BEGIN;\nDELETE FROM customers;").await;
    assert!(report.statements.iter().all(|s| s.rolled_back), "a transaction never committed is rolled back");
    let rules: Vec<_> = report.findings.iter().map(|f| (f.rule.as_str(), f.statement)).collect();
    assert_eq!(rules, [("transaction-hygiene", Some(1))], "only the transaction left open is found");
}

#[tokio::test]
async fn statements_that_cannot_run_in_a_transaction_block_run_outside_it() {
    let plan = "DELETE FROM customers WHERE id = 40;\n\
                CREATE INDEX CONCURRENTLY customers_name_idx ON customers (name);\n\
                VACUUM customers;\n\
                DELETE FROM customers WHERE id = 39;";
    let report = common::dry_run(SHOP, plan).await;
    let statuses: Vec<_> = report.statements.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Status::Ok; 4], "{:?}", report.statements);
    assert!(report.statements[1].note.as_deref().is_some_and(|n| n.contains("outside a transaction block")));
    assert_eq!(report.summary.rows_deleted, 2, "measuring goes on after the statement");
    assert!(report.findings.iter().all(|f| f.rule != "statement-error"), "{:?}", report.findings);

    let inside = common::dry_run(SHOP, "BEGIN;\nCREATE INDEX CONCURRENTLY i ON customers (name);\nCOMMIT;").await;
    assert_eq!(inside.statements[1].error.as_ref().and_then(|e| e.sqlstate.as_deref()), Some("25001"));
}

#[tokio::test]
async fn objects_owned_by_roles_the_schema_names_load_and_the_plan_role_can_drop_them() {
    let schema = "CREATE TABLE t (id int);\nALTER TABLE public.t OWNER TO app_owner;\nINSERT INTO t VALUES (1), (2);";
    let report = common::dry_run(schema, "DROP TABLE t;").await;
    assert!(report.shadow.fidelity.warnings.is_empty(), "{:?}", report.shadow.fidelity);
    assert_eq!(report.statements[0].status, Status::Ok, "{:?}", report.statements[0].error);
    assert_eq!(report.summary.rows_destroyed, 2);
}

#[tokio::test]
async fn a_shadow_serves_several_dry_runs_and_each_starts_from_the_schema() {
    let shadow = Shadow::start_local(&Default::default()).await.expect("shadow");
    let schema = Schema::sql("schema.sql", SHOP);
    let plan = Plan::parse("plan.sql", "DELETE FROM customers WHERE id <= 10;").expect("plan");
    let options = DryRunOptions::default();
    for _ in 0..2 {
        let report = pgshadow::dry_run_on(&shadow, &plan, Some(&schema), &options).await.expect("dry-run");
        assert_eq!(report.summary.rows_deleted, 10);
    }
    shadow.shutdown().await.expect("shutdown");
}

/// A value `ALTER TYPE ... ADD VALUE` adds can be used only once committed: after the plan's own COMMIT it can, as in
/// production; before it, it cannot. Nothing of the committed part reaches the next dry-run on the same shadow, whose
/// cached template the first run used in place.
#[tokio::test]
async fn an_enum_value_the_plan_adds_and_commits_can_be_used_after_its_commit_and_never_reaches_the_next_run() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let local = pgshadow::LocalOptions { cache: Some(pgshadow::CacheOptions::new(cache.path())), ..Default::default() };
    let shadow = Shadow::start_local(&local).await.expect("shadow");
    let schema = Schema::sql(
        "schema.sql",
        "CREATE TYPE state AS ENUM ('open', 'closed');
         CREATE TABLE tickets (id int PRIMARY KEY, state state NOT NULL);
         INSERT INTO tickets SELECT g, 'open' FROM generate_series(1, 12) AS g;",
    );
    let options = DryRunOptions::default();
    let run = |sql: &'static str| {
        let (shadow, schema, options) = (&shadow, &schema, &options);
        async move {
            let plan = Plan::parse("plan.sql", sql).expect("plan");
            pgshadow::dry_run_on(shadow, &plan, Some(schema), options).await.expect("dry-run")
        }
    };
    let committed = run("BEGIN;\nALTER TYPE state ADD VALUE 'stale';\nCOMMIT;\n\
                         UPDATE tickets SET state = 'stale' WHERE id <= 5;")
    .await;
    let statuses: Vec<Status> = committed.statements.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Status::Ok; 4], "{:?}", committed.statements);
    assert_eq!(committed.summary.rows_updated, 5);
    assert!(committed.statements[2].note.as_deref().is_some_and(|n| n.contains("so does the dry-run")));
    // In one transaction, the value cannot be used yet: 55P04, as in production.
    let uncommitted =
        run("ALTER TYPE state ADD VALUE 'stale';\nUPDATE tickets SET state = 'stale' WHERE id <= 5;").await;
    let error = uncommitted.statements[1].error.as_ref().expect("the UPDATE fails");
    assert_eq!(error.sqlstate.as_deref(), Some("55P04"), "{error:?}");
    // And the first run's committed value is gone.
    let after = run("SELECT 'stale'::state;").await;
    assert_eq!(after.statements[0].status, Status::Error, "the value the first run committed is not there");
    shadow.shutdown().await.expect("shutdown");
}

/// A numeric's scale is not its value: 2.50 held as a double is the same number, though it prints as 2.5. A retype
/// changes values only where a number is lost or rounded.
#[tokio::test]
async fn a_numeric_retyped_changes_values_only_where_a_number_is_lost() {
    // `plain` holds 0.5, 1.0, 1.5, ...: a double prints 1.0 as 1, the same number.
    let schema = "CREATE TABLE amounts (id int PRIMARY KEY, exact numeric(12, 2), plain numeric, precise numeric,
    whole numeric);
INSERT INTO amounts SELECT g, g * 1.25, g * 0.5, g * 0.5, g FROM generate_series(1, 20) AS g;
INSERT INTO amounts VALUES (21, 1.00, 3.0, 0.12345678901234567890123, 7.5);";
    let plan =
        "ALTER TABLE amounts ALTER COLUMN exact TYPE double precision, ALTER COLUMN plain TYPE double precision, \
                ALTER COLUMN precise TYPE double precision, ALTER COLUMN whole TYPE integer;";
    let report = common::dry_run(schema, plan).await;
    let changed: Vec<(&str, Option<bool>)> =
        report.statements[0].column_changes.iter().map(|c| (c.column.as_str(), c.values_changed)).collect();
    let expected = [
        ("public.amounts.exact", Some(false)),
        ("public.amounts.plain", Some(false)),
        ("public.amounts.precise", Some(true)),
        ("public.amounts.whole", Some(true)),
    ];
    assert_eq!(changed, expected, "7.5 rounds to 8, and a double holds 0.1234567890123457");
}

#[tokio::test]
async fn a_json_plan_reports_elements_and_keeps_metadata() {
    let schema = Schema::sql("schema.sql", SHOP);
    let text = r#"{"agent": "cleanup-bot", "intent": "remove test customers",
                   "statements": ["DELETE FROM customers WHERE id > 38", "SELECT * FROM customers"]}"#;
    let plan = Plan::parse("plan.json", text).expect("plan");
    let report = pgshadow::dry_run(&plan, Some(&schema), &DryRunOptions::default()).await.expect("dry-run");
    assert_eq!(report.plan.metadata["agent"], "cleanup-bot");
    assert_eq!(report.statements[1].element, Some(1));
    assert_eq!(report.statements[1].rows_affected, Some(38), "result rows are counted");
    assert_eq!(report.summary.rows_deleted, 2);
}

#[tokio::test]
async fn schema_changes_include_implicit_objects_and_privileges() {
    let plan = "CREATE TABLE tags (id serial PRIMARY KEY, name text);\nGRANT SELECT ON customers TO PUBLIC;";
    let report = common::dry_run(SHOP, plan).await;
    let changes = |i: usize| -> Vec<String> {
        report.statements[i]
            .schema_changes
            .iter()
            .map(|c| format!("{} {}", c.command, c.identity).trim().to_owned())
            .collect()
    };
    assert_eq!(
        changes(0),
        [
            "CREATE SEQUENCE public.tags_id_seq",
            "CREATE TABLE public.tags",
            "CREATE INDEX public.tags_pkey",
            "ALTER SEQUENCE public.tags_id_seq"
        ]
    );
    assert_eq!(changes(1), ["GRANT SELECT ON customers TO PUBLIC"]);
}

#[tokio::test]
async fn a_truncate_after_deletes_in_the_same_plan_counts_only_the_rows_left() {
    let report = common::dry_run(SHOP, "DELETE FROM customers WHERE id <= 3;\nTRUNCATE customers CASCADE;").await;
    assert_eq!(effect(&report, 1, "public.customers").deleted, Some(3));
    let truncated = effect(&report, 2, "public.customers");
    assert_eq!(
        (truncated.truncated, truncated.deleted),
        (Some(37), Some(0)),
        "the counters went backwards: a truncation"
    );
    assert_eq!(report.summary.rows_destroyed, 40);
}

#[tokio::test]
async fn a_delete_without_where_on_an_empty_table_is_a_warning_and_on_one_of_unknown_size_an_error() {
    // The source carries data (pg_dump's COPY, empty for audit): audit is known to be empty.
    let with_data = format!("{SHOP}\nCOPY audit (id, what) FROM stdin;\n\\.\n");
    let report = common::dry_run(&with_data, "DELETE FROM audit;").await;
    let finding = report.findings.iter().find(|f| f.rule == "delete-without-where").expect("a static finding");
    assert_eq!(finding.severity, pgshadow::report::Severity::Warning);
    assert_eq!(report.verdict, Verdict::Warn);

    // Only INSERTs for customers: nothing says audit is empty in production, so every row of it could go.
    let report = common::dry_run(SHOP, "DELETE FROM audit;").await;
    let finding = report.findings.iter().find(|f| f.rule == "delete-without-where").expect("a finding");
    assert_eq!(finding.severity, pgshadow::report::Severity::Error);
    assert_eq!(effect(&report, 1, "public.audit").deleted, None);
    assert_eq!(report.summary.unknown_tables, ["public.audit"]);
    assert_eq!(report.verdict, Verdict::Fail);
}

#[tokio::test]
async fn privileges_granted_and_revoked_are_named() {
    let report = common::dry_run(
        "CREATE TABLE t (a int);",
        "GRANT SELECT, INSERT ON t TO PUBLIC;\nREVOKE INSERT ON t FROM PUBLIC;",
    )
    .await;
    let change = |i: usize| {
        report.statements[i]
            .schema_changes
            .iter()
            .map(|c| (c.command.as_str(), c.identity.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(change(0), [("GRANT", "SELECT, INSERT ON t TO PUBLIC")]);
    assert_eq!(change(1), [("REVOKE", "INSERT ON t FROM PUBLIC")]);
}

#[tokio::test]
async fn rules_a_statement_fires_are_named_and_their_rows_counted() {
    let schema = "CREATE TABLE orders (id int PRIMARY KEY, total int);
        CREATE TABLE orders_log (id int, action text);
        CREATE RULE log_delete AS ON DELETE TO orders DO ALSO INSERT INTO orders_log VALUES (OLD.id, 'deleted');
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 10;
        CREATE RULE big_orders_delete AS ON DELETE TO big_orders DO INSTEAD DELETE FROM orders WHERE id = OLD.id;
        INSERT INTO orders VALUES (1, 5), (2, 50), (3, 70);";
    let report = common::dry_run(schema, "UPDATE orders SET total = 6 WHERE id = 1;\nDELETE FROM big_orders;").await;
    assert!(report.statements[0].rules_fired.is_empty(), "an UPDATE fires no ON DELETE rule");
    let fired: Vec<(&str, bool)> =
        report.statements[1].rules_fired.iter().map(|r| (r.rule.as_str(), r.instead)).collect();
    assert_eq!(fired, [("big_orders_delete on public.big_orders", true), ("log_delete on public.orders", false)]);
    assert_eq!(effect(&report, 2, "public.orders").deleted, Some(2));
    assert_eq!(effect(&report, 2, "public.orders_log").inserted, 2);
}

#[tokio::test]
async fn a_lock_on_a_table_the_plan_dropped_names_the_table_not_its_oid() {
    let plan = "DROP TABLE audit;\nSELECT count(*) FROM customers;";
    let report = common::dry_run(SHOP, plan).await;
    let held: Vec<&str> = report.statements[1].locks_held.iter().map(|l| l.table.as_str()).collect();
    assert!(held.contains(&"public.audit"), "the dropped table by name: {held:?}");
    let finding = report
        .findings
        .iter()
        .find(|f| f.rule == "statements-after-exclusive-lock")
        .unwrap_or_else(|| panic!("the lock is reported: {:?}", report.findings));
    assert!(finding.message.contains("public.audit (since statement 1)"), "{}", finding.message);
}

const PARTITIONED: &str = "
CREATE TABLE events (tenant text NOT NULL, at date NOT NULL, payload text) PARTITION BY LIST (tenant);
CREATE TABLE events_acme PARTITION OF events FOR VALUES IN ('acme') PARTITION BY RANGE (at);
CREATE TABLE events_acme_old PARTITION OF events_acme FOR VALUES FROM ('2000-01-01') TO ('2025-01-01');
CREATE TABLE events_acme_new PARTITION OF events_acme FOR VALUES FROM ('2025-01-01') TO ('2100-01-01');
CREATE TABLE events_rest PARTITION OF events DEFAULT;
CREATE TABLE events_empty PARTITION OF events FOR VALUES IN ('nobody') PARTITION BY RANGE (at);
INSERT INTO events SELECT CASE WHEN g % 3 = 0 THEN 'other' ELSE 'acme' END, date '2024-06-01' + g, 'p'
FROM generate_series(1, 300) AS g;
CREATE MATERIALIZED VIEW tenants AS SELECT tenant, count(*) AS n FROM events GROUP BY tenant;
";

/// A partitioned table holds no rows of its own, and neither is it an ordinary table, nor is a materialized view: a
/// lock on one is reported all the same, a partitioned table's with the rows of the partitions below it, a
/// materialized view's unknown, never 0.
#[tokio::test]
async fn locks_on_partitioned_tables_and_materialized_views_are_reported() {
    let plan = "ALTER TABLE events DETACH PARTITION events_rest;\nREFRESH MATERIALIZED VIEW tenants;\n\
                LOCK TABLE events_empty IN SHARE MODE;";
    let report = common::dry_run(PARTITIONED, plan).await;
    let lock = |statement: usize, table: &str, mode: &str| {
        report.statements[statement - 1]
            .locks
            .iter()
            .find(|l| l.table == table && l.mode == mode)
            .unwrap_or_else(|| panic!("no {mode} on {table}: {:?}", report.statements[statement - 1].locks))
            .clone()
    };
    // 200 rows in the two partitions of events_acme, 100 in events_rest.
    assert_eq!(lock(1, "public.events", "AccessExclusiveLock").rows, Some(300));
    assert_eq!(lock(1, "public.events_rest", "AccessExclusiveLock").rows, Some(100));
    assert_eq!(lock(2, "public.tenants", "AccessExclusiveLock").rows, None, "a materialized view's rows are unknown");
    assert_eq!(lock(3, "public.events_empty", "ShareLock").rows, Some(0), "no partition below it: no rows");
    let held: Vec<&str> = report.statements[2].locks_held.iter().map(|l| l.table.as_str()).collect();
    assert!(held.contains(&"public.events") && held.contains(&"public.tenants"), "{held:?}");
    let longest = report.summary.longest_exclusive_lock.as_ref().expect("an exclusive lock");
    assert_eq!(longest.table, "public.events", "{longest:?}");
}

/// Detaching a partition drops the copies PostgreSQL keeps of the constraints around it (a foreign key's for the
/// partition it references): implementation details, not constraints the plan dropped; the parent's stay.
#[tokio::test]
async fn detaching_a_partition_drops_no_constraint_of_the_plans() {
    let schema = "CREATE TABLE orders (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
CREATE TABLE notes (id int PRIMARY KEY, order_id int, region text, FOREIGN KEY (order_id, region) REFERENCES orders);
INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 30) AS g;
INSERT INTO notes SELECT g, g, 'us' FROM generate_series(1, 29, 2) AS g;";
    let report = common::dry_run(schema, "ALTER TABLE orders DETACH PARTITION orders_eu;").await;
    let statement = &report.statements[0];
    assert_eq!(statement.status, Status::Ok, "{statement:?}");
    assert!(statement.constraint_changes.is_empty(), "{:?}", statement.constraint_changes);
    assert!(report.findings.iter().all(|f| f.rule != "constraint-dropped"), "{:?}", report.findings);
    assert!(statement.locks.iter().any(|l| l.table == "public.orders" && l.mode == "AccessExclusiveLock"));
}

/// A constraint added to a partitioned table is one change, with the rows of its partitions: not one per partition's
/// copy of it, nor none at all.
#[tokio::test]
async fn a_constraint_of_a_partitioned_table_changes_once_with_its_partitions_rows() {
    let plan = "ALTER TABLE events ADD CONSTRAINT events_tenant_named CHECK (tenant <> '');\n\
                ALTER TABLE events DROP CONSTRAINT events_tenant_named;";
    let report = common::dry_run(PARTITIONED, plan).await;
    let changes = |i: usize| -> Vec<(String, String, Option<u64>)> {
        let changes = &report.statements[i].constraint_changes;
        changes.iter().map(|c| (c.constraint.clone(), c.change.clone(), c.rows)).collect()
    };
    let named = "events_tenant_named on public.events".to_owned();
    assert_eq!(changes(0), [(named.clone(), "added".to_owned(), Some(300))]);
    assert_eq!(changes(1), [(named, "dropped".to_owned(), Some(300))]);
}

/// An UPDATE of the partition key moves rows to another partition, which Postgres does by deleting and inserting
/// them: the report counts them as updated, and nothing as deleted or destroyed.
#[tokio::test]
async fn rows_an_update_moves_to_another_partition_are_updated_not_deleted() {
    // 20 acme rows before July 2024 go to the default partition.
    let plan = "UPDATE events SET tenant = 'other' WHERE tenant = 'acme' AND at < '2024-07-01';";
    let report = common::dry_run(PARTITIONED, plan).await;
    let statement = &report.statements[0];
    let effects: Vec<(&str, u64, Option<u64>, Option<u64>)> =
        statement.table_effects.iter().map(|e| (e.table.as_str(), e.inserted, e.updated, e.deleted)).collect();
    assert_eq!(effects, vec![("public.events_acme_old", 0, Some(20), Some(0))], "{statement:?}");
    assert_eq!((report.summary.rows_deleted, report.summary.rows_destroyed), (0, 0));
    assert!(statement.note.as_deref().is_some_and(|n| n.starts_with("20 row(s) moved")), "{:?}", statement.note);
}

/// A DO block's own deletions are its effects, not cascades: only what a foreign key cascades to from them is.
#[tokio::test]
async fn rows_a_do_block_deletes_are_its_own_and_only_what_they_cascade_to_is_a_cascade() {
    let schema = "CREATE TABLE teams (id int PRIMARY KEY);
CREATE TABLE members (id int PRIMARY KEY, team_id int REFERENCES teams ON DELETE CASCADE);
CREATE TABLE login_log (id int PRIMARY KEY, at date);
CREATE TABLE folders (id int PRIMARY KEY, parent_id int REFERENCES folders ON DELETE CASCADE);
INSERT INTO folders VALUES (1, NULL), (2, 1), (3, 2), (4, NULL);
INSERT INTO teams SELECT g FROM generate_series(1, 10) AS g;
INSERT INTO members SELECT g, 1 + g % 10 FROM generate_series(1, 50) AS g;
INSERT INTO login_log SELECT g, date '2020-01-01' + g FROM generate_series(1, 30) AS g;";
    let plan = "DO $$ BEGIN
    DELETE FROM teams WHERE id <= 2;
    EXECUTE 'DELETE FROM login_log WHERE at < ' || quote_literal('2020-01-11');
    DELETE FROM folders WHERE id = 1;
END $$;";
    let report = common::dry_run(schema, plan).await;
    let direct = |table: &str| (effect(&report, 1, table).deleted, effect(&report, 1, table).direct);
    assert_eq!(direct("public.teams"), (Some(2), true));
    assert_eq!(direct("public.login_log"), (Some(9), true));
    assert_eq!(direct("public.members"), (Some(10), false), "cascaded from teams");
    assert_eq!(direct("public.folders"), (Some(3), true), "a folder's own subfolders: its own table");
    let cascade: Vec<&str> =
        report.findings.iter().filter(|f| f.rule == "cascade-delete").map(|f| f.message.as_str()).collect();
    assert_eq!(cascade, ["cascade deleted rows in public.members (10 rows)"], "{:?}", report.findings);
}

const DEFERRED: &str = "
CREATE TABLE users (id int PRIMARY KEY);
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE seats (n int CONSTRAINT seats_n_key UNIQUE DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE codes (c int CONSTRAINT codes_c_key UNIQUE DEFERRABLE INITIALLY IMMEDIATE);
INSERT INTO users VALUES (1);
INSERT INTO seats VALUES (1), (2);
";

/// Dry-runs each of `plans` on [`DEFERRED`], on every PostgreSQL the tests have: the reports, by major version.
async fn on_every_version(plans: &[&str]) -> Vec<(u32, Vec<pgshadow::Report>)> {
    let installations = common::installations();
    assert!(!installations.is_empty(), "no PostgreSQL to test with");
    let schema = Schema::sql("schema.sql", DEFERRED);
    let mut out = Vec::new();
    for installation in installations {
        let postgres =
            pgshadow::postgres::Selection { pg_bin: Some(installation.binaries.dir.clone()), ..Default::default() };
        let shadow =
            Shadow::start_local(&pgshadow::LocalOptions { postgres, ..Default::default() }).await.expect("shadow");
        let mut reports = Vec::new();
        for sql in plans {
            let plan = Plan::parse("plan.sql", sql).expect("plan parses");
            let report =
                pgshadow::dry_run_on(&shadow, &plan, Some(&schema), &DryRunOptions::default()).await.expect("dry-run");
            let major = installation.version.major;
            assert!(report.shadow.version.starts_with(&format!("{major}.")), "ran on {}", report.shadow.version);
            reports.push(report);
        }
        shadow.shutdown().await.expect("shutdown");
        out.push((installation.version.major, reports));
    }
    out
}

/// A deferred foreign key the plan leaves violated: every statement succeeds, the COMMIT that ends it would not —
/// the report's `commit_error` and `fails-at-commit` say so; fixed before the plan ends, nothing is found.
#[tokio::test]
async fn a_deferred_foreign_key_left_violated_fails_at_the_commit_that_ends_the_plan() {
    let plans =
        ["INSERT INTO orders VALUES (1, 7);", "INSERT INTO orders VALUES (1, 7);\nINSERT INTO users VALUES (7);"];
    for (version, reports) in on_every_version(&plans).await {
        let (orphan, fixed) = (&reports[0], &reports[1]);
        assert_eq!(orphan.statements[0].status, Status::Ok, "{version}");
        let error = orphan.commit_error.as_ref().unwrap_or_else(|| panic!("{version}: no commit_error"));
        assert_eq!(error.sqlstate.as_deref(), Some("23503"), "{version}: {error:?}");
        assert_eq!(error.constraint_name.as_deref(), Some("orders_user_id_fkey"), "{version}: {error:?}");
        // The key's column, not its value: the shadow may hold production's rows.
        let detail = error.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("(user_id)=(...)") && !detail.contains('7'), "{version}: {error:?}");
        assert_eq!(orphan.verdict, Verdict::Fail, "{version}: {:?}", orphan.findings);
        let finding = orphan.findings.iter().find(|f| f.rule == "fails-at-commit");
        let finding = finding.unwrap_or_else(|| panic!("{version}: {:?}", orphan.findings));
        assert_eq!(finding.statement, None);
        assert!(finding.message.contains("[23503]"), "{}", finding.message);
        assert!(pgshadow::report::render_json(orphan).contains("\"commit_error\""), "{version}");
        let table = pgshadow::report::render_table(orphan);
        assert!(table.contains("COMMIT fails: "), "{version}: the table does not say so:\n{table}");
        let markdown = pgshadow::report::render_markdown(orphan);
        assert!(markdown.contains("| **COMMIT fails** |"), "{version}:\n{markdown}");

        assert!(fixed.commit_error.is_none(), "{version}: {:?}", fixed.commit_error);
        assert!(!fixed.findings.iter().any(|f| f.rule == "fails-at-commit"), "{version}");
        assert_ne!(fixed.verdict, Verdict::Fail, "{version}: {:?}", fixed.findings);
        assert!(!pgshadow::report::render_json(fixed).contains("commit_error"), "absent when there is none");
    }
}

/// The plan's own COMMIT fails on a deferred foreign key: that statement carries the error, and the plan stops.
#[tokio::test]
async fn the_plans_own_commit_carries_the_error_of_a_deferred_constraint() {
    let plans = ["BEGIN;\nINSERT INTO orders VALUES (1, 7);\nCOMMIT;\nSELECT 1;"];
    for (version, reports) in on_every_version(&plans).await {
        let own = &reports[0];
        let statuses: Vec<Status> = own.statements.iter().map(|s| s.status).collect();
        assert_eq!(statuses, [Status::Ok, Status::Ok, Status::Error, Status::NotRun], "{version}");
        let error = own.statements[2].error.as_ref().expect("the COMMIT's error");
        assert_eq!(error.sqlstate.as_deref(), Some("23503"), "{version}: {error:?}");
        assert_eq!(error.constraint_name.as_deref(), Some("orders_user_id_fkey"));
        let detail = error.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("(user_id)=(...)") && !detail.contains('7'), "{error:?}");
        assert_eq!((error.line, error.column), (3, 1), "at the COMMIT");
        assert!(own.commit_error.is_none(), "{version}: reported once, at the COMMIT");
        assert!(own.findings.iter().any(|f| f.rule == "statement-error" && f.statement == Some(3)), "{version}");
        assert_eq!(own.verdict, Verdict::Fail);
    }
}

/// A deferrable unique constraint: duplicates left at the end fail at COMMIT; a swap through a duplicate does not.
#[tokio::test]
async fn a_deferrable_unique_constraint_left_violated_fails_at_commit() {
    let plans = [
        "UPDATE seats SET n = 1 WHERE n = 2;",
        "UPDATE seats SET n = 3 WHERE n = 1;\nUPDATE seats SET n = 1 WHERE n = 2;\nUPDATE seats SET n = 2 WHERE n = 3;",
    ];
    for (version, reports) in on_every_version(&plans).await {
        let (duplicate, swap) = (&reports[0], &reports[1]);
        let error = duplicate.commit_error.as_ref().unwrap_or_else(|| panic!("{version}: no commit_error"));
        assert_eq!(error.sqlstate.as_deref(), Some("23505"), "{version}: {error:?}");
        assert_eq!(error.constraint_name.as_deref(), Some("seats_n_key"));
        assert_eq!(duplicate.verdict, Verdict::Fail);
        assert!(duplicate.findings.iter().any(|f| f.rule == "fails-at-commit"), "{version}");
        assert!(swap.commit_error.is_none(), "{version}: {:?}", swap.commit_error);
    }
}

/// After the plan's own COMMIT checked them, its next transaction defers what is declared deferred (the orphan is
/// fixed before that COMMIT) and keeps immediate what is declared immediate (the duplicate fails at once); a check
/// at the plan's COMMIT that is made again at its end finds a row fixed since fixed.
#[tokio::test]
async fn after_the_plans_own_commit_constraints_are_deferred_as_declared() {
    let plans = [
        "BEGIN;\nCOMMIT;\nBEGIN;\nINSERT INTO orders VALUES (2, 8);\nINSERT INTO users VALUES (8);\n\
         INSERT INTO codes VALUES (1);\nINSERT INTO codes VALUES (1);\nCOMMIT;",
        "BEGIN;\nINSERT INTO orders VALUES (3, 9);\nINSERT INTO users VALUES (9);\nCOMMIT;\n\
         DELETE FROM orders WHERE id = 3;\nDELETE FROM users WHERE id = 9;",
    ];
    for (version, reports) in on_every_version(&plans).await {
        let (later, twice) = (&reports[0], &reports[1]);
        let statuses: Vec<Status> = later.statements.iter().map(|s| s.status).collect();
        assert_eq!(&statuses[..6], [Status::Ok; 6], "{version}: {:?}", later.statements[3].error);
        assert_eq!(statuses[6], Status::Error, "{version}: an immediate unique check fails at its statement");
        assert_eq!(later.statements[6].error.as_ref().and_then(|e| e.sqlstate.as_deref()), Some("23505"));
        assert!(twice.commit_error.is_none(), "{version}: {:?}", twice.commit_error);
        assert!(twice.statements.iter().all(|s| s.status == Status::Ok), "{version}");
    }
}

#[tokio::test]
async fn a_statements_duration_is_its_own_a_sleep_its_length_and_a_fast_one_not_zero() {
    // Timed by the server's clock on each side of it: a fast statement whose answer came with the reads' is not 0.
    let plan = "SELECT pg_sleep(0.2);\nUPDATE customers SET name = name WHERE id <= 20;\n\
                CREATE TABLE later (id int);\nSELECT pg_sleep(0.05);\n";
    let report = common::dry_run(SHOP, plan).await;
    let took: Vec<f64> = report.statements.iter().map(|s| s.duration_ms.expect("a duration")).collect();
    assert!((200.0..1000.0).contains(&took[0]), "{took:?}");
    assert!(took[1] > 0.0 && took[1] < 200.0, "{took:?}");
    assert!(took[2] > 0.0 && took[2] < 200.0, "{took:?}");
    assert!((50.0..200.0).contains(&took[3]), "{took:?}");
}

#[tokio::test]
async fn many_rows_of_a_type_the_driver_has_not_seen_come_back_and_a_copy_the_parser_rejects_is_timed() {
    // A result of a user type is prepared first: sent unprepared, the driver looked the type up in the middle of its
    // rows and waited on itself until the run's timeout.
    let schema = "CREATE TYPE mood AS ENUM ('ok', 'meh');\n\
                  CREATE TABLE people (id int, m mood, n int);\n\
                  INSERT INTO people SELECT g, 'ok', g FROM generate_series(1, 5000) AS g;\n";
    let options = DryRunOptions { timeout: std::time::Duration::from_secs(60), ..DryRunOptions::default() };
    // A COPY sqlparser cannot read (its WHERE) is still a COPY: timed as it ran, not between two clock readings the
    // server answered before its data came.
    let rows: String = (1..=50_000).map(|i| format!("{i}\tok\t{i}\n")).collect();
    let plan = format!("SELECT id, m FROM people;\nCOPY people FROM STDIN WHERE n > 0;\n{rows}\\.\n");
    let report = common::dry_run_with(schema, &plan, &options).await;
    assert_eq!(report.statements[0].status, Status::Ok, "{:?}", report.statements[0]);
    assert_eq!(report.statements[0].rows_affected, Some(5000));
    let copy = &report.statements[1];
    assert_eq!((copy.status, copy.rows_affected), (Status::Ok, Some(50_000)), "{copy:?}");
    assert!(copy.duration_ms.is_some_and(|ms| ms > 1.0), "{copy:?}");
}

#[tokio::test]
async fn a_cast_that_fails_on_the_shadows_rows_does_not_print_the_value() {
    // The shadow may hold production's rows: the message of a data exception keeps its shape, not the value.
    let schema = "CREATE TABLE people (id int PRIMARY KEY, contact text);\n\
                  INSERT INTO people VALUES (1, '42'), (2, 'ann@example.com');\n";
    let plan = "ALTER TABLE people ALTER COLUMN contact TYPE integer USING contact::integer;";
    let report = common::dry_run(schema, plan).await;
    let error = report.statements[0].error.as_ref().expect("the cast fails");
    assert_eq!(error.sqlstate.as_deref(), Some("22P02"), "{error:?}");
    assert!(error.message.contains("for type integer: \"...\""), "{error:?}");
    assert!(!pgshadow::report::render_json(&report).contains("ann@example.com"));
}
