//! micro-common's integration tests in one binary: discovery, the Postgres and
//! Redis helpers against the real servers, and the HTTP server's lifecycle.

mod discovery;
mod postgres;
mod redis;
mod server;
