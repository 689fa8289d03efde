//! `pods/portforward` over WebSocket, to the local address a Pod is bound to
//! (`bindings`). Two subprotocols are served:
//!
//! - `v4.channel.k8s.io`, as the kube crate speaks it: one TCP connection per
//!   requested port (`?ports=6379,8080`), data on channel 2i and errors on 2i+1.
//! - `SPDY/3.1+portforward.k8s.io`, kubectl 1.31+'s SPDY tunnelled through the
//!   WebSocket: one TCP connection per pair of SPDY streams (error, then data).
//!   kubectl names the port only in the streams' headers, which are compressed
//!   with SPDY's zlib dictionary and not read here, so this forwards to the Pod's
//!   one bound port (`?ports=` when given); a Pod with several bound ports is
//!   refused on this protocol.
//!
//! A native SPDY upgrade (`Upgrade: SPDY/3.1`, kubectl's fallback) is refused with a
//! 400 `Status`, and so is a request that is not an upgrade at all.
mod channels;
mod spdy;

use crate::bindings;
use crate::errors::ApiError;
use crate::state::Cluster;
use crate::store::resources;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;

const CHANNEL_V4: &str = "v4.channel.k8s.io";
const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// One forwarded port: where it goes, or why it cannot.
#[derive(Clone, Debug)]
pub struct Target {
    pub port: u16,
    pub address: Result<String, String>,
}

/// Upgrades a `pods/<name>/portforward` request, or answers why not.
pub fn connect(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
    ws: Option<WebSocketUpgrade>,
) -> Result<Response, ApiError> {
    let ports = ports(query)?;
    let pod = pod(cluster, ns, name)?;
    let targets = targets(&pod, name, &ports);
    let Some(ws) = ws else {
        return Err(ApiError::bad_request(
            "Upgrade request required: the test cluster serves pods/portforward over WebSocket \
             (v4.channel.k8s.io or SPDY/3.1+portforward.k8s.io), not over native SPDY",
        ));
    };
    let ws = ws.protocols([CHANNEL_V4, SPDY_TUNNEL]);
    let protocol = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .map(str::to_string);
    match protocol.as_deref() {
        Some(CHANNEL_V4) => Ok(ws.on_upgrade(move |socket| channels::serve(socket, targets))),
        Some(_) => {
            let target = match targets.into_iter().next() {
                Some(t) => t,
                None => only_bound_port(&pod, name)?,
            };
            Ok(ws.on_upgrade(move |socket| spdy::serve(socket, target)))
        }
        None => Err(ApiError::bad_request(format!(
            "unable to upgrade: none of the requested WebSocket subprotocols is served \
             (offer {CHANNEL_V4} or {SPDY_TUNNEL})"
        ))),
    }
}

/// `?ports=6379,8080` (or repeated `ports=`; the query map keeps the last).
fn ports(query: &HashMap<String, String>) -> Result<Vec<u16>, ApiError> {
    let Some(list) = query.get("ports") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid port {p:?}")))
        })
        .collect()
}

fn pod(cluster: &Cluster, ns: &str, name: &str) -> Result<Value, ApiError> {
    let pods = resources::find("", "v1", "pods").expect("pods are served");
    cluster
        .store()
        .get(pods, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(pods, name))
}

/// Each port's address comes from its binding annotation.
fn targets(pod: &Value, name: &str, ports: &[u16]) -> Vec<Target> {
    ports
        .iter()
        .map(|&port| Target {
            port,
            address: bindings::forward_target(pod, port).ok_or_else(|| unbound(name, port)),
        })
        .collect()
}

fn unbound(name: &str, port: u16) -> String {
    format!(
        "error forwarding port {port} to pod {name}: the test cluster runs no containers; \
         bind the port with the annotation {}{port}",
        bindings::FORWARD_PREFIX
    )
}

/// The SPDY tunnel without `?ports=`: the Pod's one bound port.
fn only_bound_port(pod: &Value, name: &str) -> Result<Target, ApiError> {
    match bindings::forwards(pod).as_slice() {
        [(port, address)] => Ok(Target {
            port: *port,
            address: Ok(address.clone()),
        }),
        [] => Ok(Target {
            port: 0,
            address: Err(format!(
                "error forwarding to pod {name}: the test cluster runs no containers; bind the \
                 port with the annotation {}<port>",
                bindings::FORWARD_PREFIX
            )),
        }),
        several => Err(ApiError::bad_request(format!(
            "pod {name} has {} bound ports; over SPDY the test cluster forwards a Pod's only \
             bound port (the port is named in compressed stream headers it does not read)",
            several.len()
        ))),
    }
}
