//! xtask's integration tests, one binary (one link of kube, bollard and git2)
//! instead of one per file. Each module is one area; the `*_support` modules are
//! what several areas share. Run one area with `cargo xtask test -- -p xtask --test it gitops::`.

mod browser_support;
mod e2e_support;
mod gitops_support;
mod image_support;
mod manifest_support;

mod cli_flags;
mod closed_stdout;
mod cluster;
mod cluster_errors;
mod commit_environment;
mod contract;
mod dashboard;
mod dev_cli;
mod discovery;
mod e2e;
mod e2e_browser;
mod gitops;
mod gitops_rendered;
mod gitops_safety;
mod gitops_scope;
mod gitops_status;
mod gitops_webhook;
mod image_build;
mod image_errors;
mod image_registry;
mod image_reproducible;
mod logs_env;
mod manifest_errors;
mod manifest_kubectl;
mod manifest_overrides;
mod manifest_rules;
mod manifest_secrets;
mod pipeline;
mod prompt;
mod registry_busy_port;
mod render_determinism;
mod report_env;
mod review;
mod review_live;
mod tidy;
mod verbosity;
