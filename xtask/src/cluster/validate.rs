//! The rules a cluster spec must pass before any cloud call: kops's own
//! (versions, subnets, CIDRs, names) and the cross-checks with env.yaml
//! (zones for spreading, the storage class, ECR pulls, the kube context).
//!
//! One function per rule; each returns its violations, one line each,
//! naming the field. `RULES` is the list the command runs and the tests walk.

use super::cidr::Cidr;
use super::spec::{self, ClusterFile};
use crate::environment::Environment;
use std::fmt;
use std::path::PathBuf;

/// One broken rule: the file and field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub file: PathBuf,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.field,
            self.message
        )
    }
}

/// What the rules look at.
pub struct Inputs<'a> {
    pub spec: &'a ClusterFile,
    pub spec_file: PathBuf,
    pub env: &'a Environment,
}

impl Inputs<'_> {
    fn spec_violation(&self, field: impl Into<String>, message: impl Into<String>) -> Violation {
        Violation {
            file: self.spec_file.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn env_violation(&self, field: impl Into<String>, message: impl Into<String>) -> Violation {
        Violation {
            file: self.env.file.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

pub struct Rule {
    /// Kebab-case; the negative fixture of the rule is named after it.
    pub name: &'static str,
    pub about: &'static str,
    pub check: fn(&Inputs) -> Vec<Violation>,
}

pub const RULES: &[Rule] = &[
    Rule {
        name: "kubernetes-version",
        about: "kubernetesVersion parses as [v]1.MINOR.PATCH",
        check: kubernetes_version,
    },
    Rule {
        name: "zones-in-region",
        about: "zones are distinct zones of the region",
        check: zones_in_region,
    },
    Rule {
        name: "subnet-per-zone",
        about: "every zone has at least one subnet, every subnet is in one of the zones",
        check: subnet_per_zone,
    },
    Rule {
        name: "subnets-in-network",
        about: "subnet CIDRs lie inside networkCIDR and do not overlap",
        check: subnets_in_network,
    },
    Rule {
        name: "non-masquerade-outside-network",
        about: "nonMasqueradeCIDR does not overlap networkCIDR",
        check: non_masquerade_outside_network,
    },
    Rule {
        name: "service-range-in-non-masquerade",
        about: "serviceClusterIPRange lies inside nonMasqueradeCIDR",
        check: service_range_in_non_masquerade,
    },
    Rule {
        name: "cluster-name-dns",
        about: "name ends in .k8s.local (no DNS) or lies under dnsZone",
        check: cluster_name_dns,
    },
    Rule {
        name: "state-store",
        about: "stateStore is s3://<bucket> with a valid bucket name",
        check: state_store,
    },
    Rule {
        name: "instance-group-subnets",
        about: "instance groups name existing subnets",
        check: instance_group_subnets,
    },
    Rule {
        name: "control-plane-odd",
        about: "an odd number of control-plane nodes, for etcd's quorum",
        check: control_plane_odd,
    },
    Rule {
        name: "spread-needs-zones",
        about: "env.yaml spreadAcrossZones needs at least 2 zones",
        check: spread_needs_zones,
    },
    Rule {
        name: "spread-needs-nodes",
        about: "env.yaml spreadAcrossZones needs a node in every zone",
        check: spread_needs_nodes,
    },
    Rule {
        name: "storage-class",
        about: "env.yaml storageClass is one kops creates for kubernetesVersion",
        check: storage_class,
    },
    Rule {
        name: "ecr-pull",
        about: "an ECR registry in env.yaml needs iam.allowContainerRegistry",
        check: ecr_pull,
    },
    Rule {
        name: "context-is-cluster-name",
        about: "env.yaml context is the cluster name (kops names the context after it)",
        check: context_is_cluster_name,
    },
    Rule {
        name: "network-policies-enforced",
        about: "env.yaml networkPolicies needs a networking that enforces them",
        check: network_policies_enforced,
    },
];

/// Every violation of every rule, in rule order.
pub fn check(inputs: &Inputs) -> Vec<Violation> {
    RULES.iter().flat_map(|rule| (rule.check)(inputs)).collect()
}

/// `[v]MAJOR.MINOR.PATCH[-pre][+build]` with major 1: (minor, patch).
pub fn parse_kubernetes_version(text: &str) -> Option<(u32, u32)> {
    let core = text.strip_prefix('v').unwrap_or(text);
    let core = core.split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return None;
    };
    let number = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    (number(major)? == 1).then_some(())?;
    Some((number(minor)?, number(patch)?))
}

fn kubernetes_version(i: &Inputs) -> Vec<Violation> {
    let text = &i.spec.kubernetes_version;
    match parse_kubernetes_version(text) {
        Some(_) => vec![],
        None => vec![i.spec_violation(
            "kubernetesVersion",
            format!("`{text}` is not a Kubernetes version (e.g. 1.34.2 or v1.34.2)"),
        )],
    }
}

fn zones_in_region(i: &Inputs) -> Vec<Violation> {
    let spec = i.spec;
    if spec.zones.is_empty() {
        return vec![i.spec_violation("zones", "no zones: name at least one")];
    }
    let mut out = Vec::new();
    for (n, zone) in spec.zones.iter().enumerate() {
        let suffix = zone.strip_prefix(spec.region.as_str()).unwrap_or("");
        let letter = suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_lowercase());
        if !letter {
            out.push(i.spec_violation(
                format!("zones[{n}]"),
                format!(
                    "`{zone}` is not a zone of region `{}` (e.g. {}a)",
                    spec.region, spec.region
                ),
            ));
        } else if spec.zones[..n].contains(zone) {
            out.push(i.spec_violation(format!("zones[{n}]"), format!("`{zone}` is listed twice")));
        }
    }
    out
}

fn subnet_per_zone(i: &Inputs) -> Vec<Violation> {
    let subnets = i.spec.subnets();
    let mut out = Vec::new();
    for zone in &i.spec.zones {
        if !subnets.iter().any(|s| &s.zone == zone) {
            out.push(i.spec_violation(
                "subnets",
                format!("zone `{zone}` has no subnet: add one with `zone: {zone}`"),
            ));
        }
    }
    for (n, subnet) in subnets.iter().enumerate() {
        if !i.spec.zones.contains(&subnet.zone) {
            out.push(i.spec_violation(
                format!("subnets[{n}].zone"),
                format!("`{}` is not one of zones", subnet.zone),
            ));
        }
        if subnets[..n].iter().any(|s| s.name == subnet.name) {
            out.push(i.spec_violation(
                format!("subnets[{n}].name"),
                format!("`{}` is the name of an earlier subnet", subnet.name),
            ));
        }
    }
    out
}

fn subnets_in_network(i: &Inputs) -> Vec<Violation> {
    let network = match Cidr::parse(&i.spec.network_cidr) {
        Ok(network) => network,
        Err(e) => return vec![i.spec_violation("networkCIDR", e)],
    };
    let mut out = Vec::new();
    let mut parsed: Vec<(usize, Cidr)> = Vec::new();
    for (n, subnet) in i.spec.subnets().iter().enumerate() {
        let field = format!("subnets[{n}].cidr");
        let cidr = match Cidr::parse(&subnet.cidr) {
            Ok(cidr) => cidr,
            Err(e) => {
                out.push(i.spec_violation(field, e));
                continue;
            }
        };
        if !network.contains(&cidr) {
            out.push(i.spec_violation(
                field,
                format!(
                    "subnet `{}` {cidr} is not inside networkCIDR {network}",
                    subnet.name
                ),
            ));
        } else if let Some((m, _)) = parsed.iter().find(|(_, other)| other.overlaps(&cidr)) {
            out.push(i.spec_violation(field, format!("{cidr} overlaps subnets[{m}].cidr")));
        }
        parsed.push((n, cidr));
    }
    out
}

fn non_masquerade_outside_network(i: &Inputs) -> Vec<Violation> {
    let non_masquerade = match Cidr::parse(&i.spec.non_masquerade_cidr) {
        Ok(cidr) => cidr,
        Err(e) => return vec![i.spec_violation("nonMasqueradeCIDR", e)],
    };
    // An unparsable networkCIDR is subnets-in-network's to report.
    match Cidr::parse(&i.spec.network_cidr) {
        Ok(network) if network.overlaps(&non_masquerade) => vec![i.spec_violation(
            "nonMasqueradeCIDR",
            format!("{non_masquerade} overlaps networkCIDR {network}: pods and services would collide with the VPC"),
        )],
        _ => vec![],
    }
}

fn service_range_in_non_masquerade(i: &Inputs) -> Vec<Violation> {
    let services = match Cidr::parse(&i.spec.service_cluster_ip_range) {
        Ok(cidr) => cidr,
        Err(e) => return vec![i.spec_violation("serviceClusterIPRange", e)],
    };
    match Cidr::parse(&i.spec.non_masquerade_cidr) {
        Ok(non_masquerade) if !non_masquerade.contains(&services) => vec![i.spec_violation(
            "serviceClusterIPRange",
            format!("{services} is not inside nonMasqueradeCIDR {non_masquerade}"),
        )],
        _ => vec![],
    }
}

/// Lower-case DNS labels joined by dots.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(crate::environment::is_dns_label)
}

fn cluster_name_dns(i: &Inputs) -> Vec<Violation> {
    let name = &i.spec.name;
    if !is_dns_name(name) {
        return vec![i.spec_violation(
            "name",
            format!("`{name}` is not a DNS name (lower-case letters, digits, `-`, dots)"),
        )];
    }
    let local = name.ends_with(".k8s.local");
    match &i.spec.dns_zone {
        None if !local => vec![i.spec_violation(
            "name",
            format!(
                "`{name}` needs a DNS zone: end the name in `.k8s.local` (no DNS) or set dnsZone"
            ),
        )],
        Some(_) if local => vec![i.spec_violation(
            "dnsZone",
            format!("a `.k8s.local` cluster uses no DNS zone: remove dnsZone or rename `{name}`"),
        )],
        Some(zone) if !name.ends_with(&format!(".{zone}")) => {
            vec![i.spec_violation("name", format!("`{name}` is not inside dnsZone `{zone}`"))]
        }
        _ => vec![],
    }
}

fn state_store(i: &Inputs) -> Vec<Violation> {
    let store = &i.spec.state_store;
    let bucket = i.spec.state_bucket();
    let valid = store.starts_with("s3://")
        && (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        vec![]
    } else {
        vec![i.spec_violation(
            "stateStore",
            format!("`{store}` is not s3://<bucket> with an S3 bucket name (3-63 lower-case letters, digits, `-`, `.`)"),
        )]
    }
}

fn instance_group_subnets(i: &Inputs) -> Vec<Violation> {
    let subnets = i.spec.subnets();
    let mut out = Vec::new();
    for (group, names) in [
        ("controlPlane", i.spec.control_plane_subnets()),
        ("nodes", i.spec.node_subnets()),
    ] {
        if names.is_empty() {
            out.push(i.spec_violation(format!("{group}.subnets"), "names no subnet"));
        }
        for (n, name) in names.iter().enumerate() {
            if !subnets.iter().any(|s| &s.name == name) {
                let known: Vec<&str> = subnets.iter().map(|s| s.name.as_str()).collect();
                out.push(i.spec_violation(
                    format!("{group}.subnets[{n}]"),
                    format!("no subnet `{name}` (subnets: {})", known.join(", ")),
                ));
            } else if names[..n].contains(name) {
                out.push(i.spec_violation(
                    format!("{group}.subnets[{n}]"),
                    format!("`{name}` is listed twice"),
                ));
            }
        }
    }
    out
}

fn control_plane_odd(i: &Inputs) -> Vec<Violation> {
    let count = i.spec.control_plane_subnets().len();
    if count % 2 == 1 {
        return vec![];
    }
    vec![i.spec_violation(
        "controlPlane.subnets",
        format!("{count} control-plane nodes: etcd needs an odd number (1, 3, 5) for a quorum"),
    )]
}

fn spread_needs_zones(i: &Inputs) -> Vec<Violation> {
    let zones = i.spec.zones.len();
    if !i.env.spread_across_zones || zones >= 2 {
        return vec![];
    }
    vec![i.spec_violation(
        "zones",
        format!(
            "{zones} zone, but {} sets spreadAcrossZones: name at least 2 zones",
            i.env.file.display()
        ),
    )]
}

fn spread_needs_nodes(i: &Inputs) -> Vec<Violation> {
    if !i.env.spread_across_zones {
        return vec![];
    }
    let mut out = Vec::new();
    let zones = i.spec.zones.len() as u32;
    if i.spec.nodes.count < zones {
        out.push(i.spec_violation(
            "nodes.count",
            format!(
                "{} nodes for {zones} zones, but {} sets spreadAcrossZones: at least one node per zone",
                i.spec.nodes.count,
                i.env.file.display()
            ),
        ));
    }
    let node_zones: Vec<String> = i
        .spec
        .node_subnets()
        .iter()
        .filter_map(|s| i.spec.zone_of(s))
        .collect();
    for zone in &i.spec.zones {
        // Without a subnet the zone is subnet-per-zone's to report.
        let has_subnet = i.spec.subnets().iter().any(|s| &s.zone == zone);
        if has_subnet && !node_zones.contains(zone) {
            out.push(i.spec_violation(
                "nodes.subnets",
                format!(
                    "no node subnet in zone `{zone}`, but {} sets spreadAcrossZones",
                    i.env.file.display()
                ),
            ));
        }
    }
    out
}

/// The storage classes kops's AWS storage addon creates, and the Kubernetes
/// minor version from which each exists (the version is in the name).
const KOPS_STORAGE_CLASSES: &[(&str, u32)] = &[
    ("default", 0),
    ("gp2", 0),
    ("kops-ssd-1-17", 17),
    ("kops-csi-1-21", 21),
];

fn storage_class(i: &Inputs) -> Vec<Violation> {
    let Some(class) = &i.env.storage_class else {
        return vec![];
    };
    // An unparsable version is kubernetes-version's to report.
    let Some((minor, _)) = parse_kubernetes_version(&i.spec.kubernetes_version) else {
        return vec![];
    };
    let available: Vec<&str> = KOPS_STORAGE_CLASSES
        .iter()
        .filter(|(_, since)| minor >= *since)
        .map(|(name, _)| *name)
        .collect();
    if available.contains(&class.as_str()) {
        return vec![];
    }
    vec![i.env_violation(
        "storageClass",
        format!(
            "`{class}` is not a class kops creates for Kubernetes {} (it creates: {})",
            i.spec.kubernetes_version,
            available.join(", ")
        ),
    )]
}

fn ecr_pull(i: &Inputs) -> Vec<Violation> {
    let ecr = spec::ecr_registry(&i.env.registry).is_some();
    if ecr && i.spec.iam.allow_container_registry == Some(false) {
        return vec![i.spec_violation(
            "iam.allowContainerRegistry",
            format!(
                "false, but {} pulls from ECR ({}): nodes could not pull the images",
                i.env.file.display(),
                i.env.registry
            ),
        )];
    }
    vec![]
}

fn context_is_cluster_name(i: &Inputs) -> Vec<Violation> {
    if i.env.context == i.spec.name {
        return vec![];
    }
    vec![i.env_violation(
        "context",
        format!(
            "`{}`, but kops names the context after the cluster, `{}`",
            i.env.context, i.spec.name
        ),
    )]
}

fn network_policies_enforced(i: &Inputs) -> Vec<Violation> {
    if !i.env.network_policies || i.spec.networking.enforces_network_policies() {
        return vec![];
    }
    vec![i.spec_violation(
        "networking",
        format!(
            "kubenet does not enforce NetworkPolicies, which {} turns on: use cilium or calico",
            i.env.file.display()
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_kubernetes_version("1.34.2"), Some((34, 2)));
        assert_eq!(parse_kubernetes_version("v1.34.2"), Some((34, 2)));
        assert_eq!(parse_kubernetes_version("v1.35.0-beta.1"), Some((35, 0)));
        for bad in ["1.34", "latest", "2.0.0", "1.x.0", "v1.34.2.1", ""] {
            assert_eq!(parse_kubernetes_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn rule_names_are_unique_kebab_case() {
        let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }
}
