//! Which provider a run's shadow comes from: the one asked for, or with [`Provider::Auto`] (the default) the best
//! one this machine has for the source.
//!
//! `auto` prefers, in order:
//! 1. a local build of the version asked for (`--pg-version`), else of the source's major version (its dump header
//!    or live server), that has every extension the source creates;
//! 2. a container, when a Docker daemon answers and an image for that version (and those extensions) is already
//!    there, or `--pull` allows pulling one;
//! 3. any local build (the report and stderr warn when its major version differs from the source's);
//! 4. when this machine has no PostgreSQL at all: the build of the version needed (asked for, else the source's,
//!    else the newest), installed into the cache from the npm registry on first use, unless
//!    [`Selection::no_install`] or `PGSHADOW_INSTALL=never` forbids it.
//!
//! It never pulls an image unless the [`ContainerOptions::pull`] it is given allows it.

use super::container::{self, ContainerOptions, Pull, Reach};
use super::ServerOptions;
use crate::error::{Error, Result};
use crate::postgres::{self, Installation, Selection, Version, VersionRequest};

/// Where a dry-run's shadow runs.
#[derive(Debug, Clone)]
pub enum Provider {
    /// The best one available (see the module's doc); the options say which image a container would run (`None`:
    /// chosen by version and extensions) and whether it may be pulled.
    Auto(ContainerOptions),
    /// A private cluster made with this machine's PostgreSQL (`--shadow local`).
    Local,
    /// A container of a PostgreSQL image, sealed off from the network (`--shadow container`).
    Container(ContainerOptions),
    /// Scratch databases on a shadow server the team runs (`--shadow server`).
    Server(ServerOptions),
}

impl Default for Provider {
    /// `auto`, pulling nothing.
    fn default() -> Self {
        Provider::Auto(ContainerOptions { image: None, pull: Pull::Never, reach: Reach::Auto })
    }
}

/// What `auto` (or the caller) settled on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Local(String),
    /// Nothing here: install this version's build on first use, then run it locally ([`choose`]'s answer only).
    Install(VersionRequest, String),
    /// A local shadow on the build just installed into this cache directory on first use ([`decide`]'s answer).
    Installed {
        reason: String,
        builds: std::path::PathBuf,
        fetched: Option<postgres::Fetched>,
    },
    Container(ContainerOptions, String),
    Server,
}

impl Decision {
    /// Why this provider, for the report and stderr.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Decision::Local(reason)
            | Decision::Install(_, reason)
            | Decision::Installed { reason, .. }
            | Decision::Container(_, reason) => reason,
            Decision::Server => "asked for with --shadow server",
        }
    }
}

/// Settles `provider` for the sources to load (of `selection.source`'s version). Looks at the local builds and, for
/// `auto`, at the images of the Docker daemon, if one answers; only then does it ask `extensions` which extensions the
/// sources create (an archive's table of contents costs a `pg_restore --list`), since without a daemon the choice is
/// local anyway.
pub(crate) async fn decide(
    provider: &Provider,
    selection: &Selection,
    extensions: impl FnOnce() -> Vec<String> + Send + 'static,
) -> Result<Decision> {
    let options = match provider {
        Provider::Local => return Ok(Decision::Local("asked for with --shadow local".to_owned())),
        Provider::Server(_) => return Ok(Decision::Server),
        Provider::Container(options) => {
            let image = options.image.clone().unwrap_or_else(|| image_for(selection));
            let options = ContainerOptions { image: Some(image), ..options.clone() };
            return Ok(Decision::Container(options, "asked for with --shadow container".to_owned()));
        }
        Provider::Auto(options) => options,
    };
    if selection.pg_bin.is_some() {
        return Ok(Decision::Local("auto: --pg-bin names local binaries".to_owned()));
    }
    let builds = selection.builds.clone();
    let found = tokio::task::spawn_blocking(move || postgres::discover(builds.as_deref()))
        .await
        .map_err(|e| Error::io("<discovery task>", std::io::Error::other(e)))?;
    let Some(images) = container::images_here(options.reach).await else {
        return install_if_asked(choose(&found, selection, &[], None, options)?, selection).await;
    };
    let extensions = tokio::task::spawn_blocking(extensions)
        .await
        .map_err(|e| Error::io("<extensions task>", std::io::Error::other(e)))?;
    install_if_asked(choose(&found, selection, &extensions, Some(&images), options)?, selection).await
}

