//! Who may do what: a tokens file maps each bearer token to a name and a role.
//!
//! ```toml
//! [[tokens]]
//! token = "agent-secret"       # what the caller sends: Authorization: Bearer agent-secret
//! name = "deploy-bot"          # who it is, in proposals, decisions and the audit log
//! role = "agent"               # agent: propose and read; reviewer: also approve and reject; applier: also apply
//! ```
//!
//! Roles are not ranked: a reviewer cannot apply and an applier cannot approve, so that the one who approves and the
//! pipeline that applies stay apart. Every role may read. Nobody approves a proposal they proposed, whatever their
//! role ([`super::rules::decide`]).

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Propose plans and read proposals.
    Agent,
    /// Read, approve and reject proposals.
    Reviewer,
    /// Read proposals and apply approved ones.
    Applier,
}

/// Something a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read proposals and the audit log.
    Read,
    /// Make a proposal.
    Propose,
    /// Approve or reject one.
    Decide,
    /// Apply one.
    Apply,
}

impl Role {
    /// Whether this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        matches!(
            (self, action),
            (_, Action::Read)
                | (Role::Agent, Action::Propose)
                | (Role::Reviewer, Action::Decide)
                | (Role::Applier, Action::Apply)
        )
    }

    /// Its name, as in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::Applier => "applier",
        }
    }
}

/// A caller: a token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// `Ok` when the caller may do `action`, else [`Error::Forbidden`] naming the role it needs.
    pub fn may(&self, action: Action) -> Result<()> {
        if self.role.allows(action) {
            return Ok(());
        }
        let needed = match action {
            Action::Read => "any",
            Action::Propose => "agent",
            Action::Decide => "reviewer",
            Action::Apply => "applier",
        };
        Err(Error::Forbidden(format!(
            "{} has the role {}; this needs the role {needed}",
            self.name,
            self.role.as_str()
        )))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tokens: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    token: String,
    name: String,
    role: Role,
}

/// The tokens of a tokens file.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<(String, Caller)>,
}

impl Tokens {
    /// Reads a tokens file; an error names its line and column.
    pub fn read(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Tokens::parse(&path.display().to_string(), &text)
    }

    /// Parses a tokens file's text (`file` names it in errors).
    pub fn parse(file: &str, text: &str) -> Result<Tokens> {
        let parsed: File = toml::from_str(text).map_err(|e| {
            Error::input_at(file, text, e.span().map_or(0, |s| s.start), e.message().trim_end().to_owned())
        })?;
        let mut entries: Vec<(String, Caller)> = Vec::new();
        for entry in parsed.tokens {
            let at = text.find(&entry.token).unwrap_or(0);
            if entry.token.len() < 16 {
                return Err(Error::input_at(file, text, at, "a token must have at least 16 characters".into()));
            }
            if entries.iter().any(|(t, _)| *t == entry.token) {
                return Err(Error::input_at(file, text, at, "this token is given twice".into()));
            }
            entries.push((entry.token, Caller { name: entry.name, role: entry.role }));
        }
        Ok(Tokens { entries })
    }

    /// The caller whose token is `token`, compared in constant time with every token of the file (not only up to
    /// the one that matches, so the time taken does not tell which entry it was either).
    pub fn caller(&self, token: &str) -> Option<&Caller> {
        self.entries.iter().fold(None, |found, (t, caller)| {
            let matches = constant_time_eq(t.as_bytes(), token.as_bytes());
            found.or(matches.then_some(caller))
        })
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Compares without an early exit, so response times do not reveal how much of a token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut differ = u8::from(a.len() != b.len());
    for (i, byte) in b.iter().enumerate() {
        differ |= byte ^ a.get(i).copied().unwrap_or(!byte);
    }
    differ == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[tokens]]
token = "agent-token-0123456789"
name = "bot"
role = "agent"

[[tokens]]
token = "review-token-0123456789"
name = "alice"
role = "reviewer"
"#;

    #[test]
    fn tokens_name_a_caller_with_a_role() {
        let tokens = Tokens::parse("tokens.toml", FILE).expect("parses");
        let bot = tokens.caller("agent-token-0123456789").expect("known");
        assert_eq!((bot.name.as_str(), bot.role), ("bot", Role::Agent));
        assert!(bot.may(Action::Propose).is_ok() && bot.may(Action::Read).is_ok());
        let refused = bot.may(Action::Decide).expect_err("an agent cannot approve");
        assert!(refused.to_string().contains("needs the role reviewer"), "{refused}");
        assert!(tokens.caller("agent-token-012345678").is_none());
        assert!(tokens.caller("").is_none());
    }

    #[test]
    fn a_bad_file_names_line_and_column() {
        let error = Tokens::parse("tokens.toml", "[[tokens]]\ntoken = \"x\"\nname = \"a\"\nrole = \"boss\"\n")
            .expect_err("refused");
        let text = error.to_string();
        assert!(text.starts_with("tokens.toml:4:"), "{text}");
        let short = Tokens::parse("tokens.toml", "[[tokens]]\ntoken = \"short\"\nname = \"a\"\nrole = \"agent\"\n");
        assert!(short.expect_err("refused").to_string().contains("at least 16"));
    }
}
