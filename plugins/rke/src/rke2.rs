//! `distribution = "rke2"`: `/etc/rancher/rke2/config.yaml`, the server or agent service, and
//! on servers the kubeconfig fetched with its `127.0.0.1` replaced by the server's address.
//!
//! The first server starts the cluster; every other node names it in `server` and joins. In a
//! playbook that is two steps: one on the first server, then one on the others that `needs` it
//! with `wait = "all"`. A node whose own address is `server` is the first server, so the
//! joining step may run on every host.

use graphrun_plugin_api::shell::quote;
use std::time::Duration;

use graphrun_plugin_api::{KubeRef, Op, Plan, PlanRequest, PlanResponse, PluginError, Run, Wait};
use graphrun_plugin_kit::params::Args;
use graphrun_plugin_kit::{artifacts, probe, systemd};
use serde::Serialize;
use serde_json::Value;

use crate::host_arch;

/// RKE2's configuration folder.
const CONFIG_DIR: &str = "/etc/rancher/rke2";
/// The kubeconfig rke2-server writes (server `https://127.0.0.1:6443`).
const KUBECONFIG: &str = "/etc/rancher/rke2/rke2.yaml";
/// Its copy with the server's address, which graphrun fetches.
const KUBECONFIG_COPY: &str = "/etc/rancher/rke2/graphrun-kubeconfig.yaml";
/// Where the local copy lands in the host's fetch folder.
const FETCHED: &str = "rke2.yaml";
/// RKE2's supervisor port, which joining nodes register through.
const SUPERVISOR_PORT: u16 = 9345;
/// How long a server may take to write its kubeconfig after it started.
const KUBECONFIG_WAIT_SECONDS: u32 = 300;
const PROBE_CONFIG: &str = "config";
/// How long a node may take to become Ready once its service runs.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Where release files are kept on the host.
const DOWNLOADS: &str = "/var/lib/graphrun/rke2";
/// sha256 of the tarball last unpacked into /usr/local.
const INSTALLED: &str = "/var/lib/graphrun/rke2/installed.sha256";
/// Where RKE2 imports image archives from when it starts (air-gapped sites).
const IMAGES_DIR: &str = "/var/lib/rancher/rke2/agent/images";
/// Group whose hosts run rke2-server (the others run rke2-agent).
const SERVER_GROUP: &str = "controlplane";

/// `/etc/rancher/rke2/config.yaml`: the keys graphrun sets (RKE2's command-line flags).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Rke2Config {
    /// `https://FIRST:9345` on nodes that join; absent on the first server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The cluster's shared secret.
    pub token: String,
    /// The Kubernetes node name (the inventory name).
    pub node_name: String,
    /// The address the node advertises.
    pub node_ip: String,
    /// Servers: extra names in the API server's certificate (the node's address first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_san: Vec<String>,
    /// Servers: the CNI plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
    /// Servers: the ingress controller (RKE2's default when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_controller: Option<String>,
}

impl Rke2Config {
    /// The file's text.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("plain structs serialize")
    }
}

/// The step's RKE2 settings, checked.
#[derive(Debug)]
pub struct Settings {
    /// RKE2 release, e.g. `v1.34.5+rke2r1`.
    version: String,
    token: String,
    server: Option<String>,
    cni: String,
    ingress: Option<String>,
    tls_san: Vec<String>,
    kubeconfig: Option<String>,
    /// Whether the images archive is installed too.
    airgap: bool,
}

impl Settings {
    /// Reads and checks the parameters.
    pub fn from_args(args: &Args) -> Result<Self, PluginError> {
        let version = args.required_str("version")?.to_string();
        if !args.is_unrendered("version") {
            crate::version::check_release(&version, "v1.34.5+rke2r1")?;
        }
        let token = args
            .str("token")?
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                PluginError::param(
                    "token",
                    "is required with distribution = \"rke2\": the cluster's shared secret, as { env = \"RKE2_TOKEN\" } or { file = \"…\" }",
                )
            })?
            .to_string();
        let server = args.str("server")?.map(str::to_string);
        if let Some(server) = server.as_deref().filter(|_| !args.is_unrendered("server")) {
            if server.contains("://") || server.contains('/') {
                return Err(PluginError::param(
                    "server",
                    format!("`{server}` is not an address: name the first server's address or DNS name only; graphrun adds https:// and port {SUPERVISOR_PORT}"),
                ));
            }
        }
        Ok(Settings {
            version,
            token,
            server,
            cni: args
                .choice("cni", &["canal", "calico", "cilium", "flannel", "none"])?
                .unwrap_or("canal")
                .to_string(),
            ingress: args
                .choice("ingress", &["traefik", "ingress-nginx"])?
                .map(str::to_string),
            tls_san: args.strings("tls_san")?,
            kubeconfig: args.str("kubeconfig")?.map(str::to_string),
            airgap: args.flag("airgap")?,
        })
    }

    /// config.yaml for this host.
    pub fn config(&self, request: &PlanRequest) -> Rke2Config {
        let host = &request.host;
        let joins = self.server.as_deref().filter(|s| *s != host.address);
        let server = is_server(request);
        let mut tls_san = Vec::new();
        if server {
            tls_san.push(host.address.clone());
            tls_san.extend(self.tls_san.iter().filter(|s| **s != host.address).cloned());
        }
        Rke2Config {
            server: joins.map(|s| format!("https://{s}:{SUPERVISOR_PORT}")),
            token: self.token.clone(),
            node_name: host.name.clone(),
            node_ip: host.address.clone(),
            tls_san,
            cni: server.then(|| self.cni.clone()),
            ingress_controller: self.ingress.clone().filter(|_| server),
        }
    }
}

