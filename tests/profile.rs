//! Profiles (`pgshadow profile`): production's sizes and shape read from a live database that pgshadow never writes
//! to, with its values kept only as `--values` allows; and `run --profile`, which says whether a profile describes
//! the schema the shadow loaded.

mod common;

use std::process::Command;

use common::{json_of, stderr_of, Sandbox, SourceServer};
use serde_json::Value;

/// A text value that must never reach a profile unless `--values all` asks: common enough to be a most-common
/// value of its column.
const SECRET: &str = "Quokkasecret";

/// A source database with data: a foreign-key chain with cascades, an enum, a uuid, dates, free text, a partitioned
/// table, a standalone sequence; analyzed, except for one table made afterwards. Autovacuum is off, so that nothing
/// but the test changes its statistics.
fn source() -> SourceServer {
    let source = SourceServer::start();
    source.psql("postgres", "ALTER SYSTEM SET autovacuum = off");
    source.psql("postgres", "SELECT pg_reload_conf()");
    source.psql("postgres", "CREATE DATABASE shop");
    source.psql(
        "shop",
        &format!(
            "CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
             CREATE TABLE customers (id bigserial PRIMARY KEY, nickname varchar(40), email text NOT NULL,
                                     mood mood, created_on date, token uuid, score numeric(6,2), active boolean);
             CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                  customer_id bigint REFERENCES customers ON DELETE CASCADE,
                                  placed_at timestamptz, note text);
             CREATE TABLE order_lines (order_id int REFERENCES orders ON DELETE CASCADE, line int, qty int,
                                       PRIMARY KEY (order_id, line));
             CREATE TABLE events (id bigint, created_on date, payload text, PRIMARY KEY (id, created_on))
                 PARTITION BY RANGE (created_on);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             CREATE SEQUENCE invoice_numbers;
             SELECT nextval('invoice_numbers') FROM generate_series(1, 3);
             INSERT INTO customers (nickname, email, mood, created_on, token, score, active)
                 SELECT CASE WHEN g % 3 = 0 THEN '{SECRET}' ELSE 'nick' || g END, 'person' || g || '@example.com',
                        (ARRAY['happy', 'sad', 'meh'])[1 + g % 3]::mood, DATE '2024-01-01' + g % 365,
                        md5(g::text)::uuid, g % 1000 / 10.0, g % 2 = 0
                 FROM generate_series(1, 2000) g;
             INSERT INTO orders (customer_id, placed_at, note)
                 SELECT 1 + g % 2000, TIMESTAMPTZ '2024-01-01' + g * interval '1 hour', 'note ' || g
                 FROM generate_series(1, 4000) g;
             INSERT INTO order_lines SELECT 1 + g % 4000, g / 4000, g % 7 FROM generate_series(0, 7999) g;
             INSERT INTO events SELECT g, DATE '2024-06-01' + g % 400, 'event ' || g FROM generate_series(1, 1000) g;"
        ),
    );
    source.psql("shop", "ANALYZE");
    source.psql("shop", "CREATE TABLE late (id int PRIMARY KEY, body text); INSERT INTO late SELECT g, 'b' FROM generate_series(1, 50) g");
    source
}

/// `pgshadow profile` of `url` with `args`, written to `file`: the profile's text.
fn profile(sandbox: &Sandbox, url: &str, file: &str, args: &[&str]) -> String {
    let path = sandbox.input(file);
    let mut all = vec!["profile", "--from-url", url, "-o", path.to_str().expect("a UTF-8 path")];
    all.extend(args);
    let output = sandbox.run(&all);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    std::fs::read_to_string(&path).expect("the profile was written")
}

fn table<'a>(profile: &'a Value, name: &str) -> &'a Value {
    let tables = profile["tables"].as_array().expect("tables");
    tables.iter().find(|t| t["schema"] == "public" && t["name"] == name).unwrap_or_else(|| panic!("no table {name}"))
}

fn column<'a>(profile: &'a Value, table_name: &str, name: &str) -> &'a Value {
    let columns = table(profile, table_name)["columns"].as_array().expect("columns");
    columns.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no column {table_name}.{name}"))
}

