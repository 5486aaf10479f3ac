//! Pods: why the pods of a SecurityGuard cannot start or keep running, from their status as the
//! scheduler and the kubelet write it. Pure: `observe` reads the pods.
//!
//! Counted: the pods of the API Deployment (of its current ReplicaSet when that is known), of
//! the managed PostgreSQL and of the managed Redis. Not counted: pods being deleted; pods that
//! finished (an evicted pod stays Failed while its controller replaces it); the pods of the
//! backup and restore Jobs, whose outcome the backup and restore status report.

use std::fmt;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::controller::vocabulary::{COMPONENT_LABEL, Component};

/// The Degraded reason for pods that cannot start or keep running.
pub const REASON: &str = "PodFailing";

/// Label the Deployment controller gives the pods (and the ReplicaSet) of one pod template.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Waiting reasons of a container on its way to run.
const STARTING: [&str; 2] = ["ContainerCreating", "PodInitializing"];

/// A running container that is not ready and terminated this recently is crash-looping (the
/// kubelet's back-off between restarts is at most five minutes).
const RECENT_RESTART: SignedDuration = SignedDuration::from_mins(10);

/// How long a pod may stay unschedulable before it counts: a volume of an immediate-binding
/// StorageClass is bound a moment after its claim, and the scheduler reports the pod
/// Unschedulable until then.
const UNSCHEDULABLE_GRACE: SignedDuration = SignedDuration::from_secs(30);

/// Longest part of a message of Kubernetes kept in a problem.
const MAX_MESSAGE_CHARS: usize = 300;

/// What in a pod fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The pod as a whole: it cannot be scheduled.
    Scheduling,
    /// One of its init containers.
    InitContainer(String),
    /// One of its containers.
    Container(String),
}

/// Problems that one failure shows as while it lasts: the kubelet alternates `ErrImagePull` and
/// `ImagePullBackOff`, and a crash-looping container between `CrashLoopBackOff`, a short run and
/// a termination. A problem keeps its family across these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// PodScheduled is False.
    Unschedulable,
    /// The image cannot be pulled.
    ImagePull,
    /// The container exits and is restarted.
    Crash,
    /// Any other reason of Kubernetes (`CreateContainerConfigError`, `InvalidImageName`, ...).
    Other(String),
}

/// One pod (and as many more alike) that cannot start or keep running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// The component the pod belongs to.
    pub component: Component,
    /// The pod's name.
    pub pod: String,
    /// What in it fails.
    pub subject: Subject,
    /// Kubernetes' reason (`ImagePullBackOff`, `CrashLoopBackOff`, `Unschedulable`, ...).
    pub reason: String,
    /// Kubernetes' message, with the last termination of a crashing container.
    pub message: String,
    /// Its family.
    pub family: Family,
    /// Other pods of the component failing the same way.
    pub alike: usize,
}

impl PodProblem {
    /// The start of its line, naming the pod and what fails in it: a later reconcile that finds
    /// it in the Degraded message knows the problem was announced.
    pub fn head(&self) -> String {
        match &self.subject {
            Subject::Scheduling => format!("pod {}: {}:", self.pod, self.reason),
            Subject::InitContainer(name) => format!("pod {}: init container {name}:", self.pod),
            Subject::Container(name) => format!("pod {}: container {name}:", self.pod),
        }
    }
}

impl fmt::Display for PodProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Subject::Scheduling => write!(f, "pod {}: {}", self.pod, self.reason)?,
            _ => write!(f, "{} {}", self.head(), self.reason)?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        match self.alike {
            0 => Ok(()),
            1 => write!(f, " (and 1 more pod alike)"),
            n => write!(f, " (and {n} more pods alike)"),
        }
    }
}

