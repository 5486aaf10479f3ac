//! Orphans: children of a SecurityGuard that the spec no longer asks for (Ingress turned off,
//! a datastore made external, monitoring disabled) are deleted.
//!
//! Two exhaustive destructurings prove that no kind is forgotten: [`Kept::of`] takes apart the
//! applied set (a new kind of child does not compile until it says what it keeps), and
//! [`delete`] takes apart the caches (a new watched kind does not compile until it says whether
//! its objects are deleted).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::DeleteParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::changes::{Change, Changes};
use super::error::Error;
use crate::controller::build::{Applied, BackupObjects, ChildResources, DatastoreObjects, MonitoringObjects};
use crate::controller::read::Stores;
use crate::controller::read::cached::{Cached, Remembered};
use crate::controller::vocabulary::ValidatedGuard;

/// Names of the applied children, one list per kind the caches hold: what deletion keeps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// ServiceAccounts (the API's and the backup pods').
    pub service_accounts: Vec<String>,
    /// ConfigMaps (the API's configuration and the dashboards).
    pub config_maps: Vec<String>,
    /// StatefulSets of the managed datastores.
    pub stateful_sets: Vec<String>,
    /// Services (the API's and the datastores').
    pub services: Vec<String>,
    /// NetworkPolicies.
    pub network_policies: Vec<String>,
    /// Deployments.
    pub deployments: Vec<String>,
    /// HorizontalPodAutoscalers.
    pub hpas: Vec<String>,
    /// PodDisruptionBudgets.
    pub pdbs: Vec<String>,
    /// Ingresses.
    pub ingresses: Vec<String>,
    /// RoleBindings.
    pub role_bindings: Vec<String>,
    /// CronJobs.
    pub cron_jobs: Vec<String>,
    /// ServiceMonitors.
    pub service_monitors: Vec<String>,
    /// PrometheusRules.
    pub prometheus_rules: Vec<String>,
}

impl Kept {
    /// The names to keep: every applied child.
    pub fn of(applied: &ChildResources<Applied>) -> Self {
        // Exhaustive on purpose (no `..`): a new kind of child must say what it keeps.
        let ChildResources {
            service_account,
            config_map,
            // Never deleted: the passwords outlive the SecurityGuard, like the data they open.
            credentials: _,
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
            state: _,
        } = applied;
        // Jobs finish and expire (ttlSecondsAfterFinished); the local tier's claim outlives
        // the SecurityGuard.
        let BackupObjects { service_accounts, role_bindings, cron_jobs, volume: _, jobs: _ } = backup;
        let MonitoringObjects { service_monitor, prometheus_rule, dashboards } = monitoring;
        let datastores: Vec<&DatastoreObjects> = [postgres, redis].into_iter().flatten().collect();
        Self {
            service_accounts: names([service_account].into_iter().chain(service_accounts)),
            config_maps: names([config_map].into_iter().chain(dashboards)),
            stateful_sets: names(datastores.iter().map(|d| &d.stateful_set)),
            services: names([service].into_iter().chain(datastores.iter().map(|d| &d.service))),
            network_policies: names(network_policies),
            deployments: names([deployment]),
            hpas: names(hpa),
            pdbs: names([pdb]),
            ingresses: names(ingress),
            role_bindings: names(role_bindings),
            cron_jobs: names(cron_jobs.iter().chain(threat_feeds)),
            service_monitors: names(service_monitor),
            prometheus_rules: names(prometheus_rule),
        }
    }
}

fn names<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> Vec<String> {
    objects.into_iter().map(ResourceExt::name_any).collect()
}

/// Deletes the children of this SecurityGuard that the applied set does not contain.
pub async fn delete(
    client: &Client,
    stores: &Stores,
    changes: &Changes,
    guard: &ValidatedGuard,
    applied: &ChildResources<Applied>,
) -> Result<(), Error> {
    let kept = Kept::of(applied);
    // Exhaustive on purpose (no `..`): a new watched kind must say whether orphans are deleted.
    let Stores {
        service_accounts,
        config_maps,
        // Referenced Secrets are the user's; the generated one is never deleted.
        secrets: _,
        stateful_sets,
        services,
        network_policies,
        deployments,
        hpas,
        pdbs,
        ingresses,
        role_bindings,
        cron_jobs,
        // Jobs finish and expire; the local tier's claim outlives the SecurityGuard.
        jobs: _,
        volume_claims: _,
        // Empty while prometheus-operator's definitions are missing: nothing to delete then.
        service_monitors,
        prometheus_rules,
    } = stores;
    let deleter = Deleter { client, changes, guard };
    deleter.unlisted(stateful_sets, &kept.stateful_sets).await?;
    deleter.unlisted(services, &kept.services).await?;
    deleter.unlisted(network_policies, &kept.network_policies).await?;
    deleter.unlisted(hpas, &kept.hpas).await?;
    deleter.unlisted(ingresses, &kept.ingresses).await?;
    deleter.unlisted(deployments, &kept.deployments).await?;
    deleter.unlisted(pdbs, &kept.pdbs).await?;
    deleter.unlisted(config_maps, &kept.config_maps).await?;
    deleter.unlisted(service_monitors, &kept.service_monitors).await?;
    deleter.unlisted(prometheus_rules, &kept.prometheus_rules).await?;
    deleter.unlisted(service_accounts, &kept.service_accounts).await?;
    deleter.unlisted(role_bindings, &kept.role_bindings).await?;
    deleter.unlisted(cron_jobs, &kept.cron_jobs).await?;
    Ok(())
}

/// Deletes the orphans of one SecurityGuard, remembering what it deleted.
struct Deleter<'a> {
    client: &'a Client,
    changes: &'a Changes,
    guard: &'a ValidatedGuard,
}

impl Deleter<'_> {
    /// Deletes the cached objects controlled by the SecurityGuard whose names are not kept.
    async fn unlisted<K>(&self, store: &Store<Remembered<K>>, keep: &[String]) -> Result<(), Error>
    where
        K: Cached + Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let guard = self.guard;
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
                Ok(_) => self.changes.record(Change::Deleted, format!("{} {name}", K::kind(&()))),
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
}
