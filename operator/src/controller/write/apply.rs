//! Apply: every prepared child, by server-side apply under our field manager, in dependency
//! order; then the children no longer asked for are deleted ([`super::orphans`]).
//!
//! Each desired object is compared with the cached copy from the watch; only when the cache
//! lacks something we ask for is it sent. So a converged SecurityGuard costs no write, and a
//! hand edit of a field we manage is reverted.

use std::fmt::Debug;
use std::marker::PhantomData;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::changes::{Change, Changes};
use super::credentials::{Credentials, Outcome};
use super::error::Error;
use super::ledger::{Ledger, desired_hash};
use crate::controller::build::{Applied, BackupObjects, ChildResources, DatastoreObjects, MonitoringObjects, Prepared};
use crate::controller::read::Stores;
use crate::controller::read::cached::{Cached, Remembered};
use crate::controller::vocabulary::{FIELD_MANAGER, ValidatedGuard};

/// Writes the children of one SecurityGuard, remembering what it changed (for the Events).
pub struct Applier<'a> {
    /// Client (its requests are counted by the metrics layer).
    pub client: &'a Client,
    /// Caches of the children.
    pub stores: &'a Stores,
    /// What was last written to each child.
    pub ledger: &'a Ledger,
    /// The uid of the SecurityGuard whose children these are.
    pub guard_uid: &'a str,
    changes: Changes,
}

