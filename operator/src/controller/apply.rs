//! Apply: the only code that writes child objects.
//!
//! Each desired object is compared with the cached copy from the watch; only when the cache
//! lacks something we ask for is it sent, with server-side apply under our field manager. So a
//! converged SecurityGuard costs no write, and a hand edit of a field we manage is reverted.
//! Children the spec no longer asks for are deleted.

use std::fmt::Debug;
use std::marker::PhantomData;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::build::{
    Applied, BackupObjects, ChildResources, CredentialsSecret, DatastoreObjects, FIELD_MANAGER, MonitoringObjects,
    Prepared,
};
use super::describe;
use super::validate::ValidatedGuard;
use crate::monitoring::prometheus_operator::{PrometheusRule, ServiceMonitor};

/// Annotation on the generated credentials Secret listing the keys it holds.
pub const CREDENTIAL_KEYS_ANNOTATION: &str = "securityguard.io/credential-keys";

/// A write that failed, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server-side apply was refused.
    #[error("applying {kind} {namespace}/{name}: {}", describe(.source))]
    Apply {
        /// Kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Deleting an object the spec no longer asks for failed.
    #[error("deleting {kind} {namespace}/{name}: {}", describe(.source))]
    Delete {
        /// Kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The generated passwords are gone while the data they protect is not.
    #[error(
        "Secret {namespace}/{name} holding the generated passwords is missing while {stateful_sets} exist: restore the Secret \
         from a backup, or delete the StatefulSets and their volumes to start with empty datastores"
    )]
    CredentialsLost {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The StatefulSets whose data needs the lost passwords.
        stateful_sets: String,
    },
    /// The generated credentials could not be created or completed.
    #[error("writing Secret {namespace}/{name}: {}", describe(.source))]
    Credentials {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Caches of every kind of child, filled by the controller's watches (label-selected on
/// `app.kubernetes.io/managed-by`), plus the metadata of every Secret.
#[derive(Clone)]
pub struct Stores {
    /// ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// Secret metadata (all Secrets: referenced ones are not ours).
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// StatefulSets.
    pub stateful_sets: Store<StatefulSet>,
    /// Services.
    pub services: Store<Service>,
    /// NetworkPolicies.
    pub network_policies: Store<NetworkPolicy>,
    /// Deployments.
    pub deployments: Store<Deployment>,
    /// HorizontalPodAutoscalers.
    pub hpas: Store<HorizontalPodAutoscaler>,
    /// PodDisruptionBudgets.
    pub pdbs: Store<PodDisruptionBudget>,
    /// Ingresses.
    pub ingresses: Store<Ingress>,
    /// RoleBindings of the backup pods.
    pub role_bindings: Store<RoleBinding>,
    /// CronJobs.
    pub cron_jobs: Store<CronJob>,
    /// Jobs (one-off and those of the CronJobs).
    pub jobs: Store<Job>,
    /// Volume claims (the local backup tier).
    pub volume_claims: Store<PersistentVolumeClaim>,
    /// ServiceMonitors (empty while prometheus-operator's definitions are missing).
    pub service_monitors: Store<ServiceMonitor>,
    /// PrometheusRules (empty while prometheus-operator's definitions are missing).
    pub prometheus_rules: Store<PrometheusRule>,
}

/// Writes the children of one SecurityGuard.
pub struct Applier<'a> {
    /// Client (its requests are counted by the metrics layer).
    pub client: &'a Client,
    /// Caches of the children.
    pub stores: &'a Stores,
    /// Event recorder.
    pub recorder: &'a Recorder,
    /// Reference to the SecurityGuard, for events.
    pub reference: &'a k8s_openapi::api::core::v1::ObjectReference,
    /// What was written so far, for the Events.
    pub changes: std::sync::Mutex<Vec<(Change, String)>>,
}

