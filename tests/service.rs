//! The library's service: a source prepared once, many plans dry-run against it concurrently on clones of their
//! own, each isolated from the others.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pgshadow::service::{Service, ServiceOptions};
use pgshadow::{Plan, Policy, Schema, Verdict};

fn seed() -> Schema {
    let path = common::root().join("scenarios/seed-incident/schema.sql");
    Schema::sql("seed.sql", std::fs::read_to_string(path).expect("the seed schema"))
}

/// A service whose pool holds one clone of the seed source.
async fn one_clone() -> Service {
    let options = ServiceOptions { pool_size: 1, ..ServiceOptions::default() };
    let service = Service::start(options).await.expect("service starts");
    service.register("seed", &seed()).await.expect("registers");
    service
}

/// Lets the pool settle (the filler replaces what the first runs dropped, an extra clone made on the spot, say), and
/// returns how many clones it made so far.
async fn settled(service: &Service) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while service.sources()[0].ready < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    clones_made(service)
}

fn clones_made(service: &Service) -> u64 {
    service.metrics().clones.load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_plans_run_concurrently_each_on_its_own_clone() {
    let service = Arc::new(Service::start(ServiceOptions::default()).await.expect("service starts"));
    let info = service.register("seed", &seed()).await.expect("the seed registers");
    assert_eq!(info.schema.as_ref().map(|s| s.failed), Some(0));
    assert_eq!(info.sha256.len(), 64);

    let drop_users = Plan::parse("drop.sql", "DROP TABLE users CASCADE;").expect("plan");
    let count_users = Plan::parse("count.sql", "DELETE FROM users WHERE id > 4;").expect("plan");
    let mut runs = Vec::new();
    for i in 0..12 {
        let (service, plan) = (Arc::clone(&service), if i % 2 == 0 { drop_users.clone() } else { count_users.clone() });
        runs.push(tokio::spawn(async move { service.dry_run("seed", &plan, &Policy::default()).await }));
    }
    for (i, run) in runs.into_iter().enumerate() {
        let report = run.await.expect("task").expect("dry-run");
        assert_eq!(report.shadow.schema.as_ref().map(|s| s.sha256.as_str()), Some(info.sha256.as_str()));
        if i % 2 == 0 {
            // Every DROP saw the table whole: none ran after another's DROP, none waited on another's lock.
            assert_eq!(report.summary.objects_dropped, 9, "run {i}: {:?}", report.statements[0].error);
            assert_eq!(report.summary.rows_destroyed, 8);
            // `printf 'DROP TABLE users CASCADE;' | sha256sum`
            assert_eq!(report.plan.sha256, "908de0f27d1463055d0e152f03158104f643759b3e84942571e38d9414ee4232");
        } else {
            let users = report.statements[0].table_effects.iter().find(|e| e.table == "public.users");
            assert_eq!(users.and_then(|e| e.deleted), Some(4), "run {i}: the users the DROPs took are all there");
        }
    }
    assert!(service.metrics().clones.load(std::sync::atomic::Ordering::Relaxed) >= 12);
    let service = Arc::try_unwrap(service).unwrap_or_else(|_| panic!("no run holds the service"));
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_is_cancelled_and_the_service_goes_on() {
    let options = ServiceOptions { timeout: Duration::from_millis(500), ..ServiceOptions::default() };
    let service = Service::start(options).await.expect("service starts");
    service.register("seed", &seed()).await.expect("registers");
    let slow = Plan::parse("slow.sql", "SELECT pg_sleep(30);").expect("plan");
    let started = std::time::Instant::now();
    match service.dry_run("seed", &slow, &Policy::default()).await {
        Err(pgshadow::Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let fine = Plan::parse("fine.sql", "DELETE FROM users WHERE id = 1;").expect("plan");
    let report = service.dry_run("seed", &fine, &Policy::default()).await.expect("the next run works");
    assert_eq!(report.verdict, Verdict::Fail, "the cascade to orders fails it");
    assert!(matches!(service.dry_run("nope", &fine, &Policy::default()).await, Err(pgshadow::Error::UnknownSource(_))));
    assert!(matches!(service.register("seed", &seed()).await, Err(pgshadow::Error::SourceExists(_))));
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_bounded_and_says_it_was_cut() {
    let options = ServiceOptions { max_report_items: 3, ..ServiceOptions::default() };
    let service = Service::start(options).await.expect("service starts");
    service.register("seed", &seed()).await.expect("registers");
    let plan = Plan::parse("drop.sql", "DROP TABLE users CASCADE;").expect("plan");
    let report = service.dry_run("seed", &plan, &Policy::default()).await.expect("dry-run");
    assert_eq!(report.statements[0].dropped_objects.len(), 3);
    assert_eq!(report.summary.objects_dropped, 9, "totals cover everything");
    let cut = report.truncated.as_deref().unwrap_or_default();
    assert!(cut.contains("cut to 3 items"), "{cut}");
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_clone_is_put_back_and_a_spoiled_one_is_never_reused() {
    let service = one_clone().await;
    let policy = Policy::default();
    // Reports the sequence's state as its error message, so two runs can be compared.
    let probe = Plan::parse(
        "probe.sql",
        "DO $$ BEGIN RAISE EXCEPTION 'sequence at % (called %), % users', \
         (SELECT last_value FROM public.users_id_seq), (SELECT is_called FROM public.users_id_seq), \
         (SELECT count(*) FROM public.users); END $$;",
    )
    .expect("plan");
    let state = |report: pgshadow::Report| report.statements[0].error.as_ref().map(|e| e.message.clone());
    let before = state(service.dry_run("seed", &probe, &policy).await.expect("probe"));
    assert!(before.as_deref().is_some_and(|m| m.starts_with("sequence at")), "{before:?}");

    let clones = || clones_made(&service);
    let made = settled(&service).await;
    let moves = Plan::parse(
        "moves.sql",
        "SELECT setval('public.users_id_seq', 1000);\nINSERT INTO users (name, email) SELECT 'x' || g, 'x' || g || '@x' FROM generate_series(1, 500) g;",
    )
    .expect("plan");
    let report = service.dry_run("seed", &moves, &policy).await.expect("moves");
    assert_eq!(report.summary.rows_inserted, 500);
    let after = state(service.dry_run("seed", &probe, &policy).await.expect("probe again"));
    assert_eq!(after, before, "the next run on the reused clone sees the source as it was");
    assert_eq!(clones(), made, "the clone was put back, not replaced");

    // A statement outside the transaction spoils its clone: it is dropped and a new one is made.
    let vacuum = Plan::parse("vacuum.sql", "VACUUM users;").expect("plan");
    service.dry_run("seed", &vacuum, &policy).await.expect("vacuum");
    let after = state(service.dry_run("seed", &probe, &policy).await.expect("probe after vacuum"));
    assert_eq!(after, before);
    assert!(clones() > made, "the spoiled clone was replaced");
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_clone_is_vacuumed_when_a_plan_grew_a_table_past_a_mebibyte_and_not_for_a_few_rows() {
    let service = one_clone().await;
    let policy = Policy::default();
    let probe = Plan::parse(
        "probe.sql",
        "DO $$ BEGIN RAISE EXCEPTION '% bytes', pg_catalog.pg_relation_size('public.users'); END $$;",
    )
    .expect("plan");
    let size = |report: pgshadow::Report| -> i64 {
        let message = report.statements[0].error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
        message.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{message}"))
    };
    let insert = |rows: u32| {
        let sql = format!(
            "INSERT INTO users (name, email) SELECT 'n' || g, repeat('e', 40) || g FROM generate_series(1, {rows}) g;"
        );
        Plan::parse("insert.sql", &sql).expect("plan")
    };
    // Every run below reuses the pool's one clone, once the filler has made it.
    let made = settled(&service).await;
    let before = size(service.dry_run("seed", &probe, &policy).await.expect("probe"));
    // A few rows: their dead copies stay on the reused clone until there are more.
    service.dry_run("seed", &insert(300), &policy).await.expect("a few rows");
    let after_few = size(service.dry_run("seed", &probe, &policy).await.expect("probe"));
    assert!(after_few > before, "a few dead rows are kept: {before} -> {after_few}");
    // Past a mebibyte: vacuumed back to the size it had.
    service.dry_run("seed", &insert(30_000), &policy).await.expect("many rows");
    let after_many = size(service.dry_run("seed", &probe, &policy).await.expect("probe"));
    assert_eq!(after_many, before, "vacuumed back");
    assert_eq!(clones_made(&service), made, "one clone served every run");
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_cannot_see_or_signal_each_other() {
    let service = Arc::new(Service::start(ServiceOptions::default()).await.expect("service starts"));
    service.register("seed", &seed()).await.expect("registers");
    let slow = Plan::parse("slow.sql", "SELECT pg_sleep(3) AS secret_marker_4711;").expect("plan");
    let running = {
        let service = Arc::clone(&service);
        tokio::spawn(async move { service.dry_run("seed", &slow, &Policy::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Another plan looks for the first one's query and tries to end its session.
    let peek = Plan::parse(
        "peek.sql",
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE query LIKE '%secret_marker_4711%' \
         AND pid <> pg_catalog.pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%') THEN \
         RAISE EXCEPTION 'saw another run''s query'; END IF; END $$;\n\
         SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
         WHERE usename LIKE 'pgshadow%' AND pid <> pg_catalog.pg_backend_pid();",
    )
    .expect("plan");
    let report = service.dry_run("seed", &peek, &Policy::default()).await.expect("peek");
    assert_eq!(report.statements[0].status, pgshadow::report::Status::Ok, "{:?}", report.statements[0].error);
    let error = report.statements[1].error.as_ref().map(|e| e.sqlstate.clone());
    assert_eq!(error, Some(Some("42501".to_owned())), "signalling another run's session is refused");
    assert!(report.shadow.role.starts_with("pgshadow_run_"), "{}", report.shadow.role);
    let first = running.await.expect("task").expect("the first run was not disturbed");
    assert_eq!(first.statements[0].status, pgshadow::report::Status::Ok, "{:?}", first.statements[0].error);
    let service = Arc::try_unwrap(service).unwrap_or_else(|_| panic!("no run holds the service"));
    service.shutdown().await.expect("shutdown");
}

/// The error message of a plan's last statement: `probe` raises what the session holds.
/// Dry-runs `sql` on the service's only source once its clone is back in the pool: a clone goes back off the request
/// path, so the next run gets the same one.
async fn when_ready(service: &Service, source: &str, sql: &str, policy: &Policy) -> pgshadow::Report {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while service.sources()[0].ready < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let plan = Plan::parse("plan.sql", sql).expect("plan");
    service.dry_run(source, &plan, policy).await.expect("dry-run")
}

fn probed(report: &pgshadow::Report) -> String {
    let last = report.statements.last().expect("a statement");
    last.error.as_ref().map(|e| e.message.clone()).unwrap_or_else(|| panic!("the probe raised nothing: {last:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_serves_the_next_run_only_with_nothing_of_the_last_plan_left() {
    let options = ServiceOptions { pool_size: 1, ..ServiceOptions::default() };
    let service = Service::start(options).await.expect("service starts");
    // pg_trgm is a trusted extension of C functions: a plan that calls one may leave state a C library keeps.
    let source = Schema::sql("trgm.sql", "CREATE EXTENSION pg_trgm;\nCREATE TABLE t (id int);\n");
    service.register("trgm", &source).await.expect("registers");
    let policy = Policy::default();
    let probe = "DO $$ BEGIN RAISE EXCEPTION 'backend % prepared % advisory % setting % temp %', \
         pg_catalog.pg_backend_pid(), (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE name = 'leftover'), \
         (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()), \
         coalesce(pg_catalog.current_setting('app.leftover', true), ''), \
         (SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'leftover_temp'); END $$;";
    let backend = |probe: &str| probe.split_whitespace().nth(1).expect("a pid").to_owned();
    let run = |sql: String| {
        let (service, policy) = (&service, &policy);
        async move { probed(&when_ready(service, "trgm", &sql, policy).await) }
    };

    // A plan that leaves everything a rolled-back transaction does not undo, then shows it is there.
    let leaves = run(format!(
        "PREPARE leftover AS SELECT 1;\nSELECT pg_catalog.pg_advisory_lock(4711);\n\
         SELECT pg_catalog.set_config('app.leftover', 'x', false);\nCREATE TEMP TABLE leftover_temp (a int);\n{probe}"
    ))
    .await;
    assert!(leaves.ends_with("prepared 1 advisory 1 setting x temp 1"), "{leaves}");
    let next = run(probe.to_owned()).await;
    assert_eq!(backend(&next), backend(&leaves), "the next run was served by the same session");
    assert!(next.ends_with("prepared 0 advisory 0 setting  temp 0"), "nothing of the last plan is left: {next}");

    // After a C function, the session is not used again.
    let called = run(format!("SELECT similarity('abc', 'abd');\n{probe}")).await;
    assert_eq!(backend(&called), backend(&leaves));
    let after = run(probe.to_owned()).await;
    assert_ne!(backend(&after), backend(&called), "a fresh session after a plan called a C function");
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_constraint_trigger_of_another_language_ends_session_reuse_where_the_plan_commits() {
    let options = ServiceOptions { pool_size: 1, ..ServiceOptions::default() };
    let service = Service::start(options).await.expect("service starts");
    // tcn's trigger function is C: a constraint trigger deferred to COMMIT calls it only where the plan commits.
    let source = Schema::sql(
        "tcn.sql",
        "CREATE EXTENSION tcn;\nCREATE TABLE t (id int PRIMARY KEY);\nCREATE TABLE plain (id int PRIMARY KEY);\n\
         CREATE CONSTRAINT TRIGGER notify AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW EXECUTE FUNCTION triggered_change_notification();\n",
    );
    service.register("tcn", &source).await.expect("registers");
    let policy = Policy::default();
    let probe = "DO $$ BEGIN RAISE EXCEPTION 'backend %', pg_catalog.pg_backend_pid(); END $$;";
    let run = |sql: String| {
        let (service, policy) = (&service, &policy);
        async move { when_ready(service, "tcn", &sql, policy).await }
    };

    // A plan that ends with no function of another language called hands its session on.
    let first = probed(&run(probe.to_owned()).await);
    let plain = run("INSERT INTO plain VALUES (1);".to_owned()).await;
    assert!(plain.commit_error.is_none(), "{:?}", plain.commit_error);
    assert_eq!(probed(&run(probe.to_owned()).await), first, "the same session served the next runs");

    // The trigger fires only at the check where the plan ends: its C function still ends the session's reuse.
    let deferred = run("INSERT INTO t VALUES (1);".to_owned()).await;
    assert_eq!(deferred.statements[0].functions_called, [], "nothing called before the check");
    let after = probed(&run(probe.to_owned()).await);
    assert_ne!(after, first, "a fresh session after a deferred C trigger fired where the plan ends");

    // The plan's own COMMIT fires it: its COMMIT says so, and the session is not used again.
    let committed = run(format!("BEGIN;\nINSERT INTO t VALUES (2);\nCOMMIT;\n{probe}")).await;
    let commit = &committed.statements[2];
    assert_eq!(commit.functions_called.len(), 1, "{:?}", commit.functions_called);
    assert_eq!(commit.functions_called[0].function, "public.triggered_change_notification");
    assert_eq!(commit.functions_called[0].triggers, ["notify on public.t"]);
    assert_eq!(probed(&committed), after, "the plan ran in the session the last probe left");
    assert_ne!(probed(&run(probe.to_owned()).await), after, "a fresh session after the plan's COMMIT fired it");
    service.shutdown().await.expect("shutdown");
}
