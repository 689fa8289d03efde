//! Shared by the manifest tests: a temporary copy of the definitions and
//! env.yaml files, an image record, and running the real `xtask` binary on it.
#![allow(dead_code)]

use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ENVS: &[&str] = &["minikube", "aws"];
/// The services with a Deployment (report is a CLI).
pub const DEPLOYED: &[&str] = &["adderservice", "auditservice", "eventservice", "webapp"];

/// The workspace whose definitions the tests copy.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `sha256:` + the hash of `seed`: a well-formed digest that differs per seed.
pub fn digest(seed: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(seed.as_bytes()))
    )
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub images: PathBuf,
}

impl Fixture {
    /// A root holding deployment/, infrastructure/ and every env.yaml of the
    /// workspace (no manifests), and an image record with every service at `v1`.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let src = workspace_root();
        for folder in ["deployment", "infrastructure"] {
            copy_dir(&src.join(folder), &dir.path().join(folder));
        }
        for env in ENVS {
            let to = dir.path().join("environments").join(env);
            std::fs::create_dir_all(&to).unwrap();
            std::fs::copy(
                src.join("environments").join(env).join("env.yaml"),
                to.join("env.yaml"),
            )
            .unwrap();
        }
        let images = dir.path().join("images.json");
        let fixture = Fixture { dir, images };
        let mut record = BTreeMap::new();
        for service in DEPLOYED.iter().chain(&["report"]) {
            record.insert(
                service.to_string(),
                entry(service, "1a2b3c4", &digest(&format!("{service}-v1"))),
            );
        }
        fixture.write_record(&record);
        fixture
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn record(&self) -> BTreeMap<String, serde_json::Value> {
        let text = std::fs::read_to_string(&self.images).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(value["images"].clone()).unwrap()
    }

    pub fn write_record(&self, images: &BTreeMap<String, serde_json::Value>) {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "images": images })).unwrap();
        std::fs::write(&self.images, text).unwrap();
    }

    /// Records a new build of `service`.
    pub fn set_image(&self, service: &str, tag: &str, digest: &str) {
        let mut record = self.record();
        record.insert(service.to_string(), entry(service, tag, digest));
        self.write_record(&record);
    }

    /// Runs `cargo xtask render --env <env> [extra]` on this root.
    pub fn render(&self, env: &str, extra: &[&str]) -> Output {
        let mut args = vec!["render", "--env", env];
        args.extend_from_slice(extra);
        self.xtask(&args)
    }

    /// Runs the xtask binary with `--root` and `--images` pointing here.
    pub fn xtask(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .arg("--root")
            .arg(self.root())
            .arg("--images")
            .arg(&self.images)
            .output()
            .unwrap()
    }

    pub fn manifests_dir(&self, env: &str) -> PathBuf {
        self.root().join("environments").join(env).join("manifests")
    }

    /// File name -> contents of one environment's manifests.
    pub fn manifests(&self, env: &str) -> BTreeMap<String, String> {
        read_dir_files(&self.manifests_dir(env))
    }
}

pub fn entry(service: &str, tag: &str, digest: &str) -> serde_json::Value {
    serde_json::json!({
        "name": service,
        "contentTag": format!("c-{}", &digest[7..19]),
        "commitTag": tag,
        "commit": format!("{tag}000000000000000000000000000000000"),
        "imageId": digest,
        "size": 12_345_678,
        "pushed": env_registries()
            .into_iter()
            .map(|registry| (registry, serde_json::json!(digest)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// The `registry` of every environment: where an image must have been pushed
/// for render to pin it there.
pub fn env_registries() -> Vec<String> {
    ENVS.iter()
        .map(|env| {
            let file = workspace_root().join(format!("environments/{env}/env.yaml"));
            let text = std::fs::read_to_string(&file).unwrap();
            let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            value["registry"].as_str().unwrap().to_string()
        })
        .collect()
}

pub fn read_dir_files(dir: &Path) -> BTreeMap<String, String> {
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

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success, showing stdout and stderr when it failed.
pub fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}