/// The problems of the pods, API first then PostgreSQL and Redis, each pod by name; pods of a
/// component failing alike are counted in the first one's problem. `current_api_template` is
/// the `pod-template-hash` of the API Deployment's current ReplicaSet: the pods of older ones
/// are on their way out and do not count (all count when it is unknown).
pub fn problems(pods: &[Pod], current_api_template: Option<&str>, now: Timestamp) -> Vec<PodProblem> {
    let mut counted: Vec<(Component, &Pod)> = pods
        .iter()
        .filter_map(|pod| Some((component(pod)?, pod)))
        .filter(|(component, pod)| counts(*component, pod, current_api_template))
        .collect();
    counted.sort_by(|(a, pa), (b, pb)| rank(*a).cmp(&rank(*b)).then_with(|| pa.name_any().cmp(&pb.name_any())));
    let mut out: Vec<PodProblem> = Vec::new();
    for (component, pod) in counted {
        for problem in pod_problems(component, pod, now) {
            match out.iter_mut().find(|p| {
                p.component == problem.component && p.subject == problem.subject && p.family == problem.family
            }) {
                Some(first) => first.alike += 1,
                None => out.push(problem),
            }
        }
    }
    out
}

/// When to look at the pods again because one of them is unschedulable but still within its
/// grace: no change of the pod may wake the operator when it stays so.
pub fn recheck_after(pods: &[Pod], current_api_template: Option<&str>, now: Timestamp) -> Option<std::time::Duration> {
    pods.iter()
        .filter_map(|pod| Some((component(pod)?, pod)))
        .filter(|(component, pod)| counts(*component, pod, current_api_template))
        .filter_map(|(_, pod)| unschedulable(pod))
        .map(|c| UNSCHEDULABLE_GRACE - unschedulable_for(c, now))
        .filter(|left| left.is_positive())
        .min()
        .and_then(|left| std::time::Duration::try_from(left).ok())
}

/// The PodScheduled condition of a pod the scheduler could not place.
fn unschedulable(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
}

/// How long the pod has been unschedulable (forever when the time is unknown).
fn unschedulable_for(condition: &k8s_openapi::api::core::v1::PodCondition, now: Timestamp) -> SignedDuration {
    condition.last_transition_time.as_ref().map_or(SignedDuration::MAX, |t| now.duration_since(t.0))
}

/// The problems to announce with a Warning Event: those the previous Degraded condition did not
/// already report.
pub fn newly_failing<'a>(previous: Option<&Condition>, shown: &[&'a PodProblem]) -> Vec<&'a PodProblem> {
    let before =
        previous.filter(|c| c.status == "True" && c.reason == REASON).map(|c| c.message.as_str()).unwrap_or("");
    shown.iter().copied().filter(|p| !before.contains(&p.head())).collect()
}

fn component(pod: &Pod) -> Option<Component> {
    match pod.labels().get(COMPONENT_LABEL)?.as_str() {
        "api" => Some(Component::Api),
        "postgres" => Some(Component::Postgres),
        "redis" => Some(Component::Redis),
        _ => None,
    }
}

fn rank(component: Component) -> u8 {
    match component {
        Component::Api => 0,
        Component::Postgres => 1,
        Component::Redis => 2,
        Component::Backup => 3,
        Component::Monitoring => 4,
        Component::ThreatFeeds => 5,
    }
}

fn counts(component: Component, pod: &Pod, current_api_template: Option<&str>) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished = matches!(phase, Some("Succeeded" | "Failed"));
    let old_template = component == Component::Api
        && current_api_template
            .zip(pod.labels().get(TEMPLATE_HASH_LABEL))
            .is_some_and(|(current, hash)| current != hash);
    pod.metadata.deletion_timestamp.is_none() && !finished && !old_template
}

fn pod_problems(component: Component, pod: &Pod, now: Timestamp) -> Vec<PodProblem> {
    let Some(status) = &pod.status else { return Vec::new() };
    let problem = |subject, reason: &str, message: &str, family| PodProblem {
        component,
        pod: pod.name_any(),
        subject,
        reason: reason.to_owned(),
        message: message.to_owned(),
        family,
        alike: 0,
    };
    let mut out = Vec::new();
    if let Some(condition) = unschedulable(pod).filter(|c| unschedulable_for(c, now) >= UNSCHEDULABLE_GRACE) {
        out.push(problem(
            Subject::Scheduling,
            "Unschedulable",
            &clip(condition.message.as_deref().unwrap_or("")),
            Family::Unschedulable,
        ));
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| (Subject::InitContainer(c.name.clone()), c))
        .chain(status.container_statuses.iter().flatten().map(|c| (Subject::Container(c.name.clone()), c)));
    for (subject, container) in containers {
        if let Some((reason, message, family)) = container_problem(container, now) {
            out.push(problem(subject, &reason, &message, family));
        }
    }
    out
}

