//! The alerting rules: one set per SecurityGuard, scoped by label matchers to its namespace and
//! its API Service so that each PrometheusRule only fires for its own guard, and one set for the
//! operator itself. Pure functions; `docs/runbooks.md` has a section per alert.

use std::collections::BTreeMap;

use super::prometheus_operator::{Rule, RuleFile, RuleGroup};

/// Where the runbook sections live; each alert links to `RUNBOOK_BASE_URL#<alert name, lowercase>`.
pub const RUNBOOK_BASE_URL: &str = "https://github.com/securityguard/securityguard/blob/main/docs/runbooks.md";

/// The `job` label of the operator's own metrics: the name of its metrics Service in
/// `config/manager` (a ServiceMonitor names the job after the Service).
pub const OPERATOR_JOB: &str = "securityguard-operator-metrics";

/// Share of HTTP requests answered with a 5xx status above which the API alerts.
pub const ERROR_RATE_THRESHOLD: f64 = 0.05;
/// p95 latency in seconds above which the API alerts.
pub const LATENCY_P95_THRESHOLD_SECONDS: f64 = 2.0;
/// Share of the CPU limit above which the API alerts.
pub const CPU_LIMIT_THRESHOLD: f64 = 0.80;
/// Share of the memory limit above which the API alerts.
pub const MEMORY_LIMIT_THRESHOLD: f64 = 0.85;
/// Share of the feedback saying a verdict was wrong (false positive, or false negative) above
/// which detection quality is below target.
pub const WRONG_VERDICT_THRESHOLD: f64 = 0.10;
/// Feedback needed within the window before detection quality is judged at all.
pub const MIN_FEEDBACK: u32 = 20;
/// Rise of the false-positive share of the feedback on the domain model's flags (a day against
/// the 7 days before) from which the model's precision counts as degraded.
pub const MODEL_PRECISION_DROP: f64 = 0.10;
/// A restore drill must have passed within this many days.
pub const DRILL_MAX_AGE_DAYS: u32 = 8;
/// Restore phases during which the API is scaled down on purpose (no "API down" page then).
/// Not `Pending` nor `Claiming`: the API runs as the spec says until the ledger grants the
/// claim; not `Skipped`, a refused repeat, which touches nothing (and pages no one either: only
/// `Failed` does).
pub const RESTORE_DOWNTIME_PHASES: &str = "ScalingDown|SafetyBackup|Restoring|RollingBack|ScalingUp";

/// How urgent an alert is; the `severity` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Someone must act now.
    Critical,
    /// Someone must look within working hours.
    Warning,
}

impl Severity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
        }
    }
}

/// The runbook link of an alert.
pub fn runbook_url(alert: &str) -> String {
    format!("{RUNBOOK_BASE_URL}#{}", alert.to_lowercase())
}

/// A PromQL string literal.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A share as a whole percentage, for summaries ("5" for 0.05).
fn pct(share: f64) -> String {
    format!("{}", (share * 100.0).round())
}

/// The name of the API Service (and Deployment) of a SecurityGuard, as the controller names it.
pub fn api_service_name(guard: &str) -> String {
    format!("{guard}-api")
}

/// Name of the API container in the API pods.
const API_CONTAINER: &str = "api";

struct AlertSpec<'a> {
    name: &'a str,
    expr: String,
    for_: &'a str,
    severity: Severity,
    summary: String,
    description: String,
}

fn alert(spec: AlertSpec<'_>, extra_labels: &BTreeMap<String, String>) -> Rule {
    let mut labels = extra_labels.clone();
    labels.insert("severity".to_owned(), spec.severity.as_str().to_owned());
    Rule {
        alert: Some(spec.name.to_owned()),
        record: None,
        expr: spec.expr,
        for_: (spec.for_ != "0m").then(|| spec.for_.to_owned()),
        labels,
        annotations: BTreeMap::from([
            ("summary".to_owned(), spec.summary),
            ("description".to_owned(), spec.description),
            ("runbook_url".to_owned(), runbook_url(spec.name)),
        ]),
    }
}

