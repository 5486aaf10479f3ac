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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    const FEEDS: &str = "  threatFeeds:\n    feeds: [{name: f, url: 'https://x.example/f.txt', format: Plain}]\n";
    const EXTERNAL: &str = "  postgres:\n    external: {connectionSecret: {name: db, key: url}}\n  redis:\n    external: {connectionSecret: {name: cache, key: url}}\n";

    #[test]
    fn the_feed_token_is_generated_with_the_passwords() {
        let keys = |yaml: &str| build(&guard(yaml)).map(|c| c.keys);
        assert_eq!(keys(MINIMAL), Some(vec![POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY]));
        assert_eq!(
            keys(&format!("{MINIMAL}{FEEDS}")),
            Some(vec![POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY, FEED_TOKENS_KEY])
        );
        // External datastores: the Secret holds only the token, and protects no data.
        let only_token = build(&guard(&format!("{MINIMAL}{EXTERNAL}{FEEDS}"))).expect("a Secret for the token");
        assert_eq!((only_token.keys, only_token.protects), (vec![FEED_TOKENS_KEY], Vec::<String>::new()));
        assert!(build(&guard(&format!("{MINIMAL}{EXTERNAL}"))).is_none());
    }
}
