//! The operator's Prometheus metrics (served on `/metrics` by [`crate::http`]).

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set of a reconcile outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success`, or the error category (e.g. `validation`, `apply`).
    pub result: String,
}

/// Label set of one request to the Kubernetes API.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// get, list, watch, create, update, patch, delete.
    pub verb: String,
    /// The resource (plural), with `/status` for the status subresource.
    pub resource: String,
}

/// All metrics of the operator process.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration in seconds.
    pub reconcile_duration: Histogram,
    /// Requests to the Kubernetes API by verb and resource; writes are create/update/patch/delete.
    pub kube_requests: Family<RequestLabels, Counter>,
    /// 1 while this process holds the leader Lease.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("securityguard_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register("reconciles", "Reconciles of SecurityGuards by result", reconciles.clone());
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile of a SecurityGuard",
            reconcile_duration.clone(),
        );
        let kube_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kube_api_requests",
            "Requests to the Kubernetes API by verb and resource (create, update, patch and delete are writes)",
            kube_requests.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 while this process holds the leader Lease and reconciles", leader.clone());
        Self { registry, reconciles, reconcile_duration, kube_requests, leader }
    }
}

impl Metrics {
    /// The registry, text-encoded for a scrape.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Starts timing one reconcile; the duration and result are recorded when the guard drops.
    pub fn reconcile_timer(self: &Arc<Self>) -> ReconcileTimer {
        ReconcileTimer { metrics: self.clone(), start: Instant::now(), result: "error".to_owned() }
    }
}

/// Records a reconcile's duration and result on drop, whatever path the reconcile took.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    start: Instant,
    result: String,
}

impl ReconcileTimer {
    /// Sets the result label recorded on drop.
    pub fn set_result(&mut self, result: &str) {
        result.clone_into(&mut self.result);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics.reconcile_duration.observe(self.start.elapsed().as_secs_f64());
        self.metrics.reconciles.get_or_create(&ReconcileLabels { result: std::mem::take(&mut self.result) }).inc();
    }
}

/// A tower layer for the kube client counting every request by verb and resource.
#[derive(Clone)]
pub struct CountRequestsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountRequests { inner, metrics: self.0.clone() }
    }
}

/// The service of [`CountRequestsLayer`].
#[derive(Clone)]
pub struct CountRequests<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for CountRequests<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.metrics.kube_requests.get_or_create(&classify(req.method(), req.uri())).inc();
        self.inner.call(req)
    }
}

/// Names the verb and resource of a Kubernetes API request from its method and path.
pub fn classify(method: &http::Method, uri: &http::Uri) -> RequestLabels {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // Strip `api/v1` or `apis/<group>/<version>`.
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        other => other,
    };
    // `namespaces/<ns>/<resource>/...`, except the namespace object itself.
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, named) = match rest {
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
        [] => ("unknown".to_owned(), false),
    };
    let watch = uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    };
    RequestLabels { verb: verb.to_owned(), resource }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: http::Method, uri: &str) -> (String, String) {
        let l = classify(&method, &uri.parse().expect("uri"));
        (l.verb, l.resource)
    }

    #[test]
    fn classifies_kubernetes_paths() {
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(c(http::Method::GET, "/api/v1/namespaces/a/secrets/jwt"), s("get", "secrets"));
        assert_eq!(c(http::Method::GET, "/apis/apps/v1/deployments?labelSelector=x"), s("list", "deployments"));
        assert_eq!(
            c(http::Method::GET, "/apis/apps/v1/deployments?watch=true&resourceVersion=5"),
            s("watch", "deployments")
        );
        assert_eq!(
            c(http::Method::PATCH, "/apis/securityguard.io/v1alpha1/namespaces/a/securityguards/x/status"),
            s("patch", "securityguards/status")
        );
        assert_eq!(c(http::Method::POST, "/apis/events.k8s.io/v1/namespaces/a/events"), s("create", "events"));
        assert_eq!(c(http::Method::DELETE, "/api/v1/namespaces/a"), s("delete", "namespaces"));
        assert_eq!(c(http::Method::GET, "/api/v1/namespaces"), s("list", "namespaces"));
    }
}
