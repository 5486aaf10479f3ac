//! The API's non-secret configuration, given to the container as environment variables.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::ingress::public_url;
use crate::controller::build::meta::metadata;
use crate::controller::vocabulary::{API_PORT, Component, ValidatedGuard, object_name};

/// The API's ConfigMap.
pub fn build(guard: &ValidatedGuard) -> ConfigMap {
    let config = &guard.spec.config;
    let mut data = BTreeMap::from([
        ("ENVIRONMENT".to_owned(), config.environment.as_str().to_owned()),
        ("RUST_LOG".to_owned(), config.log_level.as_str().to_owned()),
        ("SOLANA_RPC_URL".to_owned(), config.solana_rpc_url.clone()),
        ("LISTEN_ADDR".to_owned(), format!("0.0.0.0:{API_PORT}")),
    ]);
    // Behind the Ingress: sign-in messages name the public host, and the client address (for
    // per-IP rate limits) comes from X-Forwarded-For, not from the ingress controller's pod.
    if let (Some(url), Some(host)) = (public_url(guard), guard.spec.ingress.host.as_ref()) {
        data.insert("SIWS_DOMAIN".to_owned(), host.clone());
        data.insert("SIWS_URI".to_owned(), url);
        data.insert("TRUST_FORWARDED_FOR".to_owned(), "true".to_owned());
    }
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
                "RUST_LOG": "info",
                "SOLANA_RPC_URL": "https://api.mainnet-beta.solana.com",
                "LISTEN_ADDR": "0.0.0.0:8080",
            })
        );
        assert_eq!(value["metadata"]["name"], "sg-api");
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(value["metadata"]["ownerReferences"][0]["controller"], true);
    }

    #[test]
    fn behind_the_ingress_sign_in_names_the_public_host() {
        let yaml = format!("{MINIMAL}  ingress: {{enabled: true, host: api.example.com, tlsSecretName: tls}}\n");
        let data = build(&guard(&yaml)).data.expect("data");
        assert_eq!(data.get("SIWS_DOMAIN").map(String::as_str), Some("api.example.com"));
        assert_eq!(data.get("SIWS_URI").map(String::as_str), Some("https://api.example.com"));
        assert_eq!(data.get("TRUST_FORWARDED_FOR").map(String::as_str), Some("true"));
    }
}
