//! What running a PostgreSQL program tells (`postgres --version`, `pg_config --bindir`), asked once per program and
//! remembered: for the process, and across runs in `<cache>/asked.json` once [`remember_in`] named the cache. Each
//! answer is kept with the program's real path, size and modification time, and asked again when any of them changed.
//! A warm run then starts no process to find its PostgreSQL; Debian's `pg_config` alone is a shell script that starts
//! three more.
//!
//! A remembered `pg_config --bindir` may outlive what it answered when the program stayed the same but the
//! installations changed (Debian's answers the newest `/usr/lib/postgresql/N`): discovery scans those directories
//! itself, and a directory that lost its binaries is passed over, so such an answer finds nothing wrong, only nothing
//! new.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// The file, in the cache directory.
const FILE: &str = "asked.json";

/// A program as it was when it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    modified_ns: u128,
}

/// One remembered answer: the program's stamp, and the first line of what it printed (none when it failed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answer {
    stamp: Stamp,
    output: Option<String>,
}

#[derive(Debug, Default)]
struct Asked {
    /// By `<real path> <arguments>`.
    answers: HashMap<String, Answer>,
    /// Where they are remembered across runs, once known.
    file: Option<PathBuf>,
    /// Whether an answer was asked since they were read or written.
    changed: bool,
}

static ASKED: Mutex<Option<Asked>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Asked) -> T) -> T {
    let mut asked = ASKED.lock().unwrap_or_else(|e| e.into_inner());
    f(asked.get_or_insert_with(Asked::default))
}

/// The program's real path and stamp.
fn stamp(program: &Path) -> Option<(PathBuf, Stamp)> {
    let real = std::fs::canonicalize(program).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    let modified_ns = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((real, Stamp { size: meta.len(), modified_ns }))
}

/// The first line `program` prints with `args` when it succeeds: remembered, or asked now.
pub(super) fn ask(program: &Path, args: &[&str]) -> Option<String> {
    let (real, stamp) = stamp(program)?;
    let key = format!("{} {}", real.display(), args.join(" "));
    if let Some(answer) = with(|asked| asked.answers.get(&key).filter(|a| a.stamp == stamp).cloned()) {
        return answer.output;
    }
    let output = Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8_lossy(&out.stdout).lines().next().map(|line| line.trim().to_owned()));
    with(|asked| {
        asked.answers.insert(key, Answer { stamp, output: output.clone() });
        asked.changed = true;
    });
    output
}

/// Remembers answers in `cache` from now on: reads what earlier runs remembered there (the first time only).
pub(super) fn remember_in(cache: &Path) {
    let file = cache.join(FILE);
    with(|asked| {
        if asked.file.as_ref() == Some(&file) {
            return;
        }
        let read: HashMap<String, Answer> =
            std::fs::read(&file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        for (key, answer) in read {
            asked.answers.entry(key).or_insert(answer);
        }
        asked.file = Some(file);
    });
}

/// Writes the answers to the cache named by [`remember_in`] when one was asked since: to a temporary file renamed
/// over the old one, so a concurrent run reads either whole. A cache that cannot be written is left as it is.
pub(super) fn save() {
    let Some((file, json)) = with(|asked| {
        let file = asked.file.clone().filter(|_| asked.changed)?;
        asked.changed = false;
        Some((file, serde_json::to_vec(&asked.answers).ok()?))
    }) else {
        return;
    };
    let Some(dir) = file.parent() else { return };
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let temp = tempfile::NamedTempFile::new_in(dir)?;
        std::fs::write(temp.path(), &json)?;
        temp.persist(&file).map(|_| ()).map_err(|e| e.error)
    });
    if let Err(e) = written {
        tracing::debug!(file = %file.display(), error = %e, "could not remember what PostgreSQL programs answered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_asked_once_and_again_when_the_program_changed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let program = dir.path().join("prog");
        let counter = dir.path().join("runs");
        let script = |answer: &str| format!("#!/bin/sh\necho x >> {}\necho {answer}\n", counter.display());
        std::fs::write(&program, script("one")).expect("write");
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let runs = || std::fs::read_to_string(&counter).map_or(0, |s| s.lines().count());
        remember_in(dir.path());
        assert_eq!(ask(&program, &["--version"]).as_deref(), Some("one"));
        assert_eq!(ask(&program, &["--version"]).as_deref(), Some("one"));
        assert_eq!(runs(), 1, "asked once");
        save();
        assert!(dir.path().join(FILE).exists());
        // Another answer, of another size: asked again.
        std::fs::write(&program, script("two, longer")).expect("write");
        assert_eq!(ask(&program, &["--version"]).as_deref(), Some("two, longer"));
        assert_eq!(runs(), 2);
        // What was saved is read by another process: simulated by forgetting the process's answers.
        save();
        with(|asked| *asked = Asked::default());
        remember_in(dir.path());
        assert_eq!(ask(&program, &["--version"]).as_deref(), Some("two, longer"));
        assert_eq!(runs(), 2, "remembered across runs");
    }
}
