//! Playing the kubelet for the pods of backup and restore Jobs, on the kwok control plane.
//!
//! Kept only for what the real node cannot do at an exact moment: the restore test of
//! `tests/backup.rs` makes a restore pod die after it started changing the database and
//! restarts the operator between two phases. Everything else about Jobs runs in real
//! containers on the real node (`tests/node_backup.rs`).
//!
//! The control plane's nodes are kwok's: pods become Running but no container runs. For the
//! pods of SecurityGuard Jobs (label `securityguard.io/job`, left Running by the control
//! plane's kwok stages), the tests run the container's command and arguments as a local
//! process with exactly the pod's environment (values, Secret references and `$(VAR)`
//! expansion resolved as the kubelet does), then write the exit code and the termination
//! message into the pod status, as the kubelet would. Only the termination message path
//! differs (`/dev/termination-log` is the container's, so a temporary file stands in),
//! `SG_PG_BIN`, which the operator image sets, comes from the test environment, and a pod that
//! mounts its ServiceAccount token gets that identity as a kubeconfig holding a token of the
//! same ServiceAccount (the in-cluster files cannot be placed at their fixed paths here).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::{eventually, operator_binary, token_kubeconfig};

/// Where the operator image writes the termination message.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// What a Job's pod did.
#[derive(Debug, Clone)]
pub struct PodRun {
    /// The pod.
    pub pod: String,
    /// Exit code of the process.
    pub exit_code: i32,
    /// Its termination message.
    pub message: String,
    /// Its standard error (the logs).
    pub stderr: String,
    /// The environment it ran with (after resolution).
    pub env: BTreeMap<String, String>,
}

/// Waits for the Running pod of `job`.
async fn running_pod(client: &Client, ns: &str, job: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("batch.kubernetes.io/job-name={job}");
    eventually(&format!("a Running pod of Job {job}"), Duration::from_secs(90), || {
        let pods = pods.clone();
        let selector = selector.clone();
        async move {
            let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
            list.items.into_iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        }
    })
    .await
}

/// The pod's container environment, resolved as the kubelet resolves it.
async fn resolve_env(client: &Client, ns: &str, container: &Container) -> Vec<(String, String)> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut resolved: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            expand(value, &resolved)
        } else if let Some(secret) = var.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) {
            let found = secrets.get(&secret.name).await.unwrap_or_else(|e| panic!("Secret {}: {e}", secret.name));
            let bytes = found
                .data
                .and_then(|d| d.get(&secret.key).cloned())
                .unwrap_or_else(|| panic!("Secret {} has key {}", secret.name, secret.key));
            String::from_utf8(bytes.0).expect("UTF-8 secret value")
        } else {
            panic!("environment variable {} has a source the tests do not resolve", var.name);
        };
        resolved.push((var.name.clone(), value));
    }
    resolved
}

/// Kubernetes' `$(VAR)` expansion from the variables defined before (`$$` escapes).
fn expand(value: &str, defined: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(end) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + end];
            match defined.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..end + 3]),
            }
            rest = &tail[end + 3..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Runs the pod of `job` as a local process and reports its outcome in the pod status.
pub async fn run_job_pod(client: &Client, ns: &str, job: &str) -> PodRun {
    let pod = running_pod(client, ns, job).await;
    let container = pod.spec.as_ref().and_then(|s| s.containers.first()).expect("a container").clone();
    let mut env = resolve_env(client, ns, &container).await;
    let dir = std::env::temp_dir().join(format!("sg-e2e-{}-{}", std::process::id(), pod.name_any()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let termination_log = dir.join("termination-log");
    // Volumes: an emptyDir is a fresh directory, a claim one directory per claim that
    // outlives the pod; paths under their mount points in the environment point there.
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else { continue };
        let local = match &volume.persistent_volume_claim {
            Some(claim) => temp_path(&format!("{ns}-pvc-{}", claim.claim_name)),
            None => dir.join(&volume.name),
        };
        std::fs::create_dir_all(&local).expect("volume dir");
        for (_, value) in env.iter_mut() {
            if let Some(rest) = value.strip_prefix(&mount.mount_path)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                *value = format!("{}{rest}", local.display());
            }
        }
    }
    for (name, value) in env.iter_mut() {
        if name == "SG_TERMINATION_LOG" && value == TERMINATION_LOG {
            *value = termination_log.display().to_string();
        }
    }
    // The pod's in-cluster credentials: a token of its ServiceAccount, only when it mounts one.
    let spec = pod.spec.as_ref().expect("pod spec");
    let kubeconfig = (spec.automount_service_account_token == Some(true))
        .then(|| token_kubeconfig(ns, spec.service_account_name.as_deref().unwrap_or("default")));
    let command = container.command.clone().unwrap_or_default();
    assert_eq!(command, ["securityguard-operator"], "the Job runs the operator binary");
    let args = container.args.clone().unwrap_or_default();
    let started = Timestamp::now();
    let output = tokio::process::Command::new(operator_binary())
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(std::env::var_os("SG_PG_BIN").map(|bin| ("SG_PG_BIN", bin)))
        .envs(kubeconfig.map(|path| ("KUBECONFIG", path.into_os_string())))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .expect("the Job's command starts");
    let exit_code = output.status.code().unwrap_or(137);
    let message = std::fs::read_to_string(&termination_log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    finish_pod(client, ns, &pod, &container, exit_code, Some(&message), started).await;
    let _ = std::fs::remove_dir_all(&dir);
    PodRun { pod: pod.name_any(), exit_code, message, stderr, env: env.into_iter().collect() }
}

/// Ends the pod of `job` without running it, as when its node died or it was killed.
pub async fn kill_job_pod(client: &Client, ns: &str, job: &str, exit_code: i32) -> Pod {
    let pod = running_pod(client, ns, job).await;
    let container = pod.spec.as_ref().and_then(|s| s.containers.first()).expect("a container").clone();
    finish_pod(client, ns, &pod, &container, exit_code, None, Timestamp::now()).await;
    pod
}

async fn finish_pod(
    client: &Client,
    ns: &str,
    pod: &Pod,
    container: &Container,
    exit_code: i32,
    message: Option<&str>,
    started: Timestamp,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = Timestamp::now();
    let mut terminated = serde_json::json!({
        "exitCode": exit_code,
        "reason": if exit_code == 0 { "Completed" } else if exit_code == 137 { "OOMKilled" } else { "Error" },
        "startedAt": started.to_string(),
        "finishedAt": now.to_string(),
    });
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        terminated["message"] = serde_json::Value::String(message.to_owned());
    }
    let patch = serde_json::json!({
        "status": {
            "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now.to_string()}],
            "containerStatuses": [{
                "name": container.name,
                "image": container.image.clone().unwrap_or_default(),
                "imageID": "",
                "ready": false,
                "started": false,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }],
        }
    });
    pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("writing the status of pod {}: {e}", pod.name_any()));
}

/// A path under the test's temporary directory.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sg-e2e-{}-{name}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_like_the_kubelet() {
        let defined = vec![("A".to_owned(), "x".to_owned()), ("B".to_owned(), "y".to_owned())];
        assert_eq!(expand("u:$(A)@h/$(B)", &defined), "u:x@h/y");
        assert_eq!(expand("$(C) $$(A) $", &defined), "$(C) $(A) $");
    }
}
