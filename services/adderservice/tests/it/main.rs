//! adderservice's integration tests in one binary: the HTTP contract and the
//! SIGTERM drain of the real binary.

mod http;
mod sigterm;
