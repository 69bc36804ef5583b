//! RKE1's `cluster.yml`: the part of RKE's schema graphrun writes, as typed structs.
//!
//! Field names are the yaml tags of `types/rke_types.go` in rancher/rke
//! (`RancherKubernetesEngineConfig` and what it contains); `tests/rke_yaml_tags.txt` lists those
//! tags and a test checks that every key graphrun emits is one of them. Fields RKE defaults
//! itself are left out rather than repeated here.

use serde::Serialize;

/// `RancherKubernetesEngineConfig`: the whole file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterConfig {
    /// `nodes`: every machine of the cluster and its roles.
    pub nodes: Vec<Node>,
    /// `kubernetes_version`, e.g. `v1.32.5-rancher1-1`.
    pub kubernetes_version: String,
    /// `ssh_key_path`: the private key RKE logs in with, on the host that runs `rke up`.
    pub ssh_key_path: String,
    /// `enable_cri_dockerd`: Kubernetes 1.24 removed dockershim; RKE then runs cri-dockerd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_cri_dockerd: Option<bool>,
    /// `network`: the CNI plugin.
    pub network: Network,
    /// `ingress`: the ingress controller RKE deploys.
    pub ingress: Ingress,
}

/// `RKEConfigNode`: one machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `address`: IP or name RKE reaches the node at over SSH.
    pub address: String,
    /// `user`: the SSH user (a member of the `docker` group).
    pub user: String,
    /// `role`: `controlplane`, `etcd`, `worker`.
    pub role: Vec<String>,
    /// `hostname_override`: the Kubernetes node name (the inventory name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname_override: Option<String>,
    /// `internal_address`: the address components talk to each other on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_address: Option<String>,
    /// `port`: the SSH port (a string in RKE's schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
}

/// `NetworkConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Network {
    /// `plugin`: `canal`, `flannel`, `calico`, `weave` or `none`.
    pub plugin: String,
}

/// `IngressConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ingress {
    /// `provider`: `nginx` or `none`.
    pub provider: String,
}

impl ClusterConfig {
    /// The file's text.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("plain structs serialize")
    }
}
