//! The extension table and the failures it classifies, also against a real server's errors.

use std::path::Path;

use super::*;
use crate::test_server::TestServer;

fn failure<'a>(statement: &'a str, sqlstate: &'a str, message: &'a str) -> Failure<'a> {
    Failure { statement, sqlstate: (!sqlstate.is_empty()).then_some(sqlstate), message }
}

fn missing(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn packages_follow_the_debian_and_pgdg_names() {
    let cases = [
        ("postgis", 15, Some("postgresql-15-postgis-3")),
        ("postgis_topology", 16, Some("postgresql-16-postgis-3")),
        ("postgis_raster", 17, Some("postgresql-17-postgis-3")),
        ("postgis_tiger_geocoder", 15, Some("postgresql-15-postgis-3")),
        ("address_standardizer", 15, Some("postgresql-15-postgis-3")),
        ("pgrouting", 15, Some("postgresql-15-pgrouting")),
        ("vector", 16, Some("postgresql-16-pgvector")),
        ("pg_cron", 15, Some("postgresql-15-cron")),
        ("pg_partman", 15, Some("postgresql-15-partman")),
        ("pgaudit", 15, Some("postgresql-15-pgaudit")),
        ("hypopg", 15, Some("postgresql-15-hypopg")),
        ("pg_repack", 15, Some("postgresql-15-repack")),
        ("pg_squeeze", 17, Some("postgresql-17-squeeze")),
        ("orafce", 15, Some("postgresql-15-orafce")),
        ("pg_hint_plan", 16, Some("postgresql-16-pg-hint-plan")),
        ("pglogical", 15, Some("postgresql-15-pglogical")),
        ("plpython3u", 15, Some("postgresql-plpython3-15")),
        ("jsonb_plpython3u", 15, Some("postgresql-plpython3-15")),
        ("plperl", 15, Some("postgresql-plperl-15")),
        ("plperlu", 16, Some("postgresql-plperl-16")),
        ("pltcl", 15, Some("postgresql-pltcl-15")),
        ("pgtap", 15, Some("postgresql-15-pgtap")),
        ("h3", 17, Some("postgresql-17-h3")),
        ("pg_stat_kcache", 15, Some("postgresql-15-pg-stat-kcache")),
        ("semver", 15, Some("postgresql-15-semver")),
        ("ip4r", 15, Some("postgresql-15-ip4r")),
        ("prefix", 15, Some("postgresql-15-prefix")),
        ("rum", 15, Some("postgresql-15-rum")),
        ("periods", 15, Some("postgresql-15-periods")),
        ("pg_ivm", 18, Some("postgresql-18-pg-ivm")),
        // contrib ships with the server
        ("pg_trgm", 15, Some("postgresql-15")),
        ("uuid-ossp", 16, Some("postgresql-16")),
        ("pg_walinspect", 15, Some("postgresql-15")),
        ("pg_walinspect", 14, None),
        ("adminpack", 16, Some("postgresql-16")),
        ("adminpack", 17, None),
        ("pg_logicalinspect", 18, Some("postgresql-18")),
        // from elsewhere, unknown, or a major before Debian's contrib-in-server packaging
        ("citus", 16, None),
        ("timescaledb", 16, None),
        ("plv8", 15, None),
        ("plpythonu", 15, None),
        ("no_such_extension", 15, None),
        ("postgis", 9, None),
    ];
    for (extension, major, expected) in cases {
        assert_eq!(package(extension, major).as_deref(), expected, "{extension} on {major}");
    }
}

#[test]
fn extensions_without_a_package_have_a_note() {
    assert!(note("citus", 16).is_some_and(|n| n.contains("Citus Data's own apt repository")));
    assert!(note("timescaledb", 16).is_some_and(|n| n.contains("timescaledb-2-postgresql-<major>")));
    assert!(note("plv8", 15).is_some_and(|n| n.contains("built from source")));
    assert!(note("adminpack", 17).is_some_and(|n| n.contains("up to PostgreSQL 16")));
    assert!(note("pg_walinspect", 14).is_some_and(|n| n.contains("from PostgreSQL 15 on")));
    assert_eq!(note("postgis", 15), None);
    assert_eq!(note("pg_trgm", 15), None);
    assert_eq!(note("no_such_extension", 15), None);
}

#[test]
fn the_table_parses_and_every_entry_is_well_formed() {
    let table: Table = toml::from_str(include_str!("known.toml")).unwrap_or_else(|e| panic!("known.toml: {e}"));
    assert_eq!(table.extension.len(), KNOWN.len());
    for (i, known) in KNOWN.iter().enumerate() {
        let name = &known.name;
        assert!(!name.is_empty() && !name.contains(char::is_whitespace), "{name:?} is not an extension's name");
        assert!(!KNOWN[..i].iter().any(|other| other.name == *name), "{name} is listed twice");
        let sources = [known.contrib.is_some(), known.package.is_some(), known.elsewhere.is_some()];
        assert_eq!(sources.iter().filter(|s| **s).count(), 1, "{name}: not exactly one of contrib, package, elsewhere");
        if let Some(majors) = &known.contrib {
            assert!(majors.from >= 10 && majors.to.is_none_or(|to| to >= majors.from), "{name}: {majors:?}");
        }
        if let Some(pattern) = &known.package {
            assert!(pattern.starts_with("postgresql-") && pattern.matches("{}").count() == 1, "{name}: {pattern}");
        }
        if let Some(text) = &known.elsewhere {
            assert!(!text.is_empty() && !text.contains('\n'), "{name}: {text:?}");
        }
        for entry in &known.provides {
            assert_eq!(entry.to_lowercase(), *entry, "{name}: {entry} is not lowercase");
            assert!(entry.matches('*').count() <= 1, "{name}: {entry} has more than one *");
            assert!(!entry.is_empty(), "{name}: an empty name");
        }
    }
}

/// PostgreSQL 16+ (and current minors of 13-15): `errmsg("extension \"%s\" is not available", ...)` with
/// `errcode(ERRCODE_FEATURE_NOT_SUPPORTED)` in `parse_extension_control_file` of src/backend/commands/extension.c,
/// with a DETAIL naming the control file (16, 17) or none (18, which searches extension_control_path).
#[test]
fn the_not_available_wording_names_the_extension() {
    let create = "CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;";
    let sixteen = failure(create, "0A000", "extension \"postgis\" is not available");
    assert_eq!(missing_extension(&sixteen).as_deref(), Some("postgis"));
    // As the archive loader words pg_restore's errors: no SQLSTATE, the DETAIL and HINT after the message.
    let restored = failure(
        create,
        "",
        "extension \"vector\" is not available (DETAIL:  Could not open extension control file \
         \"/usr/share/postgresql/16/extension/vector.control\": No such file or directory.\nHINT:  The extension \
         must first be installed on the system where PostgreSQL is running.)",
    );
    assert_eq!(missing_extension(&restored).as_deref(), Some("vector"));
    // CASCADE names the required extension that is missing.
    let cascade =
        failure("CREATE EXTENSION postgis_topology CASCADE;", "0A000", "extension \"postgis\" is not available");
    assert_eq!(missing_extension(&cascade).as_deref(), Some("postgis"));
}

/// Older releases: `errcode_for_file_access()` (ENOENT is 58P01, undefined_file) and
/// `errmsg("could not open extension control file \"%s\": %m", filename)`.
#[test]
fn the_control_file_wording_names_the_extension() {
    let create = "CREATE EXTENSION postgis;";
    let message = "could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": \
                   No such file or directory";
    assert_eq!(missing_extension(&failure(create, "58P01", message)).as_deref(), Some("postgis"));
    assert_eq!(missing_extension(&failure(create, "", message)).as_deref(), Some("postgis"));
    let unreadable = "could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": \
                      Permission denied";
    assert_eq!(missing_extension(&failure(create, "42501", unreadable)), None);
    assert_eq!(missing_extension(&failure(create, "", unreadable)), None);
}

#[test]
fn other_failures_name_no_missing_extension() {
    let cases = [
        ("CREATE EXTENSION postgis_topology;", "42704", "required extension \"postgis\" is not installed"),
        ("COMMENT ON EXTENSION postgis IS 'x';", "42704", "extension \"postgis\" does not exist"),
        ("CREATE TABLE t (g geometry);", "42704", "type \"geometry\" does not exist"),
        ("CREATE EXTENSION hstore;", "42710", "extension \"hstore\" already exists"),
        // the wording with a SQLSTATE that is not the one for it
        ("CREATE EXTENSION x;", "XX000", "extension \"x\" is not available"),
    ];
    for (statement, sqlstate, message) in cases {
        assert_eq!(missing_extension(&failure(statement, sqlstate, message)), None, "{message}");
    }
}

#[test]
fn later_failures_are_put_down_to_the_extension_whose_names_they_mention() {
    let missing = missing(&["postgis", "vector", "pg_cron", "plpython3u", "uuid-ossp", "pgcrypto", "postgis_raster"]);
    let cases = [
        (
            "CREATE TABLE t (g public.geometry(Point,4326));",
            "42704",
            "type \"public.geometry\" does not exist",
            "postgis",
        ),
        ("SELECT st_makepoint(1, 2);", "42883", "function st_makepoint(integer, integer) does not exist", "postgis"),
        (
            "CREATE VIEW v AS SELECT 1;",
            "42883",
            "operator does not exist: public.geometry && public.geometry",
            "postgis",
        ),
        (
            "CREATE VIEW v AS SELECT * FROM geometry_columns;",
            "42P01",
            "relation \"geometry_columns\" does not exist",
            "postgis",
        ),
        ("COMMENT ON EXTENSION postgis IS 'x';", "42704", "extension \"postgis\" does not exist", "postgis"),
        ("CREATE TABLE r (rast raster);", "42704", "type \"raster\" does not exist", "postgis_raster"),
        (
            "SELECT st_value(r, 1) FROM r;",
            "42883",
            "function st_value(raster, integer) does not exist",
            "postgis_raster",
        ),
        ("CREATE TABLE i (e vector(3));", "42704", "type \"vector\" does not exist", "vector"),
        ("CREATE TABLE i (e halfvec(3));", "42704", "type \"halfvec\" does not exist", "vector"),
        (
            "CREATE INDEX ON i USING hnsw (e vector_cosine_ops);",
            "42704",
            "access method \"hnsw\" does not exist",
            "vector",
        ),
        ("CREATE INDEX ON i USING ivfflat (e);", "42704", "access method \"ivfflat\" does not exist", "vector"),
        ("SELECT cron.schedule('x', '* * * * *', 'select 1');", "3F000", "schema \"cron\" does not exist", "pg_cron"),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1';",
            "42704",
            "language \"plpython3u\" does not exist",
            "plpython3u",
        ),
        (
            "CREATE TABLE u (id uuid DEFAULT public.uuid_generate_v4());",
            "42883",
            "function public.uuid_generate_v4() does not exist",
            "uuid-ossp",
        ),
        ("SELECT crypt('p', gen_salt('bf'));", "42883", "function gen_salt(unknown) does not exist", "pgcrypto"),
        // pg_restore's messages have no SQLSTATE
        ("CREATE TABLE t (g geometry);", "", "type \"geometry\" does not exist", "postgis"),
        (
            "CREATE VIEW v AS SELECT * FROM spatial_ref_sys;",
            "",
            "relation \"spatial_ref_sys\" does not exist",
            "postgis",
        ),
        // a message that names nothing: the statement's names decide
        (
            "CREATE INDEX ON p USING gist (geom gist_geometry_ops_2d) WHERE 'a' % 'b';",
            "42883",
            "operator does not exist: text % text",
            "postgis",
        ),
    ];
    for (statement, sqlstate, message, expected) in cases {
        assert_eq!(lost_to(&failure(statement, sqlstate, message), &missing), Some(expected), "{message}");
    }
}