/// Why a container does not run, in Kubernetes' words; its exit code and reason when it
/// crashed. The termination message is left out: a program may print anything there.
fn container_problem(container: &ContainerStatus, now: Timestamp) -> Option<(String, String, Family)> {
    let state = container.state.as_ref()?;
    let last = container.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let exited = |code: i32, reason: Option<&str>| match reason {
        Some(reason) if !reason.is_empty() => format!("exit code {code}: {reason}"),
        _ => format!("exit code {code}"),
    };
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().filter(|r| !r.is_empty() && !STARTING.contains(r))?;
        let mut message = clip(waiting.message.as_deref().unwrap_or(""));
        if let Some(last) = last {
            let sep = if message.is_empty() { "" } else { " " };
            message = format!("{message}{sep}(last {})", exited(last.exit_code, last.reason.as_deref()));
        }
        let family = match reason {
            "ErrImagePull" | "ImagePullBackOff" => Family::ImagePull,
            "CrashLoopBackOff" => Family::Crash,
            other => Family::Other(other.to_owned()),
        };
        return Some((reason.to_owned(), message, family));
    }
    if let Some(terminated) = state.terminated.as_ref().filter(|t| t.exit_code != 0) {
        let reason = terminated.reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "Error".to_owned());
        return Some((reason, format!("exited with code {}", terminated.exit_code), Family::Crash));
    }
    if state.running.is_some() && !container.ready {
        let last =
            last.filter(|t| t.finished_at.as_ref().is_some_and(|at| now.duration_since(at.0) < RECENT_RESTART))?;
        let reason = last.reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "Error".to_owned());
        let times = if container.restart_count == 1 {
            "1 time".to_owned()
        } else {
            format!("{} times", container.restart_count)
        };
        let message = format!("exited with code {}, restarted {times}, not ready", last.exit_code);
        return Some((reason, message, Family::Crash));
    }
    None
}

