//! The alerting rules and dashboards, checked by Prometheus' own tool: `promtool check rules`
//! on the generated rule files, `promtool test rules` on config/prometheus/tests (a case where
//! each alert fires and one where it does not), every dashboard query parsed as PromQL, the
//! runbook's sections, and config/prometheus kept up to date.
//!
//! promtool comes with Debian's `prometheus` package (`scripts/prepare.sh` installs it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use securityguard_operator::monitoring::alerts::{self, OPERATOR_JOB};
use securityguard_operator::monitoring::dashboards::{self, dashboards};
use securityguard_operator::monitoring::prometheus_operator::{Rule, RuleGroup};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out =
        Command::new("promtool").args(args).current_dir(dir).output().unwrap_or_else(|e| {
            panic!("promtool does not run ({e}): run scripts/prepare.sh (Debian package prometheus)")
        });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

/// The rule files the unit tests load, written next to copies of the unit tests.
fn rule_files(dir: &Path) {
    let guard = alerts::rule_file_yaml(alerts::guard_rule_groups("shop", "guard")).expect("guard rules render");
    std::fs::write(dir.join("guard-rules.yaml"), guard).expect("write guard rules");
    let operator = alerts::rule_file_yaml(alerts::operator_rule_groups(OPERATOR_JOB)).expect("operator rules render");
    std::fs::write(dir.join("operator-rules.yaml"), operator).expect("write operator rules");
}

fn unit_test_files() -> Vec<PathBuf> {
    let dir = repo().join("config/prometheus/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("config/prometheus/tests exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    rule_files(dir.path());
    let out = promtool(&["check", "rules", "guard-rules.yaml", "operator-rules.yaml"], dir.path());
    assert!(out.contains("SUCCESS: 17 rules found") && out.contains("SUCCESS: 3 rules found"), "{out}");
    let mut names = Vec::new();
    for file in unit_test_files() {
        let name = file.file_name().expect("file name").to_string_lossy().into_owned();
        std::fs::copy(&file, dir.path().join(&name)).expect("copy unit test");
        names.push(name);
    }
    let mut args = vec!["test", "rules"];
    args.extend(names.iter().map(String::as_str));
    let out = promtool(&args, dir.path());
    assert_eq!(out.matches("SUCCESS").count(), names.len(), "{out}");
}

#[test]
fn every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() {
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in unit_test_files() {
        let text = std::fs::read_to_string(&file).expect("read unit test");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("unit test file is YAML");
        for test in doc["tests"].as_array().expect("tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().expect("alertname").to_owned();
                let firing = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                if firing { &mut fires } else { &mut quiet }.insert(name);
            }
        }
    }
    let all: BTreeSet<String> = alerts::alert_names().into_iter().collect();
    assert_eq!(all.len(), 20);
    assert_eq!(all.difference(&fires).collect::<Vec<_>>(), Vec::<&String>::new(), "alerts never firing in a test");
    assert_eq!(all.difference(&quiet).collect::<Vec<_>>(), Vec::<&String>::new(), "alerts never quiet in a test");
    assert!(fires.is_subset(&all) && quiet.is_subset(&all), "tests of unknown alerts: {fires:?} {quiet:?}");
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    // promtool parses recording rules offline: one per query, Grafana variables expanded.
    let mut rules = Vec::new();
    for dashboard in dashboards() {
        let stem = dashboard.file.trim_end_matches(".json").replace('-', "_");
        for (i, (_title, query)) in dashboards::queries(&dashboard).expect("dashboard JSON").into_iter().enumerate() {
            rules.push(Rule {
                record: Some(format!("dashboard:{stem}:q{i}")),
                expr: dashboards::expand(&query, "shop", "guard", "5m"),
                ..Rule::default()
            });
        }
    }
    let count = rules.len();
    let groups = vec![RuleGroup { name: "dashboards".to_owned(), interval: None, rules }];
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("dashboards.yaml"), alerts::rule_file_yaml(groups).expect("render")).expect("write");
    let out = promtool(&["check", "rules", "dashboards.yaml"], dir.path());
    assert!(out.contains(&format!("SUCCESS: {count} rules found")), "{out}");
}

#[test]
fn the_runbook_has_a_section_per_alert_and_the_links_point_at_it() {
    let runbook = std::fs::read_to_string(repo().join("docs/runbooks.md")).expect("docs/runbooks.md");
    let headings: BTreeSet<String> =
        runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(|h| h.trim().to_owned()).collect();
    for alert in alerts::alert_names() {
        assert!(headings.contains(&alert), "docs/runbooks.md has no section `## {alert}`");
        // GitHub's anchor of a one-word heading is the word in lower case.
        assert_eq!(alerts::runbook_url(&alert), format!("{}#{}", alerts::RUNBOOK_BASE_URL, alert.to_lowercase()));
    }
    assert!(alerts::RUNBOOK_BASE_URL.ends_with("/docs/runbooks.md"));
}

/// `config/prometheus/operator.yaml` is generated; regenerate with `just monitoring`.
#[test]
fn config_prometheus_matches_the_rust_rules() {
    let path = repo().join("config/prometheus/operator.yaml");
    let committed = std::fs::read_to_string(&path).expect("config/prometheus/operator.yaml exists");
    let generated = securityguard_operator::monitoring::operator_manifests_yaml().expect("manifests render");
    assert!(
        committed == generated,
        "config/prometheus/operator.yaml is stale: run `just monitoring` \
         (securityguard-operator monitoring operator-manifests > config/prometheus/operator.yaml)"
    );
}
