//! The host's OS, init system and package manager, read by a probe (so a plugin learns them in
//! the same round trip as the rest of its probes) with clear errors for hosts it cannot serve.

use std::collections::BTreeMap;

use graphrun_plugin_api::{PlanRequest, PluginError, Probe, ProbeResult, Run};

/// Name of the OS probe in [`PlanRequest::probes`].
pub const PROBE: &str = "os";

const SCRIPT: &str = r#"[ -r /etc/os-release ] && . /etc/os-release
echo "id=${ID:-unknown}"
echo "like=${ID_LIKE:-}"
echo "version=${VERSION_ID:-}"
echo "codename=${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}"
echo "arch=$(uname -m)"
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=other; fi
if command -v apt-get >/dev/null 2>&1; then echo apt=yes; else echo apt=no; fi"#;

/// The probe that reads `/etc/os-release`, `uname -m`, the init system and apt's presence.
pub fn probe() -> Probe {
    Probe::run(PROBE, Run::Shell(SCRIPT.into()))
}

/// What the OS probe found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Os {
    /// `ID` of os-release (`debian`, `ubuntu`, …).
    pub id: String,
    /// `ID_LIKE` (`debian` on Ubuntu).
    pub like: String,
    /// `VERSION_ID` (`12`, `24.04`).
    pub version: String,
    /// `VERSION_CODENAME` (`bookworm`, `noble`).
    pub codename: String,
    /// `uname -m` (`x86_64`, `aarch64`).
    pub arch: String,
    /// systemd is PID 1.
    pub systemd: bool,
    /// apt-get is installed.
    pub apt: bool,
}

impl Os {
    /// Reads the probe's `key=value` lines.
    pub fn parse(result: &ProbeResult) -> Self {
        let values: BTreeMap<&str, &str> = result
            .stdout
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key: &str| values.get(key).copied().unwrap_or_default().to_string();
        Os {
            id: get("id"),
            like: get("like"),
            version: get("version"),
            codename: get("codename"),
            arch: get("arch"),
            systemd: get("init") == "systemd",
            apt: get("apt") == "yes",
        }
    }

    /// The OS of a request whose probes ran, `None` on the first call.
    pub fn of(request: &PlanRequest) -> Option<Self> {
        request.probes.get(PROBE).map(Os::parse)
    }

    /// `debian 12 (bookworm)`, for messages.
    pub fn describe(&self) -> String {
        match self.codename.as_str() {
            "" => format!("{} {}", self.id, self.version),
            codename => format!("{} {} ({codename})", self.id, self.version),
        }
    }

    /// Whether it is Debian, Ubuntu or a derivative.
    pub fn is_debian_like(&self) -> bool {
        self.id == "debian" || self.id == "ubuntu" || self.like.split(' ').any(|l| l == "debian")
    }

    /// Fails unless the host has apt (`what` says what needs it).
    pub fn require_apt(&self, host: &str, what: &str) -> Result<(), PluginError> {
        if self.apt && self.is_debian_like() {
            return Ok(());
        }
        Err(PluginError::new(format!(
            "host `{host}` runs {} without apt-get: {what} supports Debian and Ubuntu hosts only",
            self.describe()
        )))
    }

    /// Fails unless systemd is PID 1 (`what` says what needs it).
    pub fn require_systemd(&self, host: &str, what: &str) -> Result<(), PluginError> {
        if self.systemd {
            return Ok(());
        }
        Err(PluginError::new(format!(
            "host `{host}` does not run systemd (no /run/systemd/system): {what} needs systemd as init"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_probe_and_explains_missing_tools() {
        let result = ProbeResult {
            stdout:
                "id=alpine\nlike=\nversion=3.20.0\ncodename=\narch=x86_64\ninit=other\napt=no\n"
                    .into(),
            ..Default::default()
        };
        let os = Os::parse(&result);
        assert_eq!(os.describe(), "alpine 3.20.0");
        assert!(!os.is_debian_like());
        assert_eq!(
            os.require_apt("h1", "docker").unwrap_err().message,
            "host `h1` runs alpine 3.20.0 without apt-get: docker supports Debian and Ubuntu hosts only"
        );
        assert!(os
            .require_systemd("h1", "docker")
            .unwrap_err()
            .message
            .contains("needs systemd"));
    }

    #[test]
    fn the_probe_reads_this_machine() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe().as_run().unwrap().to_shell())
            .output()
            .unwrap();
        let os = Os::parse(&ProbeResult {
            stdout: String::from_utf8(out.stdout).unwrap(),
            ..Default::default()
        });
        assert!(!os.id.is_empty() && !os.arch.is_empty());
    }
}
