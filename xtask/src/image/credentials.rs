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

fn lookup(config: &DockerConfig, registry: &str) -> Result<Option<DockerCredentials>> {
    if let Some(helper) = config.cred_helpers.get(registry) {
        return helper_get(helper, registry);
    }
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| {
            key.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                == registry
        })
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
