//! A local port that reaches a Pod's port through the API server
//! (`pods/portforward` over WebSocket, the kube crate's `ws` feature): every
//! connection accepted on 127.0.0.1 gets its own forward, as `kubectl port-forward`
//! does. Closing it stops accepting and ends the forwards.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Forward {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Forward {
    pub async fn open(pods: Api<Pod>, pod: &str, port: u16) -> Result<Forward> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("listening on 127.0.0.1 for the port-forward")?;
        let addr = listener.local_addr()?;
        let pod = pod.to_string();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((conn, _)) = listener.accept().await {
                conns.spawn(carry(pods.clone(), pod.clone(), port, conn));
            }
        });
        Ok(Forward { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn close(self) {
        // Aborting drops the JoinSet, which aborts every open forward.
        self.task.abort();
        let _ = self.task.await;
    }
}

/// One local connection ↔ one forwarded stream, until either side closes.
async fn carry(pods: Api<Pod>, pod: String, port: u16, mut conn: TcpStream) {
    let Ok(mut forwarder) = pods.portforward(&pod, &[port]).await else {
        return; // the client sees its connection close
    };
    if let Some(mut upstream) = forwarder.take_stream(port) {
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
    }
    drop(forwarder.take_error(port));
    forwarder.abort();
}
