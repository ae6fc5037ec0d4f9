//! Extensions the shadow's server does not have: which one a failed `CREATE EXTENSION` was about, the OS package that
//! provides it, and which later failures of the load are due to it (a type, function, operator class, access method,
//! schema or table it would have created).
//!
//! The knowledge is one table, `known.toml` beside this file (read once, [`KNOWN`]): each extension with where its
//! package comes from and the names it provides. Its header says how the packages are named and where the names
//! were read.

use std::sync::LazyLock;

use serde::Deserialize;

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
    let known = known(extension)?;
    match (&known.contrib, &known.package) {
        _ if major < 10 => None,
        (Some(majors), _) => majors.contain(major).then(|| format!("postgresql-{major}")),
        (None, Some(pattern)) => Some(pattern.replace("{}", &major.to_string())),
        (None, None) => None,
    }
}

/// Why a known extension has no [`package`] for `major`, and what to do instead: it ships from its vendor's own
/// repository (`citus`, `timescaledb`), is not packaged at all (`plv8`), or is not part of that major's contrib.
pub(crate) fn note(extension: &str, major: u32) -> Option<String> {
    let known = known(extension)?;
    match (&known.elsewhere, &known.contrib) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(majors)) if major >= 10 && !majors.contain(major) => Some(match majors.to {
            None => format!("{extension} is part of contrib from PostgreSQL {} on", majors.from),
            Some(to) => format!("{extension} was part of contrib up to PostgreSQL {to} and is gone from later majors"),
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

/// An extension pgshadow knows (an entry of `known.toml`, whose header says what each field means): where its
/// package comes from, exactly one of `contrib`, `package` and `elsewhere`, and the names it provides, which tie a
/// failure to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Known {
    name: String,
    /// contrib: in the server package `postgresql-<major>`, for these majors.
    contrib: Option<Majors>,
    /// A package of Debian and/or PGDG; `{}` stands for the major.
    package: Option<String>,
    /// No package in Debian nor PGDG: where it comes from instead.
    elsewhere: Option<String>,
    #[serde(default)]
    provides: Vec<String>,
}

/// The majors `from..=to` (no `to`: every major from `from` on).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Majors {
    from: u32,
    to: Option<u32>,
}

impl Majors {
    fn contain(&self, major: u32) -> bool {
        major >= self.from && self.to.is_none_or(|to| major <= to)
    }
}

#[derive(Deserialize)]
struct Table {
    extension: Vec<Known>,
}

/// The known extensions, in the order of `known.toml`.
static KNOWN: LazyLock<Vec<Known>> = LazyLock::new(|| {
    toml::from_str::<Table>(include_str!("known.toml")).expect("known.toml parses (checked by its tests)").extension
});

fn known(extension: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == extension)
}

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
    for Known { name, provides, .. } in KNOWN.iter() {
        let by_provided = provides.iter().filter_map(|entry| {
            if entry.contains(' ') {
                (in_message && lower.contains(entry)).then_some(Closeness::Name)
            } else {
                words.iter().filter_map(|(word, called)| closeness(entry, word, *called)).min()
            }
        });
        record(own(name).into_iter().chain(by_provided).min(), name.as_str());
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
mod tests;