/// The alert rule groups of ONE SecurityGuard `name` in `namespace`: its API (scraped through
/// its Service `<name>-api`, so the series carry `namespace` and `service`), its pods (cAdvisor
/// and kube-state-metrics series) and its backups and restores (the operator's per-guard series,
/// labelled `namespace` and `securityguard`). Every alert carries the labels `namespace`,
/// `securityguard` and `severity`.
pub fn guard_rule_groups(namespace: &str, name: &str) -> Vec<RuleGroup> {
    let service = api_service_name(name);
    let api = format!("namespace={}, service={}", quote(namespace), quote(&service));
    let pods = format!(
        "namespace={}, pod=~{}, container={}",
        quote(namespace),
        quote(&format!("{service}-[a-z0-9]+-[a-z0-9]+")),
        quote(API_CONTAINER)
    );
    let guard = format!("namespace={}, securityguard={}", quote(namespace), quote(name));
    let by_guard = "max by (namespace, securityguard)";
    let labels =
        BTreeMap::from([("namespace".to_owned(), namespace.to_owned()), ("securityguard".to_owned(), name.to_owned())]);
    let who = format!("SecurityGuard {namespace}/{name}");

    let api_rules = [
        AlertSpec {
            name: "SecurityGuardApiDown",
            expr: format!(
                "absent(up{{{api}}} == 1)\nunless on () ({by_guard} (securityguard_operator_restore_phase{{{guard}, phase=~{}}}) == 1)",
                quote(RESTORE_DOWNTIME_PHASES)
            ),
            for_: "2m",
            severity: Severity::Critical,
            summary: format!("The API of {who} is down"),
            description: format!(
                "No API pod of {who} (Service {service}) has answered a scrape for 2 minutes, and no restore is scaling it down."
            ),
        },
        AlertSpec {
            name: "SecurityGuardApiHighErrorRate",
            expr: format!(
                "sum(rate(securityguard_http_requests_total{{{api}, status=~\"5..\"}}[5m]))\n/ sum(rate(securityguard_http_requests_total{{{api}}}[5m]))\n> {ERROR_RATE_THRESHOLD}"
            ),
            for_: "5m",
            severity: Severity::Critical,
            summary: format!(
                "The API of {who} answers more than {} % of requests with an error",
                pct(ERROR_RATE_THRESHOLD)
            ),
            description: format!(
                "{{{{ $value | humanizePercentage }}}} of the requests to {who} ended in a 5xx status over the last 5 minutes."
            ),
        },
        AlertSpec {
            name: "SecurityGuardApiHighLatency",
            expr: format!(
                "histogram_quantile(0.95, sum by (le) (rate(securityguard_http_request_duration_seconds_bucket{{{api}, route!~\"/metrics|/health.*\"}}[5m])))\n> {LATENCY_P95_THRESHOLD_SECONDS}"
            ),
            for_: "10m",
            severity: Severity::Warning,
            summary: format!("The API of {who} is slow (p95 above {LATENCY_P95_THRESHOLD_SECONDS} s)"),
            description: format!(
                "95 % of the requests to {who} took up to {{{{ $value | humanizeDuration }}}} over the last 5 minutes (health and metrics endpoints left out)."
            ),
        },
        AlertSpec {
            name: "SecurityGuardApiHighCpu",
            expr: format!(
                "sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))\n/ sum by (pod) (kube_pod_container_resource_limits{{{pods}, resource=\"cpu\"}})\n> {CPU_LIMIT_THRESHOLD}"
            ),
            for_: "15m",
            severity: Severity::Warning,
            summary: format!("An API pod of {who} uses more than {} % of its CPU limit", pct(CPU_LIMIT_THRESHOLD)),
            description: format!(
                "Pod {{{{ $labels.pod }}}} of {who} has used {{{{ $value | humanizePercentage }}}} of its CPU limit for 15 minutes; it is being throttled."
            ),
        },
        AlertSpec {
            name: "SecurityGuardApiHighMemory",
            expr: format!(
                "sum by (pod) (container_memory_working_set_bytes{{{pods}}})\n/ sum by (pod) (kube_pod_container_resource_limits{{{pods}, resource=\"memory\"}})\n> {MEMORY_LIMIT_THRESHOLD}"
            ),
            for_: "15m",
            severity: Severity::Warning,
            summary: format!(
                "An API pod of {who} uses more than {} % of its memory limit",
                pct(MEMORY_LIMIT_THRESHOLD)
            ),
            description: format!(
                "Pod {{{{ $labels.pod }}}} of {who} has used {{{{ $value | humanizePercentage }}}} of its memory limit for 15 minutes; at 100 % it is killed (OOMKilled)."
            ),
        },
    ]
    .into_iter()
    .chain(detection_rules(&api, &who))
    .collect::<Vec<_>>();

    let backup_rules = vec![
        AlertSpec {
            name: "SecurityGuardBackupTooOld",
            expr: format!(
                "time() - {by_guard} (securityguard_operator_backup_last_success_timestamp_seconds{{{guard}}})\n> 2 * {by_guard} (securityguard_operator_backup_schedule_interval_seconds{{{guard}}})"
            ),
            for_: "5m",
            severity: Severity::Critical,
            summary: format!("The last good backup of {who} is older than twice its schedule: the RPO is at risk"),
            description: format!("The newest successful backup of {who} is {{{{ $value | humanizeDuration }}}} old."),
        },
        AlertSpec {
            name: "SecurityGuardBackupFailed",
            expr: format!(
                "{by_guard} (securityguard_operator_backup_last_failure_timestamp_seconds{{{guard}}})\n> ({by_guard} (securityguard_operator_backup_last_success_timestamp_seconds{{{guard}}})\n   or 0 * {by_guard} (securityguard_operator_backup_last_failure_timestamp_seconds{{{guard}}}))"
            ),
            for_: "0m",
            severity: Severity::Warning,
            summary: format!("The latest backup of {who} failed"),
            description: format!(
                "The most recent backup attempt of {who} failed and none has succeeded since; the Job's termination message says why."
            ),
        },
        AlertSpec {
            name: "SecurityGuardWalArchiveBehind",
            expr: wal_archive_behind(namespace, name, &guard),
            for_: "2m",
            severity: Severity::Critical,
            summary: format!(
                "The WAL archive of {who} is behind its threshold: a loss of the database now would lose more data than allowed"
            ),
            description: format!(
                "The newest change of {who} known to be archived in S3 is {{{{ $value | humanizeDuration }}}} old (or the WAL archiver beside PostgreSQL reports nothing), more than spec.backup.pointInTime.archiveLagAlert: losing the database now would lose the changes since. securityguard_wal_archive_errors_total says which step fails."
            ),
        },
        AlertSpec {
            name: "SecurityGuardRestoreFailed",
            expr: format!("{by_guard} (securityguard_operator_restore_phase{{{guard}, phase=\"Failed\"}}) == 1"),
            for_: "0m",
            severity: Severity::Critical,
            summary: format!("A restore of {who} failed"),
            description: format!(
                "The restore requested in spec.restore of {who} ended in phase Failed (status.restore says why)."
            ),
        },
        AlertSpec {
            name: "SecurityGuardRestoreDrillMissing",
            expr: format!(
                "time() - {by_guard} (securityguard_operator_backup_verify_last_success_timestamp_seconds{{{guard}}})\n> {DRILL_MAX_AGE_DAYS} * 86400"
            ),
            for_: "0m",
            severity: Severity::Warning,
            summary: format!("No restore drill of {who} has passed for {DRILL_MAX_AGE_DAYS} days"),
            description: format!(
                "The last restore drill of {who} that restored a backup and checked it passed {{{{ $value | humanizeDuration }}}} ago; the backups are not known to restore."
            ),
        },
        AlertSpec {
            name: "SecurityGuardRestoreDrillFailed",
            expr: format!(
                "{by_guard} (securityguard_operator_backup_verify_last_result{{{guard}}}) == 0\nunless on (namespace, securityguard) (\n  {}\n  or {}\n)",
                drill_over_target(&guard, "recovery_time"),
                drill_over_target(&guard, "recovery_point"),
            ),
            for_: "0m",
            severity: Severity::Warning,
            summary: format!("The latest restore drill of {who} failed"),
            description: format!("The newest restore drill of {who} could not restore or check its backup."),
        },
        AlertSpec {
            name: "SecurityGuardRestoreDrillRecoveryTimeOverTarget",
            expr: drill_over_target(&guard, "recovery_time"),
            for_: "0m",
            severity: Severity::Warning,
            summary: format!("The latest restore drill of {who} took longer than its recovery time target"),
            description: format!(
                "The newest restore drill of {who} took {{{{ $value | humanizeDuration }}}} from its start until the restored data was checked, more than spec.backup.verify.targets.recoveryTime: a restore would take as long. status.backup.lastVerification.recovery.steps says where the time went."
            ),
        },
        AlertSpec {
            name: "SecurityGuardRestoreDrillRecoveryPointOverTarget",
            expr: drill_over_target(&guard, "recovery_point"),
            for_: "0m",
            severity: Severity::Warning,
            summary: format!(
                "The data the latest restore drill of {who} restored was older than its recovery point target"
            ),
            description: format!(
                "When the newest restore drill of {who} started, the newest good backup was {{{{ $value | humanizeDuration }}}} old, more than spec.backup.verify.targets.recoveryPoint: losing the database then would have lost that much data."
            ),
        },
    ];

    let by_feed = "max by (namespace, securityguard, feed)";
    let feed_rules = vec![
        AlertSpec {
            name: "SecurityGuardThreatFeedSyncFailing",
            expr: format!("{by_feed} (securityguard_operator_threat_feed_last_sync_failed{{{guard}}}) == 1"),
            for_: "0m",
            severity: Severity::Warning,
            summary: format!("The threat feed {{{{ $labels.feed }}}} of {who} failed its last sync"),
            description: format!(
                "The last sync of threat feed {{{{ $labels.feed }}}} of {who} failed; its previous entries stay in the pattern library. The ThreatFeedsSynced condition and the ThreatFeedSyncFailed Event say why."
            ),
        },
        AlertSpec {
            name: "SecurityGuardThreatFeedStale",
            expr: format!(
                "time() - {by_feed} (securityguard_operator_threat_feed_last_success_timestamp_seconds{{{guard}}})\n> on (namespace, securityguard) group_left {by_guard} (2 * securityguard_operator_threat_feed_schedule_interval_seconds{{{guard}}})"
            ),
            for_: "15m",
            severity: Severity::Warning,
            summary: format!("The threat feed {{{{ $labels.feed }}}} of {who} is stale"),
            description: format!(
                "Threat feed {{{{ $labels.feed }}}} of {who} was last imported {{{{ $value | humanizeDuration }}}} ago, more than twice its schedule: new phishing domains it lists are not blocked."
            ),
        },
    ];

    vec![
        RuleGroup {
            name: format!("securityguard-api/{namespace}/{name}"),
            interval: None,
            rules: api_rules.into_iter().map(|a| alert(a, &labels)).collect(),
        },
        RuleGroup {
            name: format!("securityguard-backups/{namespace}/{name}"),
            interval: None,
            rules: backup_rules.into_iter().map(|a| alert(a, &labels)).collect(),
        },
        RuleGroup {
            name: format!("securityguard-feeds/{namespace}/{name}"),
            interval: None,
            rules: feed_rules.into_iter().map(|a| alert(a, &labels)).collect(),
        },
    ]
}

