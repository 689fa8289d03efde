//! What `cluster create|update|validate|delete` run, as data: the `aws` and
//! `kops` command lines in order. `--dry-run` prints this list and the real
//! run executes the same list (`exec.rs`), so the two cannot disagree.

use super::spec::{self, ClusterFile};
use crate::environment::Environment;
use std::path::PathBuf;

/// How long `kops validate cluster` waits for the nodes to be ready.
const VALIDATE_WAIT: &str = "10m";

/// One external command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: &'static str,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run it; a failure stops the sequence. `hint` says what to do then.
    Run {
        command: Command,
        hint: Option<&'static str>,
    },
    /// Run `then` only when `probe` fails: create what is missing.
    Unless { probe: Command, then: Command },
    /// The kubeconfig's current context must be env.yaml's (no command).
    CheckContext { context: String },
}

/// What the four commands act on.
pub struct Target<'a> {
    pub spec: &'a ClusterFile,
    pub env: &'a Environment,
    /// The rendered files, relative to the workspace root, Cluster first.
    pub files: Vec<PathBuf>,
}

const CREDENTIALS_HINT: &str = "no usable AWS credentials: configure them with `aws configure`, \
     AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";

fn aws(args: &[&str]) -> Command {
    Command {
        program: "aws",
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

fn run(command: Command) -> Step {
    Step::Run {
        command,
        hint: None,
    }
}

impl Target<'_> {
    fn kops(&self, args: &[&str]) -> Command {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--state".to_string(), self.spec.state_store.clone()]);
        Command {
            program: "kops",
            args: all,
        }
    }

    fn kops_on_cluster(&self, verb: &str, extra: &[&str]) -> Command {
        let mut args = vec![verb, "cluster", "--name", self.spec.name.as_str()];
        args.extend_from_slice(extra);
        self.kops(&args)
    }

    fn credentials(&self) -> Step {
        Step::Run {
            command: aws(&["sts", "get-caller-identity"]),
            hint: Some(CREDENTIALS_HINT),
        }
    }

    /// `-f <file>` for each rendered file.
    fn file_args(&self) -> Vec<String> {
        self.files
            .iter()
            .flat_map(|f| ["-f".to_string(), f.display().to_string()])
            .collect()
    }

    /// The state bucket, versioned as kops recommends (so a bad edit of the
    /// state can be undone).
    fn state_bucket(&self) -> Vec<Step> {
        let bucket = self.spec.state_bucket();
        let region = self.spec.region.as_str();
        let mut create = vec![
            "s3api",
            "create-bucket",
            "--bucket",
            bucket,
            "--region",
            region,
        ];
        let location = format!("LocationConstraint={region}");
        // us-east-1 is S3's default location and refuses the constraint.
        if region != "us-east-1" {
            create.extend(["--create-bucket-configuration", location.as_str()]);
        }
        vec![
            Step::Unless {
                probe: aws(&[
                    "s3api",
                    "head-bucket",
                    "--bucket",
                    bucket,
                    "--region",
                    region,
                ]),
                then: aws(&create),
            },
            run(aws(&[
                "s3api",
                "put-bucket-versioning",
                "--bucket",
                bucket,
                "--region",
                region,
                "--versioning-configuration",
                "Status=Enabled",
            ])),
        ]
    }

    /// One ECR repository per service, when the registry is ECR.
    fn repositories(&self) -> Vec<Step> {
        let Some((_, region)) = spec::ecr_registry(&self.env.registry) else {
            return vec![];
        };
        crate::workspace::SERVICES
            .iter()
            .map(|service| Step::Unless {
                probe: aws(&[
                    "ecr",
                    "describe-repositories",
                    "--repository-names",
                    service.name,
                    "--region",
                    &region,
                ]),
                then: aws(&[
                    "ecr",
                    "create-repository",
                    "--repository-name",
                    service.name,
                    "--region",
                    &region,
                ]),
            })
            .collect()
    }

    /// `update --yes --admin` also writes the kubeconfig and makes the
    /// cluster's context the current one.
    fn apply_and_wait(&self) -> Vec<Step> {
        vec![
            run(self.kops_on_cluster("update", &["--yes", "--admin"])),
            run(self.kops_on_cluster("validate", &["--wait", VALIDATE_WAIT])),
        ]
    }

    fn check_context(&self) -> Step {
        Step::CheckContext {
            context: self.env.context.clone(),
        }
    }

    /// State bucket and repositories if missing, the cluster from the
    /// rendered files if missing, then build it and wait for it.
    pub fn create(&self) -> Vec<Step> {
        let mut steps = vec![self.credentials()];
        steps.extend(self.state_bucket());
        steps.extend(self.repositories());
        let mut create_args = vec!["create".to_string()];
        create_args.extend(self.file_args());
        let create_args: Vec<&str> = create_args.iter().map(String::as_str).collect();
        steps.push(Step::Unless {
            probe: self.kops(&["get", "cluster", "--name", &self.spec.name]),
            then: self.kops(&create_args),
        });
        steps.extend(self.apply_and_wait());
        steps.push(self.check_context());
        steps
    }

    /// Replace the stored spec with the rendered files (`--force` also
    /// creates an instance group new in the spec), apply, roll the instances
    /// that must change, wait.
    pub fn update(&self) -> Vec<Step> {
        let mut replace_args = vec!["replace".to_string(), "--force".to_string()];
        replace_args.extend(self.file_args());
        let replace_args: Vec<&str> = replace_args.iter().map(String::as_str).collect();
        let mut steps = vec![self.credentials(), run(self.kops(&replace_args))];
        steps.push(run(self.kops_on_cluster("update", &["--yes", "--admin"])));
        steps.push(run(self.kops_on_cluster("rolling-update", &["--yes"])));
        steps.push(run(
            self.kops_on_cluster("validate", &["--wait", VALIDATE_WAIT])
        ));
        steps.push(self.check_context());
        steps
    }

    pub fn validate(&self) -> Vec<Step> {
        vec![
            self.credentials(),
            run(self.kops_on_cluster("validate", &["--wait", VALIDATE_WAIT])),
            self.check_context(),
        ]
    }

    /// The cluster and everything kops made for it; the state bucket and
    /// the image repositories stay (they hold no instances, and images may
    /// be wanted again).
    pub fn delete(&self) -> Vec<Step> {
        vec![
            self.credentials(),
            run(self.kops_on_cluster("delete", &["--yes"])),
        ]
    }
}

/// The programs a plan runs, each once, in order of first use.
pub fn programs(steps: &[Step]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for step in steps {
        let used: Vec<&'static str> = match step {
            Step::Run { command, .. } => vec![command.program],
            Step::Unless { probe, then } => vec![probe.program, then.program],
            Step::CheckContext { .. } => vec![],
        };
        for program in used {
            if !out.contains(&program) {
                out.push(program);
            }
        }
    }
    out
}

impl Command {
    /// The command as a shell line, quoted where the shell would need it.
    pub fn line(&self) -> String {
        std::iter::once(self.program.to_string())
            .chain(self.args.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Step {
    /// How `--dry-run` prints it (a shell could run the lines as they are).
    pub fn line(&self) -> String {
        match self {
            Step::Run { command, .. } => command.line(),
            Step::Unless { probe, then } => format!("{} || {}", probe.line(), then.line()),
            Step::CheckContext { context } => {
                format!("# check: the current kube context is `{context}` (env.yaml's context)")
            }
        }
    }
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("s3://bucket/x"), "s3://bucket/x");
        assert_eq!(
            quote("LocationConstraint=eu-west-1"),
            "LocationConstraint=eu-west-1"
        );
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
