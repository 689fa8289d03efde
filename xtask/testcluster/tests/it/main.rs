//! testcluster's integration tests in one binary: the real kube client and the
//! real kubectl against the server, and the Pod features (bindings, logs,
//! port-forward, lifecycle).

mod common;

mod kube_client;
mod kubectl;
mod pods;
