//! The threat-feed sync CronJob: the operator's own image running `feeds sync`, one run at a
//! time, restricted and tokenless (it talks to the SecurityGuard API, not to Kubernetes), with
//! the feed tokens mounted from the generated credentials Secret. Its pod reports every feed's
//! outcome as JSON in its termination message, which the controller reads into the status.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controller::build::meta::{labels, metadata};
use crate::controller::build::pod::{
    empty_dir, feed_tokens_volume, mount, plain_env, resources, restricted_container_security_context,
    restricted_pod_security_context,
};
use crate::controller::vocabulary::{
    Component, FEED_SYNC_JOB, JOB_KIND_LABEL, ValidatedGuard, api_cluster_url, feed_sync_name,
};

/// User the operator image runs as.
pub const JOB_UID: i64 = 65532;
/// Where the termination message is written (the kubelet's default path).
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Seconds a finished sync Job is kept (its outcome is in the status by then).
pub const FINISHED_JOB_TTL_SECONDS: i32 = 24 * 3600;

/// Labels of the sync Jobs and their pods.
pub fn job_labels(guard: &ValidatedGuard) -> BTreeMap<String, String> {
    let mut labels = labels(guard, Component::ThreatFeeds);
    labels.insert(JOB_KIND_LABEL.to_owned(), FEED_SYNC_JOB.to_owned());
    labels
}

/// The sync CronJob, when `spec.threatFeeds` is set; its pods run `image`.
pub fn build(guard: &ValidatedGuard, image: &str) -> Option<CronJob> {
    let feeds = guard.spec.threat_feeds.as_ref()?;
    let mut meta = metadata(guard, Component::ThreatFeeds, feed_sync_name(&guard.name));
    meta.labels = Some(job_labels(guard));
    let (tokens_volume, tokens_mount, tokens_file) = feed_tokens_volume(guard);
    let env = vec![
        plain_env("SG_API_URL", api_cluster_url(&guard.name, &guard.namespace)),
        plain_env("SG_FEED_TOKEN_FILE", tokens_file),
        // The spec's feeds with their defaults, as the command reads them.
        plain_env("SG_THREAT_FEEDS", serde_json::to_string(&feeds.feeds).unwrap_or_else(|_| "[]".to_owned())),
        plain_env("SG_TERMINATION_LOG", TERMINATION_LOG.to_owned()),
    ];
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        restart_policy: Some("Never".to_owned()),
        security_context: Some(restricted_pod_security_context(JOB_UID)),
        containers: vec![Container {
            name: FEED_SYNC_JOB.to_owned(),
            image: Some(image.to_owned()),
            command: Some(vec!["securityguard-operator".to_owned()]),
            args: Some(vec!["feeds".to_owned(), "sync".to_owned()]),
            env: Some(env),
            resources: Some(resources("50m", "64Mi", "512Mi")),
            security_context: Some(restricted_container_security_context()),
            termination_message_path: Some(TERMINATION_LOG.to_owned()),
            termination_message_policy: Some("File".to_owned()),
            volume_mounts: Some(vec![mount("tmp", "/tmp"), tokens_mount]),
            ..Container::default()
        }],
        volumes: Some(vec![empty_dir("tmp"), tokens_volume]),
        ..PodSpec::default()
    };
    Some(CronJob {
        metadata: meta,
        spec: Some(CronJobSpec {
            schedule: feeds.schedule.clone(),
            time_zone: Some("Etc/UTC".to_owned()),
            suspend: Some(feeds.suspend),
            // One sync at a time: two would race to replace the same feeds.
            concurrency_policy: Some("Forbid".to_owned()),
            // A run missed by more than this (the controller was down) is skipped, not piled up.
            starting_deadline_seconds: Some(600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(job_labels(guard)), ..ObjectMeta::default() }),
                spec: Some(JobSpec {
                    // One attempt: a failed feed changed nothing; the next schedule tries again.
                    backoff_limit: Some(0),
                    // Every download has its own time limit; this bounds the whole run.
                    active_deadline_seconds: Some(1800),
                    ttl_seconds_after_finished: Some(FINISHED_JOB_TTL_SECONDS),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta { labels: Some(job_labels(guard)), ..ObjectMeta::default() }),
                        spec: Some(pod),
                    },
                    ..JobSpec::default()
                }),
            },
        }),
        ..CronJob::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};
    use serde_json::json;

    const FEEDS: &str = "  threatFeeds:
    feeds:
      - {name: community, url: 'https://feeds.example/list.txt', format: Plain}
      - {name: polkadot, url: 'https://raw.githubusercontent.com/polkadot-js/phishing/master/all.json', format: PolkadotJs, maxEntries: 70000}