impl<'a> Applier<'a> {
    /// An applier that has written nothing yet.
    pub fn new(client: &'a Client, stores: &'a Stores, ledger: &'a Ledger, guard_uid: &'a str) -> Self {
        Self { client, stores, ledger, guard_uid, changes: Changes::default() }
    }

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
            threat_feeds,
            state: PhantomData,
        } = prepared;
        let stores = self.stores;

        // What pods refer to comes first: their ServiceAccount, configuration and passwords.
        let service_account = self.apply_one(&stores.service_accounts, service_account).await?;
        let config_map = self.apply_one(&stores.config_maps, config_map).await?;
        if let Some(credentials) = &credentials {
            self.ensure_credentials(credentials).await?;
        }
        // Fences before the datastores they fence, so these never accept a stranger.
        let network_policies = self.apply_all(&stores.network_policies, network_policies).await?;
        let postgres = self.apply_datastore(postgres).await?;
        let redis = self.apply_datastore(redis).await?;
        let deployment = self.apply_one(&stores.deployments, deployment).await?;
        let service = self.apply_one(&stores.services, service).await?;
        let hpa = self.apply_optional(&stores.hpas, hpa).await?;
        let pdb = self.apply_one(&stores.pdbs, pdb).await?;
        let ingress = self.apply_optional(&stores.ingresses, ingress).await?;
        let backup = self.apply_backup(backup).await?;
        // After the Deployment: the sync's first run should find the API serving the tokens.
        let threat_feeds = self.apply_optional(&stores.cron_jobs, threat_feeds).await?;
        // Monitoring last: it observes what the objects above serve, and nothing waits on it.
        let monitoring = self.apply_monitoring(monitoring).await?;

        let applied = ChildResources {
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
            threat_feeds,
            state: PhantomData,
        };
        super::orphans::delete(self.client, self.stores, &self.changes, guard, &applied).await?;
        Ok(applied)
    }

    /// What this applier wrote so far, in order.
    pub fn changes(&self) -> Vec<(Change, String)> {
        self.changes.list()
    }

    /// Identities first, then the volume, the schedules, and the one-off Jobs.
    async fn apply_backup(&self, objects: BackupObjects) -> Result<BackupObjects, Error> {
        let BackupObjects { service_accounts, role_bindings, cron_jobs, volume, jobs } = objects;
        let stores = self.stores;
        let service_accounts = self.apply_all(&stores.service_accounts, service_accounts).await?;
        let role_bindings = self.apply_all(&stores.role_bindings, role_bindings).await?;
        let volume = self.apply_optional(&stores.volume_claims, volume).await?;
        let cron_jobs = self.apply_all(&stores.cron_jobs, cron_jobs).await?;
        let mut created = Vec::with_capacity(jobs.len());
        for job in jobs {
            created.push(self.create_once(&stores.jobs, job).await?);
        }
        Ok(BackupObjects { service_accounts, role_bindings, cron_jobs, volume, jobs: created })
    }

    /// The ServiceMonitor, the PrometheusRule and the dashboards.
    async fn apply_monitoring(&self, objects: MonitoringObjects) -> Result<MonitoringObjects, Error> {
        let MonitoringObjects { service_monitor, prometheus_rule, dashboards } = objects;
        Ok(MonitoringObjects {
            service_monitor: self.apply_optional(&self.stores.service_monitors, service_monitor).await?,
            prometheus_rule: self.apply_optional(&self.stores.prometheus_rules, prometheus_rule).await?,
            dashboards: self.apply_all(&self.stores.config_maps, dashboards).await?,
        })
    }

    async fn apply_datastore(&self, objects: Option<DatastoreObjects>) -> Result<Option<DatastoreObjects>, Error> {
        let Some(DatastoreObjects { stateful_set, service }) = objects else { return Ok(None) };
        // The Service first: the pods resolve it as soon as they start.
        let service = self.apply_one(&self.stores.services, service).await?;
        let stateful_set = self.apply_one(&self.stores.stateful_sets, stateful_set).await?;
        Ok(Some(DatastoreObjects { stateful_set, service }))
    }

    async fn ensure_credentials(&self, credentials: &crate::controller::build::CredentialsSecret) -> Result<(), Error> {
        let writer = Credentials {
            client: self.client,
            secrets: &self.stores.secrets,
            stateful_sets: &self.stores.stateful_sets,
        };
        if writer.ensure(credentials).await? == Outcome::Created {
            self.changes.record(Change::Created, format!("Secret {} (generated passwords)", credentials.name));
        }
        Ok(())
    }

    async fn apply_all<K>(&self, store: &Store<Remembered<K>>, desired: Vec<K>) -> Result<Vec<K>, Error>
    where
        K: Cached + Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let mut applied = Vec::with_capacity(desired.len());
        for object in desired {
            applied.push(self.apply_one(store, object).await?);
        }
        Ok(applied)
    }

    async fn apply_optional<K>(&self, store: &Store<Remembered<K>>, desired: Option<K>) -> Result<Option<K>, Error>
    where
        K: Cached + Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        match desired {
            Some(object) => Ok(Some(self.apply_one(store, object).await?)),
            None => Ok(None),
        }
    }

    /// Sends `desired` unless the child already holds all of it: known from the ledger while the
    /// cached child has not changed since the operator's last write, else read whole and
    /// compared.
    async fn apply_one<K>(&self, store: &Store<Remembered<K>>, desired: K) -> Result<K, Error>
    where
        K: Cached + Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let name = desired.name_any();
        let namespace = desired.namespace().unwrap_or_default();
        let hash = desired_hash(&desired);
        let cached = store.get(&ObjectRef::new(&name).within(&namespace));
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(current) = &cached {
            if self.ledger.holds(self.guard_uid, current.as_ref(), hash) {
                return Ok(current.object());
            }
            // Changed since the last write, or never written by this process: compare it whole.
            let whole = api.get_opt(&name).await.map_err(|source| Error::Read {
                kind: K::kind(&()).into_owned(),
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
            if let Some(whole) = whole
                && holds(&to_value(&whole), &to_value(&desired))
            {
                self.ledger.record(self.guard_uid, &whole, hash);
                return Ok(whole);
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api.patch(&name, &params, &Patch::Apply(&desired)).await.map_err(|source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        self.ledger.record(self.guard_uid, &applied, hash);
        let change = if cached.is_some() { Change::Updated } else { Change::Created };
        self.changes.record(change, format!("{} {name}", K::kind(&())));
        Ok(applied)
    }

    /// Creates an object that is never changed afterwards (a Job), unless it exists.
    async fn create_once<K>(&self, store: &Store<Remembered<K>>, desired: K) -> Result<K, Error>
    where
        K: Cached + Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let name = desired.name_any();
        let namespace = desired.namespace().unwrap_or_default();
        if let Some(current) = store.get(&ObjectRef::new(&name).within(&namespace)) {
            return Ok(current.object());
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
                self.changes.record(Change::Created, format!("{} {name}", K::kind(&())));
                Ok(created)
            }
            // Created by an earlier reconcile the cache has not seen yet.
            Err(kube::Error::Api(status)) if status.code == 409 => api.get(&name).await.map_err(error),
            Err(source) => Err(error(source)),
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
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

#[cfg(test)]
mod tests;
