//! What a load did not reproduce, and why: each failing statement or archive entry becomes a fidelity warning with
//! its line (or entry), tied as it comes to the missing extension it is due to, or marked as needing a superuser;
//! at the end they make the report's [`Fidelity`].

use super::{extensions, privileged};
use crate::report::{Fidelity, FidelityWarning, MissingExtension, SourceTrust};

/// What a loader reports besides its failures.
pub(super) struct Loaded {
    /// Objects in the source: statements of a SQL file, entries of an archive.
    pub(super) objects: usize,
    /// Objects that failed (an archive entry may fail more than once).
    pub(super) failed_objects: usize,
    /// The source server's version, where the source says it.
    pub(super) source_version: Option<String>,
    /// The `pg_restore` an archive was restored with.
    pub(super) restored_with: Option<String>,
    /// Whether the source carried table data that loaded ([`crate::shadow::Database::data_loaded`]).
    pub(super) data: bool,
}

/// The failures of one load, tied to the missing extensions they are due to as they come.
pub(super) struct Failures {
    file: String,
    shadow_major: u32,
    /// Set when the shadow runs a build of `pgshadow postgres install`, which an extension package cannot extend.
    own_build: bool,
    /// The image of a container shadow: a missing extension then calls for another image, not a package.
    image: Option<String>,
    warnings: Vec<FidelityWarning>,
    missing: Vec<String>,
    /// Relations (unqualified, lower-case) whose creation failed for a missing extension, and that extension.
    lost_relations: Vec<(String, String)>,
}

impl Failures {
    pub(super) fn new(file: &str, shadow_version: &str) -> Failures {
        let shadow_major = crate::text::major_of(shadow_version).and_then(|m| m.parse().ok()).unwrap_or(0);
        Failures {
            file: file.to_owned(),
            shadow_major,
            own_build: false,
            image: None,
            warnings: Vec::new(),
            missing: Vec::new(),
            lost_relations: Vec::new(),
        }
    }

    /// The failures of loading `file` into `shadow`, whose build and image say where a missing extension is found.
    pub(super) fn of(file: &str, shadow: &crate::shadow::Shadow) -> Failures {
        Failures {
            own_build: shadow.binaries_origin() == crate::postgres::CACHE_ORIGIN,
            image: shadow.container_image().map(str::to_owned),
            ..Failures::new(file, shadow.server_version())
        }
    }

    /// Records a failure; `statement` is the failing statement's full text (or the archive entry's command).
    pub(super) fn push(&mut self, mut warning: FidelityWarning, statement: &str) {
        if privileged::needs_superuser(warning.sqlstate.as_deref(), &warning.message) {
            warning.needs_superuser = Some(privileged::NEEDS_SUPERUSER.to_owned());
        }
        let failure =
            extensions::Failure { statement, sqlstate: warning.sqlstate.as_deref(), message: &warning.message };
        if let Some(extension) = extensions::missing_extension(&failure) {
            if !self.missing.contains(&extension) {
                self.missing.push(extension.clone());
            }
            warning.extension = Some(extension);
        } else if let Some(extension) = extensions::lost_to(&failure, &self.missing) {
            warning.extension = Some(extension.to_owned());
        } else if let Some(missing) = missing_relation(&warning.message) {
            // A table lost to the extension takes its indexes, constraints and data with it.
            let lost = self.lost_relations.iter().find(|(name, _)| *name == missing);
            warning.extension = lost.map(|(_, extension)| extension.clone());
        }
        if let (Some(extension), Some(created)) = (&warning.extension, created_relation(statement)) {
            self.lost_relations.push((created, extension.clone()));
        }
        self.warnings.push(warning);
    }

    /// Records that the source names `role` as an owner and pgshadow refused to let it own anything, and why; the
    /// statements that give it objects then fail to load and are reported on their own.
    pub(super) fn refused_owner(&mut self, role: &str, why: &str) {
        tracing::warn!(role, "the source names {role} as an owner: refused ({why})");
        let mut warning = self.warning(
            0,
            0,
            None,
            format!("the source names {role} as an owner: refused, {why}; what it would own stays with the plan role"),
            "",
        );
        warning.needs_superuser = Some(privileged::NEEDS_SUPERUSER.to_owned());
        self.warnings.push(warning);
    }

    /// A warning about this load's file, with no extension attributed yet.
    pub(super) fn warning(
        &self,
        line: usize,
        column: usize,
        sqlstate: Option<String>,
        message: String,
        statement: &str,
    ) -> FidelityWarning {
        FidelityWarning {
            file: self.file.clone(),
            line,
            column,
            entry: None,
            sqlstate,
            message,
            statement: excerpt(statement),
            extension: None,
            needs_superuser: None,
        }
    }