#[test]
fn names_of_an_extension_that_is_not_missing_are_not_put_down_to_a_missing_one() {
    let one = missing(&["postgis"]);
    let cases = [
        // pg_trgm is contrib, there on the shadow: the dump did not create it (or it failed for another reason)
        (
            "CREATE INDEX ON t USING gist (name gist_trgm_ops);",
            "42704",
            "operator class \"gist_trgm_ops\" does not exist for access method \"gist\"",
        ),
        (
            "CREATE INDEX ON t USING gin (name gin_trgm_ops);",
            "42704",
            "operator class \"gin_trgm_ops\" does not exist for access method \"gin\"",
        ),
        ("SELECT similarity('a', 'b');", "42883", "function similarity(unknown, unknown) does not exist"),
        ("CREATE TABLE h (h hstore);", "42704", "type \"hstore\" does not exist"),
        (
            "CREATE TABLE r (during tstzrange, EXCLUDE USING gist (id WITH =, during WITH &&));",
            "42704",
            "data type integer has no default operator class for access method \"gist\"",
        ),
        ("SELECT cron.schedule('x', '* * * * *', 'select 1');", "3F000", "schema \"cron\" does not exist"),
    ];
    for (statement, sqlstate, message) in cases {
        assert_eq!(lost_to(&failure(statement, sqlstate, message), &one), None, "{message}");
    }
}