impl Applier<'_> {
    /// Applies every prepared child, in dependency order, then deletes the ones no longer asked
    /// for. Returns the objects as the API server holds them.
    pub async fn apply(
        &self,
        guard: &ValidatedGuard,
        prepared: ChildResources<Prepared>,
    ) -> Result<ChildResources<Applied>, Error> {
        // Exhaustive on purpose: a new kind of child must be applied here to compile.
        let ChildResources {
            service_account,
            config_map,
            credentials,
            postgres,
            redis,
            network_policies,
            deployment,
            service,
            hpa,
            pdb,
            ingress,
            backup,
            monitoring,
            state: PhantomData,
        } = prepared;

        // What pods refer to comes first: their ServiceAccount, configuration and passwords.
        let service_account = self.apply_one(&self.stores.service_accounts, service_account).await?;
        let config_map = self.apply_one(&self.stores.config_maps, config_map).await?;
        if let Some(credentials) = &credentials {
            self.ensure_credentials(credentials).await?;
        }
        // Fences before the datastores they fence, so these never accept a stranger.
        let mut applied_policies = Vec::with_capacity(network_policies.len());
        for policy in network_policies {
            applied_policies.push(self.apply_one(&self.stores.network_policies, policy).await?);
        }
        let postgres = self.apply_datastore(postgres).await?;
        let redis = self.apply_datastore(redis).await?;
        let deployment = self.apply_one(&self.stores.deployments, deployment).await?;
        let service = self.apply_one(&self.stores.services, service).await?;
        let hpa = match hpa {
            Some(h) => Some(self.apply_one(&self.stores.hpas, h).await?),
            None => None,
        };
        let pdb = self.apply_one(&self.stores.pdbs, pdb).await?;
        let ingress = match ingress {
            Some(i) => Some(self.apply_one(&self.stores.ingresses, i).await?),
            None => None,
        };
        let backup = self.apply_backup(backup).await?;
        // Monitoring last: it observes what the objects above serve, and nothing waits on it.
        let monitoring = self.apply_monitoring(monitoring).await?;

        let applied = ChildResources {
            service_account,
            config_map,
            credentials,
            postgres,
            redis,
            network_policies: applied_policies,
            deployment,
            service,
            hpa,
            pdb,
            ingress,
            backup,
            monitoring,
            state: PhantomData,
        };
        self.delete_orphans(guard, &applied).await?;
        Ok(applied)
    }

    /// Identities first, then the volume, the schedules, and the one-off Jobs.
    async fn apply_backup(&self, objects: BackupObjects) -> Result<BackupObjects, Error> {
        let BackupObjects { service_accounts, role_bindings, cron_jobs, volume, jobs } = objects;
        let mut applied = BackupObjects::default();
        for account in service_accounts {
            applied.service_accounts.push(self.apply_one(&self.stores.service_accounts, account).await?);
        }
        for binding in role_bindings {
            applied.role_bindings.push(self.apply_one(&self.stores.role_bindings, binding).await?);
        }
        if let Some(claim) = volume {
            applied.volume = Some(self.apply_one(&self.stores.volume_claims, claim).await?);
        }
        for cron_job in cron_jobs {
            applied.cron_jobs.push(self.apply_one(&self.stores.cron_jobs, cron_job).await?);
        }
        for job in jobs {
            applied.jobs.push(self.create_once(&self.stores.jobs, job).await?);
        }
        Ok(applied)
    }

    /// The ServiceMonitor, the PrometheusRule and the dashboards.
    async fn apply_monitoring(&self, objects: MonitoringObjects) -> Result<MonitoringObjects, Error> {
        let MonitoringObjects { service_monitor, prometheus_rule, dashboards } = objects;
        let mut applied = MonitoringObjects::default();
        if let Some(monitor) = service_monitor {
            applied.service_monitor = Some(self.apply_one(&self.stores.service_monitors, monitor).await?);
        }
        if let Some(rule) = prometheus_rule {
            applied.prometheus_rule = Some(self.apply_one(&self.stores.prometheus_rules, rule).await?);
        }
        for dashboard in dashboards {
            applied.dashboards.push(self.apply_one(&self.stores.config_maps, dashboard).await?);
        }
        Ok(applied)
    }

    /// Creates an object that is never changed afterwards (a Job), unless it exists.
    async fn create_once<K>(&self, store: &Store<K>, desired: K) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let name = desired.name_any();
        let namespace = desired.namespace().unwrap_or_default();
        if let Some(current) = store.get(&ObjectRef::new(&name).within(&namespace)) {
            return Ok(current.as_ref().clone());
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        let error = |source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..Default::default() };
        match api.create(&params, &desired).await {
            Ok(created) => {
                self.record(Change::Created, format!("{} {name}", K::kind(&())));
                Ok(created)
            }
            // Created by an earlier reconcile the cache has not seen yet.
            Err(kube::Error::Api(status)) if status.code == 409 => api.get(&name).await.map_err(error),
            Err(source) => Err(error(source)),
        }
    }

    async fn apply_datastore(&self, objects: Option<DatastoreObjects>) -> Result<Option<DatastoreObjects>, Error> {
        let Some(DatastoreObjects { stateful_set, service }) = objects else { return Ok(None) };
        // The Service first: the pods resolve it as soon as they start.
        let service = self.apply_one(&self.stores.services, service).await?;
        let stateful_set = self.apply_one(&self.stores.stateful_sets, stateful_set).await?;
        Ok(Some(DatastoreObjects { stateful_set, service }))
    }

    /// Sends `desired` unless the cached object already holds all of it.
    async fn apply_one<K>(&self, store: &Store<K>, desired: K) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let name = desired.name_any();
        let namespace = desired.namespace().unwrap_or_default();
        let cached = store.get(&ObjectRef::new(&name).within(&namespace));
        if let Some(current) = &cached
            && holds(
                &serde_json::to_value(current.as_ref()).unwrap_or(Value::Null),
                &serde_json::to_value(&desired).unwrap_or(Value::Null),
            )
        {
            return Ok(current.as_ref().clone());
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api.patch(&name, &params, &Patch::Apply(&desired)).await.map_err(|source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        let change = if cached.is_some() { Change::Updated } else { Change::Created };
        self.record(change, format!("{} {name}", K::kind(&())));
        Ok(applied)
    }

    /// Creates the credentials Secret once; later only adds keys it lacks, never changing one.
    async fn ensure_credentials(&self, credentials: &CredentialsSecret) -> Result<(), Error> {
        let err = |source| Error::Credentials {
            namespace: credentials.namespace.clone(),
            name: credentials.name.clone(),
            source,
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &credentials.namespace);
        let cached = self.stores.secrets.get(&ObjectRef::new(&credentials.name).within(&credentials.namespace));
        let held: Vec<String> = match &cached {
            Some(meta) => meta
                .annotations()
                .get(CREDENTIAL_KEYS_ANNOTATION)
                .map(|keys| keys.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            None => {
                self.refuse_lost_credentials(credentials).await?;
                let mut secret = credentials.with_passwords(generate_password);
                secret
                    .metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(CREDENTIAL_KEYS_ANNOTATION.to_owned(), credentials.keys.join(","));
                match api
                    .create(
                        &PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..Default::default() },
                        &secret,
                    )
                    .await
                {
                    Ok(_) => {
                        self.record(Change::Created, format!("Secret {} (generated passwords)", credentials.name));
                        return Ok(());
                    }
                    // Created meanwhile (or before our cache saw it): fall through to the check.
                    Err(kube::Error::Api(status)) if status.code == 409 => Vec::new(),
                    Err(e) => return Err(err(e)),
                }
            }
        };
        if credentials.keys.iter().all(|k| held.iter().any(|h| h == k)) {
            return Ok(());
        }
        // Some key is missing (a datastore became managed later): read, add only what is absent.
        let current = api.get(&credentials.name).await.map_err(err)?;
        let data = current.data.unwrap_or_default();
        let fresh = credentials.with_passwords(generate_password);
        let mut added = serde_json::Map::new();
        for (key, value) in fresh.data.unwrap_or_default() {
            if !data.contains_key(&key) {
                added.insert(key, serde_json::to_value(value).unwrap_or(Value::Null));
            }
        }
        let mut all: Vec<String> = data.keys().cloned().collect();
        all.extend(added.keys().cloned());
        let patch = serde_json::json!({
            "metadata": {"annotations": {CREDENTIAL_KEYS_ANNOTATION: all.join(",")}},
            "data": added,
        });
        api.patch(&credentials.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(err)?;
        Ok(())
    }

    /// New passwords would lock the API out of data that already exists: when a datastore's
    /// StatefulSet exists but the Secret does not (deleted by hand), stop and say so.
    async fn refuse_lost_credentials(&self, credentials: &CredentialsSecret) -> Result<(), Error> {
        let existing: Vec<&str> = credentials
            .protects
            .iter()
            .map(String::as_str)
            .filter(|name| {
                self.stores.stateful_sets.get(&ObjectRef::new(name).within(&credentials.namespace)).is_some()
            })
            .collect();
        if existing.is_empty() {
            return Ok(());
        }
        // The cache may lag behind our own creation: ask the API server.
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &credentials.namespace);
        match api.get_metadata_opt(&credentials.name).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Error::CredentialsLost {
                namespace: credentials.namespace.clone(),
                name: credentials.name.clone(),
                stateful_sets: existing.join(", "),
            }),
            Err(source) => Err(Error::Credentials {
                namespace: credentials.namespace.clone(),
                name: credentials.name.clone(),
                source,
            }),
        }
    }

    /// Deletes children of this SecurityGuard that the applied set does not contain.
    async fn delete_orphans(&self, guard: &ValidatedGuard, applied: &ChildResources<Applied>) -> Result<(), Error> {
        let names = |objects: &mut dyn Iterator<Item = String>| objects.collect::<Vec<_>>();
        let datastores = [&applied.postgres, &applied.redis];
        let sts: Vec<String> =
            names(&mut datastores.iter().filter_map(|d| d.as_ref()).map(|d| d.stateful_set.name_any()));
        let mut services: Vec<String> =
            names(&mut datastores.iter().filter_map(|d| d.as_ref()).map(|d| d.service.name_any()));
        services.push(applied.service.name_any());
        let policies = names(&mut applied.network_policies.iter().map(ResourceExt::name_any));
        self.delete_unlisted(&self.stores.stateful_sets, guard, &sts).await?;
        self.delete_unlisted(&self.stores.services, guard, &services).await?;
        self.delete_unlisted(&self.stores.network_policies, guard, &policies).await?;
        self.delete_unlisted(&self.stores.hpas, guard, &names(&mut applied.hpa.iter().map(ResourceExt::name_any)))
            .await?;
        self.delete_unlisted(
            &self.stores.ingresses,
            guard,
            &names(&mut applied.ingress.iter().map(ResourceExt::name_any)),
        )
        .await?;
        self.delete_unlisted(&self.stores.deployments, guard, &[applied.deployment.name_any()]).await?;
        self.delete_unlisted(&self.stores.pdbs, guard, &[applied.pdb.name_any()]).await?;
        let mut config_maps = names(&mut applied.monitoring.dashboards.iter().map(ResourceExt::name_any));
        config_maps.push(applied.config_map.name_any());
        self.delete_unlisted(&self.stores.config_maps, guard, &config_maps).await?;
        // Empty caches while prometheus-operator's definitions are missing: nothing to delete.
        let monitors = names(&mut applied.monitoring.service_monitor.iter().map(ResourceExt::name_any));
        self.delete_unlisted(&self.stores.service_monitors, guard, &monitors).await?;
        let rules = names(&mut applied.monitoring.prometheus_rule.iter().map(ResourceExt::name_any));
        self.delete_unlisted(&self.stores.prometheus_rules, guard, &rules).await?;
        let mut accounts = names(&mut applied.backup.service_accounts.iter().map(ResourceExt::name_any));
        accounts.push(applied.service_account.name_any());
        self.delete_unlisted(&self.stores.service_accounts, guard, &accounts).await?;
        let bindings = names(&mut applied.backup.role_bindings.iter().map(ResourceExt::name_any));
        self.delete_unlisted(&self.stores.role_bindings, guard, &bindings).await?;
        let cron_jobs = names(&mut applied.backup.cron_jobs.iter().map(ResourceExt::name_any));
        self.delete_unlisted(&self.stores.cron_jobs, guard, &cron_jobs).await?;
        // Jobs are never deleted here: they finish and expire (ttlSecondsAfterFinished).
        Ok(())
    }

    async fn delete_unlisted<K>(&self, store: &Store<K>, guard: &ValidatedGuard, keep: &[String]) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let orphans = store.state().into_iter().filter(|o| {
            o.namespace().as_deref() == Some(guard.namespace.as_str())
                && o.owner_references().iter().any(|r| r.uid == guard.owner.uid && r.controller == Some(true))
                && !keep.contains(&o.name_any())
                && o.meta().deletion_timestamp.is_none()
        });
        for orphan in orphans {
            let name = orphan.name_any();
            let api: Api<K> = Api::namespaced(self.client.clone(), &guard.namespace);
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => self.record(Change::Deleted, format!("{} {name}", K::kind(&()))),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(Error::Delete {
                        kind: K::kind(&()).into_owned(),
                        namespace: guard.namespace.clone(),
                        name,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    fn record(&self, change: Change, object: String) {
        if let Ok(mut changes) = self.changes.lock() {
            changes.push((change, object));
        }
    }

    /// Publishes what this reconcile wrote, one Event per kind of change (Created, Updated,
    /// Deleted) listing the objects, rather than one Event per object. Called whether the apply
    /// succeeded or not: what was written before a failure is reported too.
    pub async fn publish_changes(&self) {
        let changes = self.changes.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        for change in [Change::Created, Change::Updated, Change::Deleted] {
            let objects: Vec<&str> = changes.iter().filter(|(c, _)| *c == change).map(|(_, o)| o.as_str()).collect();
            if objects.is_empty() {
                continue;
            }
            let mut note = format!("{} {}", change.as_str(), objects.join(", "));
            if change == Change::Deleted {
                note.push_str(": no longer asked for by the spec");
            }
            // Event notes are limited to 1 kB.
            if note.len() > 1000 {
                let mut end = 997;
                while !note.is_char_boundary(end) {
                    end -= 1;
                }
                note.truncate(end);
                note.push_str("...");
            }
            publish(self.recorder, self.reference, EventType::Normal, change.as_str(), "Reconcile", note).await;
        }
    }
}

/// What a write did to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist.
    Created,
    /// It differed from the spec.
    Updated,
    /// The spec no longer asks for it.
    Deleted,
}

impl Change {
    /// Event reason and verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Updated => "Updated",
            Self::Deleted => "Deleted",
        }
    }
}