    pub(super) fn into_fidelity(self, loaded: Loaded) -> Fidelity {
        let missing_extensions = self
            .missing
            .iter()
            .map(|name| MissingExtension {
                name: name.clone(),
                package: match self.image {
                    Some(_) => None,
                    None => extensions::package(name, self.shadow_major),
                },
                note: match (&self.image, self.own_build) {
                    (Some(image), _) => Some(extensions::image_note(name, image, self.shadow_major)),
                    (None, true) => Some(format!(
                        "the shadow runs pgshadow's own PostgreSQL {} build, which has the contrib extensions only: \
                         install the extension for a system PostgreSQL {} and run there (--pg-bin)",
                        self.shadow_major, self.shadow_major
                    )),
                    (None, false) => extensions::note(name, self.shadow_major),
                },
                objects_lost: self.warnings.iter().filter(|w| w.extension.as_ref() == Some(name)).count(),
            })
            .collect();
        let version_warning = loaded.source_version.as_deref().and_then(crate::text::major_of).and_then(|source| {
            let shadow = self.shadow_major.to_string();
            (source != shadow).then(|| {
                format!(
                    "the source ran PostgreSQL {source} and the shadow runs {shadow}: syntax, lock levels and \
                     rewrites can differ between major versions; `--pg-version {source}` runs a faithful shadow \
                     (`pgshadow postgres install {source}` fetches it)"
                )
            })
        });
        Fidelity {
            source_version: loaded.source_version,
            version_warning,
            objects_in_source: loaded.objects,
            objects_reproduced: loaded.objects.saturating_sub(loaded.failed_objects),
            missing_extensions,
            warnings: self.warnings,
            restored_with: loaded.restored_with,
            newer_version: None,
            source_trust: SourceTrust::Untrusted,
            synthetic: None,
        }
    }
}

/// The relation a "relation ... does not exist" error names, unqualified and lower-case.
fn missing_relation(message: &str) -> Option<String> {
    let rest = message.split_once("relation \"")?.1;
    let (name, tail) = rest.split_once('"')?;
    tail.trim_start().starts_with("does not exist").then(|| unqualified(name))
}

/// The relation a `CREATE [UNLOGGED] TABLE | [MATERIALIZED] VIEW | FOREIGN TABLE` statement creates, unqualified
/// and lower-case.
fn created_relation(statement: &str) -> Option<String> {
    let words: Vec<String> = statement.split_whitespace().take(9).map(str::to_ascii_lowercase).collect();
    if words.first().map(String::as_str) != Some("create") {
        return None;
    }
    let skip = ["or", "replace", "unlogged", "temp", "temporary", "materialized", "foreign", "recursive"];
    let mut rest = words[1..].iter().skip_while(|w| skip.contains(&w.as_str()));
    if !matches!(rest.next().map(String::as_str), Some("table" | "view")) {
        return None;
    }
    let mut name = rest.next()?;
    if name == "if" {
        name = rest.nth(2)?;
    }
    Some(unqualified(name.split('(').next().unwrap_or(name)))
}

/// `public."Stores"` -> `stores`: the last part of a possibly qualified name, without quotes.
fn unqualified(name: &str) -> String {
    name.rsplit('.').next().unwrap_or(name).trim_matches('"').to_ascii_lowercase()
}

/// The first line of a statement, cut to a readable length.
fn excerpt(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let mut out: String = first.chars().take(80).collect();
    if out.len() < text.len() {
        out.push_str(" ...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_are_named_as_created_and_as_missing() {
        assert_eq!(created_relation("CREATE TABLE public.stores (\n id int)").as_deref(), Some("stores"));
        assert_eq!(created_relation("create unlogged table if not exists \"Geo\"(id int)").as_deref(), Some("geo"));
        assert_eq!(created_relation("CREATE MATERIALIZED VIEW app.v AS SELECT 1").as_deref(), Some("v"));
        assert_eq!(created_relation("CREATE INDEX i ON t (a)"), None);
        assert_eq!(missing_relation("relation \"public.stores\" does not exist").as_deref(), Some("stores"));
        assert_eq!(missing_relation("relation \"stores\" already exists"), None);
    }

    #[test]
    fn failures_after_a_missing_extension_are_tied_to_it() {
        let mut failures = Failures::new("schema.sql", "15.18 (Debian 15.18-0+deb12u1)");
        let mut push = |statement: &str, sqlstate: &str, message: &str| {
            let warning = failures.warning(1, 1, Some(sqlstate.to_owned()), message.to_owned(), statement);
            failures.push(warning, statement);
        };
        push("CREATE EXTENSION IF NOT EXISTS postgis", "0A000", "extension \"postgis\" is not available");
        push("CREATE TABLE public.stores (g public.geometry)", "42704", "type \"public.geometry\" does not exist");
        push("CREATE INDEX s_g ON public.stores USING gist (g)", "42P01", "relation \"public.stores\" does not exist");
        push("CREATE INDEX o_x ON public.other (x)", "42P01", "relation \"public.other\" does not exist");
        let loaded = Loaded {
            objects: 10,
            failed_objects: 4,
            source_version: Some("16.4 (Ubuntu)".into()),
            restored_with: None,
            data: false,
        };
        let fidelity = failures.into_fidelity(loaded);
        let tied: Vec<Option<&str>> = fidelity.warnings.iter().map(|w| w.extension.as_deref()).collect();
        assert_eq!(tied, [Some("postgis"), Some("postgis"), Some("postgis"), None]);
        assert_eq!(fidelity.missing_extensions[0].objects_lost, 3);
        assert_eq!(fidelity.missing_extensions[0].package.as_deref(), Some("postgresql-15-postgis-3"));
        assert_eq!(fidelity.objects_reproduced, 6);
        assert!(fidelity.version_warning.is_some_and(|w| w.contains("PostgreSQL 16 and the shadow runs 15")));
    }
}
