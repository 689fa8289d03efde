//! Service discovery as in Kubernetes: the DNS SRV record
//! `_main._tcp.<service>.<DNS_NAMESPACE|micro>.<DNS_SUFFIX|svc.cluster.local>` (asking
//! `DNS_HOST:DNS_PORT` directly when set, else the system resolver), then the target's A/AAAA
//! record; fallback `<SERVICE>_SERVICE_HOST` / `<SERVICE>_SERVICE_PORT`.
//! Answers are cached for the DNS records' TTL, never longer (a moved pod must be found again).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::config::env_prefix;

/// Finds other services. Cheap to clone (shared cache and resolver).
#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

struct Inner {
    vars: HashMap<String, String>,
    namespace: String,
    suffix: String,
    /// `Err` keeps the reason the resolver could not be built (reported with lookups).
    resolver: Result<TokioResolver, String>,
    /// Where answers come from, for error messages.
    dns_server: String,
    cache: Mutex<TtlCache<String, SocketAddr>>,
    /// Recent SRV failures, so a missing record costs one DNS timeout per
    /// [`NEGATIVE_TTL`], not one per request.
    failures: Mutex<TtlCache<String, String>>,
}

/// How long a failed SRV lookup is remembered before DNS is asked again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

impl Discovery {
    /// Configured from the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars().collect())
    }

    /// Configured from the given variables only (tests use this instead of mutating the
    /// process environment): `DNS_HOST`, `DNS_PORT`, `DNS_NAMESPACE`, `DNS_SUFFIX`,
    /// `<S>_SERVICE_HOST`, `<S>_SERVICE_PORT`.
    pub fn from_vars(vars: HashMap<String, String>) -> Self {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let namespace = get("DNS_NAMESPACE").unwrap_or_else(|| "micro".into());
        let suffix = get("DNS_SUFFIX").unwrap_or_else(|| "svc.cluster.local".into());
        let (resolver, dns_server) = match get("DNS_HOST") {
            Some(host) => {
                let port = get("DNS_PORT").unwrap_or_else(|| "53".into());
                let server = format!("{host}:{port}");
                (build_direct_resolver(&host, &port), server)
            }
            None => (build_system_resolver(), "the system resolver".to_string()),
        };
        Self {
            inner: Arc::new(Inner {
                vars,
                namespace,
                suffix,
                resolver,
                dns_server,
                cache: Mutex::new(TtlCache::default()),
                failures: Mutex::new(TtlCache::default()),
            }),
        }
    }

    /// Environment-variable fallback only, no DNS at all (for tests that run services
    /// in-process and point them at each other with `<S>_SERVICE_HOST`/`<S>_SERVICE_PORT`).
    pub fn env_only(vars: HashMap<String, String>) -> Self {
        let mut d = Self::from_vars(vars);
        let inner = Arc::get_mut(&mut d.inner).expect("fresh Discovery is not shared");
        inner.resolver = Err("DNS disabled (environment-only discovery)".to_string());
        inner.dns_server = "nothing (DNS disabled)".to_string();
        d
    }

    /// The SRV name asked for `service`.
    pub fn srv_name(&self, service: &str) -> String {
        format!(
            "_main._tcp.{service}.{}.{}.",
            self.inner.namespace, self.inner.suffix
        )
    }

    /// The address of `service`: cached SRV answer, fresh SRV lookup, or the env fallback.
    pub async fn resolve(&self, service: &str) -> anyhow::Result<SocketAddr> {
        let now = Instant::now();
        if let Some(addr) = self.cache().get(service, now) {
            return Ok(addr);
        }
        let recent_failure = self.failures().get(service, now);
        let srv_error = match recent_failure {
            Some(reason) => anyhow!("{reason}"),
            None => match self.lookup_srv(service).await {
                Ok((addr, ttl)) => {
                    self.cache()
                        .insert(service.to_string(), addr, Instant::now() + ttl);
                    return Ok(addr);
                }
                Err(e) => {
                    self.failures().insert(
                        service.to_string(),
                        format!("{e:#}"),
                        Instant::now() + NEGATIVE_TTL,
                    );
                    e
                }
            },
        };
        match self.env_fallback(service) {
            Ok(Some(addr)) => {
                tracing::debug!(service, %addr, srv_error = %format!("{srv_error:#}"), "SRV lookup failed; using environment");
                Ok(addr)
            }
            Ok(None) => {
                let prefix = env_prefix(service);
                Err(anyhow!(
                    "cannot find service {service}: SRV {} via {} failed ({srv_error:#}), and {prefix}_SERVICE_HOST/{prefix}_SERVICE_PORT are not set",
                    self.srv_name(service),
                    self.inner.dns_server,
                ))
            }
            Err(e) => Err(e.context(format!(
                "cannot find service {service}: SRV lookup failed ({srv_error:#})"
            ))),
        }
    }

    /// `http://ip:port` of `service`.
    pub async fn base_url(&self, service: &str) -> anyhow::Result<String> {
        let addr = self.resolve(service).await?;
        Ok(format!("http://{addr}"))
    }

    /// Forgets a cached answer (e.g. after a connection to it failed).
    pub fn forget(&self, service: &str) {
        self.cache().remove(service);
        self.failures().remove(service);
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, TtlCache<String, String>> {
        self.inner.failures.lock().expect("discovery cache lock")
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TtlCache<String, SocketAddr>> {
        self.inner.cache.lock().expect("discovery cache lock")
    }

    /// `Ok(None)` when the variables are not set; `Err` when they are set but invalid.
    fn env_fallback(&self, service: &str) -> anyhow::Result<Option<SocketAddr>> {
        let prefix = env_prefix(service);
        let (host_key, port_key) = (
            format!("{prefix}_SERVICE_HOST"),
            format!("{prefix}_SERVICE_PORT"),
        );
        let get = |k: &str| self.inner.vars.get(k).filter(|v| !v.is_empty());
        let (Some(host), Some(port)) = (get(&host_key), get(&port_key)) else {
            return Ok(None);
        };
        let ip: IpAddr = host
            .parse()
            .map_err(|_| anyhow!("{host_key}={host:?} is not an IP address"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| anyhow!("{port_key}={port:?} is not a port number"))?;
        Ok(Some(SocketAddr::new(ip, port)))
    }

    /// SRV then address lookup; returns the address and how long it may be cached.
    async fn lookup_srv(&self, service: &str) -> anyhow::Result<(SocketAddr, Duration)> {
        let resolver = self.inner.resolver.as_ref().map_err(|e| anyhow!("{e}"))?;
        let name = self.srv_name(service);
        let srv = resolver.srv_lookup(name.as_str()).await?;
        let (target, port, srv_ttl) = srv
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((s.priority, s.target.clone(), s.port, r.ttl)),
                _ => None,
            })
            .min_by_key(|(priority, ..)| *priority)
            .map(|(_, t, p, ttl)| (t, p, ttl))
            .ok_or_else(|| anyhow!("no SRV record in the answer"))?;
        let target_text = target.to_utf8();
        let target_text = target_text.trim_end_matches('.');
        // A target that is an IP literal needs no second lookup.
        if let Ok(ip) = target_text.parse::<IpAddr>() {
            return Ok((
                SocketAddr::new(ip, port),
                Duration::from_secs(srv_ttl.into()),
            ));
        }
        let ips = resolver
            .lookup_ip(target.clone())
            .await
            .with_context(|| format!("address of SRV target {target_text}"))?;
        let ip = ips
            .iter()
            .next()
            .ok_or_else(|| anyhow!("no address for SRV target {target_text}"))?;
        let ip_ttl = ips.valid_until().saturating_duration_since(Instant::now());
        let ttl = Duration::from_secs(srv_ttl.into()).min(ip_ttl);
        Ok((SocketAddr::new(ip, port), ttl))
    }
}

