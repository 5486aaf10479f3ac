//! The watches: label-selected, cached, managedFields dropped.

use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::controller::read::cached::{Cached, Remembered, prune_guard, prune_secret, remember};
use crate::controller::vocabulary::{managed_selector, pod_selector};
use crate::controller::write::ledger::Ledger;
use crate::crd::SecurityGuard;
use crate::metrics::{GuardLabels, Metrics};

/// A stream of changed objects of one kind, boxed so that the watches are set up apart from
/// the controller they feed.
pub type Changes<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// The SecurityGuards, cached; only spec changes trigger (our own status writes do not come
/// back as work). A deleted SecurityGuard's metric series and ledger entries go with it.
pub fn watch_guards(
    client: &Client,
    ns: Option<&str>,
    metrics: Arc<Metrics>,
    ledger: Arc<Ledger>,
) -> (Store<SecurityGuard>, Changes<SecurityGuard>) {
    let (guards, writer) = reflector::store::<SecurityGuard>();
    let stream = watcher(scoped_api::<SecurityGuard>(client, ns), watcher::Config::default())
        .default_backoff()
        .modify(prune_guard)
        .reflect(writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(guard) = event {
                let labels = GuardLabels::new(&guard.namespace().unwrap_or_default(), &guard.name_any());
                metrics.guards.forget(&labels);
                metrics.feeds.forget_guard(&labels);
                ledger.forget_guard(&guard.uid().unwrap_or_default());
            }
        })
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
        .boxed();
    (guards, stream)
}

/// Every Secret's metadata: a referenced Secret appearing or changing triggers its guards.
pub fn secret_watch(
    client: &Client,
    ns: Option<&str>,
) -> (
    Store<PartialObjectMeta<Secret>>,
    impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static,
) {
    let (secrets, writer) = reflector::store::<PartialObjectMeta<Secret>>();
    let stream = watcher(scoped_api::<PartialObjectMeta<Secret>>(client, ns), watcher::Config::default())
        .default_backoff()
        .modify(prune_secret)
        .reflect(writer)
        .touched_objects()
        .predicate_filter(predicates::resource_version, Default::default());
    (secrets, stream)
}

/// The pods of the API and the managed datastores: a pod changing (an image that cannot be
/// pulled, a crash, a recovery) triggers its guard, which reads the pods it needs. Their
/// metadata is watched and nothing is cached: the kubelet's verdict changes no Deployment or
/// StatefulSet status, so their watches alone would not tell.
pub fn pod_watch(client: &Client, ns: Option<&str>) -> Changes<PartialObjectMeta<Pod>> {
    let config = watcher::Config::default().labels(&pod_selector());
    watcher(scoped_api::<PartialObjectMeta<Pod>>(client, ns), config).default_backoff().touched_objects().boxed()
}

/// A namespaced kind the controller caches through a watch.
pub trait Watched:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Starts a label-selected, cached watch of one kind of child; returns its cache and the stream
/// of changed objects.
pub fn child_watch<K>(
    client: &Client,
    namespace: Option<&str>,
) -> (Store<Remembered<K>>, impl Stream<Item = Result<Remembered<K>, watcher::Error>> + Send + 'static)
where
    K: Watched + Cached,
{
    selected_child_watch(client, namespace, managed_selector())
}

/// A cached watch of the children of one kind that `selector` selects.
pub fn selected_child_watch<K>(
    client: &Client,
    namespace: Option<&str>,
    selector: String,
) -> (Store<Remembered<K>>, impl Stream<Item = Result<Remembered<K>, watcher::Error>> + Send + 'static)
where
    K: Watched + Cached,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(scoped_api::<K>(client, namespace), watcher::Config::default().labels(&selector))
        .default_backoff()
        // Only what a reconcile reads is kept (read::cached).
        .map_ok(remember)
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

/// An Api over every namespace, or over one.
pub fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
