//! Discovery against a real (tiny, in-test) DNS server on loopback: SRV then A lookups, the
//! TTL cache (answers reused within the TTL, asked again after it), SRV targets that are IP
//! literals, and the `<S>_SERVICE_HOST`/`<S>_SERVICE_PORT` fallback with its errors.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use micro_common::Discovery;
use tokio::net::UdpSocket;

/// (lower-case FQDN, type) → (records, ttl).
type Records = HashMap<(String, RecordType), (Vec<RData>, u32)>;

/// Zone data served by the test DNS server. Counts the questions asked.
#[derive(Clone, Default)]
struct Zone {
    records: Arc<Mutex<Records>>,
    asked: Arc<Mutex<HashMap<String, usize>>>,
}

impl Zone {
    fn set(&self, name: &str, kind: RecordType, data: Vec<RData>, ttl: u32) {
        self.records
            .lock()
            .unwrap()
            .insert((name.to_string(), kind), (data, ttl));
    }

    fn srv(&self, service: &str, target: &str, port: u16, ttl: u32) {
        let rdata = RData::SRV(SRV::new(0, 0, port, Name::from_ascii(target).unwrap()));
        self.set(&srv_name(service), RecordType::SRV, vec![rdata], ttl);
    }

    fn asked(&self, name: &str) -> usize {
        self.asked.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// Serves the zone over UDP on a free loopback port; returns the port.
    async fn serve(&self) -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let zone = self.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let answer = zone.answer(&query);
                let _ = socket.send_to(&answer.to_vec().unwrap(), from).await;
            }
        });
        port
    }

    fn answer(&self, query: &Message) -> Message {
        let mut response = Message::response(query.metadata.id, OpCode::Query);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        let Some(q) = query.queries.first() else {
            return response;
        };
        response.add_query(q.clone());
        let name = q.name().to_ascii().to_ascii_lowercase();
        *self.asked.lock().unwrap().entry(name.clone()).or_default() += 1;
        let found = self
            .records
            .lock()
            .unwrap()
            .get(&(name, q.query_type()))
            .cloned();
        match found {
            Some((data, ttl)) => {
                for rdata in data {
                    response.add_answer(Record::from_rdata(q.name().clone(), ttl, rdata));
                }
            }
            None => response.metadata.response_code = ResponseCode::NXDomain,
        }
        response
    }
}

