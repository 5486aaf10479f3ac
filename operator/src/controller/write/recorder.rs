//! Publishes Events (`events.k8s.io/v1`) the way kube's `Recorder` does: an Event repeated
//! within six minutes (same type, reason, action, note, reporter, object and related object) is
//! counted in the first one's `series` instead of being created again. The note is part of the
//! key, as in client-go: a Warning whose message changed (another Job failed, another line is
//! wrong) is a new Event, never a count on an older one that says something else.
//!
//! kube's recorder keeps every Event it published whole for those six minutes, about 2 KiB each
//! with its note and object references: with 1000 SecurityGuards converging at once that is
//! megabytes held for nothing but the series. This one keeps, per Event, a hash of its key, its
//! name and its count.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client};
use serde_json::json;

use crate::controller::read::cached::fingerprint;

/// How long a published Event takes repeats into its series (kube's and client-go's window).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// An Event published within the window.
#[derive(Debug, Clone)]
struct Published {
    /// Its name, in the regarded object's namespace.
    name: String,
    /// How many times it happened.
    count: i32,
    /// When it last happened.
    last: Timestamp,
}

/// Publishes Events as one controller.
pub struct Recorder {
    client: Client,
    /// `reportingController` and `reportingInstance`.
    controller: String,
    published: Mutex<HashMap<u64, Published>>,
}

impl Recorder {
    /// A recorder reporting as `controller`.
    pub fn new(client: Client, controller: &str) -> Self {
        Self { client, controller: controller.to_owned(), published: Mutex::default() }
    }

    /// Publishes `event` about `regarding`: a new Event, or a repeat counted in the series of
    /// the same Event published within the window.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = fingerprint(&(
            type_name(event.type_),
            &event.reason,
            &event.action,
            &event.note,
            regarding,
            &event.secondary,
        ));
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(repeat) = self.repeat(key, now) {
            let series = json!({"series": {"count": repeat.count, "lastObservedTime": MicroTime(now)}});
            match api.patch(&repeat.name, &PatchParams::default(), &Patch::Merge(&series)).await {
                Ok(_) => {
                    self.remember(key, repeat);
                    return Ok(());
                }
                // Gone (expired or deleted): published anew below.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let created = api.create(&PostParams::default(), &self.new_event(event, regarding, now)).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.remember(key, Published { name, count: 1, last: now });
        Ok(())
    }

    /// The same Event published within the window, counted once more; forgets the expired.
    fn repeat(&self, key: u64, now: Timestamp) -> Option<Published> {
        let mut published = self.published.lock().ok()?;
        published.retain(|_, p| p.last + SERIES_WINDOW > now);
        published.get(&key).map(|p| Published { name: p.name.clone(), count: p.count + 1, last: now })
    }

    fn remember(&self, key: u64, event: Published) {
        if let Ok(mut published) = self.published.lock() {
            published.insert(key, event);
        }
    }

    /// Events published within the window.
    pub fn len(&self) -> usize {
        self.published.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// None published within the window.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        K8sEvent {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(type_name(event.type_).to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
            ..K8sEvent::default()
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_api::{Reply, api_server, expect};

    fn guard() -> ObjectReference {
        ObjectReference {
            api_version: Some("securityguard.io/v1".into()),
            kind: Some("SecurityGuard".into()),
            name: Some("shop".into()),
            namespace: Some("prod".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        }
    }

    fn ready(note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: "Ready".into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_repeat_within_the_window_is_counted_in_the_first_events_series() {
        let path = "/apis/events.k8s.io/v1/namespaces/prod/events";
        let created = json!({"metadata": {"name": "shop.1", "namespace": "prod"}});
        let script = vec![
            expect(&format!("POST {path}"), Reply::Json(created.clone())),
            expect(&format!("PATCH {path}/shop.1"), Reply::Json(created.clone())),
            expect(&format!("PATCH {path}/shop.1"), Reply::Status(404)),
            expect(&format!("POST {path}"), Reply::Json(json!({"metadata": {"name": "shop.2"}}))),
            expect(&format!("POST {path}"), Reply::Json(json!({"metadata": {"name": "shop.3"}}))),
            expect(&format!("POST {path}"), Reply::Json(json!({"metadata": {"name": "shop.4"}}))),
        ];
        let (client, server) = api_server(script);
        let recorder = Recorder::new(client, "securityguard-operator");
        let warning = Event { type_: EventType::Warning, ..ready("pods fail") };
        let ((), received) = server
            .run(async {
                recorder.publish(&ready("every object is available"), &guard()).await.expect("created");
                recorder.publish(&ready("every object is available"), &guard()).await.expect("counted");
                // The first Event was deleted meanwhile: published anew.
                recorder.publish(&ready("every object is available"), &guard()).await.expect("created again");
                recorder.publish(&warning, &guard()).await.expect("another Event");
                // Same reason, another message: a new Event that says it.
                recorder.publish(&ready("every object is available again"), &guard()).await.expect("new note");
            })
            .await;
        assert_eq!(received[0].body["regarding"]["name"], "shop");
        assert_eq!(received[0].body["reportingController"], "securityguard-operator");
        assert_eq!(received[0].body["type"], "Normal");
        assert_eq!(received[1].body["series"]["count"], 2);
        assert_eq!(received[2].body["series"]["count"], 3);
        assert_eq!(received[4].body["type"], "Warning");
        assert_eq!(received[5].body["note"], "every object is available again");
        assert_eq!(recorder.len(), 3, "one entry per Event, not per publication");
    }
}
