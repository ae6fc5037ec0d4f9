//! Every rule of the catalog, on a real shadow: its documented bad example triggers it, its safe example does not.
//! The examples are what `pgshadow explain RULE` shows, so the docs cannot drift from what the rules do.

use pgshadow::policy::Rule;
use pgshadow::{DryRunOptions, Plan, Schema, Shadow};

#[tokio::test]
async fn every_rule_fires_on_its_bad_example_and_not_on_its_safe_one() {
    let shadow = Shadow::start_local(&Default::default()).await.expect("shadow");
    let options = DryRunOptions::default();
    let mut failures = Vec::new();
    for rule in Rule::ALL {
        let doc = rule.doc();
        let schema = Schema::sql(format!("{rule}.sql"), doc.schema.to_owned());
        for (example, sql, should_fire) in [("bad", doc.bad, true), ("safe", doc.safe, false)] {
            let plan = Plan::parse("example.sql", sql).expect("example parses");
            let report = pgshadow::dry_run_on(&shadow, &plan, Some(&schema), &options).await.expect("dry-run");
            assert!(report.shadow.fidelity.warnings.is_empty(), "{rule}: its schema does not load");
            if report.findings.iter().any(|f| f.rule == rule.id()) != should_fire {
                failures.push(format!("{rule}: the {example} example (findings: {:?})", report.findings));
            }
        }
    }
    shadow.shutdown().await.expect("shutdown");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
