//! A real Prometheus scraping a running API server and a running operator, with the alert
//! rules loaded: every dashboard query and every alert expression evaluates without error, the
//! core ones return data, every rule evaluates healthily, and stopping the API trips
//! SecurityGuardApiDown.
//!
//! Needs the control plane (`SG_CONTROLPLANE_DIR`), PostgreSQL and Redis
//! (`scripts/services/start.sh`, `SG_TEST_DATABASE_URL`, `SG_TEST_REDIS_URL`, `SG_PG_BIN`), the
//! operator and API binaries (`cargo build -p securityguard-operator -p securityguard-api`) and
//! `prometheus` (Debian's package; `scripts/prepare.sh`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use securityguard_e2e::local::{Database, Process, api_binary, env, free_port};
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, eventually, kubectl_ok, repo_root, secret, volumes_for_guard,
};
use securityguard_operator::monitoring::alerts::{self, OPERATOR_JOB};
use securityguard_operator::monitoring::dashboards::{self, dashboards};
use serde_json::Value;

const GUARD: &str = "minimal";

/// The API server as a process, against the test PostgreSQL and Redis.
fn start_api(db: &Database, port: u16, log: &Path) -> Process {
    let mut cmd = Command::new(api_binary());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("REDIS_URL", env("SG_TEST_REDIS_URL"))
        .env("REDIS_KEY_PREFIX", format!("monitoring:{}:", std::process::id()))
        .env("JWT_SECRET", "monitoring-test-secret-0123456789abcdef")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("ENVIRONMENT", "test")
        .stdout(std::fs::File::create(log).expect("api log"))
        .stderr(Stdio::null());
    Process::spawn(cmd)
}

/// Prometheus scraping the API (labelled as the guard's API Service would be by a
/// ServiceMonitor) and the operator, every second, with the guard's and the operator's rules.
fn start_prometheus(dir: &Path, port: u16, ns: &str, api: &str, operator: &str) -> Process {
    let guard_rules = alerts::rule_file_yaml(alerts::guard_rule_groups(ns, GUARD)).expect("guard rules");
    std::fs::write(dir.join("guard-rules.yaml"), guard_rules).expect("write rules");
    let operator_rules = alerts::rule_file_yaml(alerts::operator_rule_groups(OPERATOR_JOB)).expect("operator rules");
    std::fs::write(dir.join("operator-rules.yaml"), operator_rules).expect("write rules");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [guard-rules.yaml, operator-rules.yaml]\n\
         scrape_configs:\n\
         - job_name: {GUARD}-api\n  static_configs:\n  - targets: ['{api}']\n    labels: {{namespace: {ns}, service: {GUARD}-api, pod: {GUARD}-api-5d8f7c9b6d-x2x9k}}\n\
         - job_name: {OPERATOR_JOB}\n  honor_labels: true\n  static_configs:\n  - targets: ['{operator}']\n    labels: {{namespace: securityguard-system}}\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
    let mut cmd = Command::new("prometheus");
    cmd.current_dir(dir)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log"));
    Process::spawn(cmd)
}

struct Prometheus {
    base: String,
    http: reqwest::Client,
}