/// Carries out [`Decision::Install`]: installs the build into the cache (saying so on stderr), and answers
/// [`Decision::Installed`]; any other decision is returned as it is.
async fn install_if_asked(decision: Decision, selection: &Selection) -> Result<Decision> {
    let Decision::Install(request, why) = decision else { return Ok(decision) };
    let builds = selection.builds.clone().or_else(super::CacheOptions::default_dir).ok_or_else(|| Error::Install {
        version: request.to_string(),
        message: "no cache directory to install into: neither XDG_CACHE_HOME nor HOME is set".to_owned(),
    })?;
    let into = builds.clone();
    let (installed, fetched) = tokio::task::spawn_blocking(move || {
        postgres::install_for(&into, request, &postgres::InstallSource::Registry, postgres::Purpose::FirstUse)
    })
    .await
    .map_err(|e| Error::io("<install task>", std::io::Error::other(e)))??;
    let how = match &fetched {
        Some(_) => "installed into the cache on first use",
        None => "already in the cache, installed by another run",
    };
    let reason = format!("{why}; PostgreSQL {} {how}", installed.version);
    Ok(Decision::Installed { reason, builds, fetched })
}

/// The local build of the version wanted (any, when no version is), and whether it has every one of `extensions`.
fn matching<'f>(
    found: &'f [Installation],
    selection: &Selection,
    extensions: &[String],
) -> (Option<&'f Installation>, bool) {
    let build = found.iter().find(|f| match (selection.version, selection.source) {
        (Some(request), _) => request.matches(&f.version),
        (None, Some(source)) => f.version.major == source.major,
        (None, None) => true,
    });
    (build, build.is_some_and(|b| extensions.iter().all(|e| has_extension(b, e))))
}

/// `auto`'s choice, from what is here: the local builds `found` and the Docker daemon's images (`None`: no daemon
/// answers).
fn choose(
    found: &[Installation],
    selection: &Selection,
    extensions: &[String],
    images: Option<&[String]>,
    options: &ContainerOptions,
) -> Result<Decision> {
    let wanted = wanted_major(selection);
    let (matching, complete) = matching(found, selection, extensions);
    let lacking: Vec<String> = match matching {
        Some(build) => extensions.iter().filter(|e| !has_extension(build, e)).cloned().collect(),
        None => extensions.to_vec(),
    };
    let what = match (selection.version, selection.source) {
        (Some(request), _) => format!("PostgreSQL {request} (--pg-version)"),
        (None, Some(source)) => format!("PostgreSQL {} (the source's)", source.major),
        (None, None) => "PostgreSQL".to_owned(),
    };
    if let (Some(_), true) = (matching, complete) {
        let with = if extensions.is_empty() { String::new() } else { " with the source's extensions".to_owned() };
        // Where the build comes from is in the report's `binaries`.
        return Ok(Decision::Local(match (selection.version, selection.source) {
            (None, None) => format!("auto: a local PostgreSQL{with}; the source does not say its version"),
            _ => format!("auto: {what} is installed here{with}"),
        }));
    }
    let why_not_local = match matching {
        Some(_) => format!("the local {what} lacks {}", lacking.join(", ")),
        None => format!("no {what} installed here"),
    };
    if let Some(images) = images {
        let image = match &options.image {
            Some(image) => (images.iter().any(|i| i == image) || options.pull != Pull::Never).then(|| image.clone()),
            None => image_here(images, wanted, &lacking)
                .or_else(|| (options.pull != Pull::Never).then(|| default_image(wanted, &lacking))),
        };
        if let Some(image) = image {
            let pulled = if images.contains(&image) { "" } else { ", to be pulled (--pull)" };
            let reason = format!("auto: {why_not_local}; Docker has the image {image}{pulled}");
            return Ok(Decision::Container(ContainerOptions { image: Some(image), ..options.clone() }, reason));
        }
    }
    let no_image = match images {
        Some(_) => "no image for it in Docker (--pull missing would pull one)",
        None => "no Docker daemon answers",
    };
    if matching.is_some() {
        return Ok(Decision::Local(format!("auto: {why_not_local}, and {no_image}")));
    }
    if found.is_empty() {
        let needed = selection.needed();
        if !selection.installs_allowed() {
            return Err(Error::FirstUseInstallOff { version: needed.to_string(), searched: postgres::searched_dirs() });
        }
        return Ok(Decision::Install(needed, format!("auto: no PostgreSQL installed here, and {no_image}")));
    }
    if let Some(request) = selection.version {
        // A version asked for is never replaced by another: the local choice names what is installed.
        postgres::choose(found, Some(request), selection.source)?;
    }
    Ok(Decision::Local(format!("auto: {why_not_local}, and {no_image}; the newest local build instead")))
}

/// The image for a container shadow of `selection`'s version, when none was named.
pub(crate) fn image_for(selection: &Selection) -> String {
    default_image(wanted_major(selection), &[])
}