/// Whether any `most_common_vals`, `histogram_bounds` or `most_common_elems` of the profile holds values.
fn holds_values(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(key, v)| {
            (matches!(key.as_str(), "most_common_vals" | "histogram_bounds" | "most_common_elems") && !v.is_null())
                || holds_values(v)
        }),
        Value::Array(list) => list.iter().any(holds_values),
        _ => false,
    }
}

/// What writing to the source would change: rows written per table, objects, analyze times.
fn footprint(source: &SourceServer) -> String {
    source.psql(
        "shop",
        "SELECT (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del + n_tup_hot_upd) FROM pg_stat_user_tables), \
                (SELECT count(*) FROM pg_class), (SELECT max(last_analyze) FROM pg_stat_user_tables), \
                (SELECT count(*) FROM pg_stats WHERE tablename = 'late'), \
                (SELECT string_agg(last_value::text, ',' ORDER BY sequencename) FROM pg_sequences)",
    )
}

#[test]
fn a_profile_holds_the_servers_numbers_keeps_values_only_as_asked_and_writes_nothing() {
    let source = source();
    let sandbox = Sandbox::new();
    let url = source.url("shop");
    let before = footprint(&source);

    let text = profile(&sandbox, &url, "profile.json", &[]);
    let p: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(p["profile_version"], 1);
    assert_eq!(p["values"], "keys");
    assert_eq!(p["database"], "shop");
    assert_eq!(p["server_version"].as_str(), Some(source.psql("shop", "SHOW server_version").as_str()));
    assert_eq!(p["catalog_sha256"].as_str().map(str::len), Some(64));

    // The numbers are the server's.
    let class = source.psql(
        "shop",
        "SELECT reltuples, relpages, pg_relation_size(oid), pg_indexes_size(oid), pg_total_relation_size(oid) \
         FROM pg_class WHERE oid = 'public.customers'::regclass",
    );
    let customers = table(&p, "customers");
    let ours = format!(
        "{}|{}|{}|{}|{}",
        customers["reltuples"].as_f64().expect("reltuples"),
        customers["relpages"],
        customers["heap_bytes"],
        customers["index_bytes"],
        customers["total_bytes"]
    );
    assert_eq!(ours, class);
    assert_eq!(customers["kind"], "table");
    assert_eq!(customers["analyzed"], true);
    assert!(customers["last_analyze"].as_str().is_some_and(|t| t.ends_with('Z')), "{customers}");
    let stats = source.psql(
        "shop",
        "SELECT null_frac, n_distinct, avg_width, correlation FROM pg_stats \
         WHERE tablename = 'customers' AND attname = 'created_on'",
    );
    let created = &column(&p, "customers", "created_on")["stats"];
    let ours = format!(
        "{}|{}|{}|{}",
        created["null_frac"].as_f64().expect("null_frac"),
        created["n_distinct"].as_f64().expect("n_distinct"),
        created["avg_width"],
        created["correlation"].as_f64().expect("correlation")
    );
    assert_eq!(ours, stats);

    // Keys, numbers, times and enums keep their values; free text does not.
    assert!(!text.contains(SECRET), "the default profile holds a text value");
    assert!(!text.contains("@example.com"), "the default profile holds a text value");
    assert!(!text.contains("\"NULL\""), "a missing statistic became a value");
    assert!(column(&p, "customers", "nickname")["stats"]["most_common_vals"].is_null());
    assert!(column(&p, "customers", "mood")["stats"]["most_common_vals"].as_array().is_some_and(|v| v.len() == 3));
    assert!(column(&p, "customers", "token")["stats"]["histogram_bounds"].is_array());
    assert!(column(&p, "customers", "created_on")["stats"]["histogram_bounds"].is_array());
    assert_eq!(column(&p, "customers", "token")["key_like"], true);
    assert_eq!(column(&p, "customers", "email")["key_like"], false);

    // Partitions, sequences, integer keys.
    let events = table(&p, "events");
    assert_eq!(events["kind"], "partitioned");
    let partitions: Vec<&str> =
        events["partitions"].as_array().expect("partitions").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(partitions, ["events_2024", "events_2025"]);
    assert_eq!(table(&p, "events_2024")["kind"], "partition");
    assert_eq!(table(&p, "events_2024")["partition_of"]["name"], "events");
    let invoices = p["sequences"].as_array().expect("sequences").iter().find(|s| s["name"] == "invoice_numbers");
    let invoices = invoices.expect("the standalone sequence");
    assert_eq!((invoices["last_value"].as_i64(), invoices["owned_by"].is_null()), (Some(3), true));
    let keys = |name: &str| table(&p, name)["integer_keys"].as_array().expect("integer keys").clone();
    let customer_key = &keys("customers")[0];
    assert_eq!((customer_key["column"].as_str(), customer_key["last_value"].as_i64()), (Some("id"), Some(2000)));
    assert_eq!(customer_key["max_value"].as_i64(), Some(i64::MAX));
    assert!(customer_key["sequence"].as_str().is_some_and(|s| s.contains("customers_id_seq")));
    let order_key = &keys("orders")[0];
    assert_eq!((order_key["last_value"].as_i64(), order_key["max_value"].as_i64()), (Some(4000), Some(2147483647)));
    let lines = keys("order_lines");
    let lead = lines.iter().find(|k| k["column"] == "order_id").expect("order_id");
    let second = lines.iter().find(|k| k["column"] == "line").expect("line");
    assert_eq!((lead["last_value"].as_i64(), second["last_value"].as_i64()), (Some(4000), None));

    // A table the server has no statistics of says so, and nothing is guessed.
    let late = table(&p, "late");
    assert_eq!(late["analyzed"], false, "{late}");
    assert!(late["reltuples"].is_null(), "the server's -1 (unknown) is not a row count: {late}");
    assert!(late["columns"].as_array().expect("columns").iter().all(|c| c["stats"].is_null()), "{late}");

    // Deterministic: a second profile, the URL given by DATABASE_URL this time, is the same, byte for byte.
    let again = sandbox.input("again.json");
    let output = sandbox
        .command(&["profile", "-o", again.to_str().expect("UTF-8")])
        .env("DATABASE_URL", &url)
        .output()
        .expect("run pgshadow");
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(std::fs::read_to_string(&again).expect("written"), text);

    // --values none: no values at all; --values all: everything, free text included.
    let none: Value = serde_json::from_str(&profile(&sandbox, &url, "none.json", &["--values", "none"])).expect("JSON");
    assert_eq!(none["values"], "none");
    assert!(!holds_values(&none), "--values none holds values");
    assert!(column(&none, "customers", "created_on")["stats"]["null_frac"].is_number());
    let all_text = profile(&sandbox, &url, "all.json", &["--values", "all"]);
    let all: Value = serde_json::from_str(&all_text).expect("JSON");
    assert_eq!(all["values"], "all");
    let nicknames = &column(&all, "customers", "nickname")["stats"]["most_common_vals"];
    assert!(nicknames.as_array().is_some_and(|v| v.iter().any(|n| n == SECRET)), "{nicknames}");
    assert!(all_text.contains(SECRET));

    // pgshadow wrote nothing: no rows, no objects, no ANALYZE, no sequence moved.
    assert_eq!(footprint(&source), before);
    sandbox.assert_clean();
}

