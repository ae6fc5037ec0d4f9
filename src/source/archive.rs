//! `pg_dump` archives as sources: the custom (`-Fc`), directory (`-Fd`) and tar (`-Ft`) formats, told apart from
//! plain SQL by their content, listed and restored with the machine's `pg_restore`.
//!
//! A restore goes on past failing entries, as `pg_restore` without `--exit-on-error` does: each failing TOC entry
//! becomes an [`EntryError`], read from `pg_restore --verbose`'s stderr, and the rest loads. Only a `pg_restore` that
//! cannot run, an archive it cannot read, or a restore that dies is an [`Error::Source`]. Everything here blocks.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What every archive, and a directory archive's `toc.dat`, starts with.
const MAGIC: &[u8] = b"PGDMP";

/// What kind of source a path holds, told from its content, never from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// SQL text: a plain `pg_dump`, or hand-written DDL.
    Plain,
    /// `pg_dump -Fc`.
    Custom,
    /// `pg_dump -Fd`: a directory of `toc.dat` and one file per table.
    Directory,
    /// `pg_dump -Ft`.
    Tar,
}

/// Tells what `path` holds from its first bytes (a directory: from its `toc.dat`).
pub fn detect(path: &Path) -> Result<SourceFormat> {
    let fail = |message: String| source_error(path, message, String::new());
    if std::fs::metadata(path).map_err(|e| Error::io(path, e))?.is_dir() {
        let toc = path.join("toc.dat");
        if !toc.is_file() {
            return Err(fail(
                "is a directory but not a pg_dump directory archive (it has no toc.dat); give a SQL \
                             file or an archive made with pg_dump -Fc, -Fd or -Ft"
                    .into(),
            ));
        }
        return match read_head(&toc, MAGIC.len())?.starts_with(MAGIC) {
            true => Ok(SourceFormat::Directory),
            false => Err(fail("has a toc.dat that is not a pg_dump table of contents; make the archive again".into())),
        };
    }
    let head = read_head(path, 512 + MAGIC.len())?;
    if head.starts_with(MAGIC) {
        return Ok(SourceFormat::Custom);
    }
    if head.get(257..262) == Some(b"ustar") {
        let first = String::from_utf8_lossy(head[..100].split(|&b| b == 0).next().unwrap_or_default()).into_owned();
        return match (first.as_str(), head.get(512..).is_some_and(|toc| toc.starts_with(MAGIC))) {
            ("toc.dat", true) => Ok(SourceFormat::Tar),
            ("toc.dat", false) => Err(fail("is a pg_dump tar archive cut short in its table of contents".into())),
            _ => Err(fail(format!("is a tar file but not a pg_dump tar archive (its first member is {first:?})"))),
        };
    }
    let compressed: [(&[u8], &str, &str); 5] = [
        (b"\x1f\x8b", "gzip", "gunzip"),
        (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
        (b"BZh", "bzip2", "bunzip2"),
        (b"\xfd7zXZ\x00", "xz", "unxz"),
        (b"\x04\x22\x4d\x18", "lz4", "unlz4"),
    ];
    if let Some((_, kind, tool)) = compressed.iter().find(|(magic, ..)| head.starts_with(magic)) {
        return Err(fail(format!("is {kind}-compressed; decompress it first ({tool} -k FILE) and give the SQL file")));
    }
    Ok(SourceFormat::Plain)
}

/// Up to `len` bytes from the start of a file.
pub(super) fn read_head(path: &Path, len: usize) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(len);
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    file.take(len as u64).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
    Ok(head)
}

/// What `pg_restore --list` says about an archive.
#[derive(Debug, Clone, Default)]
pub struct ArchiveToc {
    /// The source server's version (`15.18 (Debian 15.18-0+deb12u1)`), from the archive's header.
    pub dumped_from: Option<String>,
    /// The version of the `pg_dump` that made the archive.
    pub dumped_by: Option<String>,
    /// The table of contents, in the archive's order.
    pub entries: Vec<TocEntry>,
}

/// One entry of an archive's table of contents. Displays as `TABLE public.geo alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    /// The dump id, which `pg_restore`'s messages name the entry by.
    pub id: u32,
    /// The kind of object: `TABLE`, `INDEX`, `EXTENSION`, `TABLE DATA`, `FK CONSTRAINT`, ...
    pub desc: String,
    /// The schema, for objects that live in one.
    pub schema: Option<String>,
    /// The name as `pg_dump` tags it: `geo`, `f(integer)`, `geo geo_pkey` (a constraint: table and name).
    pub name: String,
    /// The owner role; none for entries without one (an extension, a comment on it).
    pub owner: Option<String>,
}