#[test]
fn with_one_extension_missing_an_unnamed_undefined_object_is_put_down_to_it() {
    let one = missing(&["postgis"]);
    let two = missing(&["postgis", "vector"]);
    let mood = failure("CREATE TABLE m (m public.mood);", "42704", "type \"public.mood\" does not exist");
    assert_eq!(lost_to(&mood, &one), Some("postgis"));
    assert_eq!(lost_to(&mood, &two), None);
    assert_eq!(lost_to(&mood, &[]), None);
    let call = failure("SELECT area(g) FROM p;", "42883", "function area(unknown) does not exist");
    assert_eq!(lost_to(&call, &one), Some("postgis"));
    // an extension that is not known is named by its own name in a message
    let custom = missing(&["acme_geo"]);
    let comment = failure("COMMENT ON EXTENSION acme_geo IS 'x';", "42704", "extension \"acme_geo\" does not exist");
    assert_eq!(lost_to(&comment, &missing(&["postgis", "acme_geo"])), Some("acme_geo"));
    assert_eq!(lost_to(&mood, &custom), Some("acme_geo"));
}

#[test]
fn failures_that_are_not_about_an_undefined_object_are_never_put_down_to_an_extension() {
    let one = missing(&["postgis"]);
    let cases = [
        ("ALTER TABLE t OWNER TO alice;", "42704", "role \"alice\" does not exist"),
        (
            "CREATE TABLE t (a text COLLATE \"de_DE\");",
            "42704",
            "collation \"de_DE\" for encoding \"UTF8\" does not exist",
        ),
        ("CREATE TABLE t (a int) TABLESPACE fast;", "42704", "tablespace \"fast\" does not exist"),
        ("SELECT nope FROM t;", "42703", "column \"nope\" does not exist"),
        ("CREATE TABLE t (g geometry);", "42601", "syntax error at or near \"geometry\""),
        ("CREATE TABLE t (g geometry);", "42P07", "relation \"t\" already exists"),
        ("ALTER TABLE t OWNER TO alice;", "", "role \"alice\" does not exist"),
        // a missing table or schema that names nothing is not guessed
        (
            "ALTER TABLE ONLY public.parcels ADD CONSTRAINT parcels_pkey PRIMARY KEY (id);",
            "42P01",
            "relation \"public.parcels\" does not exist",
        ),
        ("SELECT app.f();", "3F000", "schema \"app\" does not exist"),
    ];
    for (statement, sqlstate, message) in cases {
        assert_eq!(lost_to(&failure(statement, sqlstate, message), &one), None, "{sqlstate} {message}");
    }
}