/// How old the newest change archived by the WAL archiver of the guard `name` is (scraped
/// through its PostgreSQL Service), where it is above the guard's threshold; with no archiver
/// series at all, the threshold plus a second (so that a dead archiver alerts too). Silent
/// without point-in-time recovery (the operator exports no threshold then) and while a restore
/// has stopped PostgreSQL on purpose.
fn wal_archive_behind(namespace: &str, name: &str, guard: &str) -> String {
    let by_ns = "max by (namespace)";
    let archived = format!(
        "{by_ns} (securityguard_wal_archived_through_timestamp_seconds{{namespace={}, service={}}})",
        quote(namespace),
        quote(&format!("{name}-postgres"))
    );
    let threshold = format!("{by_ns} (securityguard_operator_wal_archive_lag_threshold_seconds{{{guard}}})");
    format!(
        "(\n  time() - {archived}\n  or on (namespace) ({threshold} + 1 unless on (namespace) {archived})\n)\n> on (namespace) {threshold}\nunless on () (max by (namespace, securityguard) (securityguard_operator_restore_phase{{{guard}, phase=~{}}}) == 1)",
        quote(RESTORE_DOWNTIME_PHASES)
    )
}

/// The newest drill's figure `what` (`recovery_time`, `recovery_point`) where it is above the
/// target the drill was held to, for the guard selected by `guard`.
fn drill_over_target(guard: &str, what: &str) -> String {
    let by_guard = "max by (namespace, securityguard)";
    format!(
        "{by_guard} (securityguard_operator_backup_verify_{what}_seconds{{{guard}}})\n  > {by_guard} (securityguard_operator_backup_verify_{what}_target_seconds{{{guard}}})"
    )
}