/// Publishes an Event; a failure to publish is logged, not fatal.
pub async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event =
        Event { type_, reason: reason.to_owned(), note: Some(note), action: action.to_owned(), secondary: None };
    if let Err(error) = recorder.publish(&event, reference).await {
        tracing::warn!(%error, reason, "could not publish an Event");
    }
}

/// True when `current` holds every value of `desired`: objects may have more fields (defaults
/// filled in by the API server), lists must match element by element.
pub fn holds(current: &Value, desired: &Value) -> bool {
    match (current, desired) {
        (Value::Object(c), Value::Object(d)) => d.iter().all(|(k, dv)| match c.get(k) {
            Some(cv) => holds(cv, dv),
            None => dv.is_null(),
        }),
        (Value::Array(c), Value::Array(d)) => c.len() == d.len() && c.iter().zip(d).all(|(cv, dv)| holds(cv, dv)),
        (c, d) => c == d,
    }
}

/// A 32-character alphanumeric password (safe inside URLs without escaping).
fn generate_password() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn holds_ignores_server_defaults_but_not_changed_values() {
        let current = json!({"spec": {"replicas": 3, "template": {"containers": [
            {"name": "api", "image": "a:1", "terminationMessagePath": "/dev/termination-log"}]}}});
        assert!(holds(&current, &json!({"spec": {"template": {"containers": [{"name": "api", "image": "a:1"}]}}})));
        assert!(!holds(&current, &json!({"spec": {"template": {"containers": [{"name": "api", "image": "a:2"}]}}})));
        assert!(!holds(&current, &json!({"spec": {"template": {"containers": [{"name": "api"}, {"name": "x"}]}}})));
        assert!(!holds(&current, &json!({"spec": {"paused": true}})));
    }

    #[test]
    fn passwords_are_long_and_url_safe() {
        let a = generate_password();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }
}
