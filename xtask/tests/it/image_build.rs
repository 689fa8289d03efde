//! build-all against a real Docker engine and a real registry, on a private
//! copy of the workspace: images per service, reproducible IDs, build
//! avoidance, one-service rebuilds, the images run (name resolution included),
//! push + digests, and the compile/registry error paths.

use crate::image_support;

use image_support::*;
use serde_json::Value;

const SERVICES: [&str; 5] = [
    "adderservice",
    "auditservice",
    "eventservice",
    "webapp",
    "report",
];

fn rows(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "build-all failed: {}", stderr(out));
    let rows: Value = serde_json::from_slice(&out.stdout).expect("--output json prints JSON");
    crate::contract::assert_valid("build", &rows);
    rows.as_array().unwrap().clone()
}

fn row<'a>(rows: &'a [Value], service: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["service"] == service)
        .unwrap_or_else(|| panic!("no row for {service}"))
}

fn outcomes(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn build_all_end_to_end() {
    let registry = std::env::var("MICRO_TEST_REGISTRY")
        .expect("MICRO_TEST_REGISTRY unset: run the suite with `cargo xtask test`");
    let copy = WorkspaceCopy::new("e2e");
    let prefix = unique("img");
    let mut cleanup = Cleanup::default();
    cleanup.image_marker = prefix.clone();

    // 1. An image per service, with the promised metadata.
    let first = rows(&copy.xtask(&prefix, &["build-all", "--output", "json"]));
    assert_eq!(first.len(), SERVICES.len());
    let head = copy.head();
    for service in SERVICES {
        let r = row(&first, service);
        assert_eq!(r["outcome"], "built", "{service}");
        let content_tag = r["contentTag"].as_str().unwrap();
        assert!(content_tag.starts_with("c-"), "{content_tag}");
        let reference = format!("{prefix}/{service}:{content_tag}");
        let inspect: Value =
            serde_json::from_str(&docker_ok(&["image", "inspect", &reference])).unwrap();
        let image = &inspect[0];
        assert_eq!(image["Id"], r["imageId"]);
        assert_eq!(image["Config"]["User"], "65532:65532");
        let labels = &image["Config"]["Labels"];
        assert_eq!(labels["org.opencontainers.image.revision"], head.as_str());
        assert_eq!(
            labels["org.opencontainers.image.created"],
            image["Created"].as_str().unwrap().replace(".000000000", "")
        );
        assert!(
            labels["org.opencontainers.image.source"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        // The human tag points at the same image.
        let by_commit = docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}}",
            &format!("{prefix}/{service}:{}", &head[..12]),
        ]);
        assert_eq!(by_commit, r["imageId"].as_str().unwrap());
    }
    let adder = row(&first, "adderservice");
    let exposed: Value = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.ExposedPorts}}",
        &format!(
            "{prefix}/adderservice:{}",
            adder["contentTag"].as_str().unwrap()
        ),
    ]))
    .unwrap();
    assert!(exposed.get("8080/tcp").is_some(), "{exposed}");

    // 2. Nothing changed: nothing is built, same images.
    let second = rows(&copy.xtask(&prefix, &["build-all", "--output", "json"]));
    for service in SERVICES {
        assert_eq!(row(&second, service)["outcome"], "cached", "{service}");
        assert_eq!(
            row(&second, service)["imageId"],
            row(&first, service)["imageId"]
        );
    }

    // 3. Same commit, images gone: rebuilt byte for byte.
    for service in SERVICES {
        let r = row(&first, service);
        docker_ok(&[
            "rmi",
            "-f",
            &format!("{prefix}/{service}:{}", r["contentTag"].as_str().unwrap()),
            &format!("{prefix}/{service}:{}", &head[..12]),
        ]);
    }
    let third = rows(&copy.xtask(&prefix, &["build-all", "--output", "json"]));
    for service in SERVICES {
        assert_eq!(row(&third, service)["outcome"], "built", "{service}");
        assert_eq!(
            row(&third, service)["imageId"],
            row(&first, service)["imageId"],
            "{service} is not reproducible"
        );
    }

    // 4. The adderservice image runs and answers.
    let adder_image = format!(
        "{prefix}/adderservice:{}",
        adder["contentTag"].as_str().unwrap()
    );
    let solo = format!("{prefix}-adder-solo");
    cleanup.containers.push(solo.clone());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &solo,
        "-p",
        "127.0.0.1::8080",
        &adder_image,
    ]);
    let port = docker_ok(&["port", &solo, "8080/tcp"]);
    let addr = port.lines().next().unwrap().to_string();
    let answer = http_retry(&addr, "GET", "/add/2/3", &[], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["result"], 5);

    // 5. Two images talking over a user-defined network, and host names
    // resolved inside a scratch image by glibc (nsswitch `hosts: files dns`
    // -> Docker's DNS): webapp reaches Redis by container name through
    // REDIS_URL. (micro-common's *_SERVICE_HOST fallback takes an IP address,
    // as Kubernetes injects it, so adderservice is named by its address.)
    let network = format!("{prefix}-net");
    cleanup.networks.push(network.clone());
    docker_ok(&["network", "create", &network]);
    let adder_name = format!("{prefix}-adder");
    let webapp_name = format!("{prefix}-webapp");
    let redis_name = format!("{prefix}-redis");
    cleanup
        .containers
        .extend([adder_name.clone(), webapp_name.clone(), redis_name.clone()]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &adder_name,
        "--network",
        &network,
        &adder_image,
    ]);
    let adder_ip = docker_ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        &adder_name,
    ]);
    let redis_image = import_redis_image(&prefix);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &redis_name,
        "--network",
        &network,
        "-p",
        "127.0.0.1::6379",
        &redis_image,
        "/usr/bin/redis-server",
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    let redis_addr = docker_ok(&["port", &redis_name, "6379/tcp"])
        .lines()
        .next()
        .unwrap()
        .to_string();
    let webapp_image = format!(
        "{prefix}/webapp:{}",
        row(&first, "webapp")["contentTag"].as_str().unwrap()
    );
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &webapp_name,
        "--network",
        &network,
        "-p",
        "127.0.0.1::3000",
        "-e",
        &format!("ADDERSERVICE_SERVICE_HOST={adder_ip}"),
        "-e",
        "ADDERSERVICE_SERVICE_PORT=8080",
        "-e",
        "AUDITSERVICE_SERVICE_HOST=127.0.0.1",
        "-e",
        "AUDITSERVICE_SERVICE_PORT=9",
        "-e",
        &format!("REDIS_URL=redis://{redis_name}:6379"),
        &webapp_image,
    ]);
    let webapp_addr = docker_ok(&["port", &webapp_name, "3000/tcp"])
        .lines()
        .next()
        .unwrap()
        .to_string();
    let page = http_retry(
        &webapp_addr,
        "POST",
        "/add/calculate",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "first=2&second=3",
    );
    let logs = || String::from_utf8_lossy(&docker(&["logs", &webapp_name]).stdout).to_string();
    // auditservice is absent: the page says so, but the sum from adderservice is there.
    assert!(
        page.body.contains("2 + 3 = 5"),
        "status {} body {} webapp logs {}",
        page.status,
        page.body,
        logs()
    );
    // The page event reached Redis, which webapp found by its container name.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if redis_llen(&redis_addr, "eventservice") > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no page event in Redis; webapp logs {}",
            logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // 6. Push: the registry lists every service and serves the recorded digests.
    let pushed = rows(&copy.xtask(
        &prefix,
        &[
            "build-all",
            "--push",
            "--registry",
            &registry,
            "--output",
            "json",
        ],
    ));
    let record = copy.images_json();
    let catalog = http(&registry, "GET", "/v2/_catalog?n=1000", &[], "").unwrap();
    let catalog: Value = serde_json::from_str(&catalog.body).unwrap();
    for service in SERVICES {
        let r = row(&pushed, service);
        let repo = format!("{prefix}/{service}");
        let content_tag = r["contentTag"].as_str().unwrap();
        assert!(
            catalog["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == repo.as_str()),
            "{repo} not in {catalog}"
        );
        let tags = http(&registry, "GET", &format!("/v2/{repo}/tags/list"), &[], "").unwrap();
        let tags: Value = serde_json::from_str(&tags.body).unwrap();
        let tags: Vec<&str> = tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(
            tags.contains(&content_tag) && tags.contains(&&head[..12]),
            "{tags:?}"
        );
        let head_answer = http(
            &registry,
            "HEAD",
            &format!("/v2/{repo}/manifests/{content_tag}"),
            &[(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            )],
            "",
        )
        .unwrap();
        let served = head_answer
            .header("Docker-Content-Digest")
            .expect("Docker-Content-Digest")
            .to_string();
        assert_eq!(r["digest"].as_str(), Some(served.as_str()), "{service}");
        assert_eq!(
            record["images"][service]["pushed"][registry.as_str()].as_str(),
            Some(served.as_str()),
            "images.json for {service}"
        );
        assert_eq!(
            record["images"][service]["name"].as_str(),
            Some(repo.as_str())
        );
    }

    // 7. A registry nobody listens on: one line naming it, non-zero exit.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = copy.xtask(
        &prefix,
        &["build", "adderservice", "--push", "--registry", &closed],
    );
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(
        line.starts_with("error: registry ")
            && line.contains(&closed)
            && line.contains("unreachable"),
        "{}",
        stderr(&out)
    );

    // 8. Touching one service rebuilds exactly that one.
    let main_rs = copy.dir.join("services/report/src/main.rs");
    let original = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, format!("{original}\n// touched by {prefix}\n")).unwrap();
    let touched = rows(&copy.xtask(&prefix, &["build-all", "--output", "json"]));
    for service in SERVICES {
        let expected = if service == "report" {
            "built"
        } else {
            "cached"
        };
        assert_eq!(
            row(&touched, service)["outcome"],
            expected,
            "{:?}",
            outcomes(&touched)
        );
    }
    assert_ne!(
        row(&touched, "report")["contentTag"],
        row(&first, "report")["contentTag"]
    );

    // 9. A compile error: cargo's message is shown, one error line, non-zero exit.
    std::fs::write(&main_rs, format!("{original}\nfn broken( {{\n")).unwrap();
    let out = copy.xtask(&prefix, &["build", "report"]);
    std::fs::write(&main_rs, &original).unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("services/report/src/main.rs"),
        "cargo's message is shown: {err}"
    );
    let line = error_line(&out);
    // Every service is compiled together (one feature resolution), report among them.
    assert!(
        line.starts_with("error: `cargo build --release -p ")
            && line.contains(" -p report")
            && line.contains("` failed"),
        "{line}"
    );
}

/// A throwaway image holding this host's redis-server and its libraries
/// (no image can be pulled here), imported with `docker import`.
fn import_redis_image(prefix: &str) -> String {
    let server = "/usr/bin/redis-server";
    let ldd = std::process::Command::new("ldd")
        .arg(server)
        .output()
        .expect("ldd");
    let mut files = vec![server.to_string()];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split("=>")
            .last()
            .unwrap()
            .trim()
            .split(' ')
            .next()
            .unwrap();
        if path.starts_with('/') {
            files.push(path.to_string());
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        builder
            .append_data(&mut header, file.trim_start_matches('/'), data.as_slice())
            .unwrap();
    }
    let archive = builder.into_inner().unwrap();
    let image = format!("{prefix}/redis:test");
    let mut child = std::process::Command::new("docker")
        .args(["import", "-", &image])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &archive).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "docker import");
    image
}

/// `LLEN key` over RESP.
fn redis_llen(addr: &str, key: &str) -> i64 {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let request = format!("*2\r\n$4\r\nLLEN\r\n${}\r\n{key}\r\n", key.len());
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    answer
        .trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
