//! The Docker Engine API calls the image commands make (through bollard).

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::ImageInspect;
use bollard::query_parameters::{ImportImageOptions, PushImageOptions, TagImageOptions};
use futures::StreamExt;

pub struct Engine {
    docker: Docker,
}

/// What we tried to reach, for the "engine unreachable" message.
fn engine_address() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => format!("DOCKER_HOST={host}"),
        _ => "unix:///var/run/docker.sock".to_string(),
    }
}

impl Engine {
    /// Connects and negotiates the API version (bollard speaks a newer one
    /// than the engines we meet, e.g. 1.41).
    pub async fn connect() -> Result<Engine> {
        let address = engine_address();
        let unreachable =
            |e: &dyn std::fmt::Display| anyhow!("Docker engine unreachable at {address}: {e}");
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(&e))?;
        let docker = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            docker.negotiate_version(),
        )
        .await
        .map_err(|_| unreachable(&"no answer within 10 s"))?
        .map_err(|e| unreachable(&e))?;
        Ok(Engine { docker })
    }

    /// The image behind `reference`, or None when the engine does not have it.
    pub async fn inspect(&self, reference: &str) -> Result<Option<ImageInspect>> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(image)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("inspecting image {reference}")),
        }
    }

    /// `POST /images/load` of a docker-save tarball; returns nothing, the
    /// caller inspects by tag afterwards.
    pub async fn load(&self, tarball: Vec<u8>) -> Result<()> {
        let options = ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut stream =
            self.docker
                .import_image(options, bollard::body_full(tarball.into()), None);
        while let Some(item) = stream.next().await {
            let info = item.context("loading the image into the engine")?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                bail!("loading the image into the engine: {err}");
            }
        }
        Ok(())
    }

    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let options = TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        self.docker
            .tag_image(source, Some(options))
            .await
            .with_context(|| format!("tagging {source} as {repo}:{tag}"))
    }

    /// Pushes `repo:tag`; returns the digest the engine reports in its final
    /// status line (`<tag>: digest: sha256:... size: N`) when there is one.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<DockerCredentials>,
    ) -> Result<Option<String>> {
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.push_image(repo, Some(options), credentials);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| push_error(repo, &e.to_string()))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(push_error(repo, &err));
            }
            if let Some(status) = info.status
                && let Some(rest) = status.split("digest: ").nth(1)
            {
                digest = rest.split_whitespace().next().map(String::from);
            }
        }
        Ok(digest)
    }
}

impl Engine {
    /// Runs the `registry:2` image with the data folder (and certificate) mounted.
    pub async fn run_registry_container(
        &self,
        name: &str,
        image: &str,
        listen: std::net::SocketAddr,
        data: &std::path::Path,
        tls: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Result<()> {
        use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
        use bollard::query_parameters::CreateContainerOptions;
        let mut binds = vec![format!(
            "{}:/var/lib/registry",
            data.join("storage").display()
        )];
        let mut env = vec![];
        if let Some((cert, key)) = tls {
            binds.push(format!("{}:/certs/registry.crt:ro", cert.display()));
            binds.push(format!("{}:/certs/registry.key:ro", key.display()));
            env.push("REGISTRY_HTTP_TLS_CERTIFICATE=/certs/registry.crt".to_string());
            env.push("REGISTRY_HTTP_TLS_KEY=/certs/registry.key".to_string());
        }
        std::fs::create_dir_all(data.join("storage"))?;
        let binding = PortBinding {
            host_ip: Some(listen.ip().to_string()),
            host_port: Some(listen.port().to_string()),
        };
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(env),
            host_config: Some(HostConfig {
                binds: Some(binds),
                port_bindings: Some(
                    [("5000/tcp".to_string(), Some(vec![binding]))]
                        .into_iter()
                        .collect(),
                ),
                auto_remove: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), body)
            .await
            .with_context(|| format!("creating container {name}"))?;
        self.docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .with_context(|| format!("starting container {name}"))
    }

    pub async fn remove_container(&self, name: &str) -> Result<()> {
        let options = bollard::query_parameters::RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing container {name}")),
        }
    }
}

/// Names the two push failures people meet: no registry there, or no access.
fn push_error(repo: &str, message: &str) -> anyhow::Error {
    let registry = repo.split('/').next().unwrap_or(repo);
    let lower = message.to_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("denied")
    {
        anyhow!("registry {registry} refused the push of {repo} (unauthorized): {message}")
    } else if lower.contains("connection refused")
        || lower.contains("no such host")
        || lower.contains("dial tcp")
    {
        anyhow!("registry {registry} unreachable while pushing {repo}: {message}")
    } else {
        anyhow!("pushing {repo}: {message}")
    }
}
