//! Whether the cluster serves prometheus-operator's kinds, found by watching their two
//! CustomResourceDefinitions (by name: nothing else of the cluster is read).
//!
//! A watch on a kind the API server does not serve fails over and over; so the ServiceMonitor
//! and PrometheusRule watches start only once their definition is established, stop when it
//! goes, and start again when it comes back. The SecurityGuards asking for monitoring are
//! reconciled on every change, so installing prometheus-operator later needs no restart.

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;

/// The definition of ServiceMonitors.
pub const SERVICE_MONITORS_CRD: &str = "servicemonitors.monitoring.coreos.com";
/// The definition of PrometheusRules.
pub const PROMETHEUS_RULES_CRD: &str = "prometheusrules.monitoring.coreos.com";

/// How long a reconcile waits for the definitions' first listing before taking them as absent.
const FIRST_LISTING_WAIT: Duration = Duration::from_secs(5);

/// Which prometheus-operator kinds the API server serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitoringApis {
    /// `servicemonitors.monitoring.coreos.com/v1`.
    pub service_monitors: bool,
    /// `prometheusrules.monitoring.coreos.com/v1`.
    pub prometheus_rules: bool,
}

impl MonitoringApis {
    /// Both kinds are served.
    pub const ALL: Self = Self { service_monitors: true, prometheus_rules: true };

    /// The definitions that are missing, by name.
    pub fn missing(&self) -> Vec<&'static str> {
        [(self.service_monitors, SERVICE_MONITORS_CRD), (self.prometheus_rules, PROMETHEUS_RULES_CRD)]
            .into_iter()
            .filter_map(|(served, name)| (!served).then_some(name))
            .collect()
    }
}

/// The definition is established and serves the `v1` the operator writes.
pub fn serves_v1(crd: &CustomResourceDefinition) -> bool {
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    established
        && crd.meta().deletion_timestamp.is_none()
        && crd.spec.versions.iter().any(|v| v.name == "v1" && v.served)
}

/// The caches of the two definitions.
#[derive(Clone)]
pub struct Discovery {
    service_monitors: Store<CustomResourceDefinition>,
    prometheus_rules: Store<CustomResourceDefinition>,
}

impl Discovery {
    /// What the caches say now.
    pub fn current(&self) -> MonitoringApis {
        let served = |store: &Store<CustomResourceDefinition>, name: &str| {
            store.get(&ObjectRef::new(name)).is_some_and(|crd| serves_v1(&crd))
        };
        MonitoringApis {
            service_monitors: served(&self.service_monitors, SERVICE_MONITORS_CRD),
            prometheus_rules: served(&self.prometheus_rules, PROMETHEUS_RULES_CRD),
        }
    }

    /// What the caches say once both have been listed (or after a short wait: a definition
    /// that cannot be listed counts as absent).
    pub async fn observe(&self) -> MonitoringApis {
        let listed = async {
            let _ = self.service_monitors.wait_until_ready().await;
            let _ = self.prometheus_rules.wait_until_ready().await;
        };
        if tokio::time::timeout(FIRST_LISTING_WAIT, listed).await.is_err() {
            tracing::warn!("prometheus-operator's CustomResourceDefinitions are not listed yet: taken as absent");
        }
        self.current()
    }
}

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
    let discovery = Discovery { service_monitors, prometheus_rules };
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
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: super::Watched,
{
    let (reader, writer) = reflector::store();
    let client = client.clone();
    let namespace = namespace.map(str::to_owned);
    let sessions = stream::unfold(apis, move |mut apis| {
        let api = super::scoped_api::<K>(&client, namespace.as_deref());
        async move {
            // Ends when the sender is gone (the controller stops).
            apis.wait_for(served).await.ok()?;
            let mut gone = apis.clone();
            let until = async move {
                let _ = gone.wait_for(|a| !served(a)).await;
            };
            tracing::info!(kind = %K::kind(&()), "watching (its definition is established)");
            let session = watcher(api, watcher::Config::default().labels(&super::managed_selector()))
                .default_backoff()
                .take_until(until)
                .chain(stream::iter([Ok(watcher::Event::Init), Ok(watcher::Event::InitDone)]));
            Some((session, apis))
        }
    })
    .flatten();
    let stream = sessions.modify(|obj| obj.managed_fields_mut().clear()).reflect(writer).touched_objects();
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinitionCondition, CustomResourceDefinitionStatus, CustomResourceDefinitionVersion,
    };

    fn crd(established: &str, versions: &[(&str, bool)]) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.spec.versions = versions
            .iter()
            .map(|(name, served)| CustomResourceDefinitionVersion {
                name: (*name).to_owned(),
                served: *served,
                ..Default::default()
            })
            .collect();
        crd.status = Some(CustomResourceDefinitionStatus {
            conditions: Some(vec![CustomResourceDefinitionCondition {
                type_: "Established".to_owned(),
                status: established.to_owned(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        crd
    }

    #[test]
    fn a_definition_counts_once_established_and_serving_v1() {
        assert!(serves_v1(&crd("True", &[("v1", true)])));
        assert!(!serves_v1(&crd("False", &[("v1", true)])), "not established yet");
        assert!(!serves_v1(&crd("True", &[("v1", false), ("v1beta1", true)])), "v1 not served");
        assert!(!serves_v1(&CustomResourceDefinition::default()), "no status yet");
    }

    #[test]
    fn missing_names_the_definitions() {
        assert_eq!(MonitoringApis::default().missing(), [SERVICE_MONITORS_CRD, PROMETHEUS_RULES_CRD]);
        assert_eq!(
            MonitoringApis { service_monitors: true, prometheus_rules: false }.missing(),
            [PROMETHEUS_RULES_CRD]
        );
        assert!(MonitoringApis::ALL.missing().is_empty());
    }
}
