//! A lean HTTP/1.1 load generator for `bench services`.
//!
//! Everything runs on one OS thread with a single-threaded Tokio runtime, so
//! the generator takes at most one core away from the services it measures
//! (a multi-threaded hyper client took more CPU than the service under test); the open
//! loop's pacing thread only sleeps.
//! Each connection is kept alive and sends the same pre-built request bytes,
//! then reads the answer just far enough to know where it ends: the status
//! line, `Content-Length` (or a chunked body), `Connection: close`.
//!
//! A request counts as a failure when the answer is not 2xx/3xx or the
//! connection broke (the connection is then opened again).

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one load run measured.
pub struct Outcome {
    /// Latency in nanoseconds of every successful request, unsorted.
    pub latencies: Vec<u64>,
    pub failures: u64,
    /// From the first request to the end of the last one.
    pub elapsed: Duration,
}

/// The bytes of one HTTP/1.1 request: `GET` when `form` is `None`, else a
/// `POST` of the url-encoded `form`.
pub fn request_bytes(addr: SocketAddr, path: &str, form: Option<&str>) -> Vec<u8> {
    match form {
        None => format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        Some(body) => format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    }
    .into_bytes()
}

/// Sends `request` over `connections` keep-alive connections to `addr` for
/// `duration`, each connection sending its next request as soon as the
/// previous answer is read. Blocks the calling thread; the load itself runs
/// on a thread of its own.
pub fn run(
    addr: SocketAddr,
    request: Vec<u8>,
    connections: usize,
    duration: Duration,
) -> Result<Outcome> {
    on_load_thread("bench-load", move || async move {
        let request: &'static [u8] = Box::leak(request.into_boxed_slice());
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(connection(addr, request, deadline)))
            .collect();
        let mut outcome = Outcome {
            latencies: Vec::new(),
            failures: 0,
            elapsed: Duration::ZERO,
        };
        for task in tasks {
            let (mut latencies, failures) = task.await.context("a load connection panicked")??;
            outcome.latencies.append(&mut latencies);
            outcome.failures += failures;
        }
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    })
}

/// Sends `request` to `addr` at a fixed `rate` per second for `duration`, open loop: the
/// i-th request is due at `start + i / rate` whether or not earlier ones were answered.
/// Each goes out on an idle keep-alive connection, or a new one (at most
/// `max_connections` at once; beyond that it waits for one). Its latency counts from the
/// time it was due, not from when it was sent, so a server that falls behind shows its
/// queue in the figures instead of slowing the generator down (coordinated omission).
pub fn run_at_rate(
    addr: SocketAddr,
    request: Vec<u8>,
    rate: u32,
    duration: Duration,
    max_connections: usize,
) -> Result<Outcome> {
    on_load_thread("bench-rate", move || {
        open_loop(addr, request, rate, duration, max_connections)
    })
}

/// Runs the load on a thread of its own with a current-thread runtime, so the
/// generator takes at most one core, and blocks until it is done.
fn on_load_thread<F, Fut>(name: &str, load: F) -> Result<Outcome>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let thread =
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || -> Result<Outcome> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(load())
            })?;
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
}

/// The send times of an open loop, each delivered when it is due. A thread of its own
/// sleeps to each one: Tokio's timer fires on millisecond ticks, which would add up to a
/// millisecond of the generator's own lateness to every latency counted from the due time.
fn pace(
    started: Instant,
    interval: Duration,
    total: u64,
) -> tokio::sync::mpsc::UnboundedReceiver<Instant> {
    let (due_times, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for i in 0..total {
            let due = started + interval * i as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if due_times.send(due).is_err() {
                return;
            }
        }
    });
    receiver
}

