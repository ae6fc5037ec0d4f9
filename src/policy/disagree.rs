//! Where the SQL text and the shadow disagree: a rule's risk the text shows and the shadow did not measure, with
//! what the shadow measured instead and why (each rule's reason lives in its own file, `rules::*::disagreement`).

use super::rules::Seen;
use super::Policy;
use crate::plan::Plan;
use crate::report::{Disagreement, StatementReport, Status};

impl Policy {
    /// The disagreements on the measured `statements`: for every rule the policy checks, each statement that ran,
    /// was not rolled back, and whose text shows the rule's risk, where the rule has no finding and can say why the
    /// shadow saw none. `version` is the shadow's PostgreSQL version (`18.1`), named where it is the reason.
    pub fn disagreements(&self, plan: &Plan, statements: &[StatementReport], version: &str) -> Vec<Disagreement> {
        let mut found = Vec::new();
        let ran = statements.iter().zip(&plan.statements).enumerate();
        for (at, (report, statement)) in ran.filter(|(_, (r, _))| r.status == Status::Ok && !r.rolled_back) {
            let classification = &statement.classification;
            let seen = Seen { report, classification, version, earlier: &statements[..at] };
            for (rule, _) in self.checked() {
                if !rule.text_shows(report, classification)
                    || rule.check(report, classification).is_some()
                    || rule.check_static(report, classification).is_some()
                {
                    continue;
                }
                if let Some((static_expected, measured)) = rule.disagreement(&seen) {
                    found.push(Disagreement {
                        rule: rule.id().to_owned(),
                        statement: report.index,
                        static_expected,
                        measured,
                    });
                }
            }
        }
        found
    }
}
