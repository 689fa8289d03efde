//! `cargo xtask cluster`: the kops spec rendered from environments/<env>/cluster.yaml
//! (golden files, determinism, `--check`), one negative fixture per rule, and the
//! create/update/validate/delete sequences, printed (`--dry-run`) and run against
//! fake `kops` and `aws` scripts that record their arguments, so nothing reaches a cloud.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn golden(path: &str) -> PathBuf {
    workspace_root()
        .join("xtask/tests/golden/cluster")
        .join(path)
}

/// A root holding environments/aws/ with the committed env.yaml and
/// cluster.yaml (and nothing rendered), plus a folder of fake programs.
struct Fixture {
    dir: tempfile::TempDir,
}

const STATE: &str = "s3://micro-kops-state-123456789012";

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(fixture.env_dir()).unwrap();
        for file in ["env.yaml", "cluster.yaml"] {
            std::fs::copy(
                workspace_root().join("environments/aws").join(file),
                fixture.env_dir().join(file),
            )
            .unwrap();
        }
        fixture
    }

    /// The committed files replaced by those of a fixture folder.
    fn with_files_of(dir: &Path) -> Fixture {
        let fixture = Fixture::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") {
                std::fs::copy(entry.path(), fixture.env_dir().join(&name)).unwrap();
            }
        }
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn env_dir(&self) -> PathBuf {
        self.root().join("environments/aws")
    }

    fn cluster_dir(&self) -> PathBuf {
        self.env_dir().join("cluster")
    }

    fn rendered(&self) -> BTreeMap<String, String> {
        read_dir_files(&self.cluster_dir())
    }

    /// `xtask cluster <args> --root <here>`, PATH holding only the fakes.
    fn xtask(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("cluster")
            .args(args)
            .arg("--root")
            .arg(self.root())
            .env("PATH", self.bin())
            .env("FAKE_LOG", self.log())
            .env("KUBECONFIG", self.root().join("kubeconfig"))
            .env_remove("FAKE_NO_CREDENTIALS")
            .env_remove("FAKE_CONTEXT")
            .env_remove("FAKE_FAIL_UPDATE")
            .stdin(Stdio::null());
        command
    }

    fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }

    fn log(&self) -> PathBuf {
        self.root().join("calls.log")
    }

    /// The command lines the fakes were called with, in order.
    fn calls(&self) -> Vec<String> {
        match std::fs::read_to_string(self.log()) {
            Ok(text) => text.lines().map(ToString::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Installs fake `kops` and/or `aws`: they append their argv to
    /// $FAKE_LOG and answer like the real ones for the state this test
    /// pretends: no bucket, no cluster, only the `webapp` repository.
    fn install_fakes(&self, programs: &[&str]) {
        std::fs::create_dir_all(self.bin()).unwrap();
        for program in programs {
            let path = self.bin().join(program);
            std::fs::write(&path, FAKE).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn render(&self) {
        assert_ok(&self.xtask(&["render", "--env", "aws"]));
    }
}

/// Only shell built-ins: the tests run it with PATH holding nothing else.
const FAKE: &str = r#"#!/bin/sh
name=${0##*/}
{ printf '%s' "$name"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; } >> "$FAKE_LOG"
case "$name $*" in
  "aws sts get-caller-identity"*)
    if [ -n "$FAKE_NO_CREDENTIALS" ]; then
      echo 'Unable to locate credentials. You can configure credentials by running "aws configure".' >&2
      exit 255
    fi
    echo '{"Account": "123456789012"}' ;;
  "aws s3api head-bucket"*)
    echo 'An error occurred (404) when calling the HeadBucket operation: Not Found' >&2; exit 254 ;;
  "aws ecr describe-repositories --repository-names webapp "*)
    echo '{"repositories": [{"repositoryName": "webapp"}]}' ;;
  "aws ecr describe-repositories"*)
    echo 'An error occurred (RepositoryNotFoundException)' >&2; exit 254 ;;
  "kops get cluster"*)
    echo 'cluster not found' >&2; exit 1 ;;
  "kops update cluster"*)
    if [ -n "$FAKE_FAIL_UPDATE" ]; then echo 'error: update failed' >&2; exit 1; fi
    ctx=${FAKE_CONTEXT:-micro.k8s.local}
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: %s\n  cluster: {server: "https://127.0.0.1:1"}\nusers:\n- name: %s\n  user: {token: fake}\ncontexts:\n- name: %s\n  context: {cluster: %s, user: %s}\ncurrent-context: %s\n' \
      "$ctx" "$ctx" "$ctx" "$ctx" "$ctx" "$ctx" > "$KUBECONFIG" ;;
