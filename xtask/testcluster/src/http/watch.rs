//! Watches: newline-delimited `{"type": ..., "object": ...}` events in
//! resourceVersion order, replayed from the requested resourceVersion (or the
//! current state as ADDED events) and then followed live.
use crate::state::Cluster;
use crate::store::resources::ResourceKind;
use crate::store::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, WatchEvent, namespace_of};
use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

pub struct WatchRequest {
    pub kind: &'static ResourceKind,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Resume after this resourceVersion; None: start with the current state.
    pub since: Option<u64>,
    pub timeout: Option<Duration>,
    /// `sendInitialEvents=true`: end the initial state with a bookmark.
    pub initial_events_bookmark: bool,
    /// `Accept: ...;as=Table`: each object as a one-row Table (`kubectl get -w`).
    pub table: bool,
}

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| ns == namespace_of(obj))
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The event this watcher sees, if any (an object that stops matching is DELETED).
    fn translate(&self, e: &WatchEvent) -> Option<(&'static str, Value)> {
        if e.kind != self.kind {
            return None;
        }
        let now = self.matches(&e.object);
        let before = e.previous.as_ref().is_some_and(|p| self.matches(p));
        match (e.etype, now, before) {
            (EventType::Modified, true, false) => Some(("ADDED", e.object.clone())),
            (EventType::Modified, false, true) => Some(("DELETED", e.object.clone())),
            (_, true, _) => Some((e.etype.as_str(), e.object.clone())),
            _ => None,
        }
    }
}

fn line(etype: &str, object: &Value) -> Vec<u8> {
    let mut bytes =
        serde_json::to_vec(&json!({"type": etype, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Encodes events for one watcher: as Tables when asked, with the column
/// definitions in the first event only, as kube-apiserver sends them.
struct Encoder {
    kind: &'static ResourceKind,
    table: bool,
    columns_sent: bool,
}

impl Encoder {
    fn encode(&mut self, etype: &str, object: &Value) -> Vec<u8> {
        if !self.table || etype == "BOOKMARK" {
            return line(etype, object);
        }
        let rv = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
        let mut t = crate::http::table::table(self.kind, std::slice::from_ref(object), rv);
        if self.columns_sent {
            t["columnDefinitions"] = json!([]);
        }
        self.columns_sent = true;
        line(etype, &t)
    }
}

pub fn serve(cluster: Arc<Cluster>, req: WatchRequest) -> Response {
    let mut encoder = Encoder {
        kind: req.kind,
        table: req.table,
        columns_sent: false,
    };
    let (mut initial, live): (Vec<Vec<u8>>, broadcast::Receiver<Arc<WatchEvent>>) = {
        let store = cluster.store();
        match req.since {
            Some(rv) => {
                let (replay, rx) = store.subscribe(rv);
                let lines = replay
                    .iter()
                    .filter_map(|e| req.translate(e))
                    .map(|(t, o)| encoder.encode(t, &o))
                    .collect();
                (lines, rx)
            }
            None => {
                let mut lines: Vec<Vec<u8>> = store
                    .list(req.kind, req.namespace.as_deref())
                    .into_iter()
                    .filter(|o| req.matches(o))
                    .map(|o| encoder.encode("ADDED", o))
                    .collect();
                if req.initial_events_bookmark {
                    let bookmark = json!({"kind": req.kind.kind, "apiVersion": req.kind.api_version(),
                        "metadata": {"resourceVersion": store.resource_version().to_string(),
                                     "annotations": {"k8s.io/initial-events-end": "true"}}});
                    lines.push(encoder.encode("BOOKMARK", &bookmark));
                }
                (lines, store.subscribe_live())
            }
        }
    };
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let mut stopping = cluster.stopping.subscribe();
    // A watch that arrives while the server stops (a client re-watching at
    // once) ends at once too; waiting for a change that already happened
    // would keep the graceful shutdown waiting on it forever.
    let stopped = *stopping.borrow_and_update();
    tokio::spawn(async move {
        if stopped {
            return;
        }
        let mut live = live;
        for l in initial.drain(..) {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(req.timeout.unwrap_or(Duration::from_secs(3600)));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = stopping.changed() => return,
                _ = tx.closed() => return,
                event = live.recv() => match event {
                    Ok(e) => {
                        if let Some((t, o)) = req.translate(&e)
                            && tx.send(encoder.encode(t, &o)).await.is_err()
                        {
                            return;
                        }
                    }
                    // Too slow a reader, or the server is gone: end the watch; clients re-watch.
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}
