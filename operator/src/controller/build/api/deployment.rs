//! The API Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    HTTPGetAction, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::build::meta::{client_labels, labels, metadata};
use crate::controller::build::pod::{
    database_env, feed_tokens_volume, key_ref, plain_env, restricted_container_security_context,
    restricted_pod_security_context, secret_env,
};
use crate::controller::vocabulary::{
    API_PORT, CONFIG_HASH_ANNOTATION, Component, Datastore, REDIS_PASSWORD_KEY, REDIS_PORT, Scale, ValidatedGuard,
    credentials_secret_name, object_name, selector_labels, short_hash,
};

/// Name of the API container.
pub const CONTAINER: &str = "api";
/// User the API runs as.
pub const API_UID: i64 = 65532;

/// The API Deployment, at `scale`. With autoscaling on, `replicas` is left to the autoscaler.
pub fn build(guard: &ValidatedGuard, scale: Scale, config_map: &ConfigMap) -> Deployment {
    let name = object_name(&guard.name, Component::Api);
    let selector = selector_labels(&guard.name, Component::Api);
    let mut pod_labels = labels(guard, Component::Api);
    pod_labels.extend(client_labels(guard));
    let config_hash = short_hash(serde_json::to_string(&config_map.data).unwrap_or_default().as_bytes());

    Deployment {
        metadata: metadata(guard, Component::Api, name.clone()),
        spec: Some(DeploymentSpec {
            replicas: replicas(guard, scale),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                // Never fewer ready pods than asked for during a rollout.
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::String("25%".to_owned())),
                }),
            }),
            revision_history_limit: Some(5),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), config_hash)])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.clone()),
                    automount_service_account_token: Some(false),
                    security_context: Some(restricted_pod_security_context(API_UID)),
                    termination_grace_period_seconds: Some(30),
                    topology_spread_constraints: Some(spread(&selector)),
                    containers: vec![container(guard, &name)],
                    volumes: Some(volumes(guard)),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// Fixed replicas, none with autoscaling on (the autoscaler owns them); during a restore, 0
/// and then the recorded size (the autoscaler does not scale up from 0).
fn replicas(guard: &ValidatedGuard, scale: Scale) -> Option<i32> {
    match scale {
        Scale::Zero => Some(0),
        Scale::Recorded { replicas, .. } => Some(replicas),
        Scale::Spec => (!guard.spec.autoscaling.enabled).then(|| guard.spec.replicas.unwrap_or(3)),
    }
}

/// Spread the pods over zones and nodes, preferring balance but never refusing to schedule.
fn spread(selector: &BTreeMap<String, String>) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() }),
            match_label_keys: Some(vec!["pod-template-hash".to_owned()]),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}

/// Scratch space, and with threat feeds the machine tokens the feed sync presents.
fn volumes(guard: &ValidatedGuard) -> Vec<Volume> {
    let mut volumes =
        vec![Volume { name: "tmp".to_owned(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }];
    if guard.spec.threat_feeds.is_some() {
        volumes.push(feed_tokens_volume(guard).0);
    }
    volumes
}

fn container(guard: &ValidatedGuard, config_map_name: &str) -> Container {
    let spec = &guard.spec;
    let mut env = datastore_env(guard);
    env.push(secret_env("JWT_SECRET", &spec.secrets.jwt_secret));
    if let Some(key) = &spec.secrets.claude_api_key {
        env.push(secret_env("CLAUDE_API_KEY", key));
    }
    let mut mounts =
        vec![VolumeMount { name: "tmp".to_owned(), mount_path: "/tmp".to_owned(), ..VolumeMount::default() }];
    if spec.threat_feeds.is_some() {
        let (_, mount, file) = feed_tokens_volume(guard);
        env.push(plain_env("FEED_TOKENS_FILE", file));
        mounts.push(mount);
    }
    env.extend(spec.env.iter().cloned());

    let http_probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    };

    Container {
        name: CONTAINER.to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: API_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource { name: config_map_name.to_owned(), optional: None }),
            ..EnvFromSource::default()
        }]),
        env: Some(env),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        startup_probe: Some(http_probe("/health/live", 2, 30)),
        liveness_probe: Some(http_probe("/health/live", 10, 3)),
        readiness_probe: Some(http_probe("/health/ready", 5, 3)),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// DATABASE_URL and REDIS_URL: from the external Secret, or composed from the generated