esac
exit 0
"#;

fn read_dir_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, std::fs::read_to_string(entry.path()).unwrap());
    }
    files
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Exit 2 with exactly one line on stderr, which contains every fragment.
fn assert_one_line_error(output: &Output, fragments: &[&str]) {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for fragment in fragments {
        assert!(err.contains(fragment), "`{fragment}` missing from: {err}");
    }
}

const FILES: &[&str] = &[
    "environments/aws/cluster/cluster-micro.k8s.local.yaml",
    "environments/aws/cluster/instancegroup-control-plane-eu-west-1a.yaml",
    "environments/aws/cluster/instancegroup-nodes-eu-west-1a.yaml",
    "environments/aws/cluster/instancegroup-nodes-eu-west-1b.yaml",
    "environments/aws/cluster/instancegroup-nodes-eu-west-1c.yaml",
];

fn file_args() -> String {
    FILES
        .iter()
        .map(|f| format!("-f {f}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn create_lines() -> Vec<String> {
    let bucket = "micro-kops-state-123456789012";
    let mut lines = vec![
        "aws sts get-caller-identity".to_string(),
        format!(
            "aws s3api head-bucket --bucket {bucket} --region eu-west-1 || aws s3api create-bucket --bucket {bucket} --region eu-west-1 --create-bucket-configuration LocationConstraint=eu-west-1"
        ),
        format!(
            "aws s3api put-bucket-versioning --bucket {bucket} --region eu-west-1 --versioning-configuration Status=Enabled"
        ),
    ];
    for service in [
        "adderservice",
        "auditservice",
        "eventservice",
        "webapp",
        "report",
    ] {
        lines.push(format!(
            "aws ecr describe-repositories --repository-names {service} --region eu-west-1 || aws ecr create-repository --repository-name {service} --region eu-west-1"
        ));
    }
    lines.extend([
        format!(
            "kops get cluster --name micro.k8s.local --state {STATE} || kops create {} --state {STATE}",
            file_args()
        ),
        format!("kops update cluster --name micro.k8s.local --yes --admin --state {STATE}"),
        format!("kops validate cluster --name micro.k8s.local --wait 10m --state {STATE}"),
        "# check: the current kube context is `micro.k8s.local` (env.yaml's context)".to_string(),
    ]);
    lines
}

fn delete_lines() -> Vec<String> {
    vec![
        "aws sts get-caller-identity".to_string(),
        format!("kops delete cluster --name micro.k8s.local --yes --state {STATE}"),
    ]
}

fn update_lines() -> Vec<String> {
    vec![
        "aws sts get-caller-identity".to_string(),
        format!("kops replace --force {} --state {STATE}", file_args()),
        format!("kops update cluster --name micro.k8s.local --yes --admin --state {STATE}"),
        format!("kops rolling-update cluster --name micro.k8s.local --yes --state {STATE}"),
        format!("kops validate cluster --name micro.k8s.local --wait 10m --state {STATE}"),
        "# check: the current kube context is `micro.k8s.local` (env.yaml's context)".to_string(),
    ]
}

fn lines(output: &Output) -> Vec<String> {
    stdout(output).lines().map(ToString::to_string).collect()
}

#[test]
fn the_committed_spec_renders_to_the_committed_files() {
    let fixture = Fixture::new();
    fixture.render();
    let committed = read_dir_files(&workspace_root().join("environments/aws/cluster"));
    assert_eq!(
        committed
            .keys()
            .map(|k| format!("environments/aws/cluster/{k}"))
            .collect::<Vec<_>>(),
        FILES,
        "one Cluster and four InstanceGroups"
    );
    assert_eq!(fixture.rendered(), committed);
}

#[test]
fn a_highly_available_spec_renders_to_its_golden_files() {
    let fixture = Fixture::with_files_of(&golden("ha"));
    fixture.render();
    let expected = read_dir_files(&golden("ha/expected"));
    assert_eq!(expected.len(), 7, "a Cluster and six InstanceGroups");
    for (name, text) in &expected {
        assert_eq!(fixture.rendered().get(name), Some(text), "{name} differs");
    }
    assert_eq!(fixture.rendered().len(), expected.len());
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let fixture = Fixture::new();
    fixture.render();
    let first = fixture.rendered();
    let output = fixture.xtask(&["render", "--env", "aws"]);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        "environments/aws/cluster: 0 written, 0 removed, 5 unchanged\n"
    );
    assert_eq!(fixture.rendered(), first);
    let again = Fixture::new();
    again.render();
    assert_eq!(again.rendered(), first, "a fresh render differs");
    for text in first.values() {
        assert!(text.starts_with("# Generated by `cargo xtask cluster render --env aws`"));
        assert!(!text.contains("creationTimestamp"), "{text}");
    }
}

#[test]
fn check_catches_a_hand_edit_a_missing_and_an_extra_file() {
    let fixture = Fixture::new();
    fixture.render();
    let clean = fixture.xtask(&["render", "--env", "aws", "--check"]);
    assert_ok(&clean);
    assert_eq!(
        stdout(&clean),
        "environments/aws/cluster: 5 files, all as rendered\n"
    );

    let edited = fixture
        .cluster_dir()
        .join("instancegroup-nodes-eu-west-1a.yaml");
    let text = std::fs::read_to_string(&edited).unwrap();
    let by_hand = text.replace("maxSize: 1", "maxSize: 5");
    assert_ne!(by_hand, text);
    std::fs::write(&edited, &by_hand).unwrap();
    std::fs::remove_file(
        fixture
            .cluster_dir()
            .join("instancegroup-nodes-eu-west-1c.yaml"),
    )
    .unwrap();
    std::fs::write(
        fixture.cluster_dir().join("instancegroup-extra.yaml"),
        "kind: InstanceGroup\n",
    )
    .unwrap();

    let output = fixture.xtask(&["render", "--env", "aws", "--check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "differs: environments/aws/cluster/instancegroup-nodes-eu-west-1a.yaml\n\
         missing: environments/aws/cluster/instancegroup-nodes-eu-west-1c.yaml\n\
         not rendered: environments/aws/cluster/instancegroup-extra.yaml\n"
    );
    assert!(
        stderr(&output).contains("re-render and commit"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&edited).unwrap(),
        by_hand,
        "--check wrote"
    );

    let json = fixture.xtask(&["render", "--env", "aws", "--check", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["clean"], false);
    assert_eq!(doc["changed"][0], "instancegroup-nodes-eu-west-1a.yaml");
    assert_eq!(doc["unchanged"], 3);

    // Render repairs all three.
    fixture.render();
    assert_ok(&fixture.xtask(&["render", "--env", "aws", "--check"]));
}

#[test]
fn every_rule_has_a_negative_fixture_that_fails_with_its_message() {
    let rules = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["cluster", "rules"])
        .output()
        .unwrap();
    assert_ok(&rules);
    let mut names: Vec<String> = stdout(&rules)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    names.sort();
    let mut fixtures: Vec<String> = std::fs::read_dir(golden("invalid"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    fixtures.sort();
    assert_eq!(names, fixtures, "one fixture per rule, named after it");
    assert!(names.len() >= 10, "{names:?}");

    for rule in &names {
        let dir = golden("invalid").join(rule);
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        assert_eq!(
            expected.lines().count(),
            1,
            "{rule}: expected.txt is one line"
        );
        let fixture = Fixture::with_files_of(&dir);
        fixture.install_fakes(&["kops", "aws"]);
        let output = fixture.xtask(&["render", "--env", "aws"]);
        assert_eq!(output.status.code(), Some(2), "{rule}: {}", stderr(&output));
        assert_eq!(stderr(&output), expected, "{rule}");
        assert!(fixture.rendered().is_empty(), "{rule}: render wrote files");
        // The same rules stop create before its first command.
        let create = fixture.xtask(&["create", "--env", "aws"]);
        assert_eq!(stderr(&create), expected, "{rule}: create");
        assert_eq!(
            fixture.calls(),
            Vec::<String>::new(),
            "{rule}: create ran commands"
        );
    }
}

#[test]
fn an_unknown_key_names_the_file_line_and_key() {
    let fixture = Fixture::new();
    let spec = fixture.env_dir().join("cluster.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replace("nodes:\n", "nodes:\n  size: 3\n")).unwrap();
    let output = fixture.xtask(&["render", "--env", "aws"]);
    assert_one_line_error(
        &output,
        &[
            "environments/aws/cluster.yaml",
            "unknown field `size`",
            "line ",
        ],
    );
}

#[test]
fn dry_run_of_create_prints_every_command_in_order_and_runs_none() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture.xtask(&["create", "--env", "aws", "--dry-run"]);
    assert_ok(&output);
    assert_eq!(lines(&output), create_lines());
    assert_eq!(
        fixture.calls(),
        Vec::<String>::new(),
        "a dry run ran commands"
    );
}

#[test]
fn dry_run_of_delete_prints_its_commands_needs_no_confirmation_and_runs_none() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture.xtask(&["delete", "--env", "aws", "--dry-run"]);
    assert_ok(&output);
    assert_eq!(lines(&output), delete_lines());
    assert_eq!(fixture.calls(), Vec::<String>::new());
}

#[test]
fn dry_run_of_update_and_validate() {
    let fixture = Fixture::new();
    fixture.render();
    let update = fixture.xtask(&["update", "--env", "aws", "--dry-run"]);
    assert_ok(&update);
    assert_eq!(lines(&update), update_lines());
    let validate = fixture.xtask(&["validate", "--env", "aws", "--dry-run"]);
    assert_ok(&validate);
    assert_eq!(
        lines(&validate),
        [
            "aws sts get-caller-identity".to_string(),
            format!("kops validate cluster --name micro.k8s.local --wait 10m --state {STATE}"),
            "# check: the current kube context is `micro.k8s.local` (env.yaml's context)"
                .to_string(),
        ]
    );
}

#[test]
fn a_bucket_in_us_east_1_is_created_without_a_location_constraint() {
    let fixture = Fixture::with_files_of(&golden("ha"));
    fixture.render();
    let output = fixture.xtask(&["create", "--env", "aws", "--dry-run"]);
    assert_ok(&output);
    let text = stdout(&output);
    assert!(
        text.contains(
            "|| aws s3api create-bucket --bucket example-kops-state --region us-east-1\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains("aws ecr"),
        "a registry that is not ECR gets no repositories: {text}"
    );
}

/// What the fakes record for a create: each `a || b` line runs `a`, then
/// `b` only where the fake says it is missing (all but webapp's repository).
fn recorded_create() -> Vec<String> {
    let mut calls = Vec::new();
    for line in create_lines() {
        if line.starts_with('#') {
            continue;
        }
        match line.split_once(" || ") {
            Some((probe, then)) => {
                calls.push(probe.to_string());
                if !probe.contains("--repository-names webapp ") {
                    calls.push(then.to_string());
                }
            }
            None => calls.push(line),
        }
    }
    calls
}

#[test]
fn create_runs_the_printed_sequence_and_checks_the_context() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture.xtask(&["create", "--env", "aws"]);
    assert_ok(&output);
    assert_eq!(fixture.calls(), recorded_create());
    let text = stdout(&output);
    assert!(
        text.contains("repository-names webapp --region eu-west-1 || aws ecr create-repository --repository-name webapp --region eu-west-1\n  exists, not created\n"),
        "{text}"
    );
    assert!(
        text.ends_with("  the current kube context is `micro.k8s.local`\n"),
        "{text}"
    );
}

#[test]
fn update_validate_and_delete_run_what_they_print() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    for (args, expected) in [
        (vec!["update", "--env", "aws"], update_lines()),
        (vec!["delete", "--env", "aws", "--yes"], delete_lines()),
    ] {
        let _ = std::fs::remove_file(fixture.log());
        let output = fixture.xtask(&args);
        assert_ok(&output);
        let ran: Vec<String> = expected
            .into_iter()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(fixture.calls(), ran, "{args:?}");
    }
    // validate checks the context kops wrote during update.
    let _ = std::fs::remove_file(fixture.log());
    assert_ok(&fixture.xtask(&["validate", "--env", "aws"]));
    assert_eq!(fixture.calls().len(), 2);
}

#[test]
fn delete_without_yes_and_without_a_terminal_refuses_and_runs_nothing() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture.xtask(&["delete", "--env", "aws"]);
    assert_one_line_error(
        &output,
        &["pass --yes", "micro.k8s.local", "nothing was deleted"],
    );
    assert_eq!(fixture.calls(), Vec::<String>::new());
}

#[test]
fn a_missing_kops_is_one_line_and_nothing_runs() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["aws"]);
    let output = fixture.xtask(&["create", "--env", "aws"]);
    assert_one_line_error(
        &output,
        &[
            "`kops` is not on PATH",
            "kops.sigs.k8s.io",
            "nothing was run",
        ],
    );
    assert_eq!(
        fixture.calls(),
        Vec::<String>::new(),
        "aws ran before kops was found"
    );

    let no_aws = Fixture::new();
    no_aws.render();
    no_aws.install_fakes(&["kops"]);
    let output = no_aws.xtask(&["delete", "--env", "aws", "--yes"]);
    assert_one_line_error(&output, &["`aws` is not on PATH"]);
    assert_eq!(no_aws.calls(), Vec::<String>::new());
}