impl Prometheus {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let resp = self.http.get(format!("{}{path}", self.base)).query(query).send().await.ok()?;
        serde_json::from_str(&resp.text().await.ok()?).ok()
    }

    /// An instant query: Ok(result) or Err(Prometheus' error).
    async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let body = self.get("/api/v1/query", &[("query", promql)]).await.ok_or("no answer")?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    async fn has_data(&self, promql: &str) -> bool {
        self.query(promql).await.is_ok_and(|r| !r.is_empty())
    }

    /// The alerting rules as Prometheus evaluates them, by alert name.
    async fn rules(&self) -> Vec<Value> {
        let body = self.get("/api/v1/rules", &[]).await.expect("rules answer");
        body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

#[tokio::test]
async fn prometheus_evaluates_every_dashboard_query_and_alert_against_the_real_services() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "monitoring").await;
    let ns = ns.name.as_str();
    let operator = Operator::start(&OperatorOptions::for_namespace(ns)).await;
    // A SecurityGuard, so that the operator reconciles.
    secret(ns, "securityguard-jwt", "secret", JWT);
    volumes_for_guard(ns, GUARD);
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::create("sg_monitoring");
    let api_port = free_port();
    let mut api = start_api(&db, api_port, &dir.path().join("api.log"));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let api_base = format!("http://127.0.0.1:{api_port}");
    eventually("the API's /health/ready", Duration::from_secs(60), || async {
        http.get(format!("{api_base}/health/ready")).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;

    // Traffic on application routes (health and metrics are left out of the latency alert).
    let traffic = {
        let http = http.clone();
        let base = api_base.clone();
        tokio::spawn(async move {
            for _ in 0..600 {
                for path in ["/v1/auth/nonce", "/v1/scans", "/health/live"] {
                    let _ = http.get(format!("{base}{path}")).send().await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let prom_port = free_port();
    let operator_addr = operator.http.trim_start_matches("http://").to_owned();
    let _prometheus = start_prometheus(dir.path(), prom_port, ns, &format!("127.0.0.1:{api_port}"), &operator_addr);
    let prom = Prometheus { base: format!("http://127.0.0.1:{prom_port}"), http: http.clone() };
    let api_sel = format!("namespace=\"{ns}\", service=\"{GUARD}-api\"");
    let core = [
        format!("up{{{api_sel}}} == 1"),
        format!("up{{job=\"{OPERATOR_JOB}\"}} == 1"),
        format!("sum(rate(securityguard_http_requests_total{{{api_sel}}}[30s])) > 0"),
        format!(
            "histogram_quantile(0.95, sum by (le) (rate(securityguard_http_request_duration_seconds_bucket{{{api_sel}, route!~\"/metrics|/health.*\"}}[30s])))"
        ),
        // Two scrapes with reconciles behind them, so that rates have data.
        format!("sum(rate(securityguard_operator_reconciles_total{{job=\"{OPERATOR_JOB}\"}}[30s]))"),
        format!("sum(securityguard_operator_reconciles_total{{job=\"{OPERATOR_JOB}\"}}) > 0"),
    ];
    eventually("Prometheus to scrape the API and the operator", Duration::from_secs(90), || async {
        for q in &core {
            if !prom.has_data(q).await {
                return None;
            }
        }
        Some(())
    })
    .await;

    // Every dashboard query: valid, and the core panels have data.
    let core_panels = [
        ("system-overview.json", "API pods answering"),
        ("system-overview.json", "Request rate"),
        ("system-overview.json", "p95 latency"),
        ("system-overview.json", "Requests by route"),
        ("system-overview.json", "Response time"),
        ("system-overview.json", "Operator processes answering"),
        ("system-overview.json", "Operator leader"),
        ("system-overview.json", "Reconciles by result"),
        ("performance.json", "p95 latency by route"),
        ("performance.json", "API process memory"),
        ("performance.json", "Reconcile duration"),
        ("performance.json", "Kubernetes API requests of the operator"),
    ];
    let mut failures = Vec::new();
    let mut empty_core = Vec::new();
    let mut evaluated = 0;
    for dashboard in dashboards() {
        for (title, query) in dashboards::queries(&dashboard).expect("dashboard JSON") {
            let promql = dashboards::expand(&query, ns, GUARD, "30s");
            evaluated += 1;
            match prom.query(&promql).await {
                Err(e) => failures.push(format!("{} / {title}: {e}\n  {promql}", dashboard.file)),
                Ok(result) if result.is_empty() && core_panels.contains(&(dashboard.file, title.as_str())) => {
                    empty_core.push(format!("{} / {title}: {promql}", dashboard.file))
                }
                Ok(_) => {}
            }
        }
    }
    // Every alert expression.
    let groups = alerts::guard_rule_groups(ns, GUARD).into_iter().chain(alerts::operator_rule_groups(OPERATOR_JOB));
    for rule in groups.flat_map(|g| g.rules) {
        evaluated += 1;
        if let Err(e) = prom.query(&rule.expr).await {
            failures.push(format!("alert {}: {e}\n  {}", rule.alert.unwrap_or_default(), rule.expr));
        }
    }
    assert!(failures.is_empty(), "queries Prometheus refused:\n{}", failures.join("\n"));
    assert!(empty_core.is_empty(), "core queries without data:\n{}", empty_core.join("\n"));
    assert!(evaluated > 60, "only {evaluated} queries");

    // Prometheus evaluated every rule without error; the service is up, so neither "down" alert
    // is even pending.
    let loaded = alerts::guard_rule_groups(ns, GUARD)
        .into_iter()
        .chain(alerts::operator_rule_groups(OPERATOR_JOB))
        .map(|g| g.rules.len())
        .sum::<usize>();
    let rules = eventually("every alert rule evaluated", Duration::from_secs(30), || async {
        let rules = prom.rules().await;
        (rules.len() == loaded
            && rules.iter().all(|r| r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001"))))
        .then_some(rules)
    })
    .await;
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "rule {} does not evaluate: {}", rule["name"], rule["lastError"]);
    }
    let state = |rules: &[Value], name: &str| {
        rules.iter().find(|r| r["name"] == name).map(|r| r["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state(&rules, "SecurityGuardApiDown").as_deref(), Some("inactive"));
    assert_eq!(state(&rules, "SecurityGuardOperatorDown").as_deref(), Some("inactive"));

    // The API stops answering: its "down" alert goes pending (it fires after 2 minutes).
    traffic.abort();
    api.stop();
    eventually("SecurityGuardApiDown pending once the API stops", Duration::from_secs(30), || async {
        let rules = prom.rules().await;
        matches!(state(&rules, "SecurityGuardApiDown").as_deref(), Some("pending" | "firing")).then_some(())
    })
    .await;
    assert_eq!(state(&prom.rules().await, "SecurityGuardOperatorDown").as_deref(), Some("inactive"));
}
