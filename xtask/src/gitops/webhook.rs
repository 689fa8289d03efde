//! `sync --watch --listen`: GitHub push webhooks as one more wake-up of the
//! watch loop (Jenkins' "GitHub hook trigger", for GitOps), so a push is deployed at
//! once instead of at the next poll; the interval poll stays as the fallback.
//!
//! `POST /webhook` answers, in this order: 413 for a body over [`BODY_LIMIT`],
//! 401 unless `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body with
//! the shared secret (compared in constant time), 202 and nothing else for
//! another event or another branch, 400 for a push that is not JSON, and 202
//! after waking the loop for a push to the watched branch. `GET /healthz`
//! answers 200. Neither the secret nor a signature is ever printed.

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use hmac::{KeyInit, Mac};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// The largest body accepted. GitHub caps payloads at 25 MB, but a push
/// event lists at most 20 commits and is far smaller than this.
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

pub const PATH: &str = "/webhook";
pub const HEALTH_PATH: &str = "/healthz";
const SIGNATURE_HEADER: &str = "x-hub-signature-256";
const EVENT_HEADER: &str = "x-github-event";
const DELIVERY_HEADER: &str = "x-github-delivery";
const SIGNATURE_PREFIX: &str = "sha256=";

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The shared secret of the webhook. Its Debug hides the value so that it
/// cannot end up in a log by accident.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret in `path`, without the trailing newline an editor or
    /// `echo` leaves (GitHub's secret field has none).
    pub fn read(path: &Path) -> Result<Secret> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the webhook secret file {}", path.display()))?;
        let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) {
            bail!(
                "the webhook secret file {} is empty; refusing to accept unsigned webhooks",
                path.display()
            );
        }
        Ok(Secret(text.to_vec()))
    }

    #[cfg(test)]
    fn new(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with `secret`.
pub fn signature_matches(secret: &Secret, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.trim().strip_prefix(SIGNATURE_PREFIX)) else {
        return false;
    };
    let Ok(claimed) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(&secret.0).expect("HMAC takes a key of any length");
    mac.update(body);
    // verify_slice compares in constant time (and rejects a wrong length).
    mac.verify_slice(&claimed).is_ok()
}

/// A push the watch is to deploy: when it arrived (for the latency line).
pub type Wake = Instant;

/// What the server needs to decide on a request.
struct Hook {
    secret: Secret,
    /// The watched branch on the remote, `refs/heads/main`.
    branch: String,
    wake: mpsc::Sender<Wake>,
}

/// Binds `listen` and serves the webhook in the background; each accepted
/// push sends one [`Wake`] on the returned channel. The channel holds one
/// pending wake-up: pushes arriving during a fetch or a sync coalesce into
/// one more fetch after it, and none is lost.
pub async fn start(
    listen: SocketAddr,
    secret: Secret,
    branch: String,
) -> Result<mpsc::Receiver<Wake>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening for webhooks on {listen}"))?;
    let address = listener.local_addr()?;
    let (wake, woken) = mpsc::channel(1);
    eprintln!("webhook: listening on http://{address}{PATH} for pushes to {branch}");
    let hook = Arc::new(Hook {
        secret,
        branch,
        wake,
    });
    let app = Router::new()
        .route(PATH, post(receive))
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .with_state(hook);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("error: the webhook server stopped: {e}");
        }
    });
    Ok(woken)
}

async fn receive(State(hook): State<Arc<Hook>>, request: Request) -> (StatusCode, String) {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = match read_limited(&parts.headers, body).await {
        Ok(body) => body,
        Err(status) => return (status, format!("body over {BODY_LIMIT} bytes\n")),
    };
    let headers = &parts.headers;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !signature_matches(&hook.secret, &body, text(SIGNATURE_HEADER)) {
        eprintln!("webhook: refused a request without a valid {SIGNATURE_HEADER}");
        return (
            StatusCode::UNAUTHORIZED,
            "bad or missing signature\n".into(),
        );
    }
    let delivery = text(DELIVERY_HEADER).unwrap_or("-");
    let event = text(EVENT_HEADER).unwrap_or("");
    if event != "push" {
        eprintln!("webhook: ignored a `{event}` event (delivery {delivery})");
        return (StatusCode::ACCEPTED, format!("ignored: `{event}` event\n"));
    }
    let pushed = match pushed_ref(&body) {
        Ok(pushed) => pushed,
        Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")),
    };
    if pushed != hook.branch {
        eprintln!("webhook: ignored a push to {pushed} (delivery {delivery})");
        return (
            StatusCode::ACCEPTED,
            format!("ignored: push to {pushed}, watching {}\n", hook.branch),
        );
    }
    eprintln!("webhook: push to {pushed} (delivery {delivery}), fetching now");
    // Full means a wake-up is already pending: this push is fetched with it.
    let _ = hook.wake.try_send(arrived);
    (StatusCode::ACCEPTED, "sync triggered\n".into())
}

/// The body, or 413 when the declared or the actual length exceeds the limit.
async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Bytes, StatusCode> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)
}

/// The `ref` of a push event (`refs/heads/main`).
fn pushed_ref(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Push {
        #[serde(rename = "ref")]
        reference: String,
    }
    serde_json::from_slice::<Push>(body)
        .map(|push| push.reference)
        .map_err(|e| {
            format!(
                "a push event needs a JSON body with `ref` (content type application/json): {e}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn githubs_documented_example_signature_matches() {
        // The example of GitHub's "Validating webhook deliveries" page.
        let secret = Secret::new(b"It's a Secret to Everybody");
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(&secret, b"Hello, World!", Some(header)));
    }

    #[test]
    fn a_signature_matches_only_its_body_and_secret() {
        let secret = Secret::new(b"s3cret");
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(b"s3cret", body);
        assert!(signature_matches(&secret, body, Some(&good)));
        assert!(!signature_matches(&secret, b"{}", Some(&good)));
        assert!(!signature_matches(
            &secret,
            body,
            Some(&sign(b"other", body))
        ));
    }

    #[test]
    fn malformed_or_missing_signatures_are_refused() {
        let secret = Secret::new(b"s3cret");
        let body = b"{}";
        let good = sign(b"s3cret", body);
        let hex_only = good.trim_start_matches(SIGNATURE_PREFIX).to_string();
        for header in [
            None,
            Some(""),
            Some("sha256="),
            Some(hex_only.as_str()),
            Some(&good[..good.len() - 2]),
            Some("sha256=zz"),
            Some("sha1=0123"),
        ] {
            assert!(!signature_matches(&secret, body, header), "{header:?}");
        }
    }

    #[test]
    fn the_secret_file_loses_its_newline_and_may_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(Secret::read(&path).unwrap().0, b"s3cret");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(Secret::read(&path).unwrap().0, b"s3cret");
        std::fs::write(&path, "\n").unwrap();
        let err = Secret::read(&path).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        let missing = dir.path().join("missing");
        let err = format!("{:#}", Secret::read(&missing).unwrap_err());
        assert!(err.contains("missing"), "{err}");
        assert_eq!(format!("{:?}", Secret::new(b"x")), "Secret(..)");
    }

    #[test]
    fn a_push_body_names_its_ref() {
        assert_eq!(
            pushed_ref(br#"{"ref":"refs/heads/main","after":"abc"}"#).unwrap(),
            "refs/heads/main"
        );
        assert!(pushed_ref(b"payload=%7B%7D").is_err());
    }
}