#[test]
fn names_match_as_whole_identifiers_and_functions_only_where_called() {
    assert_eq!(closeness("geometry", "geometry", false), Some(Closeness::Name));
    assert_eq!(closeness("geometry", "geometry_x", false), None);
    assert_eq!(closeness("st_*()", "st_makepoint", true), Some(Closeness::Pattern));
    assert_eq!(closeness("st_*()", "st_makepoint", false), None);
    assert_eq!(closeness("gist_*_ops", "gist_int4_ops", false), Some(Closeness::Pattern));
    assert_eq!(closeness("gist_*_ops", "gist_geometry_ops_2d", false), None);
    assert_eq!(
        words("select public.st_x (g), \"vector\"[1]"),
        [("select", false), ("public", false), ("st_x", true), ("g", false), ("vector", false), ("1", false)]
    );
    // a table named like a function prefix is not the function
    let one = missing(&["postgis"]);
    let table = failure("SELECT * FROM st_orders;", "42P01", "relation \"st_orders\" does not exist");
    assert_eq!(lost_to(&table, &one), None);
}

/// The contrib rows against the real server package: every contrib extension the table says PostgreSQL 15 has is
/// in the server's extension directory, and every extension there (but the built-in plpgsql) is a contrib row.
#[test]
fn the_contrib_rows_match_the_installed_server_package() {
    let dir = format!("{SHARE}/extension");
    let installed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e} (PostgreSQL 15 server package needed)"))
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".control").map(str::to_owned))
        .collect();
    for Known { name, contrib, .. } in KNOWN.iter() {
        if let Some(majors) = contrib {
            assert_eq!(installed.iter().any(|i| i == name), majors.contain(15), "{name}");
        }
    }
    for name in installed.iter().filter(|n| *n != "plpgsql") {
        assert_eq!(package(name, 15).as_deref(), Some("postgresql-15"), "{name}");
    }
}

/// PostgreSQL 15's server programs and shared files: the tests know what its contrib holds and how it words errors.
const BIN: &str = "/usr/lib/postgresql/15/bin";
const SHARE: &str = "/usr/share/postgresql/15";

