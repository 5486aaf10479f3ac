//! The API's non-secret configuration, given to the container as environment variables.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{Component, metadata, object_name};
use crate::controller::validate::ValidatedGuard;

/// Port the API listens on inside the pod.
pub const API_PORT: i32 = 8080;

/// The API's ConfigMap.
pub fn build(guard: &ValidatedGuard) -> ConfigMap {
    let config = &guard.spec.config;
    let data = BTreeMap::from([
        ("ENVIRONMENT".to_owned(), config.environment.as_str().to_owned()),
        ("LOG_LEVEL".to_owned(), config.log_level.as_str().to_owned()),
        ("RUST_LOG".to_owned(), config.log_level.as_str().to_owned()),
        ("SOLANA_RPC_URL".to_owned(), config.solana_rpc_url.clone()),
        ("LISTEN_ADDR".to_owned(), format!("0.0.0.0:{API_PORT}")),
    ]);
    ConfigMap {
        metadata: metadata(guard, Component::Api, object_name(&guard.name, Component::Api)),
        data: Some(data),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn carries_the_application_settings() {
        let cm = build(&guard(MINIMAL));
        let value = serde_json::to_value(&cm).expect("serializes");
        assert_eq!(
            value["data"],
            serde_json::json!({
                "ENVIRONMENT": "production",
                "LOG_LEVEL": "info",
                "RUST_LOG": "info",
                "SOLANA_RPC_URL": "https://api.mainnet-beta.solana.com",
                "LISTEN_ADDR": "0.0.0.0:8080",
            })
        );
        assert_eq!(value["metadata"]["name"], "sg-api");
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(value["metadata"]["ownerReferences"][0]["controller"], true);
    }
}
