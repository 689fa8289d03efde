//! One environment's snapshot from its commit and the watched live state.
//! The states are `status`'s own (the same plan, dry-run confirmation and
//! outdated/drifted split); the page adds commits, images, diffs, endpoints.

use super::commits;
use super::state::{CommitInfo, Count, Endpoint, EnvState, ImageView, ObjectView, Replicas};
use crate::gitops::cluster::Cluster;
use crate::gitops::kinds::ObjectKey;
use crate::gitops::live::Live;
use crate::gitops::output::change_diff;
use crate::gitops::plan::{self, Action, Change, Plan, Rules};
use crate::gitops::rollout::Health;
use crate::gitops::source::Desired;
use crate::gitops::status;
use crate::image::record::ImageRecord;
use anyhow::Result;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Dry-run results by (object, live resourceVersion, commit): an object is
/// confirmed once per version, not on every event of any other object.
#[derive(Default)]
pub struct ConfirmCache {
    seen: HashMap<(ObjectKey, String, String), (Action, Option<Value>)>,
}

/// Past this many entries the cache starts again (old versions pile up).
const CACHE_LIMIT: usize = 20_000;

impl ConfirmCache {
    /// `plan::confirm` for the Configure changes not confirmed before.
    pub async fn confirm(
        &mut self,
        cluster: &Cluster,
        commit: &str,
        plan: &mut Plan,
    ) -> Result<()> {
        let key_of = |c: &Change| {
            let version = c
                .live
                .as_ref()?
                .pointer("/metadata/resourceVersion")?
                .as_str()?;
            Some((c.key.clone(), version.to_string(), commit.to_string()))
        };
        let mut todo = Vec::new();
        for (i, change) in plan.changes.iter_mut().enumerate() {
            if change.action != Action::Configure {
                continue;
            }
            match key_of(change).and_then(|k| self.seen.get(&k)) {
                Some((action, preview)) => {
                    change.action = *action;
                    change.preview = preview.clone();
                }
                None => todo.push(i),
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let mut asked = Plan {
            changes: todo.iter().map(|&i| plan.changes[i].clone()).collect(),
        };
        plan::confirm(cluster, &mut asked).await?;
        if self.seen.len() > CACHE_LIMIT {
            self.seen.clear();
        }
        for (i, change) in todo.into_iter().zip(asked.changes) {
            if let Some(key) = key_of(&change) {
                self.seen
                    .insert(key, (change.action, change.preview.clone()));
            }
            plan.changes[i] = change;
        }
        Ok(())
    }
}

/// The environment as the page shows it (banner unset: the caller's).
pub async fn snapshot(
    cluster: &Cluster,
    root: &Path,
    desired: &Desired,
    mut live: Live,
    cache: &mut ConfirmCache,
    record: &ImageRecord,
) -> Result<EnvState> {
    let members = live.members.clone();
    let synced = live.inventory.as_ref().and_then(|i| i.commit.clone());
    let mut plan = plan::build(
        &desired.objects,
        &mut live,
        &desired.namespaces(),
        Rules::default(),
    );
    cache.confirm(cluster, &desired.commit, &mut plan).await?;
    let outdated =
        status::outdated(cluster, root, desired, synced.as_deref(), &plan.changes).await?;
    let rows = status::rows(&plan, &outdated, &members, desired);
    let counts = status::counts(&rows)
        .into_iter()
        .map(|(state, count)| Count { state, count })
        .collect();
    let not_ready = rows
        .iter()
        .filter(|r| r.health.as_ref().is_some_and(|h| *h != Health::Ready))
        .count();
    let changes: HashMap<&ObjectKey, &Change> = plan.changes.iter().map(|c| (&c.key, c)).collect();
    let repo = commits::open(root);
    let images = ImageSources {
        repo: repo.as_ref(),
        record,
    };
    let objects = rows
        .into_iter()
        .map(|row| {
            let change = changes.get(&row.key).copied();
            object_view(row, change, &images)
        })
        .collect();
    let endpoints = plan
        .changes
        .iter()
        .filter_map(|c| endpoint(&c.key, c.live.as_ref()?))
        .collect();
    let git = git_side(root, repo.as_ref(), desired, synced.as_deref());
    Ok(EnvState {
        name: desired.env.name.clone(),
        context: desired.env.context.clone(),
        banner: None,
        head: git.head,
        commits_ahead: git.ahead,
        synced: git.synced,
        commits: git.between,
        counts,
        not_ready,
        objects,
        endpoints,
    })
}

/// HEAD, the synced commit and what lies between, as the page shows them.
struct GitSide {
    head: Option<CommitInfo>,
    synced: Option<CommitInfo>,
    ahead: Option<usize>,
    between: Vec<CommitInfo>,
}

fn git_side(
    root: &Path,
    repo: Option<&git2::Repository>,
    desired: &Desired,
    synced: Option<&str>,
) -> GitSide {
    let (head, known, between) = match repo {
        Some(repo) => (
            commits::info(repo, &desired.commit),
            synced.and_then(|s| commits::info(repo, s)),
            commits::between(repo, synced, &desired.commit),
        ),
        None => (None, None, Vec::new()),
    };
    // A synced commit this repository lacks is still shown, by its id.
    let synced_info = known.or_else(|| {
        synced.map(|id| CommitInfo {
            id: id.to_string(),
            short: crate::gitops::output::short(id).to_string(),
            ..Default::default()
        })
    });
    GitSide {
        head,
        synced: synced_info,
        ahead: synced.and_then(|s| crate::gitops::source::commits_ahead(root, s, &desired.commit)),
        between,
    }
}

/// Where an image's source commit is looked up.
struct ImageSources<'a> {
    repo: Option<&'a git2::Repository>,
    record: &'a ImageRecord,
}

fn object_view(row: status::Row, change: Option<&Change>, images: &ImageSources) -> ObjectView {
    let object = change.and_then(|c| c.live.as_ref().or(c.desired.as_ref().map(|d| &d.value)));
    let rollout = row.key.info().is_some_and(|i| i.has_rollout());
    let replicas = object.filter(|_| rollout).map(|o| Replicas {
        ready: o
            .pointer("/status/readyReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        desired: o
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1),
    });
    let diff = change
        .filter(|c| {
            c.action == Action::Configure
                && matches!(row.state, status::State::Drifted | status::State::Outdated)
        })
        .map(|c| change_diff(c, false));
    ObjectView {
        images: object
            .map(|o| container_images(o, images))
            .unwrap_or_default(),
        labels: metadata_map(object, "labels"),
        annotations: metadata_map(object, "annotations"),
        kind: row.kind,
        namespace: row.namespace,
        name: row.name,
        state: row.state.word(),
        health: row.health,
        replicas,
        diff,
    }
}

/// Labels or annotations, without kubectl's copy of the whole object.
fn metadata_map(object: Option<&Value>, field: &str) -> BTreeMap<String, String> {
    object
        .and_then(|o| o.pointer(&format!("/metadata/{field}")))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn container_images(object: &Value, sources: &ImageSources) -> Vec<ImageView> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|f| object.pointer(&format!("/spec/template/spec/{f}")))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?;
            let image = c.get("image")?.as_str()?;
            Some(image_view(name, image, sources))
        })
        .collect()
}