/// The feedback on the domain model's flags of the API `api`, per model version, over the range
/// `window` (with its offset: "[7d] offset 1d").
fn model_feedback(api: &str, window: &str) -> String {
    format!("sum by (model_version) (increase(securityguard_model_feedback_total{{{api}}}{window}))")
}

/// Its share saying false positive; 0 for a version without any.
fn model_false_positive_share(api: &str, window: &str) -> String {
    let all = model_feedback(api, window);
    format!(
        "((sum by (model_version) (increase(securityguard_model_feedback_total{{{api}, outcome=\"false_positive\"}}{window})) or 0 * {all}) / {all})"
    )
}

/// The quality of the verdicts, from the users' feedback: wrong verdicts overall and on the
/// domain model's flags (by model version), and the model's precision falling.
fn detection_rules(api: &str, who: &str) -> [AlertSpec<'static>; 2] {
    let model_6h = model_false_positive_share(api, "[6h]");
    [
        AlertSpec {
            name: "SecurityGuardDetectionQualityLow",
            expr: format!(
                "sum by (verdict) (increase(securityguard_feedback_total{{{api}, verdict=~\"false_positive|false_negative\"}}[6h]))\n/ on () group_left sum(increase(securityguard_feedback_total{{{api}}}[6h]))\n> {WRONG_VERDICT_THRESHOLD}\nand on () sum(increase(securityguard_feedback_total{{{api}}}[6h])) >= {MIN_FEEDBACK}\nor label_replace(\n  {model_6h} > {WRONG_VERDICT_THRESHOLD}\n  and on (model_version) {} >= {MIN_FEEDBACK},\n  \"verdict\", \"false_positive\", \"\", \"\")",
                model_feedback(api, "[6h]")
            ),
            for_: "30m",
            severity: Severity::Warning,
            summary: format!("Users report too many wrong verdicts from {who}"),
            description: format!(
                "{{{{ $value | humanizePercentage }}}} of the user feedback on {who}{{{{ if $labels.model_version }}}} about domains the domain model {{{{ $labels.model_version }}}} flagged{{{{ end }}}} over the last 6 hours says {{{{ $labels.verdict }}}} (target: at most {} %).",
                pct(WRONG_VERDICT_THRESHOLD)
            ),
        },
        AlertSpec {
            name: "SecurityGuardModelAccuracyDegraded",
            expr: format!(
                "{}\n> on (model_version) {} + {MODEL_PRECISION_DROP}\nand on (model_version) {} >= {MIN_FEEDBACK}\nand on (model_version) {} >= {MIN_FEEDBACK}",
                model_false_positive_share(api, "[1d]"),
                model_false_positive_share(api, "[7d] offset 1d"),
                model_feedback(api, "[1d]"),
                model_feedback(api, "[7d] offset 1d"),
            ),
            for_: "1h",
            severity: Severity::Warning,
            summary: format!("The domain model of {who} is less precise than the week before"),
            description: format!(
                "{{{{ $value | humanizePercentage }}}} of the user feedback on domains the domain model {{{{ $labels.model_version }}}} of {who} flagged over the last day says false_positive, more than {} points above the 7 days before.",
                pct(MODEL_PRECISION_DROP)
            ),
        },
    ]
}