async fn open_loop(
    addr: SocketAddr,
    request: Vec<u8>,
    rate: u32,
    duration: Duration,
    max_connections: usize,
) -> Result<Outcome> {
    use std::sync::{Arc, Mutex};
    let request: &'static [u8] = Box::leak(request.into_boxed_slice());
    let idle: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let total = (duration.as_secs_f64() * f64::from(rate)) as u64;
    let started = Instant::now();
    let mut due_times = pace(started, Duration::from_secs(1) / rate, total);
    let mut sends = tokio::task::JoinSet::new();
    while let Some(due) = due_times.recv().await {
        let (idle, slots) = (idle.clone(), slots.clone());
        sends.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("never closed");
            let pooled = idle.lock().expect("idle connections").pop();
            let mut stream = match pooled {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    s
                }
            };
            let mut buf = Vec::with_capacity(4096);
            let answer = exchange(&mut stream, request, &mut buf).await?;
            let latency = due.elapsed();
            if !answer.close {
                idle.lock().expect("idle connections").push(stream);
            }
            anyhow::Ok(((200..400).contains(&answer.status), latency))
        });
    }
    let mut outcome = Outcome {
        latencies: Vec::with_capacity(total as usize),
        failures: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(sent) = sends.join_next().await {
        match sent.context("a request task panicked")? {
            Ok((true, latency)) => outcome.latencies.push(latency.as_nanos() as u64),
            Ok((false, _)) | Err(_) => outcome.failures += 1,
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// One connection's loop; returns its latencies and failure count. Fails
/// only when the service cannot be reached at all.
async fn connection(
    addr: SocketAddr,
    request: &'static [u8],
    deadline: Instant,
) -> Result<(Vec<u64>, u64)> {
    let mut latencies = Vec::with_capacity(64 * 1024);
    let mut failures = 0u64;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut stream: Option<TcpStream> = None;
    while Instant::now() < deadline {
        let s = match stream.as_mut() {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("connecting to {addr}"))?;
                s.set_nodelay(true)?;
                stream.insert(s)
            }
        };
        let started = Instant::now();
        buf.clear();
        match exchange(s, request, &mut buf).await {
            Ok(answer) => {
                if (200..400).contains(&answer.status) {
                    latencies.push(started.elapsed().as_nanos() as u64);
                } else {
                    failures += 1;
                }
                if answer.close {
                    stream = None;
                }
            }
            Err(_) => {
                // Broken connection or unreadable answer: count it, start afresh,
                // and do not spin if the server keeps dropping us.
                failures += 1;
                stream = None;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok((latencies, failures))
}

/// What the generator needs to know of an answer.
struct Answer {
    status: u16,
    /// The server will close the connection after this answer.
    close: bool,
}

/// Writes `request` and reads one whole answer into `buf`.
///
/// `cargo xtask` is a debug build: the parsing below uses plain index loops
/// over the few bytes of the head (no searchers, no UTF-8 checks), which stay
/// cheap without optimisation.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Result<Answer> {
    // A small request nearly always fits the socket buffer at once.
    match stream.try_write(request) {
        Ok(n) if n == request.len() => {}
        Ok(n) => stream.write_all(&request[n..]).await?,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.write_all(request).await?,
        Err(e) => return Err(e.into()),
    }
    // The head: read until the blank line, scanning only the new bytes.
    let mut scanned = 0;
    let head_len = loop {
        if let Some(end) = head_end(buf, scanned) {
            break end;
        }
        scanned = buf.len();
        read_more(stream, buf).await?;
    };
    let head = &buf[..head_len];
    // "HTTP/1.1 200 ..."
    if head.len() < 12 || &head[..7] != b"HTTP/1." || head[8] != b' ' {
        bail!("not an HTTP/1.x answer");
    }
    let mut status = 0u16;
    for &digit in &head[9..12] {
        if !digit.is_ascii_digit() {
            bail!("bad status code");
        }
        status = status * 10 + u16::from(digit - b'0');
    }
    let (mut length, mut chunked, mut close) = (None, false, false);
    let mut at = line_end(head, 0);
    while at < head_len - 2 {
        let end = line_end(head, at);
        let line = &head[at..end - 2];
        if let Some(value) = header_value(line, b"content-length:") {
            length = Some(decimal(value).context("bad Content-Length")?);
        } else if let Some(value) = header_value(line, b"transfer-encoding:") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if let Some(value) = header_value(line, b"connection:") {
            close = value.eq_ignore_ascii_case(b"close");
        }
        at = end;
    }
    if chunked {
        read_chunked(stream, buf, head_len).await?;
    } else if let Some(length) = length {
        while buf.len() < head_len + length {
            read_more(stream, buf).await?;
        }
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        bail!("answer has neither Content-Length nor chunked encoding");
    }
    Ok(Answer { status, close })
}

/// Index just past the first `\r\n\r\n` in `buf` that ends at or after `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.saturating_sub(3);
    while i + 3 < buf.len() {
        if buf[i + 3] == b'\n' && buf[i] == b'\r' && buf[i + 1] == b'\n' && buf[i + 2] == b'\r' {
            return Some(i + 4);
        }
        i += 1;
    }
    None
}

/// Index just past the `\n` ending the line that starts at `from` (the head
/// always ends with one).
fn line_end(head: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < head.len() && head[i] != b'\n' {
        i += 1;
    }
    i + 1
}

/// The trimmed value of `line` when its name is `name` (lower case, with
/// the colon), in any case.
fn header_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    if line.len() < name.len() || !line[..name.len()].eq_ignore_ascii_case(name) {
        return None;
    }
    let mut value = &line[name.len()..];
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    Some(value)
}

fn decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n = 0usize;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(d - b'0');
    }
    Some(n)
}

