//! Service discovery as the services do it (`micro_common::discovery`), against
//! the real dev DNS server of `cargo xtask dev` (compiled in from its source),
//! and through the `<S>_SERVICE_HOST`/`<S>_SERVICE_PORT` fallback.

#[path = "../../src/dev/dns.rs"]
#[allow(dead_code)]
mod dns;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use micro_common::Discovery;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, RwLock};
use std::time::Duration;

const NS: &str = "micro";
const SUFFIX: &str = "svc.cluster.local";

/// A dev DNS server on a free port serving `services`, with this TTL.
fn dns_server(
    ttl: u32,
    services: &[(&str, SocketAddr)],
) -> (dns::DnsServer, Arc<RwLock<dns::Zone>>) {
    let mut zone = dns::Zone::new(NS, SUFFIX, ttl);
    zone.services = services
        .iter()
        .map(|(n, a)| (n.to_string(), *a))
        .collect::<BTreeMap<_, _>>();
    let zone = Arc::new(RwLock::new(zone));
    let server =
        dns::serve("127.0.0.1:0".parse().unwrap(), zone.clone()).expect("start the DNS server");
    (server, zone)
}

fn vars(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn dns_vars(server: &dns::DnsServer) -> Vec<(&'static str, String)> {
    vec![
        ("DNS_HOST", "127.0.0.1".to_string()),
        ("DNS_PORT", server.addr.port().to_string()),
        ("DNS_NAMESPACE", NS.to_string()),
        ("DNS_SUFFIX", SUFFIX.to_string()),
    ]
}

#[tokio::test]
async fn srv_lookup_finds_a_listening_service() {
    // A real listener stands in for the service: discovery must lead to it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service_addr = listener.local_addr().unwrap();
    let (server, _zone) = dns_server(
        5,
        &[("adderservice", service_addr), ("postgres", dns::local(1))],
    );
    // No *_SERVICE_HOST variables: the answer can only come from DNS.
    let discovery = Discovery::from_vars(vars(&dns_vars(&server)));

    let found = discovery.resolve("adderservice").await.expect("SRV lookup");
    assert_eq!(found, service_addr);
    std::net::TcpStream::connect(found).expect("connect to the discovered address");
    listener.accept().expect("the listener saw the connection");

    assert_eq!(discovery.resolve("postgres").await.unwrap(), dns::local(1));
    assert_eq!(
        discovery.base_url("adderservice").await.unwrap(),
        format!("http://{service_addr}")
    );
}

#[tokio::test]
async fn answers_are_cached_for_the_ttl_then_asked_again() {
    let (old, new) = (dns::local(40001), dns::local(40002));
    let (server, zone) = dns_server(1, &[("auditservice", old)]);
    let discovery = Discovery::from_vars(vars(&dns_vars(&server)));
    assert_eq!(discovery.resolve("auditservice").await.unwrap(), old);

    // The service "moves"; within the TTL the cached answer is still used...
    zone.write()
        .unwrap()
        .services
        .insert("auditservice".into(), new);
    assert_eq!(
        discovery.resolve("auditservice").await.unwrap(),
        old,
        "cached for the TTL"
    );
    // ...and after it the new one is found, not cached forever.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        discovery.resolve("auditservice").await.unwrap(),
        new,
        "asked again after the TTL"
    );
}

#[tokio::test]
async fn unknown_service_falls_back_to_environment_variables() {
    let (server, _zone) = dns_server(5, &[("adderservice", dns::local(40003))]);
    let mut pairs = dns_vars(&server);
    pairs.push(("EVENTSERVICE_SERVICE_HOST", "127.0.0.1".into()));
    pairs.push(("EVENTSERVICE_SERVICE_PORT", "40004".into()));
    let discovery = Discovery::from_vars(vars(&pairs));
    assert_eq!(
        discovery.resolve("eventservice").await.unwrap(),
        dns::local(40004)
    );

    // Neither DNS nor the environment knows it: a clear error naming the SRV record.
    let err = discovery
        .resolve("webapp")
        .await
        .expect_err("webapp is unknown")
        .to_string();
    assert!(
        err.contains("_main._tcp.webapp.micro.svc.cluster.local"),
        "{err}"
    );
    assert!(err.contains("WEBAPP_SERVICE_HOST"), "{err}");
}

#[tokio::test]
async fn environment_variables_alone_are_enough() {
    let discovery = Discovery::env_only(vars(&[
        ("AUDITSERVICE_SERVICE_HOST", "127.0.0.1".into()),
        ("AUDITSERVICE_SERVICE_PORT", "40005".into()),
    ]));
    assert_eq!(
        discovery.resolve("auditservice").await.unwrap(),
        dns::local(40005)
    );
    assert!(discovery.resolve("adderservice").await.is_err());
}

/// One raw query over UDP.
fn ask(server: SocketAddr, name: &str, record_type: RecordType) -> Message {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).expect("a DNS reply");
    let reply = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(reply.metadata.id, query.metadata.id);
    reply
}

#[test]
fn records_as_kubernetes_serves_them() {
    let (server, _zone) = dns_server(
        5,
        &[("webapp", dns::local(3999)), ("redis", dns::local(6999))],
    );

    let srv = ask(
        server.addr,
        "_main._tcp.webapp.micro.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(srv.metadata.response_code, ResponseCode::NoError);
    let RData::SRV(record) = &srv.answers[0].data else {
        panic!("not an SRV answer: {srv:?}")
    };
    assert_eq!(record.port, 3999);
    assert_eq!(record.target.to_ascii(), "webapp.micro.svc.cluster.local.");
    assert_eq!(srv.answers[0].ttl, 5);
    assert!(
        matches!(srv.additionals[0].data, RData::A(_)),
        "target address in the additional section"
    );

    // Names are case-insensitive.
    let a = ask(server.addr, "REDIS.micro.svc.cluster.local.", RecordType::A);
    let RData::A(ip) = &a.answers[0].data else {
        panic!("not an A answer: {a:?}")
    };
    assert_eq!(ip.0.to_string(), "127.0.0.1");

    // A known name, another type: no records, but not NXDOMAIN.
    let aaaa = ask(
        server.addr,
        "redis.micro.svc.cluster.local.",
        RecordType::AAAA,
    );
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());

    for unknown in ["_main._tcp.nosuch.micro.svc.cluster.local.", "example.com."] {
        let reply = ask(server.addr, unknown, RecordType::SRV);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{unknown}"
        );
    }
}

#[test]
fn garbage_gets_a_format_error_and_the_server_keeps_serving() {
    let (server, _zone) = dns_server(5, &[("webapp", dns::local(3999))]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
        .send_to(&[0x12, 0x34, 0xff, 0xff, 0xff], server.addr)
        .unwrap();
    let mut buf = [0u8; 512];
    let len = socket.recv(&mut buf).expect("a reply to garbage");
    let reply = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(reply.metadata.id, 0x1234);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    let srv = ask(
        server.addr,
        "_main._tcp.webapp.micro.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(srv.answers.len(), 1);
}

#[test]
fn tcp_queries_are_answered_too() {
    use std::io::{Read, Write};
    let (server, _zone) = dns_server(5, &[("webapp", dns::local(3999))]);
    let mut query = Message::query();
    query.add_query(Query::query(
        Name::from_ascii("webapp.micro.svc.cluster.local.").unwrap(),
        RecordType::A,
    ));
    let bytes = query.to_vec().unwrap();
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&bytes).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.answers.len(), 1);
}