/// The major version a shadow should run: the one asked for, else the source's.
fn wanted_major(selection: &Selection) -> Option<u32> {
    match selection.version {
        Some(VersionRequest::Major(major) | VersionRequest::Minor(major, _)) => Some(major),
        Some(VersionRequest::Latest) => None,
        None => selection.source.map(|v: Version| v.major),
    }
}

/// The image to pull for PostgreSQL `major` with `extensions`: the official `postgres:<major>`, or the known image
/// of the first extension it lacks.
pub(crate) fn default_image(major: Option<u32>, extensions: &[String]) -> String {
    let Some(major) = major else { return "postgres:latest".to_owned() };
    extensions
        .iter()
        .find_map(|e| known_images(e, major).into_iter().next().map(|(repo, tag)| format!("{repo}:{tag}")))
        .unwrap_or_else(|| format!("postgres:{major}"))
}

/// An image among `images` (Docker's `repo:tag` names) for PostgreSQL `major` that has `extensions`.
fn image_here(images: &[String], major: Option<u32>, extensions: &[String]) -> Option<String> {
    let Some(major) = major else {
        return images.iter().find(|i| i.as_str() == "postgres:latest").cloned();
    };
    let fits = |image: &String, repo: &str, tag: &str| {
        image.split_once(':').is_some_and(|(r, t)| r == repo && (t == tag || t.starts_with(&format!("{tag}-"))))
    };
    let Some(first) = extensions.first() else {
        let official = [format!("{major}"), format!("{major}-alpine"), format!("{major}-bookworm")];
        return images.iter().find(|i| official.iter().any(|tag| fits(i, "postgres", tag))).cloned();
    };
    // Only one image per extension is known: a source needing two of them needs --image.
    let wanted = known_images(first, major);
    images.iter().find(|i| wanted.iter().any(|(repo, tag)| fits(i, repo, tag))).cloned()
}

/// The images known to carry `extension` for PostgreSQL `major`, as (repository, tag or tag prefix), the one to pull
/// first.
fn known_images(extension: &str, major: u32) -> Vec<(&'static str, String)> {
    match extension {
        "postgis" | "postgis_raster" | "postgis_topology" | "postgis_tiger_geocoder" | "address_standardizer" => {
            vec![("postgis/postgis", format!("{major}-3.5")), ("postgis/postgis", format!("{major}"))]
        }
        "vector" => vec![("pgvector/pgvector", format!("pg{major}"))],
        "timescaledb" | "timescaledb_toolkit" => vec![("timescale/timescaledb", format!("latest-pg{major}"))],
        _ => Vec::new(),
    }
}

