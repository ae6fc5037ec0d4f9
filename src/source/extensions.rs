//! Extensions the shadow's server does not have: which one a failed `CREATE EXTENSION` was about, the OS package that
//! provides it, and which later failures of the load are due to it (a type, function, operator class, access method,
//! schema or table it would have created).
//!
//! The knowledge is one table, [`KNOWN`]: each extension with where its package comes from and the names it provides.
//!
//! Package names are those of Debian and Ubuntu, which follow apt.postgresql.org (PGDG): an extension is packaged as
//! `postgresql-<major>-<name>`, where `<name>` is the project's name rather than always the extension's
//! (`pg_cron` -> `postgresql-15-cron`, `pg_repack` -> `postgresql-15-repack`, `vector` -> `postgresql-16-pgvector`,
//! `postgis` -> `postgresql-15-postgis-3` for PostGIS 3 and all its extensions); the procedural languages built with
//! the server put the major last (`postgresql-plpython3-15`, `postgresql-plperl-15`, `postgresql-pltcl-15`); contrib
//! ships inside the server package `postgresql-<major>` since Debian's PostgreSQL 10. The names marked "bookworm" below
//! were read from the Debian 12 archive (`apt-cache search`, and each package's file list for the control files it
//! holds); the others from the package pages of Debian trixie/sid and Ubuntu, which PGDG builds the same way.

/// A failed statement of the load, as this module needs it.
pub(crate) struct Failure<'a> {
    /// The statement's full SQL text (for an archive entry: its command and what the entry is).
    pub statement: &'a str,
    /// The SQLSTATE, when the server's error came with one (`pg_restore`'s messages have none).
    pub sqlstate: Option<&'a str>,
    /// The server's message.
    pub message: &'a str,
}

/// The extension a failure says is not installed on the server, from a failed `CREATE EXTENSION` (or the `CASCADE` of
/// one, which names the required extension that is missing). Two wordings, both with the extension's control file:
/// - `extension "postgis" is not available` (SQLSTATE 0A000), from PostgreSQL 16 on, and in recent minor releases of
///   older majors (Debian 12's 15.18 says it);
/// - `could not open extension control file "/usr/share/postgresql/15/extension/postgis.control": No such file or
///   directory` (SQLSTATE 58P01, undefined_file), from older releases.
pub(crate) fn missing_extension(failure: &Failure) -> Option<String> {
    let message = failure.message;
    if let Some(name) = between(message, "extension \"", "\" is not available") {
        return matches!(failure.sqlstate, None | Some("0A000")).then(|| name.to_owned());
    }
    let path = between(message, "could not open extension control file \"", "\": ")?;
    let absent = match failure.sqlstate {
        Some(code) => code == "58P01",
        None => message.contains("No such file or directory"),
    };
    if !absent {
        return None;
    }
    path.rsplit('/').next()?.strip_suffix(".control").map(str::to_owned)
}

/// The OS package that provides `extension` on Debian/Ubuntu for server major `major` (see the module's doc for the
/// naming): `("postgis", 15)` -> `postgresql-15-postgis-3`, `("pg_trgm", 15)` -> `postgresql-15` (contrib). `None`
/// for an extension not in [`KNOWN`], one with no Debian or PGDG package (see [`note`]), a contrib extension the
/// major does not ship, and majors before 10.
pub(crate) fn package(extension: &str, major: u32) -> Option<String> {
    let (_, source, _) = KNOWN.iter().find(|(name, ..)| *name == extension)?;
    match *source {
        _ if major < 10 => None,
        Contrib(from, to) => (from..=to).contains(&major).then(|| format!("postgresql-{major}")),
        Apt(pattern) => Some(pattern.replace("{}", &major.to_string())),
        Elsewhere(_) => None,
    }
}