#[test]
fn missing_credentials_are_one_line_and_nothing_else_runs() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture
        .command(&["create", "--env", "aws"])
        .env("FAKE_NO_CREDENTIALS", "1")
        .output()
        .unwrap();
    assert_one_line_error(
        &output,
        &[
            "no usable AWS credentials",
            "aws configure",
            "Unable to locate credentials",
        ],
    );
    assert_eq!(fixture.calls(), ["aws sts get-caller-identity"]);
}

#[test]
fn a_failing_step_stops_the_sequence() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture
        .command(&["create", "--env", "aws"])
        .env("FAKE_FAIL_UPDATE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("error: update failed\n"),
        "kops's own stderr is shown: {err}"
    );
    assert!(
        err.ends_with(&format!(
            "error: `kops update cluster --name micro.k8s.local --yes --admin --state {STATE}` failed (exit 1); the steps after it were not run\n"
        )),
        "{err}"
    );
    let calls = fixture.calls();
    assert!(
        calls.last().unwrap().starts_with("kops update cluster"),
        "{calls:?}"
    );
}

#[test]
fn a_context_other_than_env_yamls_after_kops_is_an_error() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let output = fixture
        .command(&["create", "--env", "aws"])
        .env("FAKE_CONTEXT", "someone-else")
        .output()
        .unwrap();
    assert_one_line_error(
        &output,
        &[
            "current kube context is `someone-else`",
            "`micro.k8s.local`",
            "kops export kubecfg",
        ],
    );
    assert_eq!(fixture.calls(), recorded_create());
}