/// Runs a statement that must fail, and returns its SQLSTATE and message as the loader sees them.
async fn fails(client: &tokio_postgres::Client, statement: &str) -> (Option<String>, String) {
    let error = client.batch_execute(statement).await.expect_err(statement);
    let db = error.as_db_error().unwrap_or_else(|| panic!("{statement}: not a server error: {error}"));
    eprintln!("{statement}\n  -> {} {}", db.code().code(), db.message());
    (Some(db.code().code().to_owned()), db.message().to_owned())
}

/// The real errors of a PostgreSQL 15 that lacks PostGIS and pgvector (not installed here) and has contrib.
#[tokio::test]
async fn a_real_server_s_errors_are_classified() {
    assert!(!std::path::Path::new(&format!("{SHARE}/extension/postgis.control")).exists(), "PostGIS is installed");
    assert!(!std::path::Path::new(&format!("{SHARE}/extension/vector.control")).exists(), "pgvector is installed");
    // In English whatever the environment says, as the messages are matched.
    let server = TestServer::start_with(Path::new(BIN), &["--locale=C"], false);
    let client = server.connect().await;
    let mut missing = Vec::new();

    for (statement, extension) in [
        ("CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;", "postgis"),
        ("CREATE EXTENSION vector;", "vector"),
    ] {
        let (sqlstate, message) = fails(&client, statement).await;
        let failure = Failure { statement, sqlstate: sqlstate.as_deref(), message: &message };
        // 15.18 words it the new way; older minors the control-file way
        assert!(matches!(sqlstate.as_deref(), Some("0A000" | "58P01")), "{sqlstate:?} {message}");
        assert_eq!(missing_extension(&failure).as_deref(), Some(extension), "{message}");
        assert_eq!(lost_to(&failure, &missing), None);
        missing.push(missing_extension(&failure).unwrap());
    }

    client.batch_execute("CREATE TABLE t (id int, name text);").await.unwrap();
    for (statement, extension) in [
        ("COMMENT ON EXTENSION postgis IS 'PostGIS geometry and geography types';", Some("postgis")),
        ("CREATE TABLE parcels (id int, geom public.geometry(Point, 4326));", Some("postgis")),
        ("CREATE VIEW points AS SELECT public.st_makepoint(1.0::float8, 2.0::float8) AS p;", Some("postgis")),
        ("CREATE VIEW layers AS SELECT * FROM public.geometry_columns;", Some("postgis")),
        ("CREATE TABLE items (id int, embedding vector(3));", Some("vector")),
        ("CREATE INDEX ON t USING hnsw (name);", Some("vector")),
        ("CREATE FUNCTION py() RETURNS int LANGUAGE plpython3u AS 'return 1';", None),
        ("SELECT cron.schedule('nightly', '0 3 * * *', 'VACUUM');", None),
        // pg_trgm is contrib and installed: its opclasses are missing only because it was not created
        ("CREATE INDEX ON t USING gist (name gist_trgm_ops);", None),
        ("CREATE INDEX ON t USING gin (name gin_trgm_ops);", None),
        ("ALTER TABLE t OWNER TO alice;", None),
    ] {
        let (sqlstate, message) = fails(&client, statement).await;
        let failure = Failure { statement, sqlstate: sqlstate.as_deref(), message: &message };
        assert_eq!(missing_extension(&failure), None, "{message}");
        assert_eq!(lost_to(&failure, &missing), extension, "{statement}: {sqlstate:?} {message}");
    }

    // With PostGIS the only one missing, an undefined type no extension is known for is put down to it; the
    // pg_trgm failure and the role are still not.
    let postgis = &missing[..1];
    for (statement, extension) in [
        ("CREATE TABLE moods (m public.mood);", Some("postgis")),
        ("CREATE INDEX ON t USING gist (name gist_trgm_ops);", None),
        ("ALTER TABLE t OWNER TO alice;", None),
    ] {
        let (sqlstate, message) = fails(&client, statement).await;
        let failure = Failure { statement, sqlstate: sqlstate.as_deref(), message: &message };
        assert_eq!(lost_to(&failure, postgis), extension, "{statement}: {sqlstate:?} {message}");
    }

    // The negative case really is pg_trgm's: once created, the same index builds.
    client.batch_execute("CREATE EXTENSION pg_trgm;").await.unwrap();
    client.batch_execute("CREATE INDEX ON t USING gist (name gist_trgm_ops);").await.unwrap();
    assert_eq!(package("pg_trgm", 15).as_deref(), Some("postgresql-15"));
}
