//! The watches of prometheus-operator's kinds. Whether the cluster serves prometheus-operator's kinds, found by watching their two
//! CustomResourceDefinitions (by name: nothing else of the cluster is read).
//!
//! A watch on a kind the API server does not serve fails over and over; so the ServiceMonitor
//! and PrometheusRule watches start only once their definition is established, stop when it
//! goes, and start again when it comes back. The SecurityGuards asking for monitoring are
//! reconciled on every change, so installing prometheus-operator later needs no restart.

use futures::{Stream, StreamExt, TryStreamExt, stream};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::watches::{Watched, scoped_api};
use crate::controller::read::cached::{Cached, Remembered, remember};
use crate::controller::read::monitoring_apis::Discovery;
use crate::controller::vocabulary::{MonitoringApis, PROMETHEUS_RULES_CRD, SERVICE_MONITORS_CRD, managed_selector};

/// Starts the watches of the two definitions. Returns their caches, a receiver that changes
/// when what is served changes, and the stream of changed definitions (to reconcile on).
pub fn watch(
    client: &Client,
) -> (
    Discovery,
    watch::Receiver<MonitoringApis>,
    impl Stream<Item = Result<CustomResourceDefinition, watcher::Error>> + Send + 'static,
) {
    let (service_monitors, sm_stream) = definition_watch(client, SERVICE_MONITORS_CRD);
    let (prometheus_rules, pr_stream) = definition_watch(client, PROMETHEUS_RULES_CRD);
    let discovery = Discovery::new(service_monitors, prometheus_rules);
    let (sender, receiver) = watch::channel(MonitoringApis::default());
    let caches = discovery.clone();
    // After each event, not each object: a cache takes a listing in at its end (InitDone), so a
    // definition present at start is in its cache only then.
    let changes = stream::select(sm_stream, pr_stream)
        .inspect(move |_| {
            let now = caches.current();
            sender.send_if_modified(|served| {
                let changed = *served != now;
                if changed {
                    tracing::info!(missing = ?now.missing(), "prometheus-operator's kinds changed");
                    *served = now;
                }
                changed
            });
        })
        .touched_objects();
    (discovery, receiver, changes)
}

/// A cached watch of one CustomResourceDefinition, selected by name (the ClusterRole grants
/// these two names only), as its stream of events. Their large schemas are dropped from the
/// cache.
fn definition_watch(
    client: &Client,
    name: &str,
) -> (
    Store<CustomResourceDefinition>,
    impl Stream<Item = Result<watcher::Event<CustomResourceDefinition>, watcher::Error>> + Send + 'static,
) {
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let name = name.to_owned();
    let stream = watcher(Api::<CustomResourceDefinition>::all(client.clone()), config)
        .default_backoff()
        .modify(|crd| {
            crd.managed_fields_mut().clear();
            crd.metadata.annotations = None;
            for version in &mut crd.spec.versions {
                version.schema = None;
            }
        })
        .reflect(writer)
        .inspect_err(move |error| tracing::warn!(%error, crd = %name, "watching a CustomResourceDefinition"));
    (reader, stream)
}

/// A label-selected, cached watch of a prometheus-operator kind that runs only while `served`
/// says the kind is served. When it stops, its cache is emptied: the objects went with their
/// definition.
pub fn lazy_child_watch<K>(
    client: &Client,
    namespace: Option<&str>,
    apis: watch::Receiver<MonitoringApis>,
    served: fn(&MonitoringApis) -> bool,
) -> (Store<Remembered<K>>, impl Stream<Item = Result<Remembered<K>, watcher::Error>> + Send + 'static)
where
    K: Watched + Cached,
{
    let (reader, writer) = reflector::store();
    let client = client.clone();
    let namespace = namespace.map(str::to_owned);
    let sessions = stream::unfold(apis, move |mut apis| {
        let api = scoped_api::<K>(&client, namespace.as_deref());
        async move {
            // Ends when the sender is gone (the controller stops).
            apis.wait_for(served).await.ok()?;
            let mut gone = apis.clone();
            let until = async move {
                let _ = gone.wait_for(|a| !served(a)).await;
            };
            tracing::info!(kind = %K::kind(&()), "watching (its definition is established)");
            let session = watcher(api, watcher::Config::default().labels(&managed_selector()))
                .default_backoff()
                .take_until(until)
                .chain(stream::iter([Ok(watcher::Event::Init), Ok(watcher::Event::InitDone)]));
            Some((session, apis))
        }
    })
    .flatten();
    let stream = sessions.map_ok(remember).reflect(writer).touched_objects();
    (reader, stream)
}

/// The ServiceMonitor kind is served.
pub fn service_monitors_served(apis: &MonitoringApis) -> bool {
    apis.service_monitors
}

/// The PrometheusRule kind is served.
pub fn prometheus_rules_served(apis: &MonitoringApis) -> bool {
    apis.prometheus_rules
}