/// The operator-wide alert rules: the operator's metrics scraped as `job`.
pub fn operator_rule_groups(job: &str) -> Vec<RuleGroup> {
    let sel = format!("job={}", quote(job));
    let rules = vec![
        AlertSpec {
            name: "SecurityGuardOperatorDown",
            expr: format!("absent(up{{{sel}}} == 1)"),
            for_: "5m",
            severity: Severity::Critical,
            summary: "The SecurityGuard operator is down".to_owned(),
            description: format!(
                "No operator process (job {job}) has answered a scrape for 5 minutes: SecurityGuards are not reconciled, backups and restores are not followed."
            ),
        },
        AlertSpec {
            name: "SecurityGuardOperatorNoLeader",
            expr: format!("max(securityguard_operator_leader{{{sel}}}) < 1"),
            for_: "5m",
            severity: Severity::Critical,
            summary: "No SecurityGuard operator process holds the leader Lease".to_owned(),
            description: "Operator processes are up but none has held the leader Lease for 5 minutes, so none reconciles.".to_owned(),
        },
        AlertSpec {
            name: "SecurityGuardOperatorReconcileErrors",
            expr: format!("sum by (result) (increase(securityguard_operator_reconciles_total{{{sel}, result!=\"success\"}}[15m])) > 5"),
            for_: "15m",
            severity: Severity::Warning,
            summary: "The SecurityGuard operator keeps failing to reconcile".to_owned(),
            description: "{{ $value | humanize }} reconciles failed with result {{ $labels.result }} over the last 15 minutes, for 15 minutes; the failing SecurityGuards have a Degraded condition and Warning Events.".to_owned(),
        },
    ];
    vec![RuleGroup {
        name: "securityguard-operator".to_owned(),
        interval: None,
        rules: rules.into_iter().map(|a| alert(a, &BTreeMap::new())).collect(),
    }]
}