fn is_server(request: &PlanRequest) -> bool {
    request.host.groups.iter().any(|g| g == SERVER_GROUP)
}

/// The ops on one host: config, service, and on servers the kubeconfig.
pub fn plan(settings: &Settings, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
    if !request.probes.contains_key(PROBE_CONFIG) {
        return Ok(PlanResponse::Probe {
            probes: vec![probe::file(PROBE_CONFIG, &config_path())],
        });
    }
    let server = is_server(request);
    let unit = if server {
        "rke2-server.service"
    } else {
        "rke2-agent.service"
    };
    let config = settings.config(request).to_yaml();
    let mut ops = install(settings, host_arch(request)?, unit)?;
    ops.extend([
        Op::directory(CONFIG_DIR).with_mode("0700"),
        Op::file(&config_path(), &config).with_mode("0600"),
    ]);
    if probe::file_content(request, PROBE_CONFIG).is_some_and(|current| current != config) {
        ops.push(systemd::restart(unit));
    }
    ops.push(systemd::enable_now(unit));
    let mut plan = Plan::ops(ops);
    let kubeconfig = if server {
        let address = &request.host.address;
        let local = format!("{}/{FETCHED}", request.fetch_dir);
        plan.ops.push(kubeconfig_copy(address));
        plan.ops.push(Op::Fetch {
            path: KUBECONFIG_COPY.into(),
            to: FETCHED.into(),
        });
        plan.outputs
            .insert("kubeconfig".into(), Value::from(local.as_str()));
        plan.outputs.insert(
            "api_server".into(),
            Value::from(format!("https://{address}:6443")),
        );
        local
    } else {
        settings.kubeconfig.clone().ok_or_else(|| {
            PluginError::param(
                "kubeconfig",
                format!(
                    "is required on agents ({} is not in the `{SERVER_GROUP}` group), whose node is waited Ready through the API: \
                     set it to the first server's, e.g. \"{{{{ steps.ID.outputs.kubeconfig }}}}\"",
                    request.host.name
                ),
            )
        })?
    };
    plan.ops.push(Op::kube_wait(
        &kubeconfig,
        KubeRef::new("v1", "Node", &request.host.name),
        Wait::condition("Ready"),
        READY_TIMEOUT,
    ));
    Ok(plan.into())
}

/// The release tarball unpacked into /usr/local (as RKE2's installer does for tarballs) unless
/// this very tarball was the last one unpacked; a running service restarts on the new binary.
/// With `airgap`, the images archive where RKE2 imports images from at start.
fn install(settings: &Settings, arch: &str, unit: &str) -> Result<Vec<Op>, PluginError> {
    let tarball = artifacts::rke2(&settings.version, arch)?;
    let local = format!("{DOWNLOADS}/{}", file_name(&tarball.url));
    let mut ops = vec![
        Op::directory(DOWNLOADS).with_mode("0755"),
        tarball.to(&local).with_mode("0644"),
        Op::command_unless(
            Run::Shell(format!(
                "tar xzf {local} -C /usr/local && sha256sum {local} > {INSTALLED} \
                 && {{ ! systemctl is-active --quiet {unit} || systemctl restart {unit}; }}",
                local = quote(&local),
            )),
            Run::Shell(format!(
                "test -x /usr/local/bin/rke2 && sha256sum --quiet -c {INSTALLED}"
            )),
        ),
    ];
    if settings.airgap {
        let images = artifacts::rke2_images(&settings.version, arch)?;
        ops.push(Op::directory(IMAGES_DIR).with_mode("0755"));
        ops.push(
            images
                .to(&format!("{IMAGES_DIR}/{}", file_name(&images.url)))
                .with_mode("0644"),
        );
    }
    Ok(ops)
}

fn file_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn config_path() -> String {
    format!("{CONFIG_DIR}/config.yaml")
}

/// Waits for rke2-server's kubeconfig, then keeps a private copy whose server is `address`
/// (rke2 writes `https://127.0.0.1:6443`, reachable only on the server itself).
fn kubeconfig_copy(address: &str) -> Op {
    let rewrite = format!(
        "sed {} {KUBECONFIG}",
        quote(&format!(
            "s#https://127.0.0.1:6443#https://{}:6443#",
            address.replace(['#', '\\', '&'], "")
        ))
    );
    Op::command_unless(
        Run::Shell(format!(
            "i=0\n\
             while [ ! -s {KUBECONFIG} ]; do\n  \
               [ $i -ge {KUBECONFIG_WAIT_SECONDS} ] && {{ echo 'rke2-server wrote no {KUBECONFIG} in {KUBECONFIG_WAIT_SECONDS} s: see journalctl -u rke2-server' >&2; exit 1; }}\n  \
               i=$((i + 1)); sleep 1\n\
             done\n\
             (umask 077 && {rewrite} > {KUBECONFIG_COPY}.tmp) && mv {KUBECONFIG_COPY}.tmp {KUBECONFIG_COPY}"
        )),
        Run::Shell(format!(
            "test -s {KUBECONFIG} && {rewrite} | cmp -s - {KUBECONFIG_COPY}"
        )),
    )
}
