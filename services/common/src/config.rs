//! Configuration from the environment, following the Kubernetes conventions
//! (`<SERVICE>_SERVICE_HOST`/`_PORT` links, `DNS_*` for SRV discovery).

use std::net::SocketAddr;

/// The environment-variable prefix Kubernetes uses for a service: upper case, `-` → `_`.
pub fn env_prefix(service: &str) -> String {
    service.to_ascii_uppercase().replace('-', "_")
}

/// `key` from the environment, or `default` when unset or empty.
pub fn env_or(key: &str, default: &str) -> String {
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_string(),
    }
}

/// The service's own listen port: `<NAME>_SERVICE_PORT`, else `default`.
///
/// A value that is not a port is an error (a typo should not silently move the service).
pub fn port(service: &str, default: u16) -> anyhow::Result<u16> {
    let key = format!("{}_SERVICE_PORT", env_prefix(service));
    match std::env::var(&key) {
        Ok(v) if !v.is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{key}={v:?} is not a port number")),
        _ => Ok(default),
    }
}

/// Where the service listens: `LISTEN_HOST` (default `0.0.0.0`) and [`port`].
pub fn listen_addr(service: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    let host = env_or("LISTEN_HOST", "0.0.0.0");
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| anyhow::anyhow!("LISTEN_HOST={host:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port(service, default_port)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_upper_case_with_underscores() {
        assert_eq!(env_prefix("event-service"), "EVENT_SERVICE");
        assert_eq!(env_prefix("redis"), "REDIS");
    }
}
