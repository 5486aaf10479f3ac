//! Metadata fragments every builder shares: names, labels, owner references.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controller::vocabulary::{
    Component, DATASTORE_CLIENT_LABEL, EXTRA_LABELS_ANNOTATION, FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY_LABEL,
    ValidatedGuard, object_name, selector_labels,
};

/// Metadata of the ServiceMonitor and the PrometheusRule: the component's, the extra labels of
/// `spec.monitoring.labels`, and an annotation listing those so that removing one is a change
/// (the apply step only compares what is asked for).
pub fn monitoring_metadata(guard: &ValidatedGuard) -> ObjectMeta {
    let extra = &guard.spec.monitoring.labels;
    let mut meta = metadata(guard, Component::Monitoring, object_name(&guard.name, Component::Monitoring));
    let mut labels = extra.clone();
    labels.extend(meta.labels.take().unwrap_or_default());
    meta.labels = Some(labels);
    meta.annotations = Some(BTreeMap::from([(
        EXTRA_LABELS_ANNOTATION.to_owned(),
        extra.keys().map(String::as_str).collect::<Vec<_>>().join(","),
    )]));
    meta
}

/// Labels of every object of a component.
pub fn labels(guard: &ValidatedGuard, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(&guard.name, component);
    labels.insert(MANAGED_BY_LABEL.to_owned(), FIELD_MANAGER.to_owned());
    labels
}

/// Metadata of an object of a component, owned by the SecurityGuard.
pub fn metadata(guard: &ValidatedGuard, component: Component, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(guard.namespace.clone()),
        labels: Some(labels(guard, component)),
        owner_references: Some(vec![guard.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// Labels that let a pod of this SecurityGuard reach its datastores.
pub fn client_labels(guard: &ValidatedGuard) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_owned(), guard.name.clone()),
        (DATASTORE_CLIENT_LABEL.to_owned(), "true".to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::{MINIMAL, guard};

    #[test]
    fn removing_an_extra_label_changes_the_annotation() {
        let mut g = guard(&format!("{MINIMAL}  monitoring: {{enabled: true, labels: {{release: p, team: sec}}}}\n"));
        let both = monitoring_metadata(&g);
        assert_eq!(both.annotations.as_ref().map(|a| a[EXTRA_LABELS_ANNOTATION].as_str()), Some("release,team"));
        g.spec.monitoring.labels.remove("team");
        let one = monitoring_metadata(&g);
        assert_eq!(one.annotations.as_ref().map(|a| a[EXTRA_LABELS_ANNOTATION].as_str()), Some("release"));
        assert!(!one.labels.as_ref().expect("labels").contains_key("team"));
    }
}
