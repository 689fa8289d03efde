//! The `v4.channel.k8s.io` port-forward protocol: every binary message starts
//! with a channel byte; port i has data channel 2i and error channel 2i+1, and
//! each channel's first message is the port number (two bytes, little endian).
use super::Target;
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::Binary(bytes.into())
}

pub async fn serve(socket: WebSocket, targets: Vec<Target>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let mut writers: Vec<Option<OwnedWriteHalf>> = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let (data, error) = (2 * i as u8, 2 * i as u8 + 1);
        let port = target.port.to_le_bytes();
        let _ = tx.send(frame(data, &port)).await;
        let _ = tx.send(frame(error, &port)).await;
        writers.push(open(target, data, error, tx.clone()).await);
    }
    drop(tx);
    let to_client = async {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
        // Flushes the reply to a Close the client sent first, too.
        let _ = sink.close().await;
    };
    let to_pod = async {
        while let Some(Ok(m)) = stream.next().await {
            match m {
                Message::Binary(b) if b.len() > 1 => {
                    let i = (b[0] / 2) as usize;
                    if let Some(Some(w)) = writers.get_mut(i)
                        && w.write_all(&b[1..]).await.is_err()
                    {
                        writers[i] = None;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        // The client is gone: half-close every connection so the copies end.
        for w in writers.iter_mut().flatten() {
            let _ = w.shutdown().await;
        }
    };
    tokio::join!(to_client, to_pod);
}

/// Connects one port and copies what the process sends into its data channel.
async fn open(
    target: &Target,
    data: u8,
    error: u8,
    tx: mpsc::Sender<Message>,
) -> Option<OwnedWriteHalf> {
    let address = match &target.address {
        Ok(a) => a.clone(),
        Err(e) => {
            let _ = tx.send(frame(error, e.as_bytes())).await;
            return None;
        }
    };
    let conn = match TcpStream::connect(&address).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("error forwarding port {} to {address}: {e}", target.port);
            let _ = tx.send(frame(error, msg.as_bytes())).await;
            return None;
        }
    };
    let _ = conn.set_nodelay(true);
    let (mut read, write) = conn.into_split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 || tx.send(frame(data, &buf[..n])).await.is_err() {
                break;
            }
        }
    });
    Some(write)
}