/// `registry:5000/name:tag@sha256:…` → tag, short digest, source commit.
fn image_view(container: &str, image: &str, sources: &ImageSources) -> ImageView {
    let (named, digest) = match image.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (image, None),
    };
    let slash = named.rfind('/').map_or(0, |i| i + 1);
    let tag = named[slash..]
        .rsplit_once(':')
        .map_or("latest", |(_, tag)| tag);
    let recorded = digest.and_then(|d| {
        sources
            .record
            .images
            .values()
            .find(|e| e.pushed.values().any(|p| p == d))
    });
    let source = match (recorded, sources.repo) {
        (Some(entry), Some(repo)) => commits::info(repo, &entry.commit),
        (None, Some(repo)) => commits::by_tag(repo, tag),
        _ => None,
    };
    ImageView {
        container: container.to_string(),
        image: image.to_string(),
        tag: tag.to_string(),
        digest: digest.map(|d| d.trim_start_matches("sha256:").chars().take(12).collect()),
        source,
    }
}

/// A NodePort or LoadBalancer Service: its ports and assigned addresses.
fn endpoint(key: &ObjectKey, live: &Value) -> Option<Endpoint> {
    if key.kind != "Service" {
        return None;
    }
    let kind = live.pointer("/spec/type")?.as_str()?;
    if !matches!(kind, "NodePort" | "LoadBalancer") {
        return None;
    }
    let text = |v: &Value, f: &str| {
        v.get(f)
            .map(|x| x.to_string().trim_matches('"').to_string())
    };
    let ports = live
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {}:{}/{}",
                text(p, "name").unwrap_or_default(),
                text(p, "port").unwrap_or_default(),
                text(p, "nodePort").unwrap_or_else(|| "-".into()),
                text(p, "protocol").unwrap_or_else(|| "TCP".into())
            )
            .trim()
            .to_string()
        })
        .collect();
    let addresses = live
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").or_else(|| i.get("hostname"))?.as_str())
        .map(str::to_string)
        .collect();
    Some(Endpoint {
        namespace: key.namespace.clone(),
        service: key.name.clone(),
        kind: kind.to_string(),
        ports,
        addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_image_reference_gives_tag_short_digest_and_the_recorded_commit() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut record = ImageRecord::default();
        record.images.insert(
            "webapp".into(),
            crate::image::record::ImageEntry {
                name: "webapp".into(),
                content_tag: "c-0".into(),
                commit_tag: "66ad0da7cd08".into(),
                commit: "0".repeat(40),
                image_id: digest.clone(),
                size: 0,
                pushed: [("localhost:5000".to_string(), digest.clone())].into(),
            },
        );
        let sources = ImageSources {
            repo: None,
            record: &record,
        };
        let view = image_view(
            "app",
            &format!("localhost:5000/webapp:66ad0da7cd08@{digest}"),
            &sources,
        );
        assert_eq!(view.tag, "66ad0da7cd08");
        assert_eq!(view.digest.as_deref(), Some("abababababab"));
        let plain = image_view("app", "redis:7", &sources);
        assert_eq!((plain.tag.as_str(), plain.digest), ("7", None));
        assert_eq!(
            image_view("app", "localhost:5000/x", &sources).tag,
            "latest"
        );
    }

    #[test]
    fn only_node_port_and_load_balancer_services_are_endpoints() {
        let key = ObjectKey {
            group: String::new(),
            kind: "Service".into(),
            namespace: "micro".into(),
            name: "webapp".into(),
        };
        let node_port = json!({"spec": {"type": "NodePort", "ports": [
            {"name": "main", "port": 3000, "nodePort": 30080, "protocol": "TCP"}]}});
        assert_eq!(
            endpoint(&key, &node_port).map(|e| e.ports),
            Some(vec!["main 3000:30080/TCP".to_string()])
        );
        let balanced = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "a.elb.example"}]}}});
        let lb = endpoint(&key, &balanced).unwrap();
        assert_eq!(lb.addresses, ["a.elb.example"]);
        assert_eq!(lb.ports, ["80:-/TCP"]);
        assert_eq!(
            endpoint(&key, &json!({"spec": {"type": "ClusterIP"}})),
            None
        );
    }
}