fn resolver_options() -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    // Fail over to the environment fallback quickly instead of hanging a request.
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 1;
    // Our own TTL cache sits in front; the resolver's cache would only hold the same data.
    opts.cache_size = 0;
    opts
}

fn build_direct_resolver(host: &str, port: &str) -> Result<TokioResolver, String> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("DNS_HOST={host:?} is not an IP address"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("DNS_PORT={port:?} is not a port number"))?;
    let connection = |protocol| {
        let mut c = ConnectionConfig::new(protocol);
        c.port = port;
        c
    };
    let server = NameServerConfig::new(
        ip,
        true,
        vec![
            connection(ProtocolConfig::Udp),
            connection(ProtocolConfig::Tcp),
        ],
    );
    TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    )
    .with_options(resolver_options())
    .build()
    .map_err(|e| format!("cannot set up a resolver for {ip}:{port}: {e}"))
}

fn build_system_resolver() -> Result<TokioResolver, String> {
    let builder = TokioResolver::builder_tokio()
        .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
    builder
        .with_options(resolver_options())
        .build()
        .map_err(|e| format!("cannot set up the system resolver: {e}"))
}

/// A map whose entries expire at a given instant (the DNS TTL).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: HashMap<K, (V, Instant)>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    /// The value if it is still valid at `now`; expired entries are dropped.
    pub fn get<Q>(&mut self, key: &Q, now: Instant) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        match self.entries.get(key) {
            Some((v, until)) if now < *until => Some(v.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` until `valid_until` (a zero TTL, `valid_until <= now`, stores nothing useful).
    pub fn insert(&mut self, key: K, value: V, valid_until: Instant) {
        self.entries.insert(key, (value, valid_until));
    }

    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries.remove(key);
    }
}
