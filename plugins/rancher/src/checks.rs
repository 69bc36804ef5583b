//! What the rancher step checks before it installs anything: the chart's `kubeVersion` against
//! the cluster, and, when Rancher's certificates come from cert-manager, that cert-manager's
//! webhook can answer (otherwise the chart's Issuer fails inside helm with a raw webhook error).

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{KubeRef, Probe, ProbeResult, Run};
use graphrun_plugin_kit::helm::Release;
use graphrun_plugin_kit::kube_version::{Range, Version};

/// Where cert-manager's webhook Service lives (the namespace and release its docs use).
pub const WEBHOOK_NAMESPACE: &str = "cert-manager";
/// cert-manager's webhook Service.
pub const WEBHOOK_SERVICE: &str = "cert-manager-webhook";

/// A probe printing the chart's `Chart.yaml` (`helm show chart`), read from its repository
/// directly so it works before the repository is added on the host.
pub fn chart_probe(name: &str, release: &Release) -> Probe {
    let version = release.version.as_deref().unwrap_or_default();
    let command = match &release.repository {
        Some(repository) => {
            let chart = release.chart.split_once('/').map_or("", |(_, chart)| chart);
            format!(
                "{} show chart --repo {} {} --version {}",
                quote(&release.helm),
                quote(&repository.url),
                quote(chart),
                quote(version)
            )
        }
        None => format!(
            "{} show chart {} --version {}",
            quote(&release.helm),
            quote(&release.chart),
            quote(version)
        ),
    };
    Probe::run(name, Run::Shell(command))
}

/// Refuses a cluster outside the chart's `kubeVersion` range (no range: any cluster).
pub fn kube_version(chart: &ProbeResult, what: &str, cluster: Version) -> Result<(), String> {
    if chart.exit_code != 0 {
        return Err(format!(
            "cannot read {what}'s Chart.yaml with `helm show chart` on the host: {}",
            chart.stderr.trim()
        ));
    }
    let Some(range) = chart.stdout.lines().find_map(|line| {
        let value = line.strip_prefix("kubeVersion:")?.trim();
        Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
    }) else {
        return Ok(());
    };
    let range = Range::parse(&range)?;
    if range.contains(cluster) {
        Ok(())
    } else {
        Err(format!(
            "{what} requires Kubernetes {range}, and the cluster runs {cluster}: pick a chart version made for {}",
            cluster.line()
        ))
    }
}

/// Reads cert-manager's webhook Endpoints.
pub fn webhook_probe(name: &str, kubeconfig: &str) -> Probe {
    let target = KubeRef::new("v1", "Endpoints", WEBHOOK_SERVICE).in_namespace(WEBHOOK_NAMESPACE);
    Probe::kube_get(name, kubeconfig, target)
}

/// Refuses when cert-manager's webhook has no ready endpoint: `tls_source` says why it is needed.
pub fn webhook_ready(endpoints: Option<&ProbeResult>, tls_source: &str) -> Result<(), String> {
    let needs = format!(
        "Rancher with tls_source = \"{tls_source}\" needs cert-manager, whose webhook validates the certificate Issuer the chart creates"
    );
    let service = format!("{WEBHOOK_NAMESPACE}/{WEBHOOK_SERVICE}");
    let found = endpoints.filter(|result| result.exit_code == 0);
    let Some(found) = found else {
        return Err(format!(
            "{needs}, and cert-manager is not installed (no Service {service}): add a `cert-manager` step to this step's `needs`, or use tls_source = \"secret\" with your own certificate"
        ));
    };
    let endpoints: serde_json::Value = serde_json::from_str(&found.stdout).unwrap_or_default();
    let ready = endpoints["subsets"].as_array().is_some_and(|subsets| {
        subsets.iter().any(|subset| {
            subset["addresses"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
    });
    if ready {
        Ok(())
    } else {
        Err(format!(
            "{needs}, and that webhook is not ready: Service {service} has no ready endpoint (its pod is not running or not ready). \
             Wait until the `cert-manager` step succeeds (it waits for the webhook), or use tls_source = \"secret\" with your own certificate"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun_plugin_kit::testkit::ok;

    fn version(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    const RANCHER_CHART: &str = "apiVersion: v2\nappVersion: v2.15.0\nkubeVersion: < 1.37.0-0\nname: rancher\nversion: 2.15.0\n";

    #[test]
    fn the_charts_kube_version_is_checked_against_the_cluster() {
        let chart = ok(RANCHER_CHART);
        assert_eq!(
            kube_version(&chart, "rancher 2.15.0", version("v1.34.4")),
            Ok(())
        );
        assert_eq!(
            kube_version(&chart, "rancher 2.15.0", version("v1.37.1")).unwrap_err(),
            "rancher 2.15.0 requires Kubernetes < 1.37.0-0, and the cluster runs 1.37.1: pick a chart version made for 1.37"
        );
        let quoted = ok("kubeVersion: '>= 1.22.0-0'\n");
        assert!(kube_version(&quoted, "x", version("1.21.0")).is_err());
        assert_eq!(
            kube_version(&ok("name: plain\n"), "x", version("1.21.0")),
            Ok(())
        );
    }

    #[test]
    fn a_chart_helm_cannot_read_is_an_error_with_helms_words() {
        let failed = ProbeResult {
            exit_code: 1,
            stdout: String::new(),
            stderr: "Error: chart \"rancher\" version \"9.9.9\" not found\n".into(),
        };
        let error = kube_version(&failed, "rancher 9.9.9", version("1.34.0")).unwrap_err();
        assert!(error.ends_with("version \"9.9.9\" not found"), "{error}");
    }

    #[test]
    fn the_webhook_is_ready_only_with_a_ready_endpoint() {
        let ready = ok(
            r#"{"subsets": [{"addresses": [{"ip": "10.42.0.7"}], "ports": [{"port": 10250}]}]}"#,
        );
        assert_eq!(webhook_ready(Some(&ready), "rancher"), Ok(()));

        let not_ready = ok(r#"{"subsets": [{"notReadyAddresses": [{"ip": "10.42.0.7"}]}]}"#);
        let error = webhook_ready(Some(&not_ready), "rancher").unwrap_err();
        assert!(
            error.starts_with("Rancher with tls_source = \"rancher\" needs cert-manager"),
            "{error}"
        );
        assert!(
            error.contains("Service cert-manager/cert-manager-webhook has no ready endpoint"),
            "{error}"
        );
        assert!(webhook_ready(Some(&ok("{}")), "letsEncrypt").is_err());

        let absent = ProbeResult {
            exit_code: 1,
            ..Default::default()
        };
        let error = webhook_ready(Some(&absent), "letsEncrypt").unwrap_err();
        assert!(error.contains("cert-manager is not installed"), "{error}");
    }
}