/// Why a known extension has no [`package`] for `major`, and what to do instead: it ships from its vendor's own
/// repository (`citus`, `timescaledb`), is not packaged at all (`plv8`), or is not part of that major's contrib.
pub(crate) fn note(extension: &str, major: u32) -> Option<String> {
    let (_, source, _) = KNOWN.iter().find(|(name, ..)| *name == extension)?;
    match *source {
        Elsewhere(text) => Some(text.to_owned()),
        Contrib(from, to) if major >= 10 && !(from..=to).contains(&major) => Some(match to {
            u32::MAX => format!("{extension} is part of contrib from PostgreSQL {from} on"),
            _ => format!("{extension} was part of contrib up to PostgreSQL {to} and is gone from later majors"),
        }),
        _ => None,
    }
}

/// Which of the `missing` extensions a later failure is due to, if any.
///
/// Only a failure that says something is undefined counts: SQLSTATE 42704 (undefined_object: a type, operator class,
/// access method, language, extension, foreign-data wrapper ...), 42883 (undefined_function, also operators),
/// 42P01 (undefined_table: an extension's tables and views, like `spatial_ref_sys`) and 3F000 (invalid_schema_name: an
/// extension's schema, like pg_cron's `cron`); without a SQLSTATE, a message saying something `does not exist`. A
/// missing role, tablespace, collation, database or column is never an extension's.
///
/// The names in the message decide first, then those in the statement: a name that a known extension provides ties
/// the failure to that extension, and it is lost to it only when that extension is one of the `missing` (so a
/// `gist_trgm_ops` failure is pg_trgm's business, not a missing PostGIS's). When neither names a known extension and
/// exactly one extension is missing, an undefined type, function, operator class or the like (42704, 42883) is put
/// down to that one; an undefined table or schema is not, as it is as often the echo of an unrelated earlier failure.
pub(crate) fn lost_to<'m>(failure: &Failure, missing: &'m [String]) -> Option<&'m str> {
    let undefined = kind(failure);
    if undefined == Kind::Other || missing.is_empty() {
        return None;
    }
    let mut names = mentioned(failure.message, true, missing);
    if names.is_empty() {
        names = mentioned(failure.statement, false, missing);
    }
    if !names.is_empty() {
        return names.iter().find_map(|name| missing.iter().find(|m| m == name)).map(String::as_str);
    }
    match missing {
        [only] if undefined == Kind::Object => Some(only),
        _ => None,
    }
}