fn clip(message: &str) -> String {
    let message = message.trim();
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::{Value, json};

    const NOW: &str = "2025-06-01T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().expect("time")
    }

    /// A pod of `component` as the API server returns it, with the given status.
    fn pod(name: &str, component: &str, template: Option<&str>, status: Value) -> Pod {
        let mut labels = json!({
            "app.kubernetes.io/name": "securityguard",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "securityguard-operator",
        });
        if let Some(hash) = template {
            labels[TEMPLATE_HASH_LABEL] = json!(hash);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"containers": [{"name": component, "image": "ghcr.io/x/api:1"}]},
            "status": status,
        }))
        .expect("pod parses")
    }

    fn scheduled() -> Value {
        json!([
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2025-06-01T11:58:00Z"},
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2025-06-01T11:58:00Z"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
             "message": "containers with unready status: [api]", "lastTransitionTime": "2025-06-01T11:58:00Z"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
             "message": "containers with unready status: [api]", "lastTransitionTime": "2025-06-01T11:58:00Z"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-06-01T11:58:00Z"},
        ])
    }

    fn waiting(container: &str, reason: &str, message: &str) -> Value {
        json!({
            "phase": "Pending",
            "conditions": scheduled(),
            "hostIP": "10.0.0.5",
            "podIP": "10.244.1.7",
            "startTime": "2025-06-01T11:58:00Z",
            "containerStatuses": [{
                "name": container, "image": "ghcr.io/x/api:nope", "imageID": "", "ready": false,
                "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": reason, "message": message}},
            }],
        })
    }

    fn healthy(container: &str) -> Value {
        json!({
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2025-06-01T11:00:00Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-06-01T10:59:00Z"},
            ],
            "podIP": "10.244.1.8",
            "containerStatuses": [{
                "name": container, "image": "ghcr.io/x/api:1", "imageID": "ghcr.io/x/api@sha256:ab", "ready": true,
                "restartCount": 1, "started": true,
                "state": {"running": {"startedAt": "2025-06-01T11:00:00Z"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                    "startedAt": "2025-06-01T10:00:00Z", "finishedAt": "2025-06-01T10:59:59Z"}},
            }],
        })
    }

    fn crash_loop(container: &str, exit_code: i32, reason: &str) -> Value {
        json!({
            "phase": "Running",
            "conditions": scheduled(),
            "podIP": "10.244.2.3",
            "containerStatuses": [{
                "name": container, "image": "postgres:17", "imageID": "docker.io/library/postgres@sha256:cd",
                "ready": false, "restartCount": 4, "started": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off 1m20s restarting failed container={container} pod=shop-postgres-0_prod(uid-shop-postgres-0)")}},
                "lastState": {"terminated": {"exitCode": exit_code, "reason": reason,
                    "startedAt": "2025-06-01T11:57:00Z", "finishedAt": "2025-06-01T11:57:02Z"}},
            }],
        })
    }

    fn lines(problems: &[PodProblem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_image_that_cannot_be_pulled_names_the_pod_the_container_and_the_kubelet_reason() {
        let pods = [
            pod(
                "shop-api-7d9c-x2x",
                "api",
                Some("7d9c"),
                waiting("api", "ImagePullBackOff", "Back-off pulling image \"ghcr.io/x/api:nope\""),
            ),
            pod(
                "shop-api-7d9c-b4k",
                "api",
                Some("7d9c"),
                waiting(
                    "api",
                    "ErrImagePull",
                    "failed to pull and unpack image \"ghcr.io/x/api:nope\": ghcr.io/x/api:nope: not found",
                ),
            ),
            pod(
                "shop-api-7d9c-q8p",
                "api",
                Some("7d9c"),
                waiting("api", "ImagePullBackOff", "Back-off pulling image \"ghcr.io/x/api:nope\""),
            ),
        ];
        let found = problems(&pods, Some("7d9c"), now());
        // Sorted by name; the kubelet alternating ErrImagePull and ImagePullBackOff is one failure.
        assert_eq!(
            lines(&found),
            [
                "pod shop-api-7d9c-b4k: container api: ErrImagePull: failed to pull and unpack image \"ghcr.io/x/api:nope\": \
              ghcr.io/x/api:nope: not found (and 2 more pods alike)"
            ]
        );
        assert_eq!(found[0].family, Family::ImagePull);
        assert_eq!(found[0].head(), "pod shop-api-7d9c-b4k: container api:");

        let invalid = [pod(
            "shop-api-7d9c-x2x",
            "api",
            None,
            waiting(
                "api",
                "InvalidImageName",
                "Failed to apply default image tag \"ghcr.io/x/API:1\": couldn't parse image name \"ghcr.io/x/API:1\": invalid reference format: repository name (x/API) must be lowercase",
            ),
        )];
        let found = problems(&invalid, None, now());
        assert_eq!(found[0].reason, "InvalidImageName");
        assert_eq!(found[0].family, Family::Other("InvalidImageName".into()));
    }

    #[test]
    fn a_crash_loop_gives_the_exit_code_and_reason_of_the_last_termination() {
        let pods = [pod("shop-postgres-0", "postgres", None, crash_loop("postgres", 137, "OOMKilled"))];
        assert_eq!(
            lines(&problems(&pods, None, now())),
            ["pod shop-postgres-0: container postgres: CrashLoopBackOff: back-off 1m20s restarting failed \
              container=postgres pod=shop-postgres-0_prod(uid-shop-postgres-0) (last exit code 137: OOMKilled)"]
        );
        let pods = [pod("shop-redis-0", "redis", None, crash_loop("redis", 1, "Error"))];
        assert!(lines(&problems(&pods, None, now()))[0].ends_with("(last exit code 1: Error)"));
    }

    #[test]
    fn a_crashing_container_between_two_back_offs_still_counts() {
        // Running again after its fourth crash, not ready yet: the same failure as the back-off.
        let mut status = crash_loop("api", 2, "Error");
        status["containerStatuses"][0]["state"] = json!({"running": {"startedAt": "2025-06-01T11:59:30Z"}});
        let pods = [pod("shop-api-7d9c-x2x", "api", None, status.clone())];
        let found = problems(&pods, None, now());
        assert_eq!(
            lines(&found),
            ["pod shop-api-7d9c-x2x: container api: Error: exited with code 2, restarted 4 times, not ready"]
        );
        assert_eq!(found[0].family, Family::Crash);

        // Just terminated, before the kubelet backs off.
        let mut status_terminated = status.clone();
        status_terminated["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 2, "reason": "Error",
            "startedAt": "2025-06-01T11:59:30Z", "finishedAt": "2025-06-01T11:59:40Z"}});
        let found = problems(&[pod("shop-api-7d9c-x2x", "api", None, status_terminated)], None, now());
        assert_eq!(lines(&found), ["pod shop-api-7d9c-x2x: container api: Error: exited with code 2"]);

        // A restart long ago and a container not ready for another reason: not a crash loop.
        status["containerStatuses"][0]["lastState"]["terminated"]["finishedAt"] = json!("2025-06-01T09:00:00Z");
        assert!(problems(&[pod("shop-api-7d9c-x2x", "api", None, status)], None, now()).is_empty());
    }

    #[test]
    fn a_missing_secret_key_is_a_config_error_without_the_secret_value() {
        let pods = [pod(
            "shop-api-7d9c-x2x",
            "api",
            None,
            waiting(
                "api",
                "CreateContainerConfigError",
                "couldn't find key postgres-password in Secret prod/shop-credentials",
            ),
        )];
        assert_eq!(
            lines(&problems(&pods, None, now())),
            [
                "pod shop-api-7d9c-x2x: container api: CreateContainerConfigError: couldn't find key postgres-password in \
              Secret prod/shop-credentials"
            ]
        );
    }

    #[test]
    fn an_unschedulable_pod_gives_the_scheduler_message() {
        let pods = [pod(
            "shop-redis-0",
            "redis",
            None,
            json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "lastTransitionTime": "2025-06-01T11:58:00Z",
                    "message": "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
                }],
            }),
        )];
        let found = problems(&pods, None, now());
        assert_eq!(
            lines(&found),
            ["pod shop-redis-0: Unschedulable: 0/3 nodes are available: pod has unbound immediate \
              PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."]
        );
        assert_eq!(found[0].head(), "pod shop-redis-0: Unschedulable:");
    }

    #[test]
    fn an_unschedulable_pod_counts_after_its_grace_and_is_looked_at_again_then() {
        let pending = |since: &str| {
            pod(
                "shop-redis-0",
                "redis",
                None,
                json!({
                    "phase": "Pending",
                    "conditions": [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "lastTransitionTime": since,
                        "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
                    }],
                }),
            )
        };
        let at = |t: &str| t.parse::<Timestamp>().expect("time");
        let fresh = [pending("2025-06-01T11:59:50Z")];
        assert!(problems(&fresh, None, at("2025-06-01T12:00:00Z")).is_empty(), "10 s: within the grace");
        assert_eq!(recheck_after(&fresh, None, at("2025-06-01T12:00:00Z")), Some(std::time::Duration::from_secs(20)));
        let found = problems(&fresh, None, at("2025-06-01T12:00:20Z"));
        assert_eq!(found.len(), 1, "30 s: it counts");
        assert_eq!(found[0].head(), "pod shop-redis-0: Unschedulable:");
        assert_eq!(recheck_after(&fresh, None, at("2025-06-01T12:00:20Z")), None);
        let placed = [pod("shop-redis-0", "redis", None, json!({"phase": "Running", "conditions": scheduled()}))];
        assert_eq!(recheck_after(&placed, None, at("2025-06-01T12:00:00Z")), None);
    }

    #[test]
    fn a_failing_init_container_is_named_as_such() {
        let pods = [pod(
            "shop-postgres-0",
            "postgres",
            None,
            json!({
                "phase": "Pending",
                "conditions": scheduled(),
                "initContainerStatuses": [{
                    "name": "init-permissions", "image": "busybox:1.37", "imageID": "", "ready": false, "restartCount": 3,
                    "started": false,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container=init-permissions pod=shop-postgres-0_prod(uid-shop-postgres-0)"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                        "startedAt": "2025-06-01T11:59:00Z", "finishedAt": "2025-06-01T11:59:01Z"}},
                }],
                "containerStatuses": [{
                    "name": "postgres", "image": "postgres:17", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                }],
            }),
        )];
        assert_eq!(
            lines(&problems(&pods, None, now())),
            ["pod shop-postgres-0: init container init-permissions: CrashLoopBackOff: back-off 40s restarting failed \
              container=init-permissions pod=shop-postgres-0_prod(uid-shop-postgres-0) (last exit code 1: Error)"]
        );
    }

    #[test]
    fn healthy_starting_terminating_finished_and_job_pods_do_not_count() {
        let mut terminating = pod("shop-api-7d9c-x2x", "api", None, waiting("api", "ImagePullBackOff", "Back-off"));
        terminating.metadata.deletion_timestamp = Some(Time(now()));
        let pods = [
            pod("shop-api-7d9c-b4k", "api", None, healthy("api")),
            pod("shop-api-7d9c-q8p", "api", None, waiting("api", "ContainerCreating", "")),
            terminating,
            pod(
                "shop-api-7d9c-e1v",
                "api",
                None,
                json!({
                    "phase": "Failed", "reason": "Evicted",
                    "message": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 8Mi.",
                }),
            ),
            pod("shop-backup-29170080-zx9", "backup", None, crash_loop("backup", 1, "Error")),
            pod("shop-redis-0", "redis", None, json!({"phase": "Pending"})),
        ];
        assert_eq!(problems(&pods, None, now()), []);
    }

    #[test]
    fn during_a_rollout_only_the_current_replica_set_counts() {
        // The old template's pod crash-loops while the new one's run: the rollout replaces it.
        let pods = [
            pod("shop-api-5f6b-a1a", "api", Some("5f6b"), crash_loop("api", 1, "Error")),
            pod("shop-api-7d9c-x2x", "api", Some("7d9c"), healthy("api")),
        ];
        assert_eq!(problems(&pods, Some("7d9c"), now()), []);
        // Unknown current template: every pod counts.
        assert_eq!(problems(&pods, None, now()).len(), 1);
        // The new template's pod fails while the old ones serve.
        let pods = [
            pod("shop-api-5f6b-a1a", "api", Some("5f6b"), healthy("api")),
            pod(
                "shop-api-7d9c-x2x",
                "api",
                Some("7d9c"),
                waiting("api", "ImagePullBackOff", "Back-off pulling image \"ghcr.io/x/api:nope\""),
            ),
        ];
        assert_eq!(
            lines(&problems(&pods, Some("7d9c"), now())),
            ["pod shop-api-7d9c-x2x: container api: ImagePullBackOff: Back-off pulling image \"ghcr.io/x/api:nope\""]
        );
    }

    #[test]
    fn components_come_in_order_and_long_messages_are_clipped() {
        let long = "x".repeat(1000);
        let pods = [
            pod("shop-redis-0", "redis", None, crash_loop("redis", 1, "Error")),
            pod("shop-api-7d9c-x2x", "api", None, waiting("api", "RunContainerError", &long)),
        ];
        let found = problems(&pods, None, now());
        assert_eq!(found.iter().map(|p| p.component).collect::<Vec<_>>(), [Component::Api, Component::Redis]);
        assert_eq!(found[0].message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(found[0].message.ends_with('…'));
    }

    #[test]
    fn a_problem_is_announced_once_while_it_lasts() {
        let pull = |reason: &str| {
            problems(&[pod("shop-api-7d9c-x2x", "api", None, waiting("api", reason, "Back-off"))], None, now())
        };
        let degraded = |status: &str, reason: &str, message: String| Condition {
            type_: "Degraded".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: None,
            last_transition_time: Time(now()),
        };
        let first = pull("ErrImagePull");
        let shown: Vec<&PodProblem> = first.iter().collect();
        assert_eq!(newly_failing(None, &shown).len(), 1);
        let healthy = degraded("False", "AsExpected", "every object was applied".into());
        assert_eq!(newly_failing(Some(&healthy), &shown).len(), 1);

        let reported = degraded("True", REASON, first[0].to_string());
        let again = pull("ImagePullBackOff");
        let shown_again: Vec<&PodProblem> = again.iter().collect();
        assert!(newly_failing(Some(&reported), &shown_again).is_empty(), "the kubelet's alternation is no news");

        let other =
            problems(&[pod("shop-api-7d9c-q8p", "api", None, waiting("api", "ErrImagePull", "x"))], None, now());
        let shown_other: Vec<&PodProblem> = other.iter().collect();
        assert_eq!(newly_failing(Some(&reported), &shown_other).len(), 1, "another pod");
        let other_reason = degraded("True", "ApplyFailed", first[0].to_string());
        assert_eq!(newly_failing(Some(&other_reason), &shown).len(), 1);
    }
}
