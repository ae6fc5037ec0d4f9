//! Policy parsing and evaluation on hand-made measured statements (no server needed).

use super::*;
use crate::plan::Plan;
use crate::report::{DroppedObject, Status, TableEffect};

fn input_error(text: &str) -> (usize, usize, String) {
    match Policy::parse("pgshadow.toml", text) {
        Err(Error::Input { line, column, message, .. }) => (line, column, message),
        other => panic!("expected an input error, got {other:?}"),
    }
}

/// A plan of `sql` statements and their reports, for evaluating policies on made-up measurements.
fn measured(sqls: &[&str]) -> (Plan, Vec<StatementReport>) {
    let plan = Plan::parse("plan.sql", &sqls.join(";\n")).expect("plan");
    let reports = plan
        .statements
        .iter()
        .enumerate()
        .map(|(i, statement)| {
            let mut report = StatementReport::not_run(i + 1, statement);
            report.status = Status::Ok;
            report
        })
        .collect();
    (plan, reports)
}

fn deleted(table: &str, n: u64, direct: bool) -> TableEffect {
    TableEffect { direct, ..TableEffect::measured(table, (0, 0, n, 0)) }
}

fn rules_of(findings: &[Finding]) -> Vec<(&str, Option<usize>, Severity)> {
    findings.iter().map(|f| (f.rule.as_str(), f.statement, f.severity)).collect()
}

#[test]
fn the_built_in_policy_denies_destruction_and_warns_on_locking() {
    let policy = Policy::default();
    assert_eq!(policy.source(), "built-in");
    let warned = [
        Rule::TableRewrite,
        Rule::LockWithoutTimeout,
        Rule::IndexNotConcurrent,
        Rule::NotNullValidationScan,
        Rule::ConstraintValidationScan,
        Rule::StatementsAfterExclusiveLock,
        Rule::UnbackedForeignKey,
        Rule::ConstraintIndexBuild,
        Rule::JsonColumn,
        Rule::UnknownRowCount,
        Rule::Rename,
        Rule::IndexDropNotConcurrent,
        Rule::ConstraintDropped,
        Rule::TimestampWithoutTimeZone,
        Rule::CharColumn,
        Rule::VarcharLengthShrink,
        Rule::TransactionHygiene,
        Rule::TriggerChange,
        Rule::EnumValueChange,
        Rule::IntegerKeyExhaustion,
    ];
    for rule in Rule::ALL {
        let expected = if warned.contains(&rule) { Action::Warn } else { Action::Deny };
        assert_eq!(policy.actions.get(&rule), Some(&expected), "{rule}");
    }
    assert!(policy.protect.is_empty() && policy.deny_kinds.is_empty());
}

#[test]
fn a_protected_table_and_a_row_limit_fail_a_plan_the_default_passes() {
    let (plan, mut reports) = measured(&["DELETE FROM orders WHERE placed < now()", "DELETE FROM users WHERE id = 7"]);
    reports[0].table_effects = vec![deleted("public.orders", 150, true)];
    reports[1].table_effects = vec![deleted("public.users", 1, true)];
    let (findings, verdict) = Policy::default().evaluate(&plan, &reports, None);
    assert_eq!((findings.len(), verdict), (0, Verdict::Pass));

    let policy =
        Policy::parse("pgshadow.toml", "[protect]\nobjects = [\"public.users\"]\n\n[limits]\nmax-rows-deleted = 100\n")
            .expect("policy");
    let (findings, verdict) = policy.evaluate(&plan, &reports, None);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(
        rules_of(&findings),
        [("max-rows-deleted", Some(1), Severity::Error), ("protected-object", Some(2), Severity::Error)]
    );
    assert_eq!((findings[0].measured, findings[0].limit), (Some(151), Some(100)));
    assert_eq!(findings[1].message, "deletes 1 rows from protected table public.users");
}

#[test]
fn warn_gives_the_warn_verdict_and_allow_silences_a_rule() {
    let (plan, mut reports) = measured(&["DELETE FROM users WHERE id = 1"]);
    reports[0].table_effects = vec![deleted("public.users", 1, true), deleted("public.orders", 3, false)];
    let warn = Policy::parse("p.toml", "[rules]\ncascade-delete = \"warn\"\n").expect("policy");
    let (findings, verdict) = warn.evaluate(&plan, &reports, None);
    assert_eq!((rules_of(&findings), verdict), (vec![("cascade-delete", Some(1), Severity::Warning)], Verdict::Warn));
    let allow = Policy::parse("p.toml", "[rules]\ncascade-delete = \"allow\"\n").expect("policy");
    assert_eq!(allow.evaluate(&plan, &reports, None), (vec![], Verdict::Pass));
}

#[test]
fn per_table_limits_match_globs_and_drops_count_as_destroyed() {
    let (plan, mut reports) = measured(&["DROP TABLE billing.invoices", "DELETE FROM public.t WHERE x"]);
    reports[0].dropped_objects = vec![DroppedObject {
        object_type: "table".into(),
        identity: "billing.invoices".into(),
        cascaded: false,
        rows: Some(40),
        values: None,
        rows_known: true,
        estimated: None,
    }];
    reports[0].rows_destroyed = 40;
    reports[1].table_effects = vec![deleted("public.t", 5, true)];
    let policy = Policy::parse(
        "p.toml",
        "[rules]\ndrop-table = \"allow\"\n[limits.tables.\"billing.*\"]\nmax-rows-destroyed = 10\n",
    )
    .expect("policy");
    let (findings, verdict) = policy.evaluate(&plan, &reports, None);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(rules_of(&findings), [("max-rows-destroyed", Some(1), Severity::Error)]);
    assert!(findings[0].message.contains("in billing.invoices"), "{}", findings[0].message);
}