/// password (Kubernetes expands `$(VAR)` from the variables before it, so no password is ever
/// written into the Deployment).
fn datastore_env(guard: &ValidatedGuard) -> Vec<EnvVar> {
    let credentials = credentials_secret_name(&guard.name);
    let mut env = database_env(guard);
    match &guard.redis {
        Datastore::External(url) => env.push(secret_env("REDIS_URL", url)),
        Datastore::Managed(_) => {
            env.push(secret_env("REDIS_PASSWORD", &key_ref(&credentials, REDIS_PASSWORD_KEY)));
            env.push(plain_env(
                "REDIS_URL",
                format!("redis://:$(REDIS_PASSWORD)@{}:{REDIS_PORT}/0", object_name(&guard.name, Component::Redis)),
            ));
        }
    }
    env
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("250m".to_owned())),
            ("memory".to_owned(), Quantity("256Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), Quantity("1Gi".to_owned()))])),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::api::config_map;
    use crate::controller::build::test_support::{MINIMAL, guard};

    fn deployment(yaml: &str) -> serde_json::Value {
        let g = guard(yaml);
        serde_json::to_value(build(&g, Scale::Spec, &config_map::build(&g))).expect("serializes")
    }

    #[test]
    fn api_pods_are_restricted_and_probed() {
        let d = deployment(MINIMAL);
        let spec = &d["spec"];
        assert!(spec.get("replicas").is_none(), "replicas belong to the autoscaler");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        let pod = &spec["template"]["spec"];
        assert_eq!(
            pod["securityContext"],
            serde_json::json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}})
        );
        let c = &pod["containers"][0];
        assert_eq!(
            c["securityContext"],
            serde_json::json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
        assert_eq!(c["ports"][0], serde_json::json!({"name": "http", "containerPort": 8080, "protocol": "TCP"}));
        assert_eq!(pod["topologySpreadConstraints"].as_array().map(Vec::len), Some(2));
        assert_eq!(spec["template"]["metadata"]["labels"]["securityguard.io/datastore-client"], "true");
    }

    #[test]
    fn with_threat_feeds_the_api_reads_the_feed_tokens_from_a_secret_volume() {
        let plain = deployment(MINIMAL);
        let env = plain["spec"]["template"]["spec"]["containers"][0]["env"].as_array().expect("env").clone();
        assert!(!env.iter().any(|e| e["name"] == "FEED_TOKENS_FILE"), "no feed tokens without feeds");
        assert_eq!(plain["spec"]["template"]["spec"]["volumes"].as_array().map(Vec::len), Some(1));

        let d = deployment(&format!(
            "{MINIMAL}  threatFeeds:\n    feeds: [{{name: f, url: 'https://x.example/f.txt', format: Plain}}]\n"
        ));
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let env = c["env"].as_array().expect("env");
        let file = env.iter().find(|e| e["name"] == "FEED_TOKENS_FILE").expect("FEED_TOKENS_FILE");
        assert_eq!(file["value"], "/var/run/securityguard/feed-tokens/tokens");
        assert_eq!(
            pod["volumes"][1],
            serde_json::json!({"name": "feed-tokens", "secret": {"secretName": "sg-credentials", "defaultMode": 0o440,
                "items": [{"key": "feed-tokens", "path": "tokens"}]}})
        );
        // A Secret volume without subPath: the kubelet updates it in place (rotation).
        assert_eq!(
            c["volumeMounts"][1],
            serde_json::json!({"name": "feed-tokens", "mountPath": "/var/run/securityguard/feed-tokens", "readOnly": true})
        );
    }

    #[test]
    fn no_secret_value_is_written_into_the_deployment() {
        let d = deployment(MINIMAL);
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].clone();
        assert_eq!(
            env,
            serde_json::json!([
                {"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sg-credentials", "key": "postgres-password"}}},
                {"name": "DATABASE_URL", "value": "postgresql://securityguard:$(DATABASE_PASSWORD)@sg-postgres:5432/securityguard"},
                {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sg-credentials", "key": "redis-password"}}},
                {"name": "REDIS_URL", "value": "redis://:$(REDIS_PASSWORD)@sg-redis:6379/0"},
                {"name": "JWT_SECRET", "valueFrom": {"secretKeyRef": {"name": "jwt", "key": "secret"}}},
            ])
        );
    }

    #[test]
    fn fixed_replicas_and_external_datastores() {
        let yaml = format!(
            "{MINIMAL}    claudeApiKey: {{name: claude, key: key}}\n  autoscaling: {{enabled: false}}\n  replicas: 2\n  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n  redis:\n    external: {{connectionSecret: {{name: cache, key: url}}}}\n"
        );
        let d = deployment(&yaml);
        assert_eq!(d["spec"]["replicas"], 2);
        let names: Vec<_> = d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(names, ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "CLAUDE_API_KEY"]);
    }

    #[test]
    fn a_config_change_rolls_the_pods() {
        let a = deployment(MINIMAL);
        let b = deployment(&format!("{MINIMAL}  config: {{logLevel: debug}}\n"));
        let hash =
            |d: &serde_json::Value| d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION].clone();
        assert_ne!(hash(&a), hash(&b));
    }
}
