//! The Secret holding the generated passwords of the managed PostgreSQL and Redis, and the
//! machine token of the threat-feed sync.
//!
//! It is created once and never overwritten, and it has no owner reference: like the data
//! volumes it protects, it outlives the SecurityGuard, so that re-creating the SecurityGuard
//! finds its data and the password that opens it.

use crate::controller::build::children::CredentialsSecret;
use crate::controller::build::meta::labels;
use crate::controller::vocabulary::{
    COMPONENT_LABEL, Component, FEED_TOKENS_KEY, POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY, ValidatedGuard,
    credentials_secret_name, object_name,
};

/// The credentials Secret, when at least one datastore is managed.
pub fn build(guard: &ValidatedGuard) -> Option<CredentialsSecret> {
    let mut keys = Vec::new();
    let mut protects = Vec::new();
    if guard.postgres_managed().is_some() {
        keys.push(POSTGRES_PASSWORD_KEY);
        protects.push(object_name(&guard.name, Component::Postgres));
    }
    if guard.redis_managed().is_some() {
        keys.push(REDIS_PASSWORD_KEY);
        protects.push(object_name(&guard.name, Component::Redis));
    }
    if guard.spec.threat_feeds.is_some() {
        // The machine token of the feed sync, generated like the passwords.
        keys.push(FEED_TOKENS_KEY);
    }
    if keys.is_empty() {
        return None;
    }
    let mut labels = labels(guard, Component::Api);
    labels.remove(COMPONENT_LABEL);
    Some(CredentialsSecret {
        name: credentials_secret_name(&guard.name),
        namespace: guard.namespace.clone(),
        labels,
        keys,
        protects,
    })
}