impl fmt::Display for TocEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = self.schema.as_ref().map_or(String::new(), |s| format!("{s}."));
        let owner = self.owner.as_ref().map_or(String::new(), |o| format!(" {o}"));
        write!(f, "{} {schema}{}{owner}", self.desc, self.name)
    }
}

/// The kinds of entry of more than one word. A list line does not quote its fields, so the kind is matched against
/// these to tell where it ends (a one-word kind ends at the first space).
const MULTI_WORD_DESCS: &str = "ACCESS METHOD|BLOB METADATA|CHECK CONSTRAINT|DATABASE PROPERTIES|DEFAULT ACL|\
    EVENT TRIGGER|FK CONSTRAINT|FOREIGN DATA WRAPPER|FOREIGN SERVER|FOREIGN TABLE|INDEX ATTACH|LARGE OBJECT|\
    MATERIALIZED VIEW|MATERIALIZED VIEW DATA|OPERATOR CLASS|OPERATOR FAMILY|PROCEDURAL LANGUAGE|PUBLICATION TABLE|\
    PUBLICATION TABLES IN SCHEMA|ROW SECURITY|SECURITY LABEL|SEQUENCE OWNED BY|SEQUENCE SET|SHELL TYPE|\
    STATISTICS DATA|SUBSCRIPTION TABLE|TABLE ATTACH|TABLE DATA|TEXT SEARCH CONFIGURATION|TEXT SEARCH DICTIONARY|\
    TEXT SEARCH PARSER|TEXT SEARCH TEMPLATE|USER MAPPING";

/// Reads an archive's header and table of contents (`pg_restore --list`).
pub fn list(pg_restore: &Path, archive: &Path) -> Result<ArchiveToc> {
    let out = run(pg_restore, archive, &["--list"], "reading the archive's table of contents")?;
    let mut toc = ArchiveToc::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let header = |key: &str| line.split_once(key).map(|(_, v)| v.trim().to_owned());
        if line.starts_with(';') {
            toc.dumped_from = toc.dumped_from.take().or_else(|| header("Dumped from database version:"));
            toc.dumped_by = toc.dumped_by.take().or_else(|| header("Dumped by pg_dump version:"));
        } else if let Some(entry) = toc_line(line) {
            toc.entries.push(entry);
        }
    }
    Ok(toc)
}

/// `216; 1259 16386 TABLE public geo alice`: id; catalog oids, kind, schema (`-`: none), name, owner (empty: none).
fn toc_line(line: &str) -> Option<TocEntry> {
    let (id, rest) = line.split_once(';')?;
    let rest = rest.trim_start().splitn(3, ' ').nth(2)?;
    let multi = MULTI_WORD_DESCS.split('|').filter(|d| rest.strip_prefix(d).is_some_and(|r| r.starts_with(' ')));
    let desc = multi.max_by_key(|d| d.len()).unwrap_or_else(|| rest.split(' ').next().unwrap_or_default());
    let (schema, rest) = rest[desc.len()..].strip_prefix(' ')?.split_once(' ')?;
    let (name, owner) = rest.rsplit_once(' ').unwrap_or((rest, ""));
    Some(TocEntry {
        id: id.trim().parse().ok()?,
        desc: desc.to_owned(),
        schema: (schema != "-").then(|| schema.to_owned()),
        name: name.to_owned(),
        owner: (!owner.is_empty()).then(|| owner.to_owned()),
    })
}

/// The archive's schema as SQL (`pg_restore --schema-only`), to find the owner roles before the real restore. Text
/// that is not UTF-8 (a LATIN1 database's dump) is replaced, which is harmless for reading role names.
pub fn schema_sql(pg_restore: &Path, archive: &Path) -> Result<String> {
    let out = run(pg_restore, archive, &["--schema-only", "--file=-"], "reading the archive's schema")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The database to restore into: an existing, empty one.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The directory of the server's socket, or its host name.
    pub socket_dir: &'a Path,
    /// The server's port (which names the socket file).
    pub port: u16,
    /// The role to restore as.
    pub user: &'a str,
    /// The database.
    pub database: &'a str,
    /// The role's password, when it needs one (passed in the environment, never on the command line).
    pub password: Option<&'a str>,
    /// More libpq environment (`PGSSLMODE`, `PGSSLROOTCERT`) for a server that asks for TLS.
    pub env: &'a [(&'static str, String)],
    /// A role to act as after logging in (`pg_restore --role`), if another than `user`.
    pub role: Option<&'a str>,
    /// Restore only these entries of the table of contents (by dump id, in the archive's order), not all.
    pub only: Option<&'a [u32]>,
}