/// Reads a chunked body that starts at `buf[start..]` up to its last chunk.
/// (Trailers are not expected from these services and not supported.)
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>, start: usize) -> Result<()> {
    let mut at = start;
    loop {
        let line_end = loop {
            if let Some(end) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                break at + end;
            }
            read_more(stream, buf).await?;
        };
        let size_text = std::str::from_utf8(&buf[at..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        // The chunk, then its CRLF (for the last chunk: the final CRLF).
        let next = line_end + 2 + size + 2;
        while buf.len() < next {
            read_more(stream, buf).await?;
        }
        if size == 0 {
            return Ok(());
        }
        at = next;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    if stream.read_buf(buf).await? == 0 {
        bail!("the server closed the connection");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_complete_http11() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let get = String::from_utf8(request_bytes(addr, "/add/2/3", None)).unwrap();
        assert_eq!(get, "GET /add/2/3 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
        let post = String::from_utf8(request_bytes(addr, "/c", Some("a=1"))).unwrap();
        assert!(post.starts_with("POST /c HTTP/1.1\r\n"));
        assert!(post.ends_with("Content-Length: 3\r\n\r\na=1"));
    }

    /// A server answering each request with the next canned answer, split in
    /// small writes so the reader has to wait for the rest.
    fn canned_server(answers: &'static [&'static str]) -> SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            for answer in answers {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).unwrap();
                for piece in answer.as_bytes().chunks(7) {
                    socket.write_all(piece).unwrap();
                    socket.flush().unwrap();
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn answers_end_where_their_length_says() {
        const ANSWERS: &[&str] = &[
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            "HTTP/1.1 303 See Other\r\nLocation: /add\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length:  2 \r\nConnection: close\r\n\r\n{}",
        ];
        let addr = canned_server(ANSWERS);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = request_bytes(addr, "/", None);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut buf = Vec::new();
            let answer = exchange(&mut stream, &request, &mut buf).await.unwrap();
            seen.push((answer.status, answer.close, buf.len()));
        }
        // Each answer read exactly to its end, no further.
        let lengths: Vec<usize> = ANSWERS.iter().map(|a| a.len()).collect();
        assert_eq!(
            seen,
            [
                (200, false, lengths[0]),
                (200, false, lengths[1]),
                (303, false, lengths[2]),
                (500, true, lengths[3])
            ]
        );
    }
}