#[test]
fn denied_and_not_allowed_statement_kinds_are_findings() {
    let (plan, reports) = measured(&["TRUNCATE t", "GRANT SELECT ON t TO r", "SELECT 1"]);
    let deny =
        Policy::parse("p.toml", "[rules]\ntruncate = \"allow\"\n[statements]\ndeny = [\"truncate\", \"grant\"]\n")
            .expect("policy");
    assert_eq!(
        rules_of(&deny.evaluate(&plan, &reports, None).0),
        [("denied-statement", Some(1), Severity::Error), ("denied-statement", Some(2), Severity::Error)]
    );
    let allow = Policy::parse("p.toml", "[statements]\nallow = [\"select\"]\n").expect("policy");
    assert_eq!(rules_of(&allow.evaluate(&plan, &reports, None).0).len(), 2);
}

#[test]
fn broken_policies_are_refused_at_their_line_and_column() {
    let (line, column, message) = input_error("[rules]\ndrop-table = \"deny\"\nno-such-rule = \"warn\"\n");
    assert_eq!((line, column), (3, 1));
    assert!(message.starts_with("unknown rule `no-such-rule`; the rules are: drop-table"), "{message}");

    let (line, column, message) = input_error("[limits]\nmax-rows-deleted = \"many\"\n");
    assert_eq!((line, column), (2, 20));
    assert!(message.contains("invalid type"), "{message}");

    let (line, _, message) = input_error("[limits]\nmax-rows-delted = 5\n");
    assert_eq!(line, 2);
    assert!(message.contains("unknown field `max-rows-delted`"), "{message}");

    let (line, column, message) = input_error("[statements]\ndeny = [\"truncate\", \"drop schema\"]\n");
    assert_eq!((line, column), (2, 21));
    assert!(message.contains("unknown statement kind `drop schema`"), "{message}");

    let (line, _, _) = input_error("[rules\n");
    assert_eq!(line, 1);
    let (_, _, message) = input_error("[rules]\ndrop-table = \"maybe\"\n");
    assert!(message.contains("unknown variant `maybe`"), "{message}");
}

#[test]
fn globs_match_whole_names() {
    let g = Glob::new("billing.*");
    assert!(g.matches("billing.invoices") && g.matches("billing.t.col"));
    assert!(!g.matches("public.billing") && !g.matches("billing"));
    assert!(Glob::new("public.user?").matches("public.users"));
    assert!(!Glob::new("public.users").matches("public.users_archive"));
    assert!(Glob::new("*").matches(""));
}

#[test]
fn limits_cannot_be_checked_against_unknown_counts_and_fail() {
    let (plan, mut reports) = measured(&["DELETE FROM public.t WHERE x", "DROP TABLE public.u"]);
    reports[0].table_effects = vec![TableEffect { deleted: None, rows_known: false, ..deleted("public.t", 0, true) }];
    reports[0].rows_known = false;
    reports[1].dropped_objects = vec![DroppedObject {
        object_type: "table".into(),
        identity: "public.u".into(),
        cascaded: false,
        rows: None,
        values: None,
        rows_known: false,
        estimated: None,
    }];
    reports[1].rows_known = false;
    let toml = "[rules]\ndrop-table = \"allow\"\nunknown-row-count = \"allow\"\n[limits]\nmax-rows-deleted = 1000\n\
                [limits.tables.\"public.u\"]\nmax-rows-destroyed = 10\n";
    let policy = Policy::parse("p.toml", toml).expect("policy");
    let (findings, verdict) = policy.evaluate(&plan, &reports, None);
    assert_eq!(verdict, Verdict::Fail);
    let got: Vec<_> = findings.iter().map(|f| (f.rule.as_str(), f.statement, f.measured, f.limit)).collect();
    assert_eq!(got, [("max-rows-deleted", Some(1), None, Some(1000)), ("max-rows-destroyed", Some(2), None, Some(10))]);
    assert!(findings.iter().all(|f| f.message.contains("cannot be checked")), "{findings:?}");
}

#[test]
fn disagreements_skip_allowed_rules_rolled_back_and_failed_statements_and_findings() {
    let (plan, mut reports) = measured(&["TRUNCATE a", "TRUNCATE b", "TRUNCATE c", "TRUNCATE d"]);
    reports[1].rolled_back = true;
    reports[2].status = Status::Error;
    reports[3].table_effects = vec![TableEffect::measured("public.d", (0, 0, 0, 2))];
    let said: Vec<_> = Policy::default()
        .disagreements(&plan, &reports, "18.1")
        .into_iter()
        .map(|d| (d.rule, d.statement, d.static_expected, d.measured))
        .collect();
    let expected = ("truncate", 1, "rows truncated", "nothing truncated: a had no rows on the shadow");
    assert_eq!(said, [(expected.0.into(), expected.1, expected.2.into(), expected.3.into())]);
    let allow = Policy::parse("p.toml", "[rules]\ntruncate = \"allow\"\n").expect("policy");
    assert!(allow.disagreements(&plan, &reports, "18.1").is_empty());
}
