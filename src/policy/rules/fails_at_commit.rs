//! `fails-at-commit`: every statement of the plan succeeded, but a deferred constraint it left violated fails the
//! COMMIT that ends it, so applying the plan commits nothing.

use super::RuleDoc;
use crate::report::CommitError;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "the plan's final COMMIT fails on a deferred constraint",
    safer: "leave every deferred constraint satisfied before the plan ends",
    explanation: "A DEFERRABLE INITIALLY DEFERRED constraint (a foreign key, a unique or exclusion constraint, a constraint trigger) is checked at COMMIT, not by the statement that violates it. Every statement succeeds, and the COMMIT fails: `pgshadow apply` runs the plan as one transaction, so nothing is applied. The dry-run checks the deferred constraints where the plan ends, as that COMMIT would (SET CONSTRAINTS ALL IMMEDIATE), and the report's `commit_error` gives Postgres's error. (A plan's own COMMIT that fails this way is that statement's error: `statement-error`.) Make the plan leave the data consistent before it ends: insert the referenced rows, or fix the duplicates, in the same plan.",
    schema: "CREATE TABLE users (id int PRIMARY KEY);\nCREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users DEFERRABLE INITIALLY DEFERRED);",
    bad: "INSERT INTO orders VALUES (1, 7);",
    safe: "INSERT INTO orders VALUES (1, 7);\nINSERT INTO users VALUES (7);",
};

/// The finding's message when the plan would fail at its final COMMIT.
pub(super) fn check(error: Option<&CommitError>) -> Option<String> {
    let error = error?;
    Some(format!(
        "every statement succeeded, but the COMMIT that ends the plan fails{}{}",
        error.describe(),
        error.prediction()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_error_is_found_with_its_code_and_detail() {
        let error = CommitError {
            sqlstate: Some("23503".into()),
            message: "insert or update on table \"orders\" violates foreign key constraint \"orders_user_id_fkey\""
                .into(),
            detail: Some("Key (user_id)=(7) is not present in table \"users\".".into()),
            ..Default::default()
        };
        let message = check(Some(&error)).expect("a finding");
        assert!(message.contains("[23503]") && message.contains("Key (user_id)=(7)"), "{message}");
        assert_eq!(check(None), None);
    }
}