/// How a restore went: it finished, and these entries failed.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// The failing entries' errors, in the order `pg_restore` reported them.
    pub errors: Vec<EntryError>,
    /// How long `pg_restore` ran.
    pub duration: Duration,
}

/// An error `pg_restore` reported and went on after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// The failing entry (`TABLE public.geo alice`); none for an error outside any entry.
    pub entry: Option<String>,
    /// The entry's dump id.
    pub toc_id: Option<u32>,
    /// The server's error (`role "alice" does not exist`), or `pg_restore`'s own.
    pub message: String,
    /// The server's DETAIL, HINT and CONTEXT lines, if any.
    pub detail: Option<String>,
    /// The first line of the failing command (none for a failed `COPY` of data).
    pub command: Option<String>,
}

/// Restores an archive into `target`, with `jobs` parallel jobs if the format allows it (tar does not). Failing
/// entries are skipped and reported, named from `toc` (the archive's [`list`]); the restore is an error only when it
/// could not finish.
pub fn restore(
    pg_restore: &Path,
    archive: &Path,
    format: SourceFormat,
    target: Target,
    jobs: usize,
    toc: &ArchiveToc,
) -> Result<RestoreOutcome> {
    let toc: HashMap<u32, &TocEntry> = toc.entries.iter().map(|e| (e.id, e)).collect();
    let (port, jobs_arg) = (target.port.to_string(), jobs.to_string());
    let socket_dir = target.socket_dir.to_str().ok_or_else(|| {
        source_error(target.socket_dir, "the socket directory's path is not UTF-8".into(), String::new())
    })?;
    let mut args = vec!["--verbose", "--no-password", "--host", socket_dir, "--port", &port];
    args.extend(["--username", target.user, "--dbname", target.database]);
    if matches!(format, SourceFormat::Custom | SourceFormat::Directory) && jobs > 1 {
        args.extend(["--jobs", &jobs_arg]);
    }
    let role_arg = target.role.map(|role| format!("--role={role}"));
    args.extend(role_arg.as_deref());
    // `--use-list` reads the dump id before each line's `;` and nothing else.
    let list = match target.only {
        Some(ids) => {
            let mut file = tempfile::NamedTempFile::new().map_err(|e| Error::io("<restore list>", e))?;
            let lines: String = ids.iter().map(|id| format!("{id};\n")).collect();
            std::io::Write::write_all(&mut file, lines.as_bytes()).map_err(|e| Error::io(file.path(), e))?;
            Some(file)
        }
        None => None,
    };
    let list_arg = list.as_ref().map(|file| format!("--use-list={}", file.path().display()));
    args.extend(list_arg.as_deref());
    let start = Instant::now();
    let out = spawn(pg_restore, archive, &args, target.password, target.env)?;
    let duration = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Ignored errors make pg_restore exit 1 with this warning; without it, exit 1 means it gave up.
    let ignored = out.status.code() == Some(1) && stderr.contains("warning: errors ignored on restore:");
    match out.status.success() || ignored {
        true => Ok(RestoreOutcome { errors: entry_errors(&stderr, &toc), duration }),
        false => Err(failure(archive, "restoring the archive", &stderr)),
    }
}

