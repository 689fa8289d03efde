//! `pods/log`: a container's log, read from the file the Pod is bound to
//! (`bindings`), with `container`, `tailLines` and `follow` (keep sending what is
//! appended until the Pod ends, the client leaves or the server stops).
use super::{Answer, Request};
use crate::bindings;
use crate::errors::ApiError;
use crate::state::Cluster;
use axum::body::Body;
use axum::response::Response;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How often a followed log looks for more.
const POLL: Duration = Duration::from_millis(50);

pub fn log(cluster: &Arc<Cluster>, req: &Request<'_>) -> Result<Answer, ApiError> {
    let kind = req.info.kind;
    let (ns, name) = (req.namespace().to_string(), req.name().to_string());
    let pod = cluster
        .store()
        .get(kind, &ns, &name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind, &name))?;
    let container = container(&pod, &name, req.query.get("container"))?;
    if pod["status"]["phase"] == "Pending" {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    }
    let tail = match req.query.get("tailLines") {
        Some(t) => Some(t.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("invalid tailLines {t:?}: not a number"))
        })?),
        None => None,
    };
    let follow = req
        .query
        .get("follow")
        .is_some_and(|f| f == "true" || f == "1");
    let file = bindings::log_file(&pod, &container);
    let text = file
        .as_ref()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .unwrap_or_default();
    let start = tail_start(&text, tail);
    let head = text[start..].to_vec();
    let body = if follow {
        let at = text.len() as u64;
        follow_body(cluster.clone(), ns, name, container, head, at)
    } else {
        Body::from(head)
    };
    Ok(Answer::Response(
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(body)
            .expect("a valid response"),
    ))
}

/// The container asked for, or the only one; errors as kube-apiserver words them.
fn container(pod: &Value, name: &str, asked: Option<&String>) -> Result<String, ApiError> {
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match asked {
        Some(c) if names.contains(&c.as_str()) => Ok(c.clone()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// Where the last `lines` lines start.
fn tail_start(text: &[u8], lines: Option<usize>) -> usize {
    let Some(n) = lines else { return 0 };
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    if n == 0 { text.len() } else { 0 }
}

/// What is there, then what is appended, until the Pod has ended and its file is
/// read. The file is looked up again each time, so a binding a test sets after the
/// request started (a one-off Pod's output) is followed too.
fn follow_body(
    cluster: Arc<Cluster>,
    ns: String,
    name: String,
    container: String,
    head: Vec<u8>,
    offset: u64,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let mut stopping = cluster.stopping.subscribe();
    tokio::spawn(async move {
        if !head.is_empty() && tx.send(head).await.is_err() {
            return;
        }
        let mut offset = offset;
        loop {
            let (ended, file) = pod_state(&cluster, &ns, &name, &container);
            let more = match file {
                Some(file) => read_from(&file, offset).await,
                None => Vec::new(),
            };
            offset += more.len() as u64;
            if !more.is_empty() && tx.send(more).await.is_err() {
                return;
            }
            if ended {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Body::from_stream(stream)
}

/// Has the Pod ended (gone, Succeeded or Failed: a followed log ends), and its log file.
fn pod_state(cluster: &Cluster, ns: &str, name: &str, container: &str) -> (bool, Option<PathBuf>) {
    let pods = crate::store::resources::find("", "v1", "pods").expect("pods are served");
    match cluster.store().get(pods, ns, name) {
        None => (true, None),
        Some(p) => (
            matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")),
            bindings::log_file(p, container),
        ),
    }
}

async fn read_from(file: &PathBuf, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(mut f) = tokio::fs::File::open(file).await
        && f.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
    {
        let _ = f.read_to_end(&mut out).await;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tail_start;

    #[test]
    fn tail_lines_counts_lines_from_the_end() {
        let text = b"a\nb\nc\n";
        assert_eq!(&text[tail_start(text, Some(2))..], b"b\nc\n");
        assert_eq!(&text[tail_start(text, Some(5))..], text);
        assert_eq!(&text[tail_start(text, Some(0))..], b"");
        assert_eq!(&text[tail_start(text, None)..], text);
        assert_eq!(&b"x\ny"[tail_start(b"x\ny", Some(1))..], b"y");
    }
}
