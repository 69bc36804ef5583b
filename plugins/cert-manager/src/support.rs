//! Which Kubernetes releases each cert-manager release supports, from cert-manager's "Supported
//! Releases" page (cert-manager.io/docs/releases, the "Supported Kubernetes versions" column of
//! its current and old release tables), so an unsupported pair is refused before installing.

use graphrun_plugin_kit::kube_version::Version;

/// A release line: (major, minor).
type Line = (u32, u32);

/// cert-manager release line → the oldest and newest Kubernetes line it supports.
const SUPPORTED: &[(Line, Line, Line)] = &[
    ((1, 21), (1, 33), (1, 36)),
    ((1, 20), (1, 32), (1, 35)),
    ((1, 19), (1, 31), (1, 35)),
    ((1, 18), (1, 29), (1, 33)),
    ((1, 17), (1, 29), (1, 32)),
    ((1, 16), (1, 25), (1, 32)),
    ((1, 15), (1, 25), (1, 32)),
    ((1, 14), (1, 24), (1, 31)),
    ((1, 13), (1, 21), (1, 27)),
    ((1, 12), (1, 22), (1, 32)),
    ((1, 11), (1, 21), (1, 27)),
    ((1, 10), (1, 20), (1, 26)),
];

/// Where the table comes from, for messages.
pub const SOURCE: &str = "https://cert-manager.io/docs/releases/";

/// The Kubernetes lines a cert-manager release supports, `None` when the table does not know
/// the release.
pub fn supported(cert_manager: Version) -> Option<(Version, Version)> {
    let line = |(major, minor): Line| Version {
        major,
        minor,
        patch: 0,
    };
    SUPPORTED
        .iter()
        .find(|(release, _, _)| *release == (cert_manager.major, cert_manager.minor))
        .map(|(_, oldest, newest)| (line(*oldest), line(*newest)))
}

/// Refuses a cert-manager release that does not support the cluster's Kubernetes, with the
/// releases that would.
pub fn check(cert_manager: Version, cluster: Version) -> Result<(), String> {
    let Some((oldest, newest)) = supported(cert_manager) else {
        return Err(format!(
            "graphrun does not know which Kubernetes versions cert-manager {} supports (see {SOURCE}); \
             set `allow_unsupported_kubernetes = true` to install it anyway",
            cert_manager.line()
        ));
    };
    let line = (cluster.major, cluster.minor);
    if ((oldest.major, oldest.minor)..=(newest.major, newest.minor)).contains(&line) {
        return Ok(());
    }
    let fitting: Vec<String> = SUPPORTED
        .iter()
        .filter(|(_, oldest, newest)| (*oldest..=*newest).contains(&line))
        .map(|((major, minor), _, _)| format!("{major}.{minor}"))
        .collect();
    let instead = match fitting.first() {
        Some(newest_fitting) => format!(
            "for Kubernetes {} use cert-manager {newest_fitting} (supported there: {})",
            cluster.line(),
            fitting.join(", ")
        ),
        None => format!(
            "no cert-manager release graphrun knows supports Kubernetes {}",
            cluster.line()
        ),
    };
    Err(format!(
        "cert-manager {} supports Kubernetes {} to {}, and the cluster runs {cluster}: {instead} ({SOURCE})",
        cert_manager.line(),
        oldest.line(),
        newest.line(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn cert_manager_1_21_needs_kubernetes_1_33_to_1_36() {
        for supported in ["1.33.0", "1.34.4", "1.36.2"] {
            assert_eq!(check(version("v1.21.1"), version(supported)), Ok(()));
        }
        let error = check(version("v1.21.1"), version("1.37.0")).unwrap_err();
        assert!(
            error.starts_with("cert-manager 1.21 supports Kubernetes 1.33 to 1.36, and the cluster runs 1.37.0: no cert-manager release graphrun knows supports Kubernetes 1.37"),
            "{error}"
        );
    }

    #[test]
    fn an_rke1_cluster_at_1_32_is_told_to_use_1_20_or_older() {
        let error = check(version("v1.21.1"), version("v1.32.6-rancher1-1")).unwrap_err();
        assert_eq!(
            error,
            "cert-manager 1.21 supports Kubernetes 1.33 to 1.36, and the cluster runs 1.32.6: \
             for Kubernetes 1.32 use cert-manager 1.20 (supported there: 1.20, 1.19, 1.18, 1.17, 1.16, 1.15, 1.12) \
             (https://cert-manager.io/docs/releases/)"
        );
        assert_eq!(check(version("v1.20.4"), version("1.32.6")), Ok(()));
    }

    #[test]
    fn a_release_the_table_does_not_know_is_refused_with_a_way_out() {
        let error = check(version("v1.22.0"), version("1.36.0")).unwrap_err();
        assert!(
            error.contains("does not know which Kubernetes versions cert-manager 1.22 supports"),
            "{error}"
        );
        assert!(
            error.contains("allow_unsupported_kubernetes = true"),
            "{error}"
        );
    }
}