/// Where an extension's package comes from.
#[derive(Clone, Copy)]
enum Source {
    /// contrib: in the server package `postgresql-<major>`, for the majors `from..=to`.
    Contrib(u32, u32),
    /// A package of Debian and/or PGDG; `{}` stands for the major.
    Apt(&'static str),
    /// No package in Debian nor PGDG: where it comes from instead.
    Elsewhere(&'static str),
}

use Source::{Apt, Contrib, Elsewhere};

/// contrib in every major pgshadow can meet.
const ALL: Source = Contrib(10, u32::MAX);
/// The package of PostGIS 3 and of all its extensions (bookworm).
const POSTGIS: Source = Apt("postgresql-{}-postgis-3");

/// Known extensions: name, package, and the names it provides, lowercase, which tie a failure to it. A name is an
/// identifier as a whole (`geometry`, `gist_trgm_ops`); `name()` only where it is called (a function); `*` stands for
/// any run of identifier characters (`st_*()`, `gist_*_ops`); an entry with a space is a phrase of the message. In a
/// message, the extension's own name counts too (`extension "postgis" does not exist`, `language "plpython3u" does not
/// exist`, `access method "rum" does not exist`, `schema "periods" does not exist`).
///
/// Not listed, on purpose: `gen_random_uuid()` (pgcrypto's before PostgreSQL 13, core since) and core's `xpath()`,
/// `xpath_exists()`, `lo_import()`, `lo_export()`, `pg_get_wal_replay_pause_state()`.
#[rustfmt::skip]
const KNOWN: &[(&str, Source, &[&str])] = &[
    // contrib: the control files of /usr/share/postgresql/<major>/extension in the server package (bookworm's 15 has
    // all of them but pg_logicalinspect), with the majors each is in.
    ("adminpack", Contrib(10, 16), &["pg_file_write()", "pg_file_rename()", "pg_file_unlink()", "pg_logdir_ls()"]),
    ("amcheck", ALL, &["bt_index_check()", "bt_index_parent_check()", "verify_heapam()"]),
    ("autoinc", ALL, &[]),
    ("bloom", ALL, &[]),
    ("btree_gin", ALL, &["default operator class for access method \"gin\""]),
    ("btree_gist", ALL, &["default operator class for access method \"gist\"", "gist_*_ops", "gbtreekey*"]),
    ("citext", ALL, &["citext"]),
    ("cube", ALL, &["cube", "cube_*()", "gist_cube_ops"]),
    ("dblink", ALL, &["dblink_*()"]),
    ("dict_int", ALL, &["intdict_template"]),
    ("dict_xsyn", ALL, &["xsyn_template"]),
    ("earthdistance", ALL, &["earth", "earth_*()", "ll_to_earth()", "geo_distance()"]),
    ("file_fdw", ALL, &[]),
    ("fuzzystrmatch", ALL, &["soundex()", "difference()", "levenshtein()", "levenshtein_less_equal()", "metaphone()",
        "dmetaphone()", "dmetaphone_alt()", "daitch_mokotoff()"]),
    ("hstore", ALL, &["hstore", "hstore_*()", "gist_hstore_ops", "gin_hstore_ops", "akeys()", "avals()", "skeys()",
        "svals()"]),
    ("insert_username", ALL, &[]),
    ("intagg", ALL, &["int_array_aggregate()", "int_array_enum()"]),
    ("intarray", ALL, &["query_int", "gist__int_ops", "gist__intbig_ops", "gin__int_ops", "icount()", "sort_asc()",
        "sort_desc()"]),
    ("isn", ALL, &["ean13", "isbn", "isbn13", "ismn", "ismn13", "issn", "issn13", "upc", "isn_weak()"]),
    ("lo", ALL, &["lo_manage()", "lo_oid()"]),
    ("ltree", ALL, &["ltree", "lquery", "ltxtquery", "gist_ltree_ops", "gist__ltree_ops", "subltree()", "subpath()",
        "nlevel()", "lca()", "text2ltree()", "ltree2text()"]),
    ("moddatetime", ALL, &[]),
    ("old_snapshot", Contrib(14, 16), &["pg_old_snapshot_time_mapping()"]),
    ("pageinspect", ALL, &["get_raw_page()", "page_header()", "heap_page_items()", "bt_metap()", "bt_page_items()"]),
    ("pg_buffercache", ALL, &[]),
    ("pg_freespacemap", ALL, &["pg_freespace()"]),
    ("pg_logicalinspect", Contrib(18, u32::MAX), &["pg_get_logical_snapshot_meta()",
        "pg_get_logical_snapshot_info()"]),
    ("pg_prewarm", ALL, &["autoprewarm_start_worker()", "autoprewarm_dump_now()"]),
    ("pg_stat_statements", ALL, &["pg_stat_statements_info", "pg_stat_statements_reset()"]),
    ("pg_surgery", Contrib(14, u32::MAX), &["heap_force_kill()", "heap_force_freeze()"]),
    ("pg_trgm", ALL, &["gist_trgm_ops", "gin_trgm_ops", "similarity()", "word_similarity()",
        "strict_word_similarity()", "show_trgm()", "show_limit()", "set_limit()"]),
    ("pg_visibility", ALL, &["pg_visibility_map()", "pg_visibility_map_summary()", "pg_check_frozen()",
        "pg_check_visible()"]),
    ("pg_walinspect", Contrib(15, u32::MAX), &["pg_get_wal_record_info()", "pg_get_wal_records_info()",
        "pg_get_wal_stats()", "pg_get_wal_block_info()"]),
    ("pgcrypto", ALL, &["crypt()", "gen_salt()", "digest()", "hmac()", "encrypt()", "decrypt()", "encrypt_iv()",
        "decrypt_iv()", "gen_random_bytes()", "pgp_*()", "armor()", "dearmor()"]),
    ("pgrowlocks", ALL, &[]),
    ("pgstattuple", ALL, &["pgstatindex()", "pgstatginindex()", "pgstathashindex()", "pgstattuple_approx()",
        "pg_relpages()"]),
    ("postgres_fdw", ALL, &["postgres_fdw_*()"]),
    ("refint", ALL, &["check_primary_key()", "check_foreign_key()"]),
    ("seg", ALL, &["gist_seg_ops"]),
    ("sslinfo", ALL, &["ssl_*()"]),
    ("tablefunc", ALL, &["crosstab*()", "connectby()", "normal_rand()"]),
    ("tcn", ALL, &["triggered_change_notification()"]),
    ("tsm_system_rows", ALL, &["system_rows"]),
    ("tsm_system_time", ALL, &["system_time"]),
    ("unaccent", ALL, &[]),
    ("uuid-ossp", ALL, &["uuid_generate_*()", "uuid_nil()", "uuid_ns_*()"]),
    ("xml2", ALL, &["xpath_string()", "xpath_number()", "xpath_bool()", "xpath_nodeset()", "xpath_list()",
        "xpath_table()", "xslt_process()"]),

    // PostGIS: bookworm's postgresql-15-postgis-3 (with its -scripts) holds all seven control files.
    ("postgis", POSTGIS, &["geometry", "geography", "box2d", "box3d", "box2df", "gidx", "spheroid", "geometry_dump",
        "valid_detail", "spatial_ref_sys", "geometry_columns", "geography_columns", "gist_geometry_ops_2d",
        "gist_geometry_ops_nd", "gist_geography_ops", "brin_geometry_*", "st_*()", "postgis_*()",
        "addgeometrycolumn()", "dropgeometrycolumn()", "dropgeometrytable()", "updategeometrysrid()", "find_srid()",
        "populate_geometry_columns()"]),
    ("postgis_raster", POSTGIS, &["raster", "raster_columns", "raster_overviews", "addrasterconstraints()",
        "droprasterconstraints()", "addoverviewconstraints()"]),
    ("postgis_topology", POSTGIS, &["topology", "topogeometry", "createtopology()", "droptopology()",
        "addtopogeometrycolumn()", "totopogeom()", "validatetopology()"]),
    ("postgis_sfcgal", POSTGIS, &["postgis_sfcgal_version()", "postgis_sfcgal_full_version()"]),
    ("postgis_tiger_geocoder", POSTGIS, &["tiger", "tiger_data", "norm_addy", "geocode()", "reverse_geocode()",
        "normalize_address()", "pagc_normalize_address()"]),
    ("address_standardizer", POSTGIS, &["stdaddr", "standardize_address()", "parse_address()"]),
    ("address_standardizer_data_us", POSTGIS, &["us_lex", "us_gaz", "us_rules"]),
    ("pgrouting", Apt("postgresql-{}-pgrouting"), &["pgr_*()"]), // bookworm

    // Procedural languages, built with the server: the major comes last (bookworm).
    ("plpython3u", Apt("postgresql-plpython3-{}"), &[]),
    ("hstore_plpython3u", Apt("postgresql-plpython3-{}"), &[]),
    ("jsonb_plpython3u", Apt("postgresql-plpython3-{}"), &[]),
    ("ltree_plpython3u", Apt("postgresql-plpython3-{}"), &[]),
    ("plperl", Apt("postgresql-plperl-{}"), &[]),
    ("plperlu", Apt("postgresql-plperl-{}"), &[]),
    ("bool_plperl", Apt("postgresql-plperl-{}"), &[]),
    ("bool_plperlu", Apt("postgresql-plperl-{}"), &[]),
    ("hstore_plperl", Apt("postgresql-plperl-{}"), &[]),
    ("hstore_plperlu", Apt("postgresql-plperl-{}"), &[]),
    ("jsonb_plperl", Apt("postgresql-plperl-{}"), &[]),
    ("jsonb_plperlu", Apt("postgresql-plperl-{}"), &[]),
    ("pltcl", Apt("postgresql-pltcl-{}"), &[]),
    ("pltclu", Apt("postgresql-pltcl-{}"), &[]),
    ("plpythonu", Elsewhere(PYTHON2), &[]),
    ("plpython2u", Elsewhere(PYTHON2), &[]),
    ("plv8", Elsewhere("plv8 has no Debian or apt.postgresql.org package for current PostgreSQL majors: it must be \
        built from source (github.com/plv8/plv8)"), &[]),

    // Packaged extensions, `postgresql-<major>-<project>` (bookworm unless said otherwise).
    ("vector", Apt("postgresql-{}-pgvector"), &["vector", "halfvec", "sparsevec", "hnsw", "ivfflat", "vector_*_ops",
        "halfvec_*_ops", "sparsevec_*_ops", "bit_hamming_ops", "bit_jaccard_ops", "l2_distance()", "l1_distance()",
        "cosine_distance()", "inner_product()", "vector_dims()", "vector_norm()", "l2_normalize()",
        "binary_quantize()", "subvector()"]), // PGDG, Debian trixie
    ("pg_cron", Apt("postgresql-{}-cron"), &["cron"]),
    ("pg_partman", Apt("postgresql-{}-partman"), &["partman", "part_config", "part_config_sub", "create_parent()",
        "create_sub_parent()", "run_maintenance()", "run_maintenance_proc()"]),
    ("pgaudit", Apt("postgresql-{}-pgaudit"), &[]),
    ("hypopg", Apt("postgresql-{}-hypopg"), &["hypopg*()"]),
    ("pg_repack", Apt("postgresql-{}-repack"), &["repack"]),
    ("pg_squeeze", Apt("postgresql-{}-squeeze"), &["squeeze"]), // Debian trixie/sid, Ubuntu
    ("orafce", Apt("postgresql-{}-orafce"), &["oracle", "varchar2", "nvarchar2", "dbms_*", "utl_file", "plvstr",
        "plvdate", "plvchr", "plunit", "nvl()", "nvl2()", "add_months()", "months_between()", "last_day()",
        "next_day()"]),
    ("pg_hint_plan", Apt("postgresql-{}-pg-hint-plan"), &["hint_plan"]), // Debian trixie/sid, Ubuntu
    ("pglogical", Apt("postgresql-{}-pglogical"), &[]),
    ("pglogical_origin", Apt("postgresql-{}-pglogical"), &[]),
    ("pgtap", Apt("postgresql-{}-pgtap"), &["no_plan()", "runtests()", "has_table()", "has_column()", "col_is_pk()",
        "results_eq()", "throws_ok()", "lives_ok()"]),
    ("h3", Apt("postgresql-{}-h3"), &["h3index", "h3_*()"]), // Debian trixie/sid, Ubuntu
    ("h3_postgis", Apt("postgresql-{}-h3"), &[]),
    ("pg_stat_kcache", Apt("postgresql-{}-pg-stat-kcache"), &["pg_stat_kcache_detail", "pg_stat_kcache_reset()"]),
    ("semver", Apt("postgresql-{}-semver"), &["semver"]),
    ("ip4r", Apt("postgresql-{}-ip4r"), &["ip4", "ip4r", "ip6", "ip6r", "ipaddress", "iprange"]),
    ("prefix", Apt("postgresql-{}-prefix"), &["prefix_range"]),
    ("rum", Apt("postgresql-{}-rum"), &["rum_*"]),
    ("periods", Apt("postgresql-{}-periods"), &["add_period()", "add_system_time_period()",
        "add_system_versioning()"]),
    ("pg_ivm", Apt("postgresql-{}-pg-ivm"), &["pgivm", "pg_ivm_immv", "create_immv()", "refresh_immv()"]), // Ubuntu
    ("pg_qualstats", Apt("postgresql-{}-pg-qualstats"), &["pg_qualstats*"]),
    ("pg_wait_sampling", Apt("postgresql-{}-pg-wait-sampling"), &["pg_wait_sampling*"]),
    ("plpgsql_check", Apt("postgresql-{}-plpgsql-check"), &["plpgsql_check_*()"]),
    ("pldbgapi", Apt("postgresql-{}-pldebugger"), &["pldbg_*()"]),
    ("hll", Apt("postgresql-{}-hll"), &["hll", "hll_*()"]),
    ("tdigest", Apt("postgresql-{}-tdigest"), &["tdigest", "tdigest_*()"]),
    ("pg_sphere", Apt("postgresql-{}-pgsphere"), &["spoint", "scircle", "sline", "spoly", "sbox", "spath",
        "sellipse"]),
    ("q3c", Apt("postgresql-{}-q3c"), &["q3c_*()"]),
    ("pointcloud", Apt("postgresql-{}-pointcloud"), &["pcpoint", "pcpatch"]),
    ("pointcloud_postgis", Apt("postgresql-{}-pointcloud"), &[]),
    ("ogr_fdw", Apt("postgresql-{}-ogr-fdw"), &[]),
    ("mysql_fdw", Apt("postgresql-{}-mysql-fdw"), &[]),
    ("tds_fdw", Apt("postgresql-{}-tds-fdw"), &[]),
    ("debversion", Apt("postgresql-{}-debversion"), &["debversion"]),
    ("jsquery", Apt("postgresql-{}-jsquery"), &["jsquery"]),
    ("pg_dirtyread", Apt("postgresql-{}-dirtyread"), &[]),
    ("pg_rational", Apt("postgresql-{}-rational"), &[]),
    ("pllua", Apt("postgresql-{}-pllua"), &[]),
    ("plluau", Apt("postgresql-{}-pllua"), &[]),
    ("plr", Apt("postgresql-{}-plr"), &[]),
    ("set_user", Apt("postgresql-{}-set-user"), &[]),
    ("unit", Apt("postgresql-{}-unit"), &[]),

    // From their vendors' own repositories.
    ("citus", Elsewhere("citus ships from Citus Data's own apt repository (packages \
        postgresql-<major>-citus-<version>), not from Debian or apt.postgresql.org"), &["columnar", "pg_dist_*",
        "citus_*()", "create_distributed_table()", "create_reference_table()"]),
    ("timescaledb", Elsewhere("timescaledb ships from Timescale's own apt repository (package \
        timescaledb-2-postgresql-<major>), not from Debian or apt.postgresql.org"), &["_timescaledb_*",
        "timescaledb_information", "timescaledb_experimental", "create_hypertable()", "add_dimension()", "by_range()",
        "set_chunk_time_interval()", "time_bucket()", "time_bucket_gapfill()", "add_retention_policy()",
        "add_compression_policy()", "add_continuous_aggregate_policy()", "add_reorder_policy()", "add_job()",
        "show_chunks()", "drop_chunks()", "compress_chunk()", "decompress_chunk()"]),
];

const PYTHON2: &str =
    "PL/Python for Python 2 was removed in PostgreSQL 15 and is not packaged for current majors: the \
    functions must be ported to plpython3u";

/// What a failure says is undefined.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A type, function, operator, operator class, access method, language, extension ...
    Object,
    /// A table, view or schema.
    Relation,
    /// Nothing an extension provides.
    Other,
}

fn kind(failure: &Failure) -> Kind {
    const NEVER_FROM_AN_EXTENSION: [&str; 6] =
        ["role \"", "tablespace \"", "collation \"", "database \"", "column \"", "unrecognized configuration"];
    if NEVER_FROM_AN_EXTENSION.iter().any(|p| failure.message.starts_with(p)) {
        return Kind::Other;
    }
    match failure.sqlstate {
        Some("42704" | "42883") => Kind::Object,
        Some("42P01" | "3F000") => Kind::Relation,
        Some(_) => Kind::Other,
        None if failure.message.starts_with("relation \"") || failure.message.starts_with("schema \"") => {
            Kind::Relation
        }
        None if failure.message.contains(" does not exist") || failure.message.contains(" has no default operator") => {
            Kind::Object
        }
        None => Kind::Other,
    }
}

/// How closely a name matched: a whole name beats a pattern.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Closeness {
    Name,
    Pattern,
}

