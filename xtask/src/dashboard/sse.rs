//! `GET /events`: Server-Sent Events carrying the page's `<main>`, rendered
//! once per change by the hub. A new stream gets the current `<main>` first
//! (the page may be older than the stream); a viewer that lags behind skips
//! to the newest, never replays every step.

use super::hub::Hub;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(
    State(hub): State<Arc<Hub>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = hub.subscribe();
    let stream = futures::stream::unfold(
        (hub, receiver, None::<u64>),
        |(hub, mut receiver, sent)| async move {
            let (version, main) = loop {
                let current = hub.main();
                if sent != Some(current.0) {
                    break current;
                }
                match receiver.recv().await {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            };
            let event = Event::default()
                .event("main")
                .id(version.to_string())
                .data(serde_json::to_string(&*main).unwrap_or_default());
            Some((Ok(event), (hub, receiver, Some(version))))
        },
    );
    // A comment every 15 s keeps proxies from closing an idle stream.
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
