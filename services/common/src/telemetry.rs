//! Logging set-up: `tracing` with an `RUST_LOG` filter (default `info`), JSON lines when
//! `LOG_FORMAT=json` (what log collectors in a cluster want), human-readable otherwise.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call does nothing),
/// which keeps tests that start several services in one process simple.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colour codes only for a person at a terminal, not for log collectors or the dev runner.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let installed = if json {
        builder.json().flatten_event(true).try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    };
    if installed {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    }
}
