//! SPDY/3.1 port forwarding tunnelled through a WebSocket (kubectl 1.31+): the
//! WebSocket's binary messages are one byte stream of SPDY frames.
//!
//! kubectl opens two streams per local connection, an error stream and then a
//! data stream; they come in that order, so the pair is known without reading
//! the (zlib-compressed, dictionary-primed) request headers. Every stream gets a
//! SYN_REPLY with an empty header block, written as uncompressed ("stored") zlib
//! blocks ending in a sync flush, which any zlib reader accepts. The data stream is copied to and from a
//! TCP connection to the Pod's bound address; when the process closes it, the data
//! stream and then the error stream end with FIN (an empty error stream: no error).
use super::Target;
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const FLAG_FIN: u8 = 0x01;
/// DATA frames this side writes carry at most this much.
const CHUNK: usize = 64 * 1024;

/// One parsed frame.
enum Frame {
    Control {
        kind: u16,
        body: Vec<u8>,
    },
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
}

/// Takes one whole frame off the front of `buf`, if it holds one.
fn next_frame(buf: &mut Vec<u8>) -> Option<Frame> {
    if buf.len() < 8 {
        return None;
    }
    let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
    if buf.len() < 8 + len {
        return None;
    }
    let head: Vec<u8> = buf.drain(..8 + len).collect();
    let body = head[8..].to_vec();
    if head[0] & 0x80 != 0 {
        Some(Frame::Control {
            kind: u16::from_be_bytes([head[2], head[3]]),
            body,
        })
    } else {
        Some(Frame::Data {
            stream: u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff,
            fin: head[4] & FLAG_FIN != 0,
            data: body,
        })
    }
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + body.len());
    f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(body);
    f
}

fn data(stream: u32, fin: bool, bytes: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + bytes.len());
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.push(if fin { FLAG_FIN } else { 0 });
    f.extend_from_slice(&(bytes.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(bytes);
    f
}

fn stream_id(body: &[u8]) -> Option<u32> {
    body.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
}

/// The header blocks this side writes: one zlib stream for the connection, each
/// block an uncompressed deflate block holding "no headers".
struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    fn empty_block(&mut self) -> Vec<u8> {
        let payload = 0u32.to_be_bytes(); // the number of name/value pairs
        let mut out = Vec::new();
        if !self.started {
            out.extend_from_slice(&[0x78, 0x01]); // zlib header: deflate, no dictionary
            self.started = true;
        }
        let len = payload.len() as u16;
        out.push(0x00); // a stored block, not the last
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(&payload);
        // An empty stored block ends each header block, as a zlib sync flush does:
        // readers hand out what they have there, without reading ahead.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

pub async fn serve(socket: WebSocket, target: Target) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    let to_client = async move {
        while let Some(bytes) = rx.recv().await {
            if sink.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    };
    let from_client = async move {
        let mut conn = Connection {
            tx,
            target,
            headers: HeaderWriter { started: false },
            pending_error: None,
            pairs: HashMap::new(),
        };
        let mut buf = Vec::new();
        while let Some(Ok(m)) = stream.next().await {
            match m {
                Message::Binary(b) => buf.extend_from_slice(&b),
                Message::Close(_) => break,
                _ => continue,
            }
            while let Some(frame) = next_frame(&mut buf) {
                if !conn.handle(frame).await {
                    return;
                }
            }
        }
    };
    tokio::join!(to_client, from_client);
}

struct Connection {
    tx: mpsc::Sender<Vec<u8>>,
    target: Target,
    headers: HeaderWriter,
    /// An error stream waiting for its data stream.
    pending_error: Option<u32>,
    /// Data stream id → the connection to the process (`None` once closed).
    pairs: HashMap<u32, Option<OwnedWriteHalf>>,
}

impl Connection {
    /// Handles one frame; false ends the connection.
    async fn handle(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::Control { kind, body } => match kind {
                SYN_STREAM => {
                    if let Some(id) = stream_id(&body) {
                        self.open_stream(id).await;
                    }
                    true
                }
                PING => self.tx.send(control(PING, 0, &body)).await.is_ok(),
                RST_STREAM => {
                    if let Some(id) = stream_id(&body) {
                        self.pairs.remove(&id);
                    }
                    true
                }
                GOAWAY => false,
                _ => true, // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do
            },
            Frame::Data { stream, fin, data } => {
                if let Some(writer) = self.pairs.get_mut(&stream)
                    && let Some(w) = writer.as_mut()
                {
                    if !data.is_empty() && w.write_all(&data).await.is_err() {
                        *writer = None;
                    } else if fin {
                        let _ = w.shutdown().await;
                        *writer = None;
                    }
                }
                true
            }
        }
    }

    async fn open_stream(&mut self, id: u32) {
        let mut reply = id.to_be_bytes().to_vec();
        reply.extend(self.headers.empty_block());
        let _ = self.tx.send(control(SYN_REPLY, 0, &reply)).await;
        match self.pending_error.take() {
            None => self.pending_error = Some(id),
            Some(error) => {
                let writer = self.connect(id, error).await;
                self.pairs.insert(id, writer);
            }
        }
    }

    /// Connects the data stream `id` to the bound address and copies the process's
    /// output into it; a failure is written on the error stream.
    async fn connect(&self, id: u32, error: u32) -> Option<OwnedWriteHalf> {
        let tx = self.tx.clone();
        let port = self.target.port;
        let conn = match &self.target.address {
            Ok(a) => TcpStream::connect(a)
                .await
                .map_err(|e| format!("error forwarding port {port} to {a}: {e}")),
            Err(e) => Err(e.clone()),
        };
        let conn = match conn {
            Ok(c) => c,
            Err(message) => {
                let _ = tx.send(data(error, true, message.as_bytes())).await;
                let _ = tx.send(data(id, true, &[])).await;
                return None;
            }
        };
        let _ = conn.set_nodelay(true);
        let (mut read, write) = conn.into_split();
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 || tx.send(data(id, false, &buf[..n])).await.is_err() {
                    break;
                }
            }
            let _ = tx.send(data(id, true, &[])).await;
            let _ = tx.send(data(error, true, &[])).await;
        });
        Some(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_their_whole_length() {
        let mut buf = control(PING, 0, &7u32.to_be_bytes());
        buf.extend(data(3, true, b"hello"));
        let half = buf.split_off(14);
        let mut stream = buf;
        assert!(matches!(
            next_frame(&mut stream),
            Some(Frame::Control { kind: PING, .. })
        ));
        assert!(
            next_frame(&mut stream).is_none(),
            "two bytes of the DATA frame only"
        );
        stream.extend(half);
        match next_frame(&mut stream) {
            Some(Frame::Data {
                stream: 3,
                fin: true,
                data,
            }) => assert_eq!(data, b"hello"),
            _ => panic!("a DATA frame"),
        }
        assert!(stream.is_empty());
    }

    #[test]
    fn header_blocks_are_one_zlib_stream_of_stored_blocks() {
        let mut h = HeaderWriter { started: false };
        let flush = [0, 0, 0, 0xff, 0xff];
        let first = h.empty_block();
        assert_eq!(first[..11], [0x78, 0x01, 0, 4, 0, 0xfb, 0xff, 0, 0, 0, 0]);
        assert_eq!(first[11..], flush);
        let next = h.empty_block();
        assert_eq!(next[..9], [0, 4, 0, 0xfb, 0xff, 0, 0, 0, 0]);
        assert_eq!(next[9..], flush);
    }
}
