use super::*;
use graphrun_plugin_api::{HostInfo, Op, Plan};
use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request};
use serde_json::{json, Value};

const FETCH_DIR: &str = "/work/.graphrun/cluster/fetched/master";
const TOKEN: &str = "K10-s3cret-token-value";
/// The first RKE2 server's kubeconfig, as its step's output names it.
const FIRST_KUBECONFIG: &str = "/work/.graphrun/cluster/fetched/s1/rke2.yaml";

fn host(name: &str, address: &str, groups: &[&str]) -> HostInfo {
    HostInfo {
        name: name.into(),
        address: address.into(),
        user: Some("ubuntu".into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

/// The walkthrough's two machines, and larger inventories.
fn inventory(size: usize) -> Vec<HostInfo> {
    match size {
        1 => vec![host(
            "master",
            "10.77.3.11",
            &["controlplane", "etcd", "worker"],
        )],
        2 => vec![
            host("master", "10.77.3.11", &["controlplane", "etcd"]),
            host("worker", "10.77.3.12", &["worker"]),
        ],
        5 => vec![
            host("cp1", "10.77.3.11", &["controlplane", "etcd"]),
            host("cp2", "10.77.3.12", &["controlplane", "etcd"]),
            host("cp3", "10.77.3.13", &["controlplane", "etcd"]),
            host("gpu1", "10.77.3.14", &["worker", "gpu"]),
            host("gpu2", "10.77.3.15", &["worker", "gpu"]),
        ],
        _ => unreachable!(),
    }
}

fn rke1_params() -> Value {
    json!({"version": "v1.8.5", "kubernetes_version": "v1.32.5-rancher1-1"})
}

fn plan(params: Value, on: HostInfo, hosts: Vec<HostInfo>) -> Result<Plan, PluginError> {
    Request::new(params)
        .on(on)
        .inventory(hosts)
        .fetch_dir(FETCH_DIR)
        .fact("arch", "x86_64")
        .plan(&RkePlugin, |_| None)
}

fn params(value: Value) -> Params {
    serde_json::from_value(value).unwrap()
}

fn cluster_yml(plan: &Plan) -> &str {
    plan.ops
        .iter()
        .find_map(|op| match op {
            Op::File { path, content, .. } if path.ends_with("/cluster.yml") => Some(content),
            _ => None,
        })
        .expect("a cluster.yml")
}

#[test]
fn cluster_yml_for_one_two_and_five_nodes() {
    for size in [1, 2, 5] {
        let hosts = inventory(size);
        let plan = plan(rke1_params(), hosts[0].clone(), hosts).unwrap();
        assert_snapshot(
            env!("CARGO_MANIFEST_DIR"),
            &format!("rke1-{size}-nodes"),
            &render(&plan),
        );
    }
}

/// Every key graphrun writes is a yaml tag of RKE's schema at that place.
#[test]
fn every_emitted_key_is_an_rke_yaml_tag() {
    let known: Vec<(&str, &str)> = include_str!("../fixtures/rke_yaml_tags.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split_once(' ').expect("PATH KEY"))
        .collect();
    let explicit = json!({
        "version": "v1.8.5",
        "kubernetes_version": "v1.20.15-rancher2-2",
        "nodes": [{"address": "10.77.3.11", "user": "rke", "role": ["controlplane", "etcd", "worker"],
                   "hostname_override": "master", "internal_address": "172.16.0.1", "port": 2222}],
    });
    let hosts = inventory(5);
    for params in [rke1_params(), explicit] {
        let plan = plan(params, hosts[0].clone(), hosts.clone()).unwrap();
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(cluster_yml(&plan)).unwrap();
        let mut emitted = Vec::new();
        keys(".", &yaml, &mut emitted);
        assert!(emitted.len() > 10, "{emitted:?}");
        for (path, key) in emitted {
            assert!(
                known.contains(&(path.as_str(), key.as_str())),
                "`{key}` under `{path}` is not a yaml tag of RKE's types/rke_types.go"
            );
        }
    }
}

fn keys(path: &str, value: &serde_yaml_ng::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_yaml_ng::Value::Mapping(map) => {
            for (key, value) in map {
                let key = key.as_str().expect("string keys").to_string();
                let below = if path == "." {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.push((path.to_string(), key));
                keys(&below, value, out);
            }
        }
        serde_yaml_ng::Value::Sequence(items) => {
            for item in items {
                keys(&format!("{path}[]"), item, out);
            }
        }
        _ => {}
    }
}

#[test]
fn cri_dockerd_only_from_kubernetes_1_24() {
    let hosts = inventory(1);
    let old = json!({"version": "v1.8.5", "kubernetes_version": "v1.23.16-rancher2-3"});
    let plan = plan(old, hosts[0].clone(), hosts).unwrap();
    assert!(!cluster_yml(&plan).contains("enable_cri_dockerd"));
}

#[test]
fn rke1_warns_of_its_end_of_life_and_names_its_outputs() {
    let hosts = inventory(2);
    let plan = plan(rke1_params(), hosts[0].clone(), hosts).unwrap();
    assert!(render(&plan).contains("warning: RKE1 reached end of life on 2025-07-31"));
    assert_eq!(
        plan.outputs["kubeconfig"],
        format!("{FETCH_DIR}/kube_config_cluster.yml")
    );
    assert_eq!(plan.outputs["api_server"], "https://10.77.3.11:6443");
}

/// A second node of the cluster running `rke up` beside the first controlplane node is refused;
/// a machine outside the cluster may drive it.
#[test]
fn rke1_runs_from_one_host_only() {
    let hosts = inventory(5);
    let error = plan(rke1_params(), hosts[1].clone(), hosts.clone()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("rke1 runs `rke up` from one host"),
        "{error}"
    );
    let outside = HostInfo {
        name: "workstation".into(),
        address: "10.77.3.99".into(),
        ..HostInfo::default()
    };
    assert!(plan(rke1_params(), outside, hosts).is_ok());
}

fn validate(value: Value) -> Vec<String> {
    RkePlugin
        .validate(&params(value))
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

fn with_nodes(nodes: Value) -> Value {
    let mut value = rke1_params();
    value["nodes"] = nodes;
    value
}

/// Each of RKE's node rules, at `validate`, pointing at `nodes`.
#[test]
fn rke_node_rules_are_checked_at_validate() {
    let cp = json!({"address": "10.0.0.1", "user": "u", "role": ["controlplane", "etcd"]});
    let cases = [
        (
            json!([{"user": "u", "role": ["controlplane", "etcd"]}]),
            "address for node 1 of `nodes` is not provided",
        ),
        (
            json!([{"address": "a", "role": ["controlplane", "etcd"]}]),
            "user for node 1 of `nodes` is not provided",
        ),
        (
            json!([cp, {"address": "b", "user": "u"}]),
            "role for node 2 of `nodes` is not provided",
        ),
        (
            json!([cp, {"address": "b", "user": "u", "role": ["master"]}]),
            "role `master` for node 2 of `nodes` is not recognized",
        ),
        (
            json!([cp, {"address": "10.0.0.1", "user": "u", "role": ["worker"]}]),
            "the cluster can't have duplicate node 10.0.0.1",
        ),
        (
            json!([{"address": "a", "user": "u", "role": ["controlplane"]}]),
            "the cluster must have at least one etcd host",
        ),
        (
            json!([{"address": "a", "user": "u", "role": ["etcd"]}]),
            "the cluster must have at least one control plane host",
        ),
        (
            json!([cp, {"address": "b", "user": "u", "role": ["worker"], "hostname_override": "Worker_1"}]),
            "hostname_override for node 2 of `nodes`: `Worker_1` is not a Kubernetes name",
        ),
        (
            json!([cp, {"address": "b", "user": "u", "role": ["worker"], "labels": {}}]),
            "node 2 of `nodes`: unknown key `labels`",
        ),
    ];
    for (nodes, expected) in cases {
        let errors = validate(with_nodes(nodes.clone()));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("parameter `nodes`: ") && e.contains(expected)),
            "{nodes}: expected `{expected}` in {errors:?}"
        );
    }
    assert!(validate(with_nodes(json!([cp]))).is_empty());
}

#[test]
fn inventory_nodes_are_checked_before_rke_up() {
    let mut hosts = inventory(2);
    hosts[1].address = hosts[0].address.clone();
    hosts[1].user = None;
    let error = plan(rke1_params(), hosts[0].clone(), hosts).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("nodes"));
    assert!(
        error.message.contains("duplicate node 10.77.3.11"),
        "{error}"
    );
    assert!(
        error
            .message
            .contains("user for host `worker` is not provided"),
        "{error}"
    );
    let error = plan(rke1_params(), inventory(1)[0].clone(), vec![]).unwrap_err();
    assert!(error.message.contains("at least one etcd host"), "{error}");
}

#[test]
fn parameters_are_checked_at_validate() {
    let cases = [
        (
            json!({"version": "1.8.5", "kubernetes_version": "v1.32.5-rancher1-1"}),
            "parameter `version`: `1.8.5` is not a release tag",
        ),
        (
            json!({"version": "v1.8.5"}),
            "parameter `kubernetes_version`: is required with distribution = \"rke1\"",
        ),
        (
            json!({"version": "v1.8.5", "kubernetes_version": "v1.33.1-rancher1-1"}),
            "RKE 1.8 stops at Kubernetes 1.32",
        ),
        (
            json!({"version": "v1.8.5", "kubernetes_version": "v1.32.5-rancher1-1", "cni": "cilium"}),
            "parameter `cni`: `cilium` is not one of",
        ),
        (
            json!({"version": "v1.8.5", "kubernetes_version": "v1.32.5-rancher1-1", "ingress": "traefik"}),
            "parameter `ingress`: `traefik` is not one of \"nginx\", \"none\"",
        ),
        (
            json!({"version": "v1.8.5", "kubernetes_version": "v1.32.5-rancher1-1", "token": "x"}),
            "parameter `token`: is read only with distribution = \"rke2\"",
        ),
        (
            json!({"distribution": "rke2", "version": "v1.34.5+rke2r1"}),
            "parameter `token`: is required with distribution = \"rke2\"",
        ),
        (
            json!({"distribution": "rke2", "version": "v1.34.5+rke2r1", "token": "t", "dir": "/x"}),
            "parameter `dir`: is read only with distribution = \"rke1\"",
        ),
        (
            json!({"distribution": "rke2", "version": "v1.34.5+rke2r1", "token": "t", "server": "https://a:9345"}),
            "parameter `server`: `https://a:9345` is not an address",
        ),
        (
            json!({"distribution": "k3s", "version": "v1.8.5"}),
            "parameter `distribution`: `k3s` is not one of",
        ),
    ];
    for (value, expected) in cases {
        let errors = validate(value.clone());
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{value}: expected `{expected}` in {errors:?}"
        );
    }
    let templated = json!({"version": "{{ vars.rke }}", "kubernetes_version": "{{ vars.k8s }}"});
    assert!(validate(templated).is_empty());
}

fn rke2_params(extra: Value) -> Value {
    let mut value = json!({"distribution": "rke2", "version": "v1.34.5+rke2r1", "token": TOKEN});
    for (key, item) in extra.as_object().unwrap() {
        value[key] = item.clone();
    }
    value
}

fn rke2_plan(params: Value, on: HostInfo) -> Plan {
    Request::new(params)
        .on(on)
        .fetch_dir(FETCH_DIR)
        .fact("arch", "x86_64")
        .plan(&RkePlugin, |_| None)
        .unwrap()
}

#[test]
fn rke2_config_for_the_first_server_a_joining_server_and_an_agent() {
    let extra = json!({"server": "10.77.3.101", "tls_san": ["k8s.lab.test"], "ingress": "traefik",
                       "kubeconfig": FIRST_KUBECONFIG});
    let nodes = [
        (
            "first-server",
            host("s1", "10.77.3.101", &["controlplane", "etcd"]),
        ),
        (
            "joining-server",
            host("s3", "10.77.3.103", &["controlplane", "etcd"]),
        ),
        ("agent", host("s2", "10.77.3.102", &["worker"])),
    ];
    for (name, on) in nodes {
        let plan = rke2_plan(rke2_params(extra.clone()), on);
        assert_snapshot(
            env!("CARGO_MANIFEST_DIR"),
            &format!("rke2-{name}"),
            &render(&plan),
        );
    }
}

/// The token is written only into the 0600 config file: no command, summary or output has it.
#[test]
fn the_rke2_token_stays_in_its_private_file() {
    for on in [
        host("s1", "10.77.3.101", &["controlplane"]),
        host("s2", "10.77.3.102", &[]),
    ] {
        let extra = json!({"server": "10.77.3.101", "kubeconfig": FIRST_KUBECONFIG});
        let plan = rke2_plan(rke2_params(extra), on);
        for op in &plan.ops {
            assert!(!op.summary().contains(TOKEN), "{}", op.summary());
            if let Op::File { content, attrs, .. } = op {
                if content.contains(TOKEN) {
                    assert_eq!(attrs.mode.as_deref(), Some("0600"));
                }
            }
        }
        assert!(!serde_json::to_string(&plan.outputs)
            .unwrap()
            .contains(TOKEN));
    }
}

#[test]
fn a_changed_rke2_config_restarts_the_service() {
    let on = host("s1", "10.77.3.101", &["controlplane"]);
    let plan = Request::new(rke2_params(json!({})))
        .on(on)
        .fact("arch", "x86_64")
        .plan(&RkePlugin, |probe| {
            (probe.name == "config").then(|| testkit::ok("token: old\n"))
        })
        .unwrap();
    assert!(render(&plan).contains("systemctl restart rke2-server.service"));
}

#[test]
fn rke2_airgap_installs_the_images_archive_where_rke2_imports_it() {
    let on = host("s1", "10.77.3.101", &["controlplane"]);
    let text = render(&rke2_plan(rke2_params(json!({"airgap": true})), on.clone()));
    assert!(text.contains("artifact https://github.com/rancher/rke2/releases/download/v1.34.5%2Brke2r1/rke2-images.linux-amd64.tar.zst → /var/lib/rancher/rke2/agent/images/rke2-images.linux-amd64.tar.zst"), "{text}");
    let text = render(&rke2_plan(rke2_params(json!({})), on));
    assert!(!text.contains("rke2-images"), "{text}");
}

#[test]
fn an_rke2_agent_needs_a_kubeconfig_to_wait_for_its_node() {
    let agent = host("s2", "10.77.3.102", &["worker"]);
    let error = Request::new(rke2_params(json!({"server": "10.77.3.101"})))
        .on(agent)
        .fact("arch", "x86_64")
        .plan(&RkePlugin, |_| None)
        .unwrap_err();
    assert_eq!(error.param.as_deref(), Some("kubeconfig"));
    assert!(
        error
            .message
            .contains("s2 is not in the `controlplane` group"),
        "{error}"
    );
}