/// How a line of `pg_restore --verbose`'s stderr counts. Parallel workers share stderr and each writes a message in
/// pieces (`pg_restore:`, ` `, the text), so one process's prefix can land in front of another's line.
enum Line<'a> {
    /// `from TOC entry 216; 1259 16386 TABLE geo alice`: the entry the following errors belong to.
    Entry(&'a str),
    /// `error: could not execute query: ERROR:  ...`.
    Error(&'a str),
    /// A continuation of the last message: DETAIL, `Command was:`, the command's other lines.
    Text(&'a str),
    /// Progress and other messages.
    Other,
}

/// The progress messages of `--verbose`, which can turn up without their prefix.
const PROGRESS: &[&str] =
    &["processing ", "creating ", "launching item", "finished ", "entering ", "connecting ", "executing ", "setting "];

fn line(raw: &str) -> Line<'_> {
    let (mut body, mut prefixed) = (raw, false);
    while let Some(rest) = body.trim_start().strip_prefix("pg_restore:") {
        (body, prefixed) = (rest, true);
    }
    let body = body.trim_start();
    if let Some(entry) = body.strip_prefix("from TOC entry ") {
        Line::Entry(entry)
    } else if let Some(error) = body.strip_prefix("error: ") {
        Line::Error(error)
    } else if prefixed || PROGRESS.iter().any(|p| body.starts_with(p)) {
        Line::Other
    } else {
        Line::Text(raw)
    }
}

/// The per-entry errors in a restore's stderr. An error belongs to the last `from TOC entry` line: `pg_restore`
/// names an entry before its first error only.
fn entry_errors(stderr: &str, toc: &HashMap<u32, &TocEntry>) -> Vec<EntryError> {
    let (mut errors, mut entry, mut open, mut in_command) = (Vec::<EntryError>::new(), None, false, false);
    for raw in stderr.lines() {
        match line(raw) {
            Line::Entry(text) => {
                let (id, rest) = text.split_once(';').unwrap_or(("", text));
                let id = id.trim().parse::<u32>().ok();
                let raw_name = rest.trim().splitn(3, ' ').nth(2).unwrap_or(rest).trim_end().to_owned();
                entry = Some((id, id.and_then(|id| toc.get(&id)).map_or(raw_name, |e| e.to_string())));
                open = false;
            }
            Line::Error(text) => {
                let message = text.split_once("ERROR:").map_or(text, |(_, m)| m).trim().to_owned();
                let (toc_id, entry) = entry.clone().map_or((None, None), |(id, name)| (id, Some(name)));
                errors.push(EntryError { entry, toc_id, message, detail: None, command: None });
                (open, in_command) = (true, false);
            }
            Line::Text(text) if open && !in_command => {
                let Some(error) = errors.last_mut() else { continue };
                if let Some(command) = text.strip_prefix("Command was: ") {
                    (error.command, in_command) = (Some(command.trim_end().to_owned()), true);
                } else if !text.trim().is_empty() {
                    let detail = error.detail.get_or_insert_with(String::new);
                    detail.extend([if detail.is_empty() { "" } else { "\n" }, text.trim_end()]);
                }
            }
            Line::Text(_) => {}
            Line::Other => open = false,
        }
    }
    errors
}

/// Runs `pg_restore ARGS ARCHIVE`; exiting non-zero is an error.
fn run(pg_restore: &Path, archive: &Path, args: &[&str], doing: &str) -> Result<Output> {
    let out = spawn(pg_restore, archive, args, None, &[])?;
    match out.status.success() {
        true => Ok(out),
        false => Err(failure(archive, doing, &String::from_utf8_lossy(&out.stderr))),
    }
}

/// Runs `pg_restore ARGS ARCHIVE` to its end, without stdin and without the environment's `PGOPTIONS` and service.
fn spawn(
    pg_restore: &Path,
    archive: &Path,
    args: &[&str],
    password: Option<&str>,
    env: &[(&'static str, String)],
) -> Result<Output> {
    let mut command = Command::new(pg_restore);
    command.args(args).arg(archive).stdin(Stdio::null()).envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.env_remove("PGOPTIONS").env_remove("PGSERVICE").env_remove("PGSERVICEFILE");
    command.output().map_err(|e| {
        let bin = pg_restore.display();
        let message =
            format!("could not run {bin}: {e}; install PostgreSQL's client programs or point --pg-bin at them");
        source_error(archive, message, String::new())
    })
}

/// The error for a `pg_restore` that gave up, with the remedy when the cause is known.
fn failure(archive: &Path, doing: &str, stderr: &str) -> Error {
    let errors: Vec<&str> = stderr.lines().filter_map(|l| l.split_once("error: ").map(|(_, e)| e.trim())).collect();
    let last = errors.iter().rev().find(|e| !e.contains("worker process died")).or(errors.last());
    let cause = last.copied().unwrap_or("it gave no reason");
    let unreadable =
        ["end of file", "not appear to be a valid archive", "magic string", "too short", "could not read from input"];
    let message = if cause.starts_with("unsupported version") {
        format!(
            "pg_restore cannot read this archive ({cause}): a newer pg_dump made it; point --pg-bin at the bin \
             directory of a PostgreSQL at least as new as the one that made it"
        )
    } else if errors.iter().any(|e| unreadable.iter().any(|u| e.contains(u))) {
        format!("pg_restore failed {doing} ({cause}): the archive looks truncated or corrupt; make it again")
    } else {
        format!("pg_restore failed {doing} ({cause}); see its output")
    };
    let tail: Vec<&str> = stderr.lines().filter(|l| !matches!(line(l), Line::Other) || l.contains("warning")).collect();
    source_error(archive, message, tail[tail.len().saturating_sub(30)..].join("\n"))
}

fn source_error(path: &Path, message: String, detail: String) -> Error {
    Error::Source { path: path.to_owned(), message, detail }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::test_server::TestServer;

    const BIN: &str = "/usr/lib/postgresql/15/bin";

    /// A throw-away PostgreSQL 15 (the archives' versions are checked).
    fn start() -> TestServer {
        TestServer::start_with(Path::new(BIN), &[], false)
    }

    fn target<'a>(server: &'a TestServer, database: &'a str) -> Target<'a> {
        let socket_dir = server.dir();
        Target { socket_dir, port: 5432, user: "postgres", database, password: None, env: &[], role: None, only: None }
    }

    /// A server and archives of a small database (a table with data owned by role `alice`, an index, a view, a
    /// function, an extension) in the custom (named `dump.sql`), directory and tar formats; `alice` is then dropped.
    fn fixture() -> (TestServer, Vec<(PathBuf, SourceFormat)>) {
        let server = start();
        server.psql("postgres", "CREATE ROLE alice");
        server.psql("postgres", "CREATE DATABASE src");
        server.psql(
            "src",
            "CREATE TABLE geo (id int PRIMARY KEY, name text); INSERT INTO geo SELECT g, 'n' || g FROM \
             generate_series(1, 100) g; CREATE INDEX geo_name ON geo (name); CREATE VIEW v AS SELECT * FROM geo; \
             CREATE FUNCTION f(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1'; CREATE EXTENSION pg_trgm; \
             ALTER TABLE geo OWNER TO alice",
        );
        let formats = [("dump.sql", "-Fc", SourceFormat::Custom), ("dir", "-Fd", SourceFormat::Directory)];
        let archives =
            formats.into_iter().chain([("dump.tar", "-Ft", SourceFormat::Tar)]).map(|(name, flag, format)| {
                server.tool("pg_dump", &[flag, "-f", &server.path(name), "src"]);
                (server.path(name).into(), format)
            });
        let archives = archives.collect();
        server.psql("postgres", "DROP DATABASE src");
        server.psql("postgres", "DROP ROLE alice");
        (server, archives)
    }

    fn pg_restore() -> PathBuf {
        Path::new(BIN).join("pg_restore")
    }

    #[test]
    fn detects_formats_by_content_and_lists_entries() {
        let (server, archives) = fixture();
        for (path, format) in &archives {
            assert_eq!(detect(path).unwrap(), *format, "{}", path.display());
            let toc = list(&pg_restore(), path).unwrap();
            assert!(toc.dumped_from.as_deref().is_some_and(|v| v.starts_with("15.")), "{toc:?}");
            assert!(toc.dumped_by.as_deref().is_some_and(|v| v.starts_with("15.")), "{toc:?}");
            let find = |desc: &str, name: &str| toc.entries.iter().find(|e| e.desc == desc && e.name == name).unwrap();
            assert_eq!(find("TABLE", "geo").to_string(), "TABLE public.geo alice");
            assert_eq!(find("TABLE DATA", "geo").owner.as_deref(), Some("alice"));
            assert_eq!(find("FUNCTION", "f(integer)").to_string(), "FUNCTION public.f(integer) postgres");
            assert_eq!(find("EXTENSION", "pg_trgm").to_string(), "EXTENSION pg_trgm");
            assert_eq!(find("COMMENT", "EXTENSION pg_trgm").to_string(), "COMMENT EXTENSION pg_trgm");
            assert_eq!(find("VIEW", "v").schema.as_deref(), Some("public"));
            assert!(schema_sql(&pg_restore(), path).unwrap().contains("ALTER TABLE public.geo OWNER TO alice;"));
        }
        assert_eq!(detect(&server.file("schema.dump", b"CREATE TABLE t (x int);\n")).unwrap(), SourceFormat::Plain);
        let gzip = detect(&server.file("schema.sql", b"\x1f\x8b\x08\x00\x00\x00\x00\x00")).unwrap_err();
        assert!(matches!(&gzip, Error::Source { message, .. } if message.contains("gunzip")), "{gzip}");
        std::fs::create_dir(server.path("empty")).unwrap();
        let empty = detect(Path::new(&server.path("empty"))).unwrap_err();
        assert!(matches!(&empty, Error::Source { message, .. } if message.contains("no toc.dat")), "{empty}");
        assert!(matches!(detect(Path::new(&server.path("missing"))), Err(Error::Io { .. })));
    }

    #[test]
    fn restores_data_and_reports_failing_entries_or_unreadable_archives() {
        let (server, archives) = fixture();
        for (n, (path, format)) in archives.iter().enumerate() {
            // The index's name is taken, so that entry fails, in the parallel phase of custom and directory.
            server.psql("postgres", &format!("CREATE DATABASE dst{n}"));
            server.psql(&format!("dst{n}"), "CREATE TABLE geo_name (x int)");
            let toc = list(&pg_restore(), path).unwrap();
            let outcome = restore(&pg_restore(), path, *format, target(&server, &format!("dst{n}")), 2, &toc).unwrap();
            assert_eq!(server.psql(&format!("dst{n}"), "SELECT count(*) FROM geo"), "100");
            assert!(outcome.duration > Duration::ZERO);
            let [owner, index] = &outcome.errors[..] else { panic!("{format:?}: {:#?}", outcome.errors) };
            assert_eq!(owner.entry.as_deref(), Some("TABLE public.geo alice"), "{format:?}");
            assert_eq!((owner.message.as_str(), owner.detail.as_deref()), ("role \"alice\" does not exist", None));
            assert_eq!(owner.command.as_deref(), Some("ALTER TABLE public.geo OWNER TO alice;"));
            assert_eq!(index.entry.as_deref(), Some("INDEX public.geo_name alice"), "{format:?}");
            assert_eq!(index.message, "relation \"geo_name\" already exists");
            assert!(index.command.as_deref().is_some_and(|c| c.starts_with("CREATE INDEX geo_name ON public.geo")));
        }

        let custom = std::fs::read(&archives[0].0).unwrap();
        fn is_source<T>(result: Result<T>, text: &str) -> bool {
            matches!(result, Err(Error::Source { message, .. }) if message.contains(text))
        }
        let header_only = server.file("header.dump", &custom[..40]);
        assert_eq!(detect(&header_only).unwrap(), SourceFormat::Custom);
        assert!(is_source(list(&pg_restore(), &header_only), "truncated"));
        let tar = std::fs::read(&archives[2].0).unwrap();
        assert!(matches!(detect(&server.file("short.tar", &tar[..300])), Err(Error::Source { .. })));
        let newer = [&custom[..6], &[16], &custom[7..]].concat(); // format version 1.16, as pg_dump 18 writes
        assert!(is_source(list(&pg_restore(), &server.file("newer.dump", &newer)), "newer pg_dump"));
        assert!(is_source(list(Path::new("/nonexistent/pg_restore"), &header_only), "--pg-bin"));
        // The table of contents is intact, the data is cut short: the restore itself dies.
        let cut = server.file("cut.dump", &custom[..custom.len() - 200]);
        server.psql("postgres", "CREATE DATABASE cut");
        let toc = list(&pg_restore(), &cut).unwrap();
        let restored = restore(&pg_restore(), &cut, SourceFormat::Custom, target(&server, "cut"), 2, &toc);
        assert!(is_source(restored, "truncated"));
    }

    /// Parallel workers' messages interleave on stderr: lines from a real `pg_restore -j 4 --verbose`.
    #[test]
    fn reads_interleaved_parallel_stderr() {
        let stderr = "pg_restore: entering main parallel loop\npg_restore:pg_restore: processing data for table \
                      \"public.geo\"\n finished item 3402 TABLE DATA t\npg_restore: from TOC entry 3401; 0 16386 \
                      TABLE DATA geo alice\npg_restore: error: COPY failed for table \"geo\": ERROR:  duplicate key \
                      value violates unique constraint \"geo_pkey\"\nDETAIL:  Key (id)=(1) already exists.\n\
                      CONTEXT:  COPY geo, line 1\npg_restore: finished item 3401 TABLE DATA geo\n";
        let errors = entry_errors(stderr, &HashMap::new());
        let [error] = &errors[..] else { panic!("{errors:#?}") };
        assert_eq!((error.entry.as_deref(), error.toc_id), (Some("TABLE DATA geo alice"), Some(3401)));
        assert_eq!(error.message, "duplicate key value violates unique constraint \"geo_pkey\"");
        assert_eq!(error.detail.as_deref(), Some("DETAIL:  Key (id)=(1) already exists.\nCONTEXT:  COPY geo, line 1"));
        assert_eq!(error.command, None);
    }
}
