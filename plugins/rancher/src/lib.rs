//! The built-in `rancher` step: Rancher's chart (release `rancher` in `cattle-system`) for a
//! hostname, after checking that the cluster can take it.
//!
//! Probes (one round trip): the cluster's version and, when Rancher's certificate comes from
//! cert-manager (`tls_source = "rancher"` or `"letsEncrypt"`), cert-manager's webhook endpoints,
//! from the control machine; the chart's `Chart.yaml` and the release, with helm on the host.
//! Refused before anything is installed: a cluster outside the chart's `kubeVersion`, and a
//! cert-manager webhook that cannot answer (helm would fail on the chart's Issuer with the API
//! server's raw webhook error). Then `helm upgrade --install` with the values in a 0600 file
//! (the bootstrap password never reaches a command line), only when the release differs, and a
//! wait for the Deployment's rollout. The chart renders its own Ingress for `hostname`.
//! Output: `url`.

mod checks;

use graphrun_plugin_api::{
    KubeRef, Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError,
    PluginInfo, Probe, Wait,
};
use graphrun_plugin_kit::chart;
use graphrun_plugin_kit::helm::Release;
use graphrun_plugin_kit::names::is_host_name;
use graphrun_plugin_kit::params::{specs, Args, Param};
use serde_json::{json, Map, Value};

const RELEASE: &str = "rancher";
/// Rancher runs in this namespace only.
const NAMESPACE: &str = "cattle-system";
const PROBE_SERVER: &str = "kubernetes-version";
const PROBE_CHART: &str = "chart";
const PROBE_WEBHOOK: &str = "cert-manager-webhook";

/// Rancher's `ingress.tls.source` values.
const TLS_SOURCES: &[&str] = &["rancher", "letsEncrypt", "secret"];

const PARAMS: &[Param] = &[
    chart::KUBECONFIG,
    chart::VERSION,
    chart::chart("rancher-stable/rancher"),
    chart::repository("https://releases.rancher.com/server-charts/stable"),
    Param::required(
        "hostname",
        ParamKind::String,
        "The DNS name Rancher is reached at (its Ingress host)",
    ),
    Param::required(
        "bootstrap_password",
        ParamKind::String,
        "Password of Rancher's first admin login: a secret ({ env = \"…\" } or { file = \"…\" })",
    ),
    Param::optional(
        "tls_source",
        ParamKind::String,
        "Where the Ingress certificate comes from: \"rancher\" (cert-manager, Rancher's own CA), \"letsEncrypt\" (cert-manager, Let's Encrypt) or \"secret\" (the Secret tls-rancher-ingress in cattle-system)",
    )
    .default_str("rancher"),
    Param::optional(
        "letsencrypt_email",
        ParamKind::String,
        "Let's Encrypt account email (with tls_source = \"letsEncrypt\")",
    ),
    Param::optional("replicas", ParamKind::Integer, "Rancher server replicas").default_int(3),
    Param::optional(
        "ingress_class",
        ParamKind::String,
        "IngressClass of Rancher's Ingress (e.g. \"nginx\" on RKE1, \"traefik\" on RKE2 >= 1.36); the cluster's default when unset",
    ),
    chart::VALUES,
    chart::HOST_KUBECONFIG,
    chart::HELM,
    chart::WAIT_TIMEOUT,
];

/// The `rancher` step.
#[derive(Debug, Default)]
pub struct RancherPlugin;

