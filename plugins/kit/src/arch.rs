//! Architecture names for download URLs: `uname -m` as Debian packages and Go release
//! archives (Docker, Kubernetes, Helm) spell it.

/// Debian's architecture (`dpkg --print-architecture`) for a `uname -m` name.
pub fn debian(machine: &str) -> Option<&'static str> {
    Some(match machine {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armhf" => "armhf",
        "ppc64le" | "ppc64el" => "ppc64el",
        "s390x" => "s390x",
        "i686" | "i386" => "i386",
        _ => return None,
    })
}

/// Go's `GOARCH` (used in release file names such as `helm-v3.16.0-linux-amd64.tar.gz`).
pub fn go(machine: &str) -> Option<&'static str> {
    Some(match machine {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armhf" => "arm",
        "ppc64le" | "ppc64el" => "ppc64le",
        "s390x" => "s390x",
        "i686" | "i386" => "386",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn machines_map_to_debian_and_go_names() {
        assert_eq!(super::debian("x86_64"), Some("amd64"));
        assert_eq!(super::debian("aarch64"), Some("arm64"));
        assert_eq!(super::go("armv7l"), Some("arm"));
        assert_eq!(super::go("ppc64le"), Some("ppc64le"));
        assert_eq!(super::debian("riscv64"), None);
    }
}
