//! What the operator observed and did.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: everything the SecurityGuard asks for exists and is available.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: a change is being rolled out.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: the SecurityGuard cannot be (fully) served, with the reason.
pub const CONDITION_DEGRADED: &str = "Degraded";
/// Condition type: reconciliation is paused by `spec.paused`.
pub const CONDITION_PAUSED: &str = "ReconciliationPaused";

/// Condition type: the newest backup succeeded and is not older than twice the schedule.
pub const CONDITION_BACKUP_HEALTHY: &str = "BackupHealthy";
/// Condition type: the newest restore drill passed.
pub const CONDITION_BACKUP_VERIFIED: &str = "BackupVerified";
/// Condition type: with `spec.monitoring.enabled`, the ServiceMonitor and PrometheusRule exist
/// (False with reason `PrometheusOperatorMissing` while its CustomResourceDefinitions do not).
pub const CONDITION_MONITORING_READY: &str = "MonitoringReady";

/// Condition type: with `spec.threatFeeds`, every feed's last sync succeeded and none is older
/// than twice the schedule (False with reason `SyncFailed`, `SyncOverdue` or `NotSyncedYet`).
pub const CONDITION_THREAT_FEEDS_SYNCED: &str = "ThreatFeedsSynced";

/// Observed state of a SecurityGuard, written only by the operator.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGuardStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions: Ready, Progressing, Degraded, ReconciliationPaused, with backups
    /// BackupHealthy and BackupVerified, with monitoring MonitoringReady, and with threat feeds
    /// ThreatFeedsSynced, each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// API replicas the Deployment asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// API replicas that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Where clients reach the API: the Ingress URL when enabled, else the in-cluster Service URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Backups, drills and on-demand requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<super::backup::BackupStatus>,
    /// The restore in progress, or the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<super::backup::RestoreStatus>,
    /// The threat feeds' last syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_feeds: Option<super::feeds::ThreatFeedsStatus>,
}

impl SecurityGuardStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
