//! Benchmarks (`cargo bench`); figures and how to read them are in BENCHMARKS.md.
//!
//! - `split/pg_dump_10k_rows`: splitting a generated plain dump with a 10,000-row COPY block and 2,000 statements.
//! - `dry_run/seed_incident_cold`: the whole CLI job in the library: start a local shadow (initdb + server), load
//!   the seed-incident schema, dry-run its plan, remove the shadow.
//! - `dry_run/seed_incident_warm`: the same on a shadow that is already running (load + dry-run + drop database).
//! - `dry_run/seed_incident_cache_first`: the whole job with an empty shadow cache: initdb into the cache, load the
//!   schema into a template database, dry-run, stop the server and keep the cluster.
//! - `dry_run/seed_incident_cached`: the whole job with the template cached: start the cached cluster, dry-run in
//!   the template (rolled back, sequences and sizes put back), stop the server.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use criterion::{criterion_group, criterion_main, Criterion};
use pgshadow::{DryRunOptions, Plan, Schema, Shadow};

fn generated_dump() -> String {
    let mut dump =
        String::from("SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n");
    for i in 0..2_000 {
        let _ = writeln!(
            dump,
            "CREATE TABLE public.t{i} (id integer NOT NULL, note text DEFAULT 'a;b' /* ; */);\n\
             CREATE FUNCTION public.f{i}() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RETURN {i}; END $$;"
        );
    }
    dump.push_str("COPY public.t0 (id, note) FROM stdin;\n");
    for i in 0..10_000 {
        let _ = writeln!(dump, "{i}\tnote number {i}; with a semicolon");
    }
    dump.push_str("\\.\n");
    dump
}

fn split(c: &mut Criterion) {
    let dump = generated_dump();
    c.bench_function("split/pg_dump_10k_rows", |b| b.iter(|| pgshadow::plan::split(std::hint::black_box(&dump))));
}

fn scenario(file: &str) -> String {
    std::fs::read_to_string(format!("{}/scenarios/seed-incident/{file}", env!("CARGO_MANIFEST_DIR"))).expect("scenario")
}

fn dry_run(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let schema = Schema::sql("schema.sql", scenario("schema.sql"));
    let plan = Plan::parse("plan.sql", &scenario("plan.sql")).expect("plan");
    let options = DryRunOptions::default();

    let mut group = c.benchmark_group("dry_run");
    group.sample_size(10);
    group.bench_function("seed_incident_cold", |b| {
        b.to_async(&runtime)
            .iter(|| async { pgshadow::dry_run(&plan, Some(&schema), &options).await.expect("dry-run") })
    });
    let shadow = runtime.block_on(Shadow::start_local(&options.shadow)).expect("shadow");
    group.bench_function("seed_incident_warm", |b| {
        b.to_async(&runtime)
            .iter(|| async { pgshadow::dry_run_on(&shadow, &plan, Some(&schema), &options).await.expect("dry-run") })
    });
    runtime.block_on(shadow.shutdown()).expect("shutdown");

    let caches = tempfile::tempdir().expect("temp dir");
    let with_cache = |dir: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("cache dir");
        // As root, the server's OS user must be able to enter the cache.
        for d in [caches.path(), dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        }
        let mut options = DryRunOptions::default();
        options.shadow.cache = Some(pgshadow::CacheOptions::new(dir));
        options
    };
    let fresh = std::sync::atomic::AtomicUsize::new(0);
    group.bench_function("seed_incident_cache_first", |b| {
        b.to_async(&runtime).iter_batched(
            || with_cache(&caches.path().join(format!("first-{}", fresh.fetch_add(1, Ordering::Relaxed)))),
            |options| {
                let (plan, schema) = (&plan, &schema);
                async move { pgshadow::dry_run(plan, Some(schema), &options).await.expect("dry-run") }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    let cached = with_cache(&caches.path().join("warm"));
    runtime.block_on(pgshadow::dry_run(&plan, Some(&schema), &cached)).expect("priming the cache");
    group.bench_function("seed_incident_cached", |b| {
        b.to_async(&runtime).iter(|| async { pgshadow::dry_run(&plan, Some(&schema), &cached).await.expect("dry-run") })
    });
    group.finish();
}

criterion_group!(benches, split, dry_run);
criterion_main!(benches);
