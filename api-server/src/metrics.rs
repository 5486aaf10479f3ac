//! Prometheus metrics (prometheus-client), served at `/metrics`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScanLabels {
    pub kind: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WarningLabels {
    pub kind: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DomainVerdictLabels {
    pub verdict: String,
    pub model_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelFeedbackLabels {
    pub model_version: String,
    pub outcome: String,
}

/// The domain model's metrics: its version, the domain verdicts given with it, and the users'
/// feedback on the domains it flagged (from which Prometheus computes its precision).
pub struct ModelMetrics {
    pub info: Family<ModelLabels, Gauge>,
    pub domain_verdicts: Family<DomainVerdictLabels, Counter>,
    pub feedback: Family<ModelFeedbackLabels, Counter>,
}

impl ModelMetrics {
    fn register(registry: &mut Registry) -> Self {
        let info = Family::<ModelLabels, Gauge>::default();
        registry.register("model_info", "The domain model this process scores with (value 1)", info.clone());
        let domain_verdicts = Family::<DomainVerdictLabels, Counter>::default();
        registry.register(
            "domain_verdicts",
            "Verdicts of scanned domains, by verdict and domain model version",
            domain_verdicts.clone(),
        );
        let feedback = Family::<ModelFeedbackLabels, Counter>::default();
        registry.register(
            "model_feedback",
            "User feedback on domain scans the domain model flagged, by model version and outcome (true_positive, false_positive)",
            feedback.clone(),
        );
        Self { info, domain_verdicts, feedback }
    }

    /// Reports the model this process scores with.
    pub fn serving(&self, version: &str) {
        self.info.get_or_create(&ModelLabels { version: version.into() }).set(1);
    }

    pub fn count_domain_verdict(&self, model_version: &str, verdict: &str) {
        self.domain_verdicts
            .get_or_create(&DomainVerdictLabels { verdict: verdict.into(), model_version: model_version.into() })
            .inc();
    }

    pub fn count_feedback(&self, model_version: &str, outcome: &str) {
        self.feedback
            .get_or_create(&ModelFeedbackLabels { model_version: model_version.into(), outcome: outcome.into() })
            .inc();
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub scans: Family<ScanLabels, Counter>,
    pub scan_duration: Histogram,
    pub warnings: Family<WarningLabels, Counter>,
    pub cache: Family<CacheLabels, Counter>,
    pub signin_failures: Family<ReasonLabels, Counter>,
    pub signins: Counter,
    pub feedback: Family<FeedbackLabels, Counter>,
    pub rate_limited: Family<ReasonLabels, Counter>,
    pub http_in_flight: Gauge,
    pub model: ModelMetrics,
    process_cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    process_resident_bytes: Gauge,
    process_virtual_bytes: Gauge,
    process_open_fds: Gauge,
    log_lines_dropped: Counter,
    encode_lock: Mutex<()>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0].into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("securityguard");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", http_requests.clone());
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
            http_duration.clone(),
        );
        let scans = Family::<ScanLabels, Counter>::default();
        registry.register("scans", "Scans by kind and verdict", scans.clone());
        let scan_duration = Histogram::new(latency_buckets());
        registry.register(
            "scan_duration_seconds",
            "Time spent analysing one scan request (cache misses)",
            scan_duration.clone(),
        );
        let warnings = Family::<WarningLabels, Counter>::default();
        registry.register("scan_warnings", "Warnings by kind and severity", warnings.clone());
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register("scan_cache", "Scan cache lookups by result (hit, miss)", cache.clone());
        let signin_failures = Family::<ReasonLabels, Counter>::default();
        registry.register("signin_failures", "Failed sign-ins by reason", signin_failures.clone());
        let signins = Counter::default();
        registry.register("signins", "Successful sign-ins", signins.clone());
        let feedback = Family::<FeedbackLabels, Counter>::default();
        registry.register("feedback", "User feedback on verdicts", feedback.clone());
        let http_in_flight = Gauge::default();
        registry.register("http_requests_in_flight", "HTTP requests being served", http_in_flight.clone());
        let rate_limited = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by the rate limiter, by key kind (ip, wallet)",
            rate_limited.clone(),
        );
        let model = ModelMetrics::register(&mut registry);
        let process_cpu_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time of this process",
            process_cpu_seconds.clone(),
        );
        let process_resident_bytes = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            process_resident_bytes.clone(),
        );
        let process_virtual_bytes = Gauge::default();
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory of this process",
            process_virtual_bytes.clone(),
        );
        let process_open_fds = Gauge::default();
        registry.register("process_open_fds", "Open file descriptors of this process", process_open_fds.clone());
        let log_lines_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because standard output could not keep up",
            log_lines_dropped.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            scans,
            scan_duration,
            warnings,
            cache,
            signin_failures,
            signins,
            feedback,
            rate_limited,
            http_in_flight,
            model,
            process_cpu_seconds,
            process_resident_bytes,
            process_virtual_bytes,
            process_open_fds,
            log_lines_dropped,
            encode_lock: Mutex::new(()),
        }
    }

    pub fn observe_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests.get_or_create(&HttpLabels { route: route.into(), method: method.into(), status }).inc();
        self.http_duration
            .get_or_create(&RouteLabels { route: route.into(), method: method.into() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn signin_failure(&self, reason: &str) {
        self.signin_failures.get_or_create(&ReasonLabels { reason: reason.into() }).inc();
    }

    /// The text exposition, with the process gauges refreshed first.
    pub fn render(&self) -> String {
        let _guard = self.encode_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = process::sample() {
            self.process_cpu_seconds.set(p.cpu_seconds);
            self.process_resident_bytes.set(p.resident_bytes);
            self.process_virtual_bytes.set(p.virtual_bytes);
            self.process_open_fds.set(p.open_fds);
        }
        // The writer counts its drops; the counter catches up at each scrape.
        let dropped = crate::logging::dropped_lines();
        let counted = self.log_lines_dropped.get();
        if dropped > counted {
            self.log_lines_dropped.inc_by(dropped - counted);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Process CPU and memory from /proc (Linux only; elsewhere nothing is reported).
mod process {
    pub struct Sample {
        pub cpu_seconds: f64,
        pub resident_bytes: i64,
        pub virtual_bytes: i64,
        pub open_fds: i64,
    }

    const CLOCK_TICKS: f64 = 100.0; // USER_HZ, 100 on every Linux we run on.
    const PAGE_SIZE: i64 = 4096;

    pub fn sample() -> Option<Sample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state); utime is field 14, stime 15, vsize 23, rss 24.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let vsize: i64 = fields.get(20)?.parse().ok()?;
        let rss: i64 = fields.get(21)?.parse().ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as i64).unwrap_or(0);
        Some(Sample {
            cpu_seconds: (utime + stime) / CLOCK_TICKS,
            resident_bytes: rss * PAGE_SIZE,
            virtual_bytes: vsize,
            open_fds,
        })
    }
}
