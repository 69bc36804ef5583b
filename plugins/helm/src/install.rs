//! The Helm binary: the release tarball from the artifacts, extracted only when the host's helm
//! is another version, and `helm version` to show it runs.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, PluginError, Run};
use graphrun_plugin_kit::artifacts;
use graphrun_plugin_kit::helm::Major;

/// Where release tarballs stay on the host, so an unchanged one is never uploaded again.
const TARBALLS: &str = "/var/cache/graphrun/artifacts";

/// Refuses a version the URL pattern cannot name, or a Helm that is neither 3 nor 4.
pub fn check_version(version: &str) -> Result<(), PluginError> {
    // Any architecture does to check the version.
    artifacts::helm(version, "x86_64")?;
    match Major::of(version) {
        Some(_) => Ok(()),
        None => Err(PluginError::param(
            "version",
            format!("Helm `{version}` is neither 3.x nor 4.x, whose flags graphrun knows"),
        )),
    }
}

/// The ops that put Helm `version` at `path` on a host of architecture `arch` (`uname -m`).
pub fn ops(version: &str, path: &str, arch: &str) -> Result<Vec<Op>, PluginError> {
    let download = artifacts::helm(version, arch)?;
    let file_name = download.url.rsplit('/').next().unwrap_or_default();
    let tarball = format!("{TARBALLS}/{file_name}");
    let inside = artifacts::helm_in_tarball(arch)?;
    let tag = format!("v{}", version.trim_start_matches('v'));
    let path_q = quote(path);
    let extract = format!(
        "dir=$(mktemp -d) && tar -xzf {tarball} -C \"$dir\" {inside} && install -m 0755 \"$dir\"/{inside} {path_q}\n\
         status=$?; rm -rf \"$dir\"; exit $status",
        tarball = quote(&tarball),
        inside = quote(&inside),
    );
    let same_version = format!(
        "[ \"$({path_q} version --template '{{{{.Version}}}}' 2>/dev/null)\" = {} ]",
        quote(&tag)
    );
    Ok(vec![
        Op::directory(TARBALLS).with_mode("0755"),
        download.to(&tarball).with_mode("0644"),
        Op::command_unless(Run::Shell(extract), Run::Shell(same_version)),
        // In `plan`, before the binary is there, there is nothing to ask.
        Op::check(Run::Shell(format!(
            "[ -x {path_q} ] || exit 0\n{path_q} version"
        ))),
    ])
}
