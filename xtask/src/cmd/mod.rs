//! Thin commands: each parses its flags and calls into the layers
//! (`local`, `gitops`, the test cluster) without logic of its own.

pub mod logs;
pub mod report;
pub mod test;
pub mod testcluster;
