//! The dev DNS server: answers what Kubernetes' cluster DNS would for the
//! services of the local system, so services discover each other exactly as in
//! the cluster.
//!
//! - SRV `_main._tcp.<svc>.<ns>.<suffix>` -> `0 100 <port> <svc>.<ns>.<suffix>.`
//!   (with the A record in the additional section)
//! - A `<svc>.<ns>.<suffix>` -> the service's address
//! - a known name asked for another type -> no records (NODATA)
//! - any other name -> NXDOMAIN
//!
//! UDP and TCP, on threads. Self-contained (std, hickory-proto, anyhow) so the
//! discovery tests can compile it in.

use anyhow::{Context, Result};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The records the server knows: one address and port per service.
#[derive(Debug, Clone)]
pub struct Zone {
    /// e.g. `micro`
    pub namespace: String,
    /// e.g. `svc.cluster.local`
    pub suffix: String,
    /// Seconds a resolver may cache an answer. Short, so a restarted runner
    /// with other ports is picked up quickly.
    pub ttl: u32,
    /// Service name -> where it listens.
    pub services: BTreeMap<String, SocketAddr>,
}

impl Zone {
    pub fn new(namespace: &str, suffix: &str, ttl: u32) -> Self {
        Zone {
            namespace: namespace.into(),
            suffix: suffix.into(),
            ttl,
            services: BTreeMap::new(),
        }
    }

    /// `<svc>.<ns>.<suffix>` (no trailing dot, lower case).
    fn host_name(&self, service: &str) -> String {
        format!("{service}.{}.{}", self.namespace, self.suffix).to_ascii_lowercase()
    }

    /// Build the reply to one request (None for a packet that is not a query).
    pub fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let request = match Message::from_vec(request) {
            Ok(message) => message,
            // Unreadable: FORMERR with the id, if there are at least two bytes of it.
            Err(_) if request.len() >= 2 => {
                let id = u16::from_be_bytes([request[0], request[1]]);
                return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                    .to_vec()
                    .ok();
            }
            Err(_) => return None,
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.metadata.authoritative = true;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            reply.edns = Some(edns);
        }
        if request.metadata.op_code != OpCode::Query || request.queries.len() != 1 {
            reply.metadata.response_code = ResponseCode::NotImp;
            return reply.to_vec().ok();
        }
        let query = request.queries[0].clone();
        reply.add_query(query.clone());
        let name = query
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        match self.lookup(&name, query.query_type()) {
            Some((answers, additionals)) => {
                reply.add_answers(answers);
                reply.add_additionals(additionals);
            }
            None => reply.metadata.response_code = ResponseCode::NXDomain,
        }
        reply.to_vec().ok()
    }

    /// Answer and additional records for `name`, or None if the name does not
    /// exist (an existing name asked for another type gives empty lists).
    fn lookup(&self, name: &str, query_type: RecordType) -> Option<(Vec<Record>, Vec<Record>)> {
        for (service, addr) in &self.services {
            let host = self.host_name(service);
            let srv_name = format!("_main._tcp.{host}");
            if name == host {
                let answers = match query_type {
                    RecordType::A | RecordType::ANY => {
                        self.a_record(&host, addr.ip()).into_iter().collect()
                    }
                    _ => Vec::new(),
                };
                return Some((answers, Vec::new()));
            }
            if name == srv_name {
                if !matches!(query_type, RecordType::SRV | RecordType::ANY) {
                    return Some((Vec::new(), Vec::new()));
                }
                let target = Name::from_ascii(format!("{host}.")).ok()?;
                let srv = SRV::new(0, 100, addr.port(), target);
                let owner = Name::from_ascii(format!("{srv_name}.")).ok()?;
                let answers = vec![Record::from_rdata(owner, self.ttl, RData::SRV(srv))];
                return Some((
                    answers,
                    self.a_record(&host, addr.ip()).into_iter().collect(),
                ));
            }
        }
        None
    }

    fn a_record(&self, host: &str, ip: IpAddr) -> Option<Record> {
        let IpAddr::V4(ip) = ip else { return None };
        let owner = Name::from_ascii(format!("{host}.")).ok()?;
        Some(Record::from_rdata(owner, self.ttl, RData::A(A(ip))))
    }
}

/// A running DNS server; dropping it stops it.
pub struct DnsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Serve `zone` on `bind` (UDP and TCP on the same port; port 0 = a free one).
/// The zone may be changed while serving.
pub fn serve(bind: SocketAddr, zone: Arc<RwLock<Zone>>) -> Result<DnsServer> {
    let (udp, tcp) = bind_both(bind)?;
    let addr = udp.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    udp.set_read_timeout(Some(Duration::from_millis(200)))?;
    tcp.set_nonblocking(true)?;
    let udp_thread = {
        let (stop, zone) = (stop.clone(), zone.clone());
        thread::spawn(move || serve_udp(udp, &zone, &stop))
    };
    let tcp_thread = {
        let stop = stop.clone();
        thread::spawn(move || serve_tcp(tcp, &zone, &stop))
    };
    Ok(DnsServer {
        addr,
        stop,
        threads: vec![udp_thread, tcp_thread],
    })
}

/// A UDP socket and a TCP listener on the same port (retrying when port 0
/// gave a UDP port whose TCP twin is taken).
fn bind_both(bind: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(bind)
            .with_context(|| format!("binding the DNS server to udp {bind}"))?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(err) if bind.port() == 0 => last_error = Some(err),
            Err(err) => {
                return Err(err).with_context(|| format!("binding the DNS server to tcp {addr}"));
            }
        }
    }
    Err(last_error.expect("tried at least once"))
        .context("finding a port free for both UDP and TCP")
}

fn serve_udp(socket: UdpSocket, zone: &RwLock<Zone>, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((len, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let reply = zone.read().ok().and_then(|z| z.answer(&buf[..len]));
        if let Some(reply) = reply {
            let _ = socket.send_to(&reply, peer);
        }
    }
}

fn serve_tcp(listener: TcpListener, zone: &Arc<RwLock<Zone>>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let zone = zone.clone();
                thread::spawn(move || {
                    let _ = serve_tcp_connection(stream, &zone);
                });
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// DNS over TCP: each message is preceded by its length (two bytes).
fn serve_tcp_connection(mut stream: TcpStream, zone: &RwLock<Zone>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut request = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut request)?;
        let reply = zone.read().ok().and_then(|z| z.answer(&request));
        if let Some(reply) = reply {
            stream.write_all(&(reply.len() as u16).to_be_bytes())?;
            stream.write_all(&reply)?;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Where a local service listens: 127.0.0.1:port.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}
