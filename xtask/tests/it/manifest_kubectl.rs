//! The rendered manifests as kubectl reads them (YAML 1.1, strict field
//! validation), applied to the in-memory Kubernetes API server.

use crate::manifest_support;
use manifest_support::*;
use std::path::Path;
use std::process::Command;

fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn kubectl_applies_every_rendered_object_of_both_environments() {
    let fixture = Fixture::new();
    for env in ENVS {
        assert_ok(&fixture.render(env, &[]));
        let cluster =
            testcluster::BlockingTestCluster::start(testcluster::Options::default()).unwrap();
        let kubeconfig = cluster.kubeconfig();
        let dir = fixture.manifests_dir(env);
        // The namespace first, as sync does; then everything, strictly validated.
        let namespace = dir.join("namespace-micro.yaml");
        let output = kubectl(
            kubeconfig,
            &["apply", "--server-side", "-f", namespace.to_str().unwrap()],
        );
        assert_ok(&output);
        let output = kubectl(
            kubeconfig,
            &[
                "apply",
                "--server-side",
                "--field-manager=xtask",
                "--validate=strict",
                "-f",
                dir.to_str().unwrap(),
            ],
        );
        assert_ok(&output);
        let applied = stdout(&output);
        assert_eq!(
            applied.lines().count(),
            fixture.manifests(env).len(),
            "{env}: {applied}"
        );

        // What the server stored: the redis args are strings, `yes` included.
        let output = kubectl(
            kubeconfig,
            &[
                "-n",
                "micro",
                "get",
                "statefulset",
                "redis",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].args}",
            ],
        );
        assert_ok(&output);
        assert!(
            // The start-up script writes the password into a config file,
            // then runs redis-server with the persistence flags.
            stdout(&output).contains("--appendonly yes"),
            "{env}: {}",
            stdout(&output)
        );
        let output = kubectl(
            kubeconfig,
            &["-n", "micro", "get", "deployments", "-o", "name"],
        );
        assert_ok(&output);
        let listed = stdout(&output);
        let names: Vec<&str> = listed
            .lines()
            .map(|l| l.trim_start_matches("deployment.apps/"))
            .collect();
        assert_eq!(names, DEPLOYED, "{env}");
    }
}
