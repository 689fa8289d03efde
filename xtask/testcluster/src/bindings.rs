//! How a test binds a Pod to real local processes, since the test cluster runs no
//! containers. All are Pod annotations the test sets:
//!
//! - `forward.testcluster.micro/<port>: 127.0.0.1:41234`: `pods/portforward` to the
//!   Pod's port `<port>` connects to that address (the tests' Redis, say).
//! - `log.testcluster.micro/<container>: /path/to/file`: `pods/log` of that container
//!   reads (and with `follow` keeps reading) that file.
//! - `testcluster.micro/exit-code: "0"`: a one-off Pod (`restartPolicy` `Never` or
//!   `OnFailure`) that is Running ends Succeeded (0) or Failed (anything else).
//!   Without it the Pod stays Running, so a test can set it when its work is done.
use serde_json::Value;
use std::path::PathBuf;

pub const FORWARD_PREFIX: &str = "forward.testcluster.micro/";
pub const LOG_PREFIX: &str = "log.testcluster.micro/";
pub const EXIT_CODE: &str = "testcluster.micro/exit-code";

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod["metadata"]["annotations"][key].as_str()
}

/// The local address a forward to `port` of this Pod reaches.
pub fn forward_target(pod: &Value, port: u16) -> Option<String> {
    annotation(pod, &format!("{FORWARD_PREFIX}{port}")).map(str::to_string)
}

/// Every port bound on this Pod, with its address, in port order.
pub fn forwards(pod: &Value) -> Vec<(u16, String)> {
    let mut out: Vec<(u16, String)> = pod["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let port = k.strip_prefix(FORWARD_PREFIX)?.parse().ok()?;
            Some((port, v.as_str()?.to_string()))
        })
        .collect();
    out.sort();
    out
}

/// The file holding the log of one container.
pub fn log_file(pod: &Value, container: &str) -> Option<PathBuf> {
    annotation(pod, &format!("{LOG_PREFIX}{container}")).map(PathBuf::from)
}

/// The exit code the test gave a one-off Pod, once it has.
pub fn exit_code(pod: &Value) -> Option<i64> {
    annotation(pod, EXIT_CODE).and_then(|c| c.trim().parse().ok())
}
