//! apt: which packages a host has, and ops that install or remove only what differs.

use std::collections::BTreeMap;

use graphrun_plugin_api::shell::{join, quote};
use graphrun_plugin_api::{Op, Probe, ProbeResult, Run};

/// Every apt-get call: no questions, changed configuration files kept.
const APT_GET: &str =
    "apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

/// An apt-get command run without a terminal to ask on.
fn apt_command(script: String, unless: Option<String>) -> Op {
    let mut op = match unless {
        Some(guard) => Op::command_unless(Run::Shell(script), Run::Shell(guard)),
        None => Op::command(Run::Shell(script)),
    };
    if let Op::Command { env, .. } = &mut op {
        env.insert("DEBIAN_FRONTEND".into(), "noninteractive".into());
    }
    op
}

/// A probe listing the installed packages among `packages` (`name version` lines).
pub fn installed_probe(name: &str, packages: &[String]) -> Probe {
    Probe::run(name, Run::Shell(format!(
            "dpkg-query -W -f='${{Package}} ${{Version}} ${{db:Status-Abbrev}}\\n' -- {} 2>/dev/null || true",
            join(packages)
        )))
}

/// Installed packages and their versions, from an [`installed_probe`].
pub fn parse_installed(result: &ProbeResult) -> BTreeMap<String, String> {
    result
        .stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (package, version, status) = (words.next()?, words.next()?, words.next()?);
            (status == "ii").then(|| (package.to_string(), version.to_string()))
        })
        .collect()
}

/// A package name with an optional `=VERSION` pin, as apt-get takes it.
pub fn pinned(package: &str, version: Option<&str>) -> String {
    match version {
        Some(version) => format!("{package}={version}"),
        None => package.to_string(),
    }
}

/// The shell test "every package is installed (at its pinned version)".
fn all_installed(packages: &[String]) -> String {
    packages
        .iter()
        .map(|package| {
            let (name, test) = match package.split_once('=') {
                Some((name, version)) => (name, format!("-qxF {}", quote(&format!("ii {version}")))),
                None => (package.as_str(), "-q '^ii'".to_string()),
            };
            format!(
                "dpkg-query -W -f='${{db:Status-Abbrev}}${{Version}}\\n' {} 2>/dev/null | grep {test}",
                quote(name)
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Installs `packages` (with `name=version` pins) from the configured sources after
/// `apt-get update`, unless they are all installed already.
pub fn install(packages: &[String]) -> Op {
    apt_command(
        format!(
            "{APT_GET} update && {APT_GET} install --no-install-recommends {}",
            join(packages)
        ),
        Some(all_installed(packages)),
    )
}

/// Installs `.deb` files already on the host, without downloading anything (air-gapped
/// hosts), unless `packages` are all installed.
pub fn install_files(paths: &[String], packages: &[String]) -> Op {
    apt_command(
        format!(
            "{APT_GET} install --no-download --no-install-recommends {}",
            join(paths)
        ),
        Some(all_installed(packages)),
    )
}

/// Removes `packages` (those installed among them, from a probe), if any.
pub fn remove(packages: &[String]) -> Op {
    apt_command(format!("{APT_GET} remove {}", join(packages)), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_means_status_ii() {
        let result = ProbeResult {
            stdout: "docker.io 20.10.24+dfsg1-1+b3 ii \nrunc 1.1.5 rc \n".into(),
            ..Default::default()
        };
        let installed = parse_installed(&result);
        assert_eq!(installed.len(), 1);
        assert_eq!(installed["docker.io"], "20.10.24+dfsg1-1+b3");
    }

    #[test]
    fn the_guard_runs_in_sh() {
        // dpkg-query is missing or the package is unknown: the guard fails, so apt-get runs.
        let Op::Command {
            unless: Some(guard),
            ..
        } = install(&["no-such-package-graphrun".into(), pinned("x", Some("1.0"))])
        else {
            panic!("a guarded command")
        };
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(guard.to_shell())
            .status()
            .unwrap();
        assert!(!status.success());
    }
}
