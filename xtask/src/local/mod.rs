//! Private stateful dependencies for dev and test: PostgreSQL, Redis, a registry,
//! each a child process with its data under target/.
// A toolbox shared by `dev`, `test`, `bench` and `registry`: not every caller
// uses every item.
#![allow(dead_code)]
pub mod postgres;
pub mod process;
pub mod redis;
pub mod registry;