/// Whether a local build has `extension`'s control file. A build whose extension directory is not where builds
/// keep it is given the benefit of the doubt.
fn has_extension(build: &Installation, extension: &str) -> bool {
    let prefix = build.binaries.dir.parent().unwrap_or(&build.binaries.dir);
    let candidates = [
        prefix.join("share/postgresql/extension"),
        prefix.join("share/extension"),
        std::path::PathBuf::from(format!("/usr/share/postgresql/{}/extension", build.version.major)),
    ];
    match candidates.iter().find(|dir| dir.join("plpgsql.control").is_file()) {
        Some(dir) => dir.join(format!("{extension}.control")).is_file(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::postgres::PgBinaries;

    fn build(version: &str) -> Installation {
        let binaries = PgBinaries { dir: PathBuf::from(format!("/nonexistent/{version}/bin")), origin: "PATH" };
        Installation { version: Version::parse(version).expect("a version"), binaries }
    }

    fn selection(source: Option<&str>, version: Option<VersionRequest>) -> Selection {
        Selection { source: source.and_then(Version::parse), version, ..Selection::default() }
    }

    fn auto(pull: Pull) -> ContainerOptions {
        ContainerOptions { image: None, pull, reach: Reach::Auto }
    }

    fn image_of(decision: &Decision) -> Option<&str> {
        match decision {
            Decision::Container(options, _) => options.image.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn a_local_build_of_the_source_version_comes_first() {
        let found = [build("18.4"), build("15.18")];
        let images = ["postgres:15".to_owned()];
        let decision = choose(&found, &selection(Some("15.2"), None), &[], Some(&images), &auto(Pull::Never));
        assert!(matches!(&decision, Ok(Decision::Local(r)) if r.contains("PostgreSQL 15 (the source's) is installed")));
    }

    #[test]
    fn a_container_stands_in_for_a_missing_version_only_with_an_image_here_or_pulling_allowed() {
        let found = [build("18.4"), build("15.18")];
        let images = ["postgres:16".to_owned(), "postgres:17-alpine".to_owned()];
        let sixteen = selection(Some("16.3"), None);
        let decision = choose(&found, &sixteen, &[], Some(&images), &auto(Pull::Never)).expect("a decision");
        assert_eq!(image_of(&decision), Some("postgres:16"), "{decision:?}");
        assert!(decision.reason().contains("no PostgreSQL 16 (the source's) installed here"), "{decision:?}");
        let alpine = choose(&found, &selection(Some("17.1"), None), &[], Some(&images), &auto(Pull::Never));
        assert_eq!(image_of(&alpine.expect("a decision")), Some("postgres:17-alpine"));
        // Not here, and no pulling: the newest local build, never a pull.
        let fourteen = selection(Some("14.1"), None);
        let decision = choose(&found, &fourteen, &[], Some(&images), &auto(Pull::Never)).expect("a decision");
        assert!(matches!(&decision, Decision::Local(r) if r.contains("--pull missing")), "{decision:?}");
        let decision = choose(&found, &fourteen, &[], Some(&images), &auto(Pull::Missing)).expect("a decision");
        assert_eq!(image_of(&decision), Some("postgres:14"));
        // No daemon: local.
        let decision = choose(&found, &sixteen, &[], None, &auto(Pull::Missing)).expect("a decision");
        assert!(matches!(&decision, Decision::Local(r) if r.contains("no Docker daemon answers")), "{decision:?}");
    }

    #[test]
    fn a_version_asked_for_is_never_replaced_by_another_local_one() {
        let found = [build("18.4")];
        let asked = selection(None, Some(VersionRequest::Major(16)));
        let decision = choose(&found, &asked, &[], Some(&["postgres:16".to_owned()]), &auto(Pull::Never));
        assert_eq!(image_of(&decision.expect("a decision")), Some("postgres:16"));
        match choose(&found, &asked, &[], Some(&[]), &auto(Pull::Never)) {
            Err(Error::PostgresVersionMissing { requested, .. }) => assert_eq!(requested, "16"),
            other => panic!("expected PostgresVersionMissing, got {other:?}"),
        }
    }

    #[test]
    fn an_extension_the_local_build_lacks_sends_the_run_to_an_image_that_has_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let extension = dir.path().join("share/postgresql/extension");
        std::fs::create_dir_all(&extension).expect("mkdir");
        std::fs::write(extension.join("plpgsql.control"), "").expect("write");
        let local = Installation {
            version: Version::parse("16.4").expect("a version"),
            binaries: PgBinaries { dir: dir.path().join("bin"), origin: "PATH" },
        };
        let postgis = ["postgis".to_owned()];
        let images = ["postgres:16".to_owned(), "postgis/postgis:16-3.4".to_owned()];
        let source = selection(Some("16.1"), None);
        let decision = choose(std::slice::from_ref(&local), &source, &postgis, Some(&images), &auto(Pull::Never));
        let decision = decision.expect("a decision");
        assert_eq!(image_of(&decision), Some("postgis/postgis:16-3.4"));
        assert!(decision.reason().contains("lacks postgis"), "{decision:?}");
        // With the extension installed, the local build.
        std::fs::write(extension.join("postgis.control"), "").expect("write");
        let decision = choose(&[local], &source, &postgis, Some(&images), &auto(Pull::Never));
        assert!(matches!(decision, Ok(Decision::Local(_))), "{decision:?}");
        assert_eq!(default_image(Some(17), &["vector".to_owned()]), "pgvector/pgvector:pg17");
        assert_eq!(default_image(None, &[]), "postgres:latest");
    }

    #[test]
    fn nothing_here_at_all_installs_the_version_needed_unless_told_not_to() {
        let decision = choose(&[], &selection(Some("16.1"), None), &[], None, &auto(Pull::Never));
        assert!(matches!(&decision, Ok(Decision::Install(VersionRequest::Major(16), _))), "{decision:?}");
        let decision = choose(&[], &selection(None, None), &[], Some(&[]), &auto(Pull::Never));
        assert!(matches!(&decision, Ok(Decision::Install(VersionRequest::Latest, r)) if r.contains("no image")));
        let off = Selection { no_install: true, ..selection(Some("16.1"), None) };
        match choose(&[], &off, &[], None, &auto(Pull::Never)) {
            Err(e @ Error::FirstUseInstallOff { .. }) => {
                assert!(e.to_string().contains("--no-install"), "{e}");
                let hint = e.hint().unwrap_or_default();
                assert!(hint.contains("`pgshadow postgres install 16`") && hint.contains("--shadow container"), "{e}");
            }
            other => panic!("expected FirstUseInstallOff, got {other:?}"),
        }
    }
}