/// Every alert name the rules of a guard and of the operator define, for documentation checks.
pub fn alert_names() -> Vec<String> {
    guard_rule_groups("ns", "guard")
        .into_iter()
        .chain(operator_rule_groups(OPERATOR_JOB))
        .flat_map(|g| g.rules)
        .filter_map(|r| r.alert)
        .collect()
}

/// A Prometheus rule file (for `promtool` or a plain Prometheus) as YAML.
pub fn rule_file_yaml(groups: Vec<RuleGroup>) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(&RuleFile { groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(groups: &[RuleGroup]) -> Vec<&Rule> {
        groups.iter().flat_map(|g| &g.rules).collect()
    }

    #[test]
    fn every_guard_alert_is_scoped_to_its_guard() {
        let groups = guard_rule_groups("shop", "guard");
        let rules = rules(&groups);
        assert_eq!(rules.len(), 17);
        for rule in rules {
            let name = rule.alert.as_deref().expect("alerting rule");
            // Every selector in the expression names the guard's namespace.
            let selectors = rule.expr.matches('{').count();
            let scoped = rule.expr.matches("namespace=\"shop\"").count();
            assert_eq!(selectors, scoped, "{name}: an unscoped selector in {}", rule.expr);
            assert!(
                rule.expr.contains("service=\"guard-api\"")
                    || rule.expr.contains("securityguard=\"guard\"")
                    || rule.expr.contains("pod=~\"guard-api-[a-z0-9]+-[a-z0-9]+\""),
                "{name}"
            );
            assert_eq!(rule.labels.get("namespace").map(String::as_str), Some("shop"));
            assert_eq!(rule.labels.get("securityguard").map(String::as_str), Some("guard"));
            assert!(matches!(rule.labels.get("severity").map(String::as_str), Some("critical" | "warning")));
            assert_eq!(rule.annotations["runbook_url"], format!("{RUNBOOK_BASE_URL}#{}", name.to_lowercase()));
            assert!(!rule.annotations["summary"].is_empty() && !rule.annotations["description"].is_empty());
        }
    }

    #[test]
    fn two_guards_share_no_selector() {
        let a = guard_rule_groups("shop", "a");
        let b = guard_rule_groups("shop", "b");
        for (ra, rb) in rules(&a).into_iter().zip(rules(&b)) {
            assert_ne!(ra.expr, rb.expr);
        }
        assert_ne!(a[0].name, b[0].name);
    }

    #[test]
    fn label_values_are_quoted() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn operator_rules_use_the_job() {
        let groups = operator_rule_groups("op");
        for rule in rules(&groups) {
            assert!(rule.expr.contains("job=\"op\""), "{}", rule.expr);
        }
        let yaml = rule_file_yaml(groups).expect("yaml");
        assert!(yaml.starts_with("groups:"), "{yaml}");
        assert!(yaml.contains("for: 5m"), "{yaml}");
    }
}
