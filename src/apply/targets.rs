//! Targets: the databases approved plans are applied to, by name. Their URLs live only in configuration — a
//! `[targets]` table in serve.toml or in a targets file — or in the environment (`PGSHADOW_TARGET_<NAME>_URL`, the
//! name upper-cased with `-` as `_`), which wins. Never in a proposal, a report, the store or the audit log: an agent
//! names a target, and never learns where it is.
//!
//! ```toml
//! [targets]
//! production = "postgresql://deployer@db.internal/app?sslmode=verify-full"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Target names and their URLs.
#[derive(Clone, Default)]
pub struct Targets {
    urls: BTreeMap<String, String>,
    file: Option<String>,
}

impl std::fmt::Debug for Targets {
    /// Names only: a URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets").field("names", &self.urls.keys().collect::<Vec<_>>()).finish()
    }
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    targets: BTreeMap<String, String>,
}

impl Targets {
    /// The `[targets]` table of a TOML file (serve.toml or a targets file); other tables are left to their readers.
    pub fn read(path: &Path) -> Result<Targets> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let shown = path.display().to_string();
        let file: File = toml::from_str(&text).map_err(|e| {
            Error::input_at(&shown, &text, e.span().map_or(0, |s| s.start), e.message().trim_end().to_owned())
        })?;
        Ok(Targets { urls: file.targets, file: Some(shown) })
    }

    /// Targets given as a map (for a configuration read elsewhere).
    pub fn from_map(urls: BTreeMap<String, String>) -> Targets {
        Targets { urls, file: None }
    }

    /// The variable that names `target`'s URL: `PGSHADOW_TARGET_<NAME>_URL`.
    pub fn variable(target: &str) -> String {
        let name: String =
            target.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("PGSHADOW_TARGET_{name}_URL")
    }

    /// The URL of `target`: its environment variable, else the configuration's entry.
    pub fn url(&self, target: &str) -> Result<String> {
        if let Some(url) = std::env::var(Self::variable(target)).ok().filter(|u| !u.is_empty()) {
            return Ok(url);
        }
        self.urls.get(target).cloned().ok_or_else(|| Error::Source {
            path: self.file.clone().unwrap_or_else(|| "<targets>".to_owned()).into(),
            message: format!(
                "no target named {target:?}: set {} or add it to a [targets] table ({})",
                Self::variable(target),
                match self.urls.is_empty() {
                    true => "none is configured".to_owned(),
                    false => format!("configured: {}", self.urls.keys().cloned().collect::<Vec<_>>().join(", ")),
                }
            ),
            detail: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_found_by_name_and_never_shown() {
        let targets = Targets::from_map([("prod-eu".to_owned(), "postgresql://u:secret@h/db".to_owned())].into());
        assert_eq!(Targets::variable("prod-eu"), "PGSHADOW_TARGET_PROD_EU_URL");
        assert_eq!(targets.url("prod-eu").expect("found"), "postgresql://u:secret@h/db");
        let missing = targets.url("staging").expect_err("unknown").to_string();
        assert!(missing.contains("PGSHADOW_TARGET_STAGING_URL") && missing.contains("prod-eu"), "{missing}");
        assert!(!format!("{targets:?}").contains("secret"));
    }
}