impl Plugin for RancherPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "rancher".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Installs Rancher's chart for a hostname (checking the chart's Kubernetes range and cert-manager's webhook first) and waits for its rollout".into(),
            params: specs(PARAMS),
            once: true,
            outputs: vec!["url".into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        let args = Args::new(PARAMS, params);
        if args.any_unrendered() {
            return tls_source(&args).err().into_iter().collect();
        }
        release(&args).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let args = Args::new(PARAMS, &request.params);
        let kubeconfig = args.required_str("kubeconfig")?;
        let release = release(&args)?;
        let tls_source = tls_source(&args)?;
        let needs_cert_manager = tls_source != "secret";
        if request.probes.is_empty() {
            let mut probes = vec![
                Probe::kube_version(PROBE_SERVER, kubeconfig),
                checks::chart_probe(PROBE_CHART, &release),
                release.probe(),
            ];
            if needs_cert_manager {
                probes.push(checks::webhook_probe(PROBE_WEBHOOK, kubeconfig));
            }
            return Ok(PlanResponse::Probe { probes });
        }
        let cluster = chart::server_version(request, PROBE_SERVER, kubeconfig)?;
        let what = format!("{} {}", release.chart, args.required_str("version")?);
        let chart = request.probes.get(PROBE_CHART).cloned().unwrap_or_default();
        checks::kube_version(&chart, &what, cluster)
            .map_err(|why| PluginError::param("version", why))?;
        if needs_cert_manager {
            checks::webhook_ready(request.probes.get(PROBE_WEBHOOK), tls_source)
                .map_err(|why| PluginError::param("tls_source", why))?;
        }
        let mut ops = release.plan(request, None)?;
        let deployment = KubeRef::new("apps/v1", "Deployment", RELEASE).in_namespace(NAMESPACE);
        ops.push(Op::kube_wait(
            kubeconfig,
            deployment,
            Wait::Rollout,
            chart::wait_timeout(&args)?,
        ));
        let mut plan = Plan::ops(ops);
        let hostname = args.required_str("hostname")?;
        plan.outputs
            .insert("url".into(), format!("https://{hostname}").into());
        Ok(plan.into())
    }
}

fn tls_source<'a>(args: &Args<'a>) -> Result<&'a str, PluginError> {
    let source = args.choice("tls_source", TLS_SOURCES)?.unwrap_or("rancher");
    let email = args.has("letsencrypt_email");
    match (source, email) {
        ("letsEncrypt", false) if !args.is_unrendered("tls_source") => Err(PluginError::param(
            "tls_source",
            "\"letsEncrypt\" needs `letsencrypt_email` (Let's Encrypt's account contact)",
        )),
        ("rancher" | "secret", true) => Err(PluginError::param(
            "letsencrypt_email",
            format!("is used with tls_source = \"letsEncrypt\" only, not \"{source}\""),
        )),
        _ => Ok(source),
    }
}

/// The release, its values from the step's parameters.
fn release(args: &Args) -> Result<Release, PluginError> {
    chart::release(args, RELEASE, NAMESPACE, values(args)?)
}

/// Rancher's chart values for the step's parameters.
fn values(args: &Args) -> Result<Map<String, Value>, PluginError> {
    let hostname = args.required_str("hostname")?;
    if !is_host_name(hostname, false) {
        return Err(PluginError::param(
            "hostname",
            format!("`{hostname}` is not a DNS name such as \"rancher.example.com\" (Rancher's Ingress and certificate need one, not an address)"),
        ));
    }
    let replicas = args.int("replicas")?.unwrap_or(3);
    if replicas < 1 {
        return Err(PluginError::param("replicas", "must be at least 1"));
    }
    let source = tls_source(args)?;
    let mut values = json!({
        "hostname": hostname,
        "bootstrapPassword": args.required_str("bootstrap_password")?,
        "replicas": replicas,
        "ingress": {"tls": {"source": source}},
    });
    if let Some(class) = args.str("ingress_class")? {
        values["ingress"]["ingressClassName"] = class.into();
    }
    if source == "letsEncrypt" {
        values["letsEncrypt"] = json!({"email": args.required_str("letsencrypt_email")?});
        if let Some(class) = args.str("ingress_class")? {
            values["letsEncrypt"]["ingress"] = json!({"class": class});
        }
    }
    Ok(values.as_object().cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests;