fn srv_name(service: &str) -> String {
    format!("_main._tcp.{service}.micro.svc.cluster.local.")
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn discovery_via(dns_port: u16, extra: &[(&str, &str)]) -> Discovery {
    let port = dns_port.to_string();
    let mut v = vars(&[("DNS_HOST", "127.0.0.1"), ("DNS_PORT", &port)]);
    v.extend(vars(extra));
    Discovery::from_vars(v)
}

#[tokio::test]
async fn srv_then_address_record() {
    let zone = Zone::default();
    zone.srv("adderservice", "adder.pods.local.", 18080, 60);
    zone.set(
        "adder.pods.local.",
        RecordType::A,
        vec![RData::A(A(Ipv4Addr::new(127, 0, 0, 7)))],
        60,
    );
    let d = discovery_via(zone.serve().await, &[]);
    assert_eq!(
        d.resolve("adderservice").await.unwrap(),
        "127.0.0.7:18080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        d.base_url("adderservice").await.unwrap(),
        "http://127.0.0.7:18080"
    );
}

#[tokio::test]
async fn srv_target_may_be_an_ip_literal() {
    let zone = Zone::default();
    zone.srv("redis", "127.0.0.9.", 16379, 60);
    let d = discovery_via(zone.serve().await, &[]);
    assert_eq!(
        d.resolve("redis").await.unwrap(),
        "127.0.0.9:16379".parse::<SocketAddr>().unwrap()
    );
}

#[tokio::test]
async fn answers_are_cached_for_the_ttl_and_no_longer() {
    let zone = Zone::default();
    zone.srv("auditservice", "127.0.0.1.", 1111, 1);
    let d = discovery_via(zone.serve().await, &[]);
    let name = srv_name("auditservice");

    assert_eq!(d.resolve("auditservice").await.unwrap().port(), 1111);
    assert_eq!(d.resolve("auditservice").await.unwrap().port(), 1111);
    assert_eq!(
        zone.asked(&name),
        1,
        "second resolve within the TTL uses the cache"
    );

    // The service moves; once the 1 s TTL has passed the new address is found.
    zone.srv("auditservice", "127.0.0.1.", 2222, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(d.resolve("auditservice").await.unwrap().port(), 2222);
    assert_eq!(zone.asked(&name), 2);

    // A TTL of 0 means "do not cache".
    zone.srv("auditservice", "127.0.0.1.", 3333, 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    d.resolve("auditservice").await.unwrap();
    d.resolve("auditservice").await.unwrap();
    assert_eq!(zone.asked(&name), 4);
}

#[tokio::test]
async fn clones_share_the_cache() {
    let zone = Zone::default();
    zone.srv("webapp", "127.0.0.1.", 3001, 60);
    let d = discovery_via(zone.serve().await, &[]);
    let other = d.clone();
    d.resolve("webapp").await.unwrap();
    other.resolve("webapp").await.unwrap();
    assert_eq!(zone.asked(&srv_name("webapp")), 1);
    other.forget("webapp");
    d.resolve("webapp").await.unwrap();
    assert_eq!(zone.asked(&srv_name("webapp")), 2);
}

#[tokio::test]
async fn namespace_and_suffix_come_from_the_environment() {
    let zone = Zone::default();
    zone.set(
        "_main._tcp.postgres.staging.example.",
        RecordType::SRV,
        vec![RData::SRV(SRV::new(
            0,
            0,
            5433,
            Name::from_ascii("127.0.0.1.").unwrap(),
        ))],
        60,
    );
    let d = discovery_via(
        zone.serve().await,
        &[("DNS_NAMESPACE", "staging"), ("DNS_SUFFIX", "example")],
    );
    assert_eq!(
        d.srv_name("postgres"),
        "_main._tcp.postgres.staging.example."
    );
    assert_eq!(d.resolve("postgres").await.unwrap().port(), 5433);
}

#[tokio::test]
async fn falls_back_to_service_env_vars_when_there_is_no_srv_record() {
    let zone = Zone::default();
    let d = discovery_via(
        zone.serve().await,
        &[
            ("EVENT_SERVICE_SERVICE_HOST", "127.0.0.3"),
            ("EVENT_SERVICE_SERVICE_PORT", "18082"),
        ],
    );
    assert_eq!(
        d.resolve("event-service").await.unwrap(),
        "127.0.0.3:18082".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(zone.asked(&srv_name("event-service")), 1);
    // The failure is remembered briefly: the next lookup does not ask DNS again.
    d.resolve("event-service").await.unwrap();
    assert_eq!(zone.asked(&srv_name("event-service")), 1);
}

#[tokio::test]
async fn env_only_discovery_never_asks_dns() {
    let d = Discovery::env_only(vars(&[
        ("ADDERSERVICE_SERVICE_HOST", "127.0.0.1"),
        ("ADDERSERVICE_SERVICE_PORT", "8090"),
        ("DNS_HOST", "127.0.0.1"),
        ("DNS_PORT", "1"),
    ]));
    assert_eq!(
        d.base_url("adderservice").await.unwrap(),
        "http://127.0.0.1:8090"
    );
}

#[tokio::test]
async fn error_names_both_methods_tried() {
    let zone = Zone::default();
    let d = discovery_via(zone.serve().await, &[]);
    let e = format!("{:#}", d.resolve("auditservice").await.unwrap_err());
    assert!(
        e.contains("_main._tcp.auditservice.micro.svc.cluster.local."),
        "{e}"
    );
    assert!(e.contains("127.0.0.1:"), "names the DNS server asked: {e}");
    assert!(
        e.contains("AUDITSERVICE_SERVICE_HOST/AUDITSERVICE_SERVICE_PORT"),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_fallback_values_are_reported() {
    let d = Discovery::env_only(vars(&[
        ("REDIS_SERVICE_HOST", "not-an-ip"),
        ("REDIS_SERVICE_PORT", "6379"),
    ]));
    let e = format!("{:#}", d.resolve("redis").await.unwrap_err());
    assert!(
        e.contains("REDIS_SERVICE_HOST=\"not-an-ip\" is not an IP address"),
        "{e}"
    );
    let d = Discovery::env_only(vars(&[
        ("REDIS_SERVICE_HOST", "127.0.0.1"),
        ("REDIS_SERVICE_PORT", "99999"),
    ]));
    let e = format!("{:#}", d.resolve("redis").await.unwrap_err());
    assert!(
        e.contains("REDIS_SERVICE_PORT=\"99999\" is not a port number"),
        "{e}"
    );
}
