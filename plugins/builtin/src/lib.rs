//! The plugins linked into graphrun: one cargo feature per plugin (all on by default), so a
//! smaller graphrun can leave steps out and adding a plugin is one line here.

use std::sync::Arc;

use graphrun_plugin_api::Plugin;

/// Every built-in plugin this build has, in name order.
// Each push depends on a feature, so the list cannot be one `vec![…]`.
#[allow(clippy::vec_init_then_push)]
pub fn plugins() -> Vec<Arc<dyn Plugin>> {
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    #[cfg(feature = "cert-manager")]
    plugins.push(Arc::new(graphrun_plugin_cert_manager::CertManagerPlugin));
    #[cfg(feature = "command")]
    plugins.push(Arc::new(graphrun_plugin_command::CommandPlugin));
    #[cfg(feature = "dns")]
    plugins.push(Arc::new(graphrun_plugin_dns::DnsPlugin));
    #[cfg(feature = "docker")]
    plugins.push(Arc::new(graphrun_plugin_docker::DockerPlugin));
    #[cfg(feature = "fetch")]
    plugins.push(Arc::new(graphrun_plugin_fetch::FetchPlugin));
    #[cfg(feature = "file")]
    plugins.push(Arc::new(graphrun_plugin_file::FilePlugin));
    #[cfg(feature = "helm")]
    plugins.push(Arc::new(graphrun_plugin_helm::HelmPlugin));
    #[cfg(feature = "ingress")]
    plugins.push(Arc::new(graphrun_plugin_ingress::IngressPlugin));
    #[cfg(feature = "kubectl")]
    plugins.push(Arc::new(graphrun_plugin_kubectl::KubectlPlugin));
    #[cfg(feature = "manifest")]
    plugins.push(Arc::new(graphrun_plugin_manifest::ManifestPlugin));
    #[cfg(feature = "preflight")]
    plugins.push(Arc::new(graphrun_plugin_preflight::PreflightPlugin));
    #[cfg(feature = "rancher")]
    plugins.push(Arc::new(graphrun_plugin_rancher::RancherPlugin));
    #[cfg(feature = "rke")]
    plugins.push(Arc::new(graphrun_plugin_rke::RkePlugin));
    #[cfg(feature = "ssh-key")]
    plugins.push(Arc::new(graphrun_plugin_ssh_key::SshKeyPlugin));
    #[cfg(feature = "swap")]
    plugins.push(Arc::new(graphrun_plugin_swap::SwapPlugin));
    #[cfg(feature = "sysctl")]
    plugins.push(Arc::new(graphrun_plugin_sysctl::SysctlPlugin));
    plugins
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_sorted() {
        let names: Vec<String> = super::plugins().iter().map(|p| p.info().name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
