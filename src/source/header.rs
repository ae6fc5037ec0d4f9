//! What a dump says about where it came from, read without any PostgreSQL tool: the source server's version and the
//! `pg_dump` that made it, from a plain dump's comment header or an archive's binary header.
//!
//! The archive header (`pg_backup_archiver.c`, `ReadHead`): `PGDMP`, the format version (major, minor, revision
//! bytes), the integer size, the offset size, the format, the compression, the creation time (7 integers), then the
//! database name, the server version and the `pg_dump` version as strings. An integer is a sign byte and `intSize`
//! bytes, least significant first; a string is an integer length (negative: none) and its bytes.

use std::path::Path;

use super::archive::SourceFormat;

/// A dump's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpHeader {
    /// The source server's version (`16.4 (Ubuntu 16.4-1)`).
    pub dumped_from: Option<String>,
    /// The version of the `pg_dump` that made the dump (`17.2`): a `pg_restore` at least this new reads it.
    pub dumped_by: Option<String>,
}

/// A plain dump's header: `-- Dumped from database version 16.4` and `-- Dumped by pg_dump version 17.2`.
pub fn of_sql(text: &str) -> DumpHeader {
    let line =
        |prefix: &str| text.lines().take(50).find_map(|line| line.strip_prefix(prefix)).map(|v| v.trim().to_owned());
    DumpHeader {
        dumped_from: line("-- Dumped from database version "),
        dumped_by: line("-- Dumped by pg_dump version "),
    }
}

/// An archive's header; `None` when it cannot be read (it is then left to `pg_restore` to say why).
pub fn of_archive(path: &Path, format: SourceFormat) -> Option<DumpHeader> {
    let (file, skip) = match format {
        SourceFormat::Custom => (path.to_path_buf(), 0),
        SourceFormat::Directory => (path.join("toc.dat"), 0),
        SourceFormat::Tar => (path.to_path_buf(), 512), // toc.dat is the first member
        SourceFormat::Plain => return None,
    };
    let head = super::archive::read_head(&file, skip + 4096).ok()?;
    parse(head.get(skip..)?)
}

fn parse(bytes: &[u8]) -> Option<DumpHeader> {
    let mut r = Reader { bytes: bytes.strip_prefix(b"PGDMP")?, int_size: 0, at: 0 };
    let (major, minor) = (r.byte()?, r.byte()?);
    let version = (major, minor, if major > 1 || minor > 0 { r.byte()? } else { 0 });
    // Before 1.10 an archive does not record the versions.
    if version < (1, 10, 0) {
        return Some(DumpHeader::default());
    }
    r.int_size = r.byte()? as usize;
    let _offset_size = r.byte()?;
    let _format = r.byte()?;
    if version >= (1, 15, 0) {
        r.byte()?; // compression algorithm
    } else {
        r.int()?; // compression level
    }
    for _ in 0..7 {
        r.int()?; // creation time
    }
    let _database = r.string()?;
    Some(DumpHeader { dumped_from: r.string()?, dumped_by: r.string()? })
}

struct Reader<'a> {
    bytes: &'a [u8],
    int_size: usize,
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn int(&mut self) -> Option<i64> {
        let negative = self.byte()? != 0;
        let mut value: i64 = 0;
        for i in 0..self.int_size.min(8) {
            value |= i64::from(self.byte()?) << (8 * i);
        }
        Some(if negative { -value } else { value })
    }

    fn string(&mut self) -> Option<Option<String>> {
        let len = self.int()?;
        if len < 0 {
            return Some(None);
        }
        let bytes = self.bytes.get(self.at..self.at + usize::try_from(len).ok()?)?;
        self.at += bytes.len();
        Some(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_dump_header_names_both_versions() {
        let text = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4 (Ubuntu 16.4-1)\n\
                    -- Dumped by pg_dump version 17.2\n\nSET statement_timeout = 0;\n";
        let header = of_sql(text);
        assert_eq!(header.dumped_from.as_deref(), Some("16.4 (Ubuntu 16.4-1)"));
        assert_eq!(header.dumped_by.as_deref(), Some("17.2"));
        assert_eq!(of_sql("CREATE TABLE t ();"), DumpHeader::default());
    }

    #[test]
    fn the_bundled_archive_header_is_read_without_pg_restore() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/archive-with-data/snapshot.dump");
        let header = of_archive(&path, SourceFormat::Custom).expect("a header");
        assert!(header.dumped_from.as_deref().is_some_and(|v| v.starts_with("15.")), "{header:?}");
        assert!(header.dumped_by.as_deref().is_some_and(|v| v.starts_with("15.")), "{header:?}");
        assert_eq!(parse(b"PGDMP\x01"), None, "a cut header is unreadable, not a panic");
        assert_eq!(parse(b"nothing"), None);
    }
}
