//! The SecurityGuard operator: a Kubernetes controller turning `SecurityGuard` resources into
//! the SecurityGuard API and everything it needs.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod http;
pub mod metrics;
pub mod run;
pub mod telemetry;

use kube::CustomResourceExt;

/// Every CustomResourceDefinition of the operator as one multi-document YAML text.
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in [crd::SecurityGuard::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
