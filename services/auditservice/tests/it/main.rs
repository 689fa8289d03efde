//! auditservice's integration tests in one binary, each against its own fresh
//! database of the test PostgreSQL; `support` starts the service in-process.

mod support;

mod api;
mod durability;
mod migrations;
mod readiness;
