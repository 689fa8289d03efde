//! `environments/<env>/cluster.yaml`: the hand-written shape of the cluster
//! kops creates, read strictly, and the few values derived from it the way
//! `kops create cluster` derives them (subnets, instance groups, node counts).

use super::cidr::Cidr;
use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// kops's defaults, written out so the rendered spec does not depend on them.
const NETWORK_CIDR: &str = "172.20.0.0/16";
const NON_MASQUERADE_CIDR: &str = "100.64.0.0/10";
const SERVICE_CLUSTER_IP_RANGE: &str = "100.64.0.0/13";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterFile {
    /// The cluster's name; kops names the kube context after it.
    pub name: String,
    /// AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// Where kops keeps the cluster's state: `s3://<bucket>`.
    pub state_store: String,
    pub kubernetes_version: String,
    /// The availability zones, e.g. `[eu-west-1a, eu-west-1b]`.
    pub zones: Vec<String>,
    pub control_plane: Group,
    pub nodes: Nodes,
    /// A Route53 zone for the API's DNS name; absent: no DNS (a `.k8s.local` name).
    #[serde(default)]
    pub dns_zone: Option<String>,
    #[serde(default)]
    pub networking: Networking,
    #[serde(default = "default_network_cidr", rename = "networkCIDR")]
    pub network_cidr: String,
    #[serde(default = "default_non_masquerade", rename = "nonMasqueradeCIDR")]
    pub non_masquerade_cidr: String,
    #[serde(default = "default_service_range", rename = "serviceClusterIPRange")]
    pub service_cluster_ip_range: String,
    /// The VPC's subnets; absent: one public subnet per zone, cut from
    /// networkCIDR as kops cuts it.
    #[serde(default)]
    pub subnets: Option<Vec<Subnet>>,
    #[serde(default)]
    pub iam: Iam,
    /// Who may reach the API and SSH; absent: everyone, as kops's default.
    #[serde(default)]
    pub admin_access: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Group {
    pub machine_type: String,
    /// The subnets it runs in, one instance group per subnet; absent: the
    /// first zone's subnet (the control plane) or every zone's (the nodes).
    #[serde(default)]
    pub subnets: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Nodes {
    /// Worker nodes in all; split across the node instance groups as kops does.
    pub count: u32,
    pub machine_type: String,
    #[serde(default)]
    pub subnets: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    pub zone: String,
    pub cidr: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Iam {
    /// Let nodes pull from ECR; absent: true exactly when env.yaml's registry is ECR.
    #[serde(default)]
    pub allow_container_registry: Option<bool>,
}

/// The CNI. Cilium is kops's default and enforces NetworkPolicies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Networking {
    #[default]
    Cilium,
    Calico,
    Kubenet,
}

impl Networking {
    pub fn enforces_network_policies(self) -> bool {
        self != Networking::Kubenet
    }
}

/// An instance group as kops names and sizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceGroup {
    pub name: String,
    pub control_plane: bool,
    pub machine_type: String,
    pub size: u32,
    pub subnet: String,
}

fn default_network_cidr() -> String {
    NETWORK_CIDR.to_string()
}
fn default_non_masquerade() -> String {
    NON_MASQUERADE_CIDR.to_string()
}
fn default_service_range() -> String {
    SERVICE_CLUSTER_IP_RANGE.to_string()
}

/// `environments/<env>/cluster.yaml`, relative to the workspace root.
pub fn file_of(env: &str) -> PathBuf {
    PathBuf::from("environments").join(env).join("cluster.yaml")
}

impl ClusterFile {
    pub fn load(root: &Path, env: &str) -> Result<ClusterFile> {
        let file = file_of(env);
        let path = root.join(&file);
        if !path.exists() {
            bail!(
                "environment `{env}` has no cluster spec: {} does not exist",
                file.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow!("reading {}: {e}", file.display()))?;
        Self::parse(&file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<ClusterFile> {
        serde_yaml::from_str(text).map_err(|e| anyhow!("{}: {e}", file.display()))
    }

    /// The bucket of `s3://<bucket>` (empty when it is not one: a rule says so).
    pub fn state_bucket(&self) -> &str {
        self.state_store
            .strip_prefix("s3://")
            .unwrap_or("")
            .trim_end_matches('/')
    }

    /// Where kops keeps this cluster: `s3://<bucket>/<name>`.
    pub fn config_base(&self) -> String {
        format!("s3://{}/{}", self.state_bucket(), self.name)
    }

    /// The subnets, given or kops's default: networkCIDR cut into 1, 2, 4 or
    /// 8 equal blocks, one per zone in order, each named after its zone.
    pub fn subnets(&self) -> Vec<Subnet> {
        if let Some(subnets) = &self.subnets {
            return subnets.clone();
        }
        let bits = match self.zones.len() {
            0 | 1 => 0,
            2 => 1,
            3 | 4 => 2,
            _ => 3,
        };
        let blocks = Cidr::parse(&self.network_cidr)
            .map(|c| c.split(bits))
            .unwrap_or_default();
        self.zones
            .iter()
            .enumerate()
            .map(|(i, zone)| Subnet {
                name: zone.clone(),
                zone: zone.clone(),
                // An unparsable networkCIDR is a violation of its own.
                cidr: blocks
                    .get(i)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| self.network_cidr.clone()),
            })
            .collect()
    }

    /// The subnets the control plane runs in (one instance group each).
    pub fn control_plane_subnets(&self) -> Vec<String> {
        match &self.control_plane.subnets {
            Some(names) => names.clone(),
            None => self.subnets().into_iter().take(1).map(|s| s.name).collect(),
        }
    }

    /// The subnets the nodes run in (one instance group each).
    pub fn node_subnets(&self) -> Vec<String> {
        match &self.nodes.subnets {
            Some(names) => names.clone(),
            None => {
                // The first subnet of each zone, as kops picks them.
                let mut seen = Vec::new();
                let mut names = Vec::new();
                for subnet in self.subnets() {
                    if !seen.contains(&subnet.zone) {
                        seen.push(subnet.zone.clone());
                        names.push(subnet.name);
                    }
                }
                names
            }
        }
    }

    /// Control-plane groups first, then node groups; `nodes.count` split
    /// evenly, the first groups taking one more when it does not divide.
    pub fn instance_groups(&self) -> Vec<InstanceGroup> {
        let mut groups: Vec<InstanceGroup> = self
            .control_plane_subnets()
            .into_iter()
            .map(|subnet| InstanceGroup {
                name: format!("control-plane-{subnet}"),
                control_plane: true,
                machine_type: self.control_plane.machine_type.clone(),
                size: 1,
                subnet,
            })
            .collect();
        let node_subnets = self.node_subnets();
        let per_group = self.nodes.count / node_subnets.len().max(1) as u32;
        let remainder = self.nodes.count as usize % node_subnets.len().max(1);
        for (i, subnet) in node_subnets.into_iter().enumerate() {
            groups.push(InstanceGroup {
                name: format!("nodes-{subnet}"),
                control_plane: false,
                machine_type: self.nodes.machine_type.clone(),
                size: per_group + u32::from(i < remainder),
                subnet,
            });
        }
        groups
    }

    /// Who may reach the API and SSH.
    pub fn admin_access(&self) -> Vec<String> {
        self.admin_access
            .clone()
            .unwrap_or_else(|| vec!["0.0.0.0/0".to_string(), "::/0".to_string()])
    }

    /// The zone each subnet name lies in.
    pub fn zone_of(&self, subnet: &str) -> Option<String> {
        self.subnets()
            .into_iter()
            .find(|s| s.name == subnet)
            .map(|s| s.zone)
    }
}

/// `<account>.dkr.ecr.<region>.amazonaws.com[.cn]`: the account and region.
pub fn ecr_registry(registry: &str) -> Option<(String, String)> {
    let host = registry.split('/').next()?;
    let host = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = host.split_once(".dkr.ecr.")?;
    if account.is_empty() || !account.chars().all(|c| c.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    Some((account.to_string(), rest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ClusterFile {
        let text = format!(
            "name: micro.k8s.local\nregion: eu-west-1\nstateStore: s3://state\n\
             kubernetesVersion: 1.34.2\nzones: [eu-west-1a, eu-west-1b, eu-west-1c]\n\
             controlPlane: {{machineType: t3.medium}}\nnodes: {{count: 4, machineType: t3.large}}\n{extra}"
        );
        ClusterFile::parse(Path::new("cluster.yaml"), &text).unwrap()
    }

    #[test]
    fn default_subnets_are_cut_from_the_network_as_kops_cuts_them() {
        let cidrs: Vec<String> = spec("").subnets().into_iter().map(|s| s.cidr).collect();
        assert_eq!(
            cidrs,
            ["172.20.0.0/18", "172.20.64.0/18", "172.20.128.0/18"]
        );
    }

    #[test]
    fn nodes_are_split_with_the_remainder_first() {
        let groups = spec("").instance_groups();
        let shape: Vec<(String, u32)> = groups.iter().map(|g| (g.name.clone(), g.size)).collect();
        assert_eq!(
            shape,
            [
                ("control-plane-eu-west-1a".to_string(), 1),
                ("nodes-eu-west-1a".to_string(), 2),
                ("nodes-eu-west-1b".to_string(), 1),
                ("nodes-eu-west-1c".to_string(), 1),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let err = ClusterFile::parse(Path::new("c.yaml"), "name: x\nnodeCount: 3\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unknown field `nodeCount`") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn recognises_ecr() {
        assert_eq!(
            ecr_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012".to_string(), "eu-west-1".to_string()))
        );
        assert_eq!(ecr_registry("localhost:5000"), None);
        assert_eq!(ecr_registry("docker.io/micro"), None);
    }
}
