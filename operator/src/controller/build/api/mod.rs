//! The API and its companions: ServiceAccount, ConfigMap, Deployment, Service, autoscaler,
//! PodDisruptionBudget, Ingress.

pub mod config_map;
pub mod deployment;
pub mod hpa;
pub mod ingress;
pub mod pdb;
pub mod service;
pub mod service_account;