/// The extensions that `text` names, by the closest kind of match that finds any (see [`KNOWN`]), in table order; in
/// a message (`in_message`), phrases and the extensions' own names count too, and so do the names of the `missing`
/// ones that are not known.
fn mentioned<'a>(text: &str, in_message: bool, missing: &'a [String]) -> Vec<&'a str> {
    let lower = text.to_lowercase();
    let words = words(&lower);
    let mut closest = None;
    let mut found: Vec<&'a str> = Vec::new();
    let mut record = |closeness: Option<Closeness>, name: &'a str| {
        let Some(closeness) = closeness else { return };
        if closest.is_none_or(|c| closeness < c) {
            (closest, found) = (Some(closeness), vec![name]);
        } else if closest == Some(closeness) && !found.contains(&name) {
            found.push(name);
        }
    };
    let own = |name: &str| (in_message && words.iter().any(|(w, _)| *w == name)).then_some(Closeness::Name);
    for (name, _, provides) in KNOWN {
        let by_provided = provides.iter().filter_map(|entry| {
            if entry.contains(' ') {
                (in_message && lower.contains(entry)).then_some(Closeness::Name)
            } else {
                words.iter().filter_map(|(word, called)| closeness(entry, word, *called)).min()
            }
        });
        record(own(name).into_iter().chain(by_provided).min(), name);
    }
    for name in missing {
        record(own(name), name);
    }
    found
}

