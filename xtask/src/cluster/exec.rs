//! Runs a plan of `commands.rs` through xshell, or prints it (`--dry-run`).
//! Every program the plan needs is looked up before the first command runs,
//! so a missing `kops` or `aws` stops it with one line and nothing done.

use super::commands::{self, Command, Step};
use crate::environment::Environment;
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use xshell::{Shell, cmd};

/// Where to get each program the plan may need.
fn install_hint(program: &str) -> &'static str {
    match program {
        "kops" => "install it from https://kops.sigs.k8s.io/getting_started/install/",
        "aws" => {
            "install the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
        }
        _ => "install it",
    }
}

/// Prints every step, in order, and runs none.
pub fn print(steps: &[Step]) -> Result<()> {
    for step in steps {
        outln!("{}", step.line())?;
    }
    Ok(())
}

/// Runs the steps in `root`, each line printed before it runs.
pub fn run(root: &Path, env: &Environment, steps: &[Step]) -> Result<()> {
    for program in commands::programs(steps) {
        if crate::local::process::which(program).is_none() {
            bail!(
                "`{program}` is not on PATH: {}; nothing was run",
                install_hint(program)
            );
        }
    }
    let sh = Shell::new()?;
    sh.change_dir(root);
    for step in steps {
        outln!("$ {}", step.line())?;
        match step {
            Step::Run {
                command,
                hint: Some(hint),
            } => execute_captured(&sh, command).map_err(|said| {
                anyhow!(
                    "{hint} (`{}`: {said}); the steps after it were not run",
                    command.line()
                )
            })?,
            Step::Run {
                command,
                hint: None,
            } => execute(&sh, command).map_err(|end| failed(command, &end))?,
            Step::Unless { probe, then } => {
                if probe_succeeds(&sh, probe) {
                    outln!("  exists, not created")?;
                } else {
                    execute(&sh, then).map_err(|end| failed(then, &end))?;
                }
            }
            Step::CheckContext { .. } => check_context(env)?,
        }
    }
    Ok(())
}

/// Runs it with our stdout and stderr; on failure, how it ended.
fn execute(sh: &Shell, command: &Command) -> Result<(), String> {
    let program = command.program;
    let args = &command.args;
    cmd!(sh, "{program} {args...}")
        .quiet()
        .run()
        .map_err(|e| how_it_ended(&e))
}

/// Runs it with its output captured (a check such as the credentials'):
/// on failure, the last line it wrote to stderr, or how it ended.
fn execute_captured(sh: &Shell, command: &Command) -> Result<(), String> {
    let program = command.program;
    let args = &command.args;
    let output = cmd!(sh, "{program} {args...}")
        .quiet()
        .ignore_status()
        .output()
        .map_err(|e| how_it_ended(&e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(ToString::to_string)
        .unwrap_or_else(|| match output.status.code() {
            Some(code) => format!("exit {code}"),
            None => "killed by a signal".to_string(),
        }))
}

fn failed(command: &Command, end: &str) -> anyhow::Error {
    anyhow!(
        "`{}` failed ({end}); the steps after it were not run",
        command.line()
    )
}

/// xshell's message repeats the whole command; keep how it ended.
fn how_it_ended(err: &xshell::Error) -> String {
    let text = err.to_string();
    match text.rsplit_once("`: ") {
        Some((head, code)) if head.starts_with("command exited with non-zero code") => {
            format!("exit {code}")
        }
        _ => text,
    }
}

fn probe_succeeds(sh: &Shell, probe: &Command) -> bool {
    let program = probe.program;
    let args = &probe.args;
    cmd!(sh, "{program} {args...}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// The context kops made current must be the one `sync` will insist on;
/// the same check as sync's, through the same connect.
fn check_context(env: &Environment) -> Result<()> {
    let runtime = crate::cli::runtime()?;
    let cluster = runtime
        .block_on(crate::gitops::cluster::connect(None, None, env))
        .map_err(|e| anyhow!("after kops: {e} (`kops export kubecfg --admin` writes it again)"))?;
    outln!("  the current kube context is `{}`", cluster.context)?;
    Ok(())
}
