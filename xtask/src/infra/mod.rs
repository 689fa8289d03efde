//! Private stateful dependencies for dev and test: PostgreSQL, Redis, a registry,
//! each a child process with its data under target/.
pub mod postgres;
pub mod process;
pub mod redis;
pub mod registry;
