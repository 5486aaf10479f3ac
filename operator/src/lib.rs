//! The SecurityGuard operator: a Kubernetes controller turning `SecurityGuard` resources into
//! the SecurityGuard API and everything it needs.

pub mod backup;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod feeds;
pub mod http;
pub mod metrics;
pub mod monitoring;
pub mod plugin;
pub mod report;
pub mod run;
pub mod telemetry;

use kube::CustomResourceExt;

/// Every CustomResourceDefinition of the operator as one multi-document YAML text.
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    let crd = crd::SecurityGuard::crd();
    let mut value = serde_json::to_value(&crd).map_err(|e| serde_saphyr::SerializeError::from(e.to_string()))?;
    unwrap_descriptions(&mut value);
    out.push_str("---\n");
    out.push_str(&serde_saphyr::to_string(&value)?);
    Ok(out)
}

/// Doc comments are wrapped at ~100 columns; `kubectl explain` wraps on its own. Single line
/// breaks inside a paragraph become spaces, paragraph breaks stay.
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    other => unwrap_descriptions(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}
