//! Redis key layout of the event queue, and recovery of work that a dead
//! worker left behind.
//!
//! Producers LPUSH onto `<queue>`; a worker BLMOVEs the right end into its own
//! `<queue>:processing:<worker-id>` and removes it from there only once the
//! work is committed. A live worker keeps `<queue>:worker:<worker-id>`
//! alive with a TTL; a processing list whose heartbeat key has expired
//! belongs to a dead worker and is moved back onto the queue.

use redis::aio::ConnectionLike;

#[derive(Debug, Clone)]
pub struct Keys {
    pub queue: String,
    pub worker_id: String,
    pub processing: String,
    pub heartbeat: String,
    pub dead: String,
}

impl Keys {
    pub fn new(queue: &str, worker_id: &str) -> Self {
        Self {
            queue: queue.to_string(),
            worker_id: worker_id.to_string(),
            processing: processing_key(queue, worker_id),
            heartbeat: heartbeat_key(queue, worker_id),
            dead: format!("{queue}:dead"),
        }
    }
}

pub fn processing_key(queue: &str, worker_id: &str) -> String {
    format!("{queue}:processing:{worker_id}")
}

pub fn heartbeat_key(queue: &str, worker_id: &str) -> String {
    format!("{queue}:worker:{worker_id}")
}

/// Moves every entry of `list` back onto the consuming (right) end of the
/// queue, one atomic LMOVE at a time, so two workers reclaiming the same list
/// can never duplicate or drop an entry. Returns how many moved.
pub async fn requeue_all<C: ConnectionLike + Send>(
    con: &mut C,
    list: &str,
    queue: &str,
) -> redis::RedisResult<usize> {
    let mut moved = 0;
    loop {
        let entry: Option<Vec<u8>> = redis::cmd("LMOVE")
            .arg(list)
            .arg(queue)
            .arg("RIGHT")
            .arg("RIGHT")
            .query_async(con)
            .await?;
        if entry.is_none() {
            return Ok(moved);
        }
        moved += 1;
    }
}

/// Requeues the processing lists of workers whose heartbeat has expired
/// (crashed pods that came back under another name, or never came back).
/// Our own list is left alone: its owner is alive (us).
pub async fn reclaim_orphans<C: ConnectionLike + Send>(
    con: &mut C,
    keys: &Keys,
) -> redis::RedisResult<usize> {
    let prefix = processing_key(&keys.queue, "");
    let pattern = format!("{}*", glob_escape(&prefix));
    let mut lists = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(con)
            .await?;
        lists.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut moved = 0;
    for list in lists {
        let Some(owner) = list.strip_prefix(&prefix) else {
            continue;
        };
        if owner == keys.worker_id {
            continue;
        }
        let alive: bool = redis::cmd("EXISTS")
            .arg(heartbeat_key(&keys.queue, owner))
            .query_async(con)
            .await?;
        if !alive {
            let n = requeue_all(con, &list, &keys.queue).await?;
            if n > 0 {
                tracing::warn!(
                    worker = owner,
                    entries = n,
                    "requeued work of a dead worker"
                );
            }
            moved += n;
        }
    }
    Ok(moved)
}

/// Escapes Redis glob metacharacters so a queue name is matched literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let k = Keys::new("eventservice", "pod-1");
        assert_eq!(k.processing, "eventservice:processing:pod-1");
        assert_eq!(k.heartbeat, "eventservice:worker:pod-1");
        assert_eq!(k.dead, "eventservice:dead");
    }

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("q*[x]?\\"), "q\\*\\[x\\]\\?\\\\");
    }
}
