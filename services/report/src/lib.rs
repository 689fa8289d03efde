//! `report`: asks eventservice, over the Redis queue, how often each page was
//! visited, and prints the answer as a table (or JSON).
//!
//! Protocol: LPUSH `{"action":"summary","returnPath":"report:<random>"}` onto
//! the event queue, then BLPOP the return list until the timeout.

pub mod table;

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Parser;

pub const DEFAULT_QUEUE: &str = "eventservice";

#[derive(Debug, Parser)]
#[command(
    name = "report",
    version,
    about = "Prints how often each page of micro was visited, most visited first",
    after_help = "Examples:\n  report\n  report --redis-url redis://127.0.0.1:6379 --timeout 10s --json"
)]
pub struct Args {
    /// Redis to use; default: REDIS_URL, else the `redis` service found by discovery
    /// (SRV record, then REDIS_SERVICE_HOST/REDIS_SERVICE_PORT), with REDIS_PASSWORD.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The event queue eventservice consumes.
    #[arg(long, env = "EVENT_QUEUE", default_value = DEFAULT_QUEUE)]
    pub queue: String,
    /// How long to wait for the answer (e.g. 5s, 500ms, 2m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print JSON (`[{"url": ..., "count": ...}]`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the report; returns what to print on stdout.
pub async fn run(args: &Args) -> anyhow::Result<String> {
    // An empty variable counts as unset (as the services read their environment).
    let url = match args.redis_url.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => url.to_string(),
        _ => discovered_redis_url().await?,
    };
    let queue = match args.queue.trim() {
        "" => DEFAULT_QUEUE,
        q => q,
    };
    let reply = request_summary(&url, queue, args.timeout).await?;
    let rows = table::rows(&reply)?;
    Ok(if args.json {
        table::render_json(&rows)
    } else {
        table::render(&rows)
    })
}

/// `redis://[:password@]host:port` of the `redis` service, as the services find it.
async fn discovered_redis_url() -> anyhow::Result<String> {
    let addr = micro_common::discovery::Discovery::from_env()
        .resolve("redis")
        .await
        .context("no --redis-url or REDIS_URL given")?;
    Ok(match std::env::var("REDIS_PASSWORD") {
        Ok(pw) if !pw.is_empty() => redis_url_with_password(&pw, &addr.to_string()),
        _ => format!("redis://{addr}"),
    })
}

/// Sends the summary request and waits for the reply (the raw JSON object).
pub async fn request_summary(url: &str, queue: &str, timeout: Duration) -> anyhow::Result<String> {
    let client = redis::Client::open(url).map_err(|e| anyhow!("invalid Redis URL: {e}"))?;
    let shown = redacted(url);
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout.min(Duration::from_secs(5))))
        // The BLPOP below blocks for up to `timeout`.
        .set_response_timeout(Some(timeout + Duration::from_secs(2)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| anyhow!("cannot reach Redis at {shown}: {e}"))?;

    let id: u64 = rand::random();
    let return_path = format!("{}{id:016x}", micro_common::queue::SUMMARY_RETURN_PREFIX);
    let request = serde_json::json!({ "action": "summary", "returnPath": return_path }).to_string();
    redis::cmd("LPUSH")
        .arg(queue)
        .arg(&request)
        .query_async::<()>(&mut con)
        .await
        .map_err(|e| anyhow!("cannot send the request to Redis at {shown}: {e}"))?;

    let answer: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(&return_path)
        .arg(timeout.as_secs_f64().max(0.01))
        .query_async(&mut con)
        .await
        .map_err(|e| anyhow!("lost Redis at {shown} while waiting for the answer: {e}"))?;
    match answer {
        Some((_, reply)) => {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(&return_path)
                .query_async(&mut con)
                .await;
            Ok(reply)
        }
        None => {
            // Nobody took it: withdraw the request so a late worker does not answer into the void.
            let _: redis::RedisResult<()> = redis::cmd("LREM")
                .arg(queue)
                .arg(1)
                .arg(&request)
                .query_async(&mut con)
                .await;
            Err(anyhow!(
                "no answer from eventservice within {} (queue {queue:?} on {shown}): is eventservice running?",
                human(timeout)
            ))
        }
    }
}

/// `5s`, `500ms`, `2m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 5s or 500ms)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs.is_finite() && secs <= 86_400.0) {
        return Err(format!(
            "{text:?}: the timeout must be positive and at most a day"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The URL without its password, for error messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// `redis://:<password>@<addr>`, the password percent-encoded for the URL.
pub fn redis_url_with_password(password: &str, addr: &str) -> String {
    format!("redis://:{}@{addr}", percent_encode(password))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn passwords_are_hidden_and_encoded() {
        assert_eq!(redacted("redis://:pw@host:6379"), "redis://***@host:6379");
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
        assert_eq!(percent_encode("a b@c"), "a%20b%40c");
    }
}
