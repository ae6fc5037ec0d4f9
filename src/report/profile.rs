//! What a report says about the profile of production it was given (`run --profile`): which file, how much of the
//! source's values it holds, and whether it describes the schema the shadow was loaded with.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much of the source's column values a profile holds (`pgshadow profile --values`). Values are data, and data
/// can be sensitive, so they are opt-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileValues {
    /// No values at all: sizes, counts and fractions only.
    None,
    /// Histogram bounds and most-common values only for columns whose values are keys, numbers or time, not free
    /// text: integers, numerics and floats, uuids, dates and timestamps, booleans, enums. The default.
    #[default]
    Keys,
    /// Everything `pg_stats` has, for every column, free text included.
    All,
}

impl ProfileValues {
    /// `none`, `keys` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileValues::None => "none",
            ProfileValues::Keys => "keys",
            ProfileValues::All => "all",
        }
    }
}

/// The profile a run was given (`--profile`), checked against the shadow's schema.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProfileInfo {
    /// The profile file, as given.
    pub file: String,
    /// How much of the source's values it holds.
    pub values: ProfileValues,
    /// The profiled server's `server_version`.
    pub server_version: String,
    /// The catalog fingerprint of the profiled database: a SHA-256 of a canonical description of its tables,
    /// columns and their types, constraints, indexes and enums.
    pub catalog_sha256: String,
    /// The same fingerprint, of the shadow's database once the source was loaded.
    pub shadow_catalog_sha256: String,
    /// Whether the two fingerprints are equal: the profile describes the schema the plan ran on.
    pub matches: bool,
    /// Tables (`schema.table`) and columns (`schema.table.column`) the profile has and the shadow lacks.
    pub missing_in_shadow: Vec<String>,
    /// Tables and columns the shadow has and the profile lacks.
    pub missing_in_profile: Vec<String>,
    /// Columns whose type differs: `schema.table.column: integer in the profile, bigint in the shadow`.
    pub changed: Vec<String>,
    /// Set when the fingerprints differ: what that means for the run, in words.
    pub warning: Option<String>,
}

/// The report's lines about its profile, for people: which file, and when it does not match, what differs.
pub(crate) fn profile_lines(info: &ProfileInfo) -> Vec<String> {
    let mut lines = vec![format!(
        "profile {} (PostgreSQL {}, values: {}): {}",
        info.file,
        info.server_version,
        info.values.as_str(),
        if info.matches { "matches the shadow's schema" } else { "does NOT match the shadow's schema" }
    )];
    lines.extend(info.warning.clone());
    let name = |list: &[String], what: &str| (!list.is_empty()).then(|| format!("{what}: {}", list.join(", ")));
    lines.extend(name(&info.missing_in_shadow, "in the profile, not in the shadow"));
    lines.extend(name(&info.missing_in_profile, "in the shadow, not in the profile"));
    lines.extend(name(&info.changed, "changed"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_is_told_with_what_differs() {
        let mut info = ProfileInfo {
            file: "db/profile.json".into(),
            values: ProfileValues::Keys,
            server_version: "16.4".into(),
            catalog_sha256: "a".into(),
            shadow_catalog_sha256: "a".into(),
            matches: true,
            missing_in_shadow: Vec::new(),
            missing_in_profile: Vec::new(),
            changed: Vec::new(),
            warning: None,
        };
        assert_eq!(
            profile_lines(&info),
            ["profile db/profile.json (PostgreSQL 16.4, values: keys): matches the shadow's schema"]
        );
        info.matches = false;
        info.warning = Some("taken of another schema".into());
        info.missing_in_profile = vec!["public.orders.coupon".into(), "public.new".into()];
        let lines = profile_lines(&info);
        assert!(lines[0].ends_with("does NOT match the shadow's schema"), "{lines:?}");
        assert_eq!(
            lines[1..],
            ["taken of another schema", "in the shadow, not in the profile: public.orders.coupon, public.new"]
        );
    }
}