";

    #[test]
    fn none_without_threat_feeds() {
        assert!(build(&guard(MINIMAL), "operator:test").is_none());
    }

    #[test]
    fn a_restricted_forbid_cron_job_running_feeds_sync_with_the_token_mounted() {
        let g = guard(&format!("{MINIMAL}{FEEDS}"));
        let cron = serde_json::to_value(build(&g, "operator:test").expect("built")).expect("serializes");
        assert_eq!(cron["metadata"]["name"], "sg-feed-sync");
        assert_eq!(cron["metadata"]["labels"]["app.kubernetes.io/component"], "threat-feeds");
        assert_eq!(cron["metadata"]["labels"][JOB_KIND_LABEL], "feed-sync");
        assert_eq!(cron["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let spec = &cron["spec"];
        assert_eq!(spec["schedule"], "17 */6 * * *");
        assert_eq!(spec["timeZone"], "Etc/UTC");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["concurrencyPolicy"], "Forbid");
        assert_eq!(spec["jobTemplate"]["metadata"]["labels"][JOB_KIND_LABEL], "feed-sync");
        let job = &spec["jobTemplate"]["spec"];
        assert_eq!(job["backoffLimit"], 0);
        let pod = &job["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(
            pod["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                   "seccompProfile": {"type": "RuntimeDefault"}})
        );
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "operator:test");
        assert_eq!(container["command"], json!(["securityguard-operator"]));
        assert_eq!(container["args"], json!(["feeds", "sync"]));
        assert_eq!(
            container["securityContext"],
            json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                   "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
        );
        assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        let env: BTreeMap<&str, &str> = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| (e["name"].as_str().expect("name"), e["value"].as_str().expect("value")))
            .collect();
        assert_eq!(env["SG_API_URL"], "http://sg-api.prod.svc:80");
        assert_eq!(env["SG_FEED_TOKEN_FILE"], "/var/run/securityguard/feed-tokens/tokens");
        let feeds: serde_json::Value = serde_json::from_str(env["SG_THREAT_FEEDS"]).expect("JSON");
        assert_eq!(
            feeds[1],
            json!({"name": "polkadot", "url": "https://raw.githubusercontent.com/polkadot-js/phishing/master/all.json",
                   "format": "PolkadotJs", "maxEntries": 70000, "maxBytes": 16777216, "maxInvalidEntries": 0,
                   "timeoutSeconds": 60})
        );
        assert_eq!(
            pod["volumes"][1],
            json!({"name": "feed-tokens", "secret": {"secretName": "sg-credentials", "defaultMode": 0o440,
                   "items": [{"key": "feed-tokens", "path": "tokens"}]}})
        );
        assert_eq!(
            container["volumeMounts"][1],
            json!({"name": "feed-tokens", "mountPath": "/var/run/securityguard/feed-tokens", "readOnly": true})
        );
    }

    #[test]
    fn suspend_and_schedule_follow_the_spec() {
        let g = guard(
            &format!("{MINIMAL}{FEEDS}")
                .replace("  threatFeeds:\n", "  threatFeeds:\n    schedule: '@hourly'\n    suspend: true\n"),
        );
        let cron = build(&g, "operator:test").expect("built");
        let spec = cron.spec.expect("spec");
        assert_eq!((spec.schedule.as_str(), spec.suspend), ("@hourly", Some(true)));
    }
}