#[test]
fn create_refuses_rendered_files_that_are_not_what_render_writes() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);
    let spec = fixture.env_dir().join("cluster.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replace("count: 3", "count: 6")).unwrap();
    let output = fixture.xtask(&["create", "--env", "aws", "--dry-run"]);
    assert_one_line_error(
        &output,
        &[
            "environments/aws/cluster is not what `cargo xtask cluster render --env aws` writes",
            "instancegroup-nodes-eu-west-1a.yaml",
            "nothing was run",
        ],
    );
    assert_eq!(fixture.calls(), Vec::<String>::new());
}

#[test]
fn several_violations_are_one_error_line_each() {
    let fixture = Fixture::new();
    let spec = fixture.env_dir().join("cluster.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let broken = text
        .replace("kubernetesVersion: 1.34.2", "kubernetesVersion: latest")
        .replace("count: 3 ", "count: 1 ");
    assert_ne!(broken, text);
    std::fs::write(&spec, broken).unwrap();
    let output = fixture.xtask(&["render", "--env", "aws"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("error: environments/aws/cluster.yaml: kubernetesVersion: `latest`"),
        "{err}"
    );
    assert!(
        lines[1]
            .starts_with("error: environments/aws/cluster.yaml: nodes.count: 1 nodes for 3 zones"),
        "{err}"
    );
}

/// `delete` on a real terminal: `script` (util-linux) gives it a pty and
/// types the answer.
fn delete_on_a_terminal(fixture: &Fixture, answer: &str) -> Output {
    let script = which("script")
        .expect("`script` (util-linux, Debian's bsdutils) is needed for the terminal test");
    let line = format!(
        "PATH={} {} cluster delete --env aws --root {}",
        fixture.bin().display(),
        env!("CARGO_BIN_EXE_xtask"),
        fixture.root().display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .env("FAKE_LOG", fixture.log())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[test]
fn delete_on_a_terminal_asks_for_the_cluster_name() {
    let fixture = Fixture::new();
    fixture.render();
    fixture.install_fakes(&["kops", "aws"]);

    let refused = delete_on_a_terminal(&fixture, "micro");
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    let screen = stdout(&refused);
    assert!(screen.contains("Type its name to confirm"), "{screen}");
    assert!(
        screen.contains("error: not confirmed; nothing was deleted"),
        "{screen}"
    );
    assert_eq!(fixture.calls(), Vec::<String>::new());

    let confirmed = delete_on_a_terminal(&fixture, "micro.k8s.local");
    assert_eq!(confirmed.status.code(), Some(0), "{}", stdout(&confirmed));
    let ran: Vec<String> = delete_lines();
    assert_eq!(fixture.calls(), ran);
}