/// The identifiers of a lowercase text, each with whether a `(` follows it (a call, or a function's signature).
fn words(lower: &str) -> Vec<(&str, bool)> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut out = Vec::new();
    let mut rest = lower;
    while let Some(start) = rest.find(is_word) {
        rest = &rest[start..];
        let end = rest.find(|c| !is_word(c)).unwrap_or(rest.len());
        out.push((&rest[..end], rest[end..].trim_start().starts_with('(')));
        rest = &rest[end..];
    }
    out
}

/// How a provided-name entry of [`KNOWN`] matches an identifier, if it does.
fn closeness(entry: &str, word: &str, called: bool) -> Option<Closeness> {
    let (pattern, function) = entry.strip_suffix("()").map_or((entry, false), |p| (p, true));
    if function && !called {
        return None;
    }
    match pattern.split_once('*') {
        None => (pattern == word).then_some(Closeness::Name),
        Some((head, tail)) => (word.len() >= head.len() + tail.len() && word.starts_with(head) && word.ends_with(tail))
            .then_some(Closeness::Pattern),
    }
}

/// The text between the first `open` and the next `close` after it.
fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

/// For a container shadow whose image lacks `extension`: an image that has it, where one is known.
pub(super) fn image_note(extension: &str, image: &str, major: u32) -> String {
    let known = match extension {
        "postgis" | "postgis_raster" | "postgis_topology" | "postgis_tiger_geocoder" | "address_standardizer" => {
            Some(format!("postgis/postgis:{major}-3.5 (or another {major}-3.x tag)"))
        }
        "vector" => Some(format!("pgvector/pgvector:pg{major}")),
        "timescaledb" | "timescaledb_toolkit" => Some(format!("timescale/timescaledb:latest-pg{major}")),
        "citus" | "citus_columnar" => Some(format!("citusdata/citus (a tag for PostgreSQL {major})")),
        _ => None,
    };
    match known {
        Some(other) => format!("the image {image} lacks it; {other} has it (--image)"),
        None => format!("the image {image} lacks it: use an image with {extension} for PostgreSQL {major} (--image)"),
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

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
    fn every_known_extension_is_listed_once() {
        for (i, (name, ..)) in KNOWN.iter().enumerate() {
            assert!(!KNOWN[..i].iter().any(|(other, ..)| other == name), "{name} is listed twice");
        }
        for (name, _, provides) in KNOWN {
            for entry in *provides {
                assert_eq!(entry.to_lowercase(), *entry, "{name}: {entry} is not lowercase");
                assert!(entry.matches('*').count() <= 1, "{name}: {entry} has more than one *");
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
        let unreadable =
            "could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": \
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
        let missing =
            missing(&["postgis", "vector", "pg_cron", "plpython3u", "uuid-ossp", "pgcrypto", "postgis_raster"]);
        let cases = [
            (
                "CREATE TABLE t (g public.geometry(Point,4326));",
                "42704",
                "type \"public.geometry\" does not exist",
                "postgis",
            ),
            (
                "SELECT st_makepoint(1, 2);",
                "42883",
                "function st_makepoint(integer, integer) does not exist",
                "postgis",
            ),
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
            (
                "SELECT cron.schedule('x', '* * * * *', 'select 1');",
                "3F000",
                "schema \"cron\" does not exist",
                "pg_cron",
            ),
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
        let comment =
            failure("COMMENT ON EXTENSION acme_geo IS 'x';", "42704", "extension \"acme_geo\" does not exist");
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
        for (name, source, _) in KNOWN {
            if let Contrib(from, to) = source {
                assert_eq!(installed.iter().any(|i| i == name), (*from..=*to).contains(&15), "{name}");
            }
        }
        for name in installed.iter().filter(|n| *n != "plpgsql") {
            assert_eq!(package(name, 15).as_deref(), Some("postgresql-15"), "{name}");
        }
    }

    const BIN: &str = "/usr/lib/postgresql/15/bin";
    const SHARE: &str = "/usr/share/postgresql/15";

    /// A throw-away PostgreSQL 15 on a Unix socket in a directory under /tmp; stopped and removed on drop, also when a
    /// test fails.
    struct Server(tempfile::TempDir);

    impl Server {
        fn start() -> Server {
            let server = Server(tempfile::Builder::new().prefix("pgshadow-extensions-").tempdir_in("/tmp").unwrap());
            if nix::unistd::geteuid().is_root() {
                let user = nix::unistd::User::from_name("postgres").unwrap().expect("a postgres OS user");
                nix::unistd::chown(server.0.path(), Some(user.uid), Some(user.gid)).unwrap();
            }
            let (dir, data, log) = (server.path(""), server.path("data"), server.path("log"));
            server.run(&["initdb", "-D", &data, "-U", "postgres", "--auth=trust", "--no-sync", "--locale=C"]);
            let options = format!("-c listen_addresses='' -k {dir} -c fsync=off");
            server.run(&["pg_ctl", "-D", &data, "-l", &log, "-o", &options, "-w", "start"]);
            server
        }

        fn path(&self, name: &str) -> String {
            self.0.path().join(name).display().to_string()
        }

        /// Runs a server program, as the `postgres` OS user when we are root (initdb and postgres refuse root).
        fn try_run(&self, args: &[&str]) -> Result<(), String> {
            let program = format!("{BIN}/{}", args[0]);
            let mut command = if nix::unistd::geteuid().is_root() {
                let mut runuser = Command::new("runuser");
                runuser.args(["-u", "postgres", "--", &program]);
                runuser
            } else {
                Command::new(&program)
            };
            let out = command.args(&args[1..]).current_dir("/tmp").stdin(Stdio::null()).output();
            let out = out.map_err(|e| format!("{program}: {e}"))?;
            out.status.success().then_some(()).ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
        }

        fn run(&self, args: &[&str]) {
            if let Err(e) = self.try_run(args) {
                panic!("{args:?}: {e}");
            }
        }

        async fn connect(&self) -> tokio_postgres::Client {
            let mut config = tokio_postgres::Config::new();
            config.host_path(self.0.path()).user("postgres").dbname("postgres");
            let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connecting to the server");
            tokio::spawn(connection);
            client
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.try_run(&["pg_ctl", "-D", &self.path("data"), "-m", "immediate", "stop"]);
        }
    }

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
        let server = Server::start();
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
}