#[test]
fn run_with_a_profile_says_whether_it_matches_the_schema_and_refuses_a_corrupt_one() {
    let source = source();
    let sandbox = Sandbox::new();
    let url = source.url("shop");
    let text = profile(&sandbox, &url, "profile.json", &[]);
    let profile_path = sandbox.input("profile.json");
    let profile_path = profile_path.to_str().expect("a UTF-8 path");
    let dump = Command::new("pg_dump").args(["--schema-only", "--dbname", &url]).output().expect("pg_dump");
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let structure = sandbox.input("structure.sql");
    std::fs::write(&structure, &dump.stdout).expect("write");
    let plan = sandbox.input("plan.sql");
    std::fs::write(&plan, "DELETE FROM orders WHERE id < 10;").expect("write");
    let (plan, structure) = (plan.to_str().expect("UTF-8"), structure.to_str().expect("UTF-8"));

    // The dump of the profiled database: the fingerprints match.
    let output = sandbox.run(&["run", plan, "--schema", structure, "--profile", profile_path, "--format", "json"]);
    assert_ne!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let report = json_of(&output);
    let p: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(report["profile"]["matches"], true, "{}", report["profile"]);
    assert_eq!(report["profile"]["shadow_catalog_sha256"], p["catalog_sha256"]);
    assert_eq!(report["profile"]["values"], "keys");
    assert_eq!(report["profile"]["file"], profile_path);

    // A live clone (--from-url, restored from pg_dump's archive), the profile given by PGSHADOW_PROFILE: a match too.
    let output = sandbox
        .command(&["run", plan, "--from-url", &url, "--format", "json"])
        .env("PGSHADOW_PROFILE", profile_path)
        .output()
        .expect("run pgshadow");
    assert_ne!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert_eq!(json_of(&output)["profile"]["matches"], true);

    // A schema with a column the profile does not have: the report says so and names it, in JSON and for people.
    let changed = sandbox.input("changed.sql");
    let mut changed_text = String::from_utf8_lossy(&dump.stdout).into_owned();
    changed_text.push_str("\nALTER TABLE public.orders ADD COLUMN coupon text;\n");
    std::fs::write(&changed, changed_text).expect("write");
    let changed = changed.to_str().expect("UTF-8");
    let output = sandbox.run(&["run", plan, "--schema", changed, "--profile", profile_path, "--format", "json"]);
    let report = json_of(&output);
    assert_eq!(report["profile"]["matches"], false);
    assert_eq!(report["profile"]["missing_in_profile"], serde_json::json!(["public.orders.coupon"]));
    assert!(report["profile"]["warning"].as_str().is_some_and(|w| w.contains("another schema")));
    let output = sandbox.run(&["run", plan, "--schema", changed, "--profile", profile_path]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("does NOT match") && table.contains("public.orders.coupon"), "{table}");
    let output = sandbox.run(&["run", plan, "--schema", changed, "--profile", profile_path, "--format", "github"]);
    let annotations = String::from_utf8_lossy(&output.stdout);
    assert!(annotations.contains("::warning title=pgshadow profile::"), "{annotations}");

    // A corrupt profile: exit 2, naming its line and column, before anything runs.
    let corrupt = sandbox.input("corrupt.json");
    let cut = &text[..text.len() / 2];
    std::fs::write(&corrupt, cut).expect("write");
    let corrupt = corrupt.to_str().expect("UTF-8");
    let output = sandbox.run(&["run", plan, "--schema", structure, "--profile", corrupt]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let line = cut.lines().count();
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&format!("{corrupt}:{line}:")), "{stderr}");

    // serve and mcp: a source's `profile = "file"` in the configuration, carried into every report.
    let config = sandbox.input("serve.toml");
    let entry = format!("[[sources]]\nname = \"shop\"\nschema = {structure:?}\nprofile = {profile_path:?}\n");
    std::fs::write(&config, entry).expect("write");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let config = pgshadow::service::config::Config::read(&config).expect("the configuration reads");
        let options = pgshadow::LocalOptions::default();
        let service = pgshadow::service::Service::from_config(&config, pgshadow::Provider::Local, options)
            .await
            .expect("the service starts");
        assert_eq!(service.sources()[0].profile.as_ref().map(|p| p.matches), Some(true));
        assert!(service.profile("shop").is_some_and(|p| p.table("public", "orders").is_some()));
        let plan = pgshadow::Plan::parse("plan.sql", "DELETE FROM orders WHERE id < 10;").expect("a plan");
        let report = service.dry_run("shop", &plan, &pgshadow::Policy::default()).await.expect("a report");
        assert_eq!(report.profile.as_ref().map(|p| p.matches), Some(true));
        service.shutdown().await.expect("the service stops");
    });

    // A profile alone, with no source to compare it with, is refused.
    let output = sandbox.run(&["run", plan, "--profile", profile_path]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    sandbox.assert_clean();
}

#[test]
fn the_published_profile_schema_is_the_one_the_types_generate() {
    let published = std::fs::read_to_string(common::root().join("docs/profile.schema.json")).expect("schema");
    assert!(
        published == pgshadow::profile::json_schema(),
        "docs/profile.schema.json is out of date: run `cargo run -- schema --profile > docs/profile.schema.json`"
    );
}
