//! Versions: RKE1's Kubernetes line and when it needs cri-dockerd, and the release names.

use graphrun_plugin_api::PluginError;

/// RKE1's last series (1.8) supports Kubernetes up to this minor.
pub const RKE1_LAST_KUBERNETES_MINOR: u32 = 32;
/// Kubernetes 1.24 removed dockershim: RKE1 then needs `enable_cri_dockerd: true`.
const CRI_DOCKERD_FROM_MINOR: u32 = 24;

/// Shown (as a warning) by every plan of an RKE1 cluster.
pub const RKE1_END_OF_LIFE: &str = "RKE1 reached end of life on 2025-07-31 and its last series, 1.8, stops at Kubernetes 1.32: plan a move to distribution = \"rke2\"";

/// A Kubernetes version as RKE1 names it (`v1.32.5-rancher1-1`): its minor, checked.
pub fn rke1_kubernetes_minor(version: &str) -> Result<u32, PluginError> {
    let invalid = || {
        PluginError::param(
            "kubernetes_version",
            format!("`{version}` is not a Kubernetes version as RKE names it, such as \"v1.32.5-rancher1-1\""),
        )
    };
    let numbers = version.strip_prefix('v').ok_or_else(invalid)?;
    let numbers = numbers.split('-').next().unwrap_or_default();
    let parts: Vec<&str> = numbers.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(invalid());
    };
    let number = |text: &str| text.parse::<u32>().map_err(|_| invalid());
    let (major, minor) = (number(major)?, number(minor)?);
    number(patch)?;
    if major != 1 || minor > RKE1_LAST_KUBERNETES_MINOR {
        return Err(PluginError::param(
            "kubernetes_version",
            format!("`{version}` is past RKE1's last line: RKE 1.8 stops at Kubernetes 1.{RKE1_LAST_KUBERNETES_MINOR}; choose v1.{RKE1_LAST_KUBERNETES_MINOR} or earlier, or distribution = \"rke2\""),
        ));
    }
    Ok(minor)
}

/// `enable_cri_dockerd` for this Kubernetes minor: `true` from 1.24 on (RKE's default,
/// `false`, is left to RKE before).
pub fn enable_cri_dockerd(minor: u32) -> Option<bool> {
    (minor >= CRI_DOCKERD_FROM_MINOR).then_some(true)
}

/// A release tag such as `v1.8.5` (RKE) or `v1.34.5+rke2r1` (RKE2).
pub fn check_release(version: &str, example: &str) -> Result<(), PluginError> {
    let core = version
        .strip_prefix('v')
        .map(|rest| rest.split(['+', '-']).next().unwrap_or_default());
    match core {
        Some(core)
            if core.split('.').count() == 3
                && core
                    .split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Ok(())
        }
        _ => Err(PluginError::param(
            "version",
            format!("`{version}` is not a release tag such as \"{example}\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_versions_as_rke_names_them() {
        assert_eq!(rke1_kubernetes_minor("v1.32.5-rancher1-1").unwrap(), 32);
        assert_eq!(rke1_kubernetes_minor("v1.20.15-rancher2-2").unwrap(), 20);
        assert!(rke1_kubernetes_minor("1.32.5").is_err());
        assert!(rke1_kubernetes_minor("v1.32").is_err());
        let past = rke1_kubernetes_minor("v1.33.1-rancher1-1").unwrap_err();
        assert!(
            past.message.contains("RKE 1.8 stops at Kubernetes 1.32"),
            "{past}"
        );
    }

    #[test]
    fn cri_dockerd_from_kubernetes_1_24() {
        assert_eq!(enable_cri_dockerd(23), None);
        assert_eq!(enable_cri_dockerd(24), Some(true));
    }

    #[test]
    fn release_tags() {
        assert!(check_release("v1.8.5", "v1.8.5").is_ok());
        assert!(check_release("v1.34.5+rke2r1", "v1.34.5+rke2r1").is_ok());
        assert!(check_release("1.8.5", "v1.8.5").is_err());
        assert!(check_release("v1.8", "v1.8.5").is_err());
    }
}
