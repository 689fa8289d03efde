//! Registry credentials from `~/.docker/config.json`, the way the docker CLI
//! finds them (bollard does not read that file): `credHelpers.<registry>`,
//! then `auths.<registry>.auth` (base64 `user:password`), then `credsStore`.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthEntry {
    auth: Option<String>,
    identitytoken: Option<String>,
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// Credentials for `registry` (`host[:port]`), or None when the config has none.
pub fn for_registry(registry: &str) -> Result<Option<DockerCredentials>> {
    let Some(path) = config_path().filter(|p| p.exists()) else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config: DockerConfig =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    lookup(&config, registry)
}

/// The key `docker login` stores Docker Hub credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The names Docker Hub goes by in an image reference.
const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The config key and server address of a push target: its host, except for
/// Docker Hub (`docker.io/<namespace>`), which the CLI files under one URL.
fn server_of(target: &str) -> &str {
    let host = target.split('/').next().unwrap_or(target);
    if DOCKER_HUB_HOSTS.contains(&host) {
        DOCKER_HUB_KEY
    } else {
        host
    }
}

/// How the engine names a Docker Hub repository in RepoDigests: without the host.
pub fn engine_name(target: &str) -> &str {
    DOCKER_HUB_HOSTS
        .iter()
        .find_map(|host| target.strip_prefix(host).and_then(|t| t.strip_prefix('/')))
        .unwrap_or(target)
}

/// `https://reg:5000/`, `reg:5000` and `http://reg:5000` name one registry.
fn bare(key: &str) -> &str {
    key.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

fn lookup(config: &DockerConfig, target: &str) -> Result<Option<DockerCredentials>> {
    let registry = server_of(target);
    if let Some(helper) = config
        .cred_helpers
        .iter()
        .find(|(key, _)| bare(key) == bare(registry))
        .map(|(_, helper)| helper)
    {
        return helper_get(helper, registry);
    }
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| bare(key) == bare(registry))
        .map(|(_, entry)| entry);
    if let Some(entry) = entry {
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .with_context(|| format!("auths.{registry}.auth is not base64"))?;
            let decoded = String::from_utf8(decoded)
                .with_context(|| format!("auths.{registry}.auth is not UTF-8"))?;
            let (user, password) = decoded
                .split_once(':')
                .with_context(|| format!("auths.{registry}.auth is not `user:password`"))?;
            return Ok(Some(DockerCredentials {
                username: Some(user.to_string()),
                password: Some(password.to_string()),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            }));
        }
        if let Some(token) = &entry.identitytoken {
            return Ok(Some(DockerCredentials {
                identitytoken: Some(token.clone()),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            }));
        }
    }
    match &config.creds_store {
        Some(store) => helper_get(store, registry),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `docker-credential-<helper> get` with the registry on stdin.
fn helper_get(helper: &str, registry: &str) -> Result<Option<DockerCredentials>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program} (named in ~/.docker/config.json)"))?;
    child
        .stdin
        .take()
        .context("helper stdin")?
        .write_all(registry.as_bytes())?;
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "credentials not found in native keychain": no credentials, not an error.
        if stdout.contains("not found")
            || String::from_utf8_lossy(&out.stderr).contains("not found")
        {
            return Ok(None);
        }
        bail!("{program} get {registry} failed: {}", stdout.trim());
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout)
        .with_context(|| format!("parsing the answer of {program}"))?;
    let mut creds = DockerCredentials {
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    };
    if answer.username == "<token>" {
        creds.identitytoken = Some(answer.secret);
    } else {
        creds.username = Some(answer.username);
        creds.password = Some(answer.secret);
    }
    Ok(Some(creds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basic_auth_from_auths() {
        let config: DockerConfig = serde_json::from_str(
            r#"{"auths":{"https://reg.example:5000":{"auth":"dXNlcjpwYXNzOndvcmQ="}}}"#,
        )
        .unwrap();
        let creds = lookup(&config, "reg.example:5000").unwrap().unwrap();
        assert_eq!(creds.username.as_deref(), Some("user"));
        assert_eq!(creds.password.as_deref(), Some("pass:word"));
        assert!(lookup(&config, "other:5000").unwrap().is_none());
    }

    #[test]
    fn docker_hub_namespaces_use_the_key_docker_login_writes() {
        // What `docker login` leaves in ~/.docker/config.json for Docker Hub.
        let config: DockerConfig = serde_json::from_str(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViLXVzZXI6aHViLXRva2Vu"},
                         "reg.example:5000":{"auth":"b3RoZXI6b3RoZXI="}}}"#,
        )
        .unwrap();
        for target in [
            "docker.io/team",
            "index.docker.io/team",
            "docker.io/other-team/x",
        ] {
            let creds = lookup(&config, target).unwrap().unwrap();
            assert_eq!(creds.username.as_deref(), Some("hub-user"), "{target}");
            assert_eq!(creds.password.as_deref(), Some("hub-token"), "{target}");
            assert_eq!(
                creds.serveraddress.as_deref(),
                Some(DOCKER_HUB_KEY),
                "{target}"
            );
        }
        // A registry with a path keeps its own host's entry, never Docker Hub's.
        let other = lookup(&config, "reg.example:5000/team").unwrap().unwrap();
        assert_eq!(other.username.as_deref(), Some("other"));
        assert_eq!(
            engine_name("docker.io/team/adderservice"),
            "team/adderservice"
        );
        assert_eq!(
            engine_name("reg:5000/adderservice"),
            "reg:5000/adderservice"
        );
        let empty: DockerConfig = serde_json::from_str(r#"{"auths":{}}"#).unwrap();
        assert!(lookup(&empty, "docker.io/team").unwrap().is_none());
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let config: DockerConfig =
            serde_json::from_str(r#"{"credHelpers":{"r:1":"nonexistent-xyz"}}"#).unwrap();
        let err = lookup(&config, "r:1").unwrap_err();
        assert!(
            format!("{err:#}").contains("docker-credential-nonexistent-xyz"),
            "{err:#}"
        );
    }
}
