//! The built-in `docker` step: Docker Engine from Docker's apt repository, from the
//! distribution (`docker.io`), or from `.deb` files on the control machine for air-gapped
//! hosts; users in the `docker` group; the service enabled and started; the engine verified to
//! answer (`docker version` reaches the server).
//!
//! Probes (one round trip): the OS, the installed packages, the `docker` group. The plan
//! installs, removes and adds only what differs. Steps of this plugin are exclusive on a host:
//! apt and dpkg hold a lock.

mod source;

use graphrun_plugin_api::params::is_template;
use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo, Probe,
    Run,
};
use graphrun_plugin_kit::os::{self, Os};
use graphrun_plugin_kit::params::{specs, Args, Param};
use graphrun_plugin_kit::{apt, probe, systemd};

pub use source::{Source, DOCKER_CE_PACKAGES};

const PROBE_INSTALLED: &str = "installed";
const PROBE_GROUP: &str = "docker_group";
/// Seconds the check waits for `docker version` to reach the daemon.
const VERIFY_SECONDS: u32 = 30;

const PARAMS: &[Param] = &[
    Param::optional("source", ParamKind::String, "\"docker-ce\" (Docker's apt repository), \"distro\" (the distribution's docker.io) or \"packages\" (.deb files from `packages_dir`, installed offline)")
        .default_str("docker-ce"),
    Param::optional("version", ParamKind::String, "docker-ce only: pin docker-ce and docker-ce-cli, e.g. \"28.0.4\" or a full apt version \"5:28.0.4-1~debian.12~bookworm\""),
    Param::optional("mirror", ParamKind::String, "docker-ce only: base URL of Docker's repository (a local mirror)")
        .default_str("https://download.docker.com"),
    Param::optional("packages_dir", ParamKind::String, "packages only: local folder (relative to the playbook) of the .deb files to upload and install, dependencies included"),
    Param::optional("users", ParamKind::StringList, "Users added to the `docker` group").default_strings(&[]),
    Param::optional("service", ParamKind::Bool, "Enable and start docker.service, then check that the engine answers (needs systemd)")
        .default_bool(true),
];

/// The `docker` step.
#[derive(Debug, Default)]
pub struct DockerPlugin;

/// The step's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    source: Source,
    users: Vec<String>,
    service: bool,
}

impl Plugin for DockerPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "docker".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Installs Docker Engine (Docker's repository, the distribution, or offline .deb files), adds users to the docker group, starts it and checks it answers".into(),
            params: specs(PARAMS),
            outputs: vec![],
            exclusive: true,
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        Config::from_params(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let config = Config::from_params(&request.params)?;
        let packages = config.source.package_names(request)?;
        let Some(os) = Os::of(request) else {
            let mut probes = vec![
                os::probe(),
                apt::installed_probe(PROBE_INSTALLED, &packages),
                Probe::run(
                    PROBE_GROUP,
                    Run::Shell("getent group docker | cut -d: -f4".into()),
                ),
            ];
            probes.extend(config.source.probes());
            return Ok(PlanResponse::Probe { probes });
        };
        os.require_apt(&request.host.name, "the docker step")?;
        if config.service {
            os.require_systemd(&request.host.name, "docker with `service = true`")
                .map_err(|e| {
                    PluginError::param(
                        "service",
                        format!(
                            "{}; set service = false to install the packages only",
                            e.message
                        ),
                    )
                })?;
        }
        let installed = request
            .probes
            .get(PROBE_INSTALLED)
            .map(apt::parse_installed)
            .unwrap_or_default();
        let mut ops = config.source.install_ops(request, &os, &installed)?;
        let members = probe::stdout(request, PROBE_GROUP).trim().to_string();
        for user in &config.users {
            if !members.split(',').any(|m| m == user) {
                ops.push(add_to_group(user));
            }
        }
        if config.service {
            ops.push(systemd::enable_now("docker"));
            ops.push(systemd::health_check(
                "docker",
                "docker version --format '{{.Server.Version}}' >/dev/null 2>&1",
                VERIFY_SECONDS,
                &format!("the Docker engine did not answer `docker version` within {VERIFY_SECONDS}s (journalctl -u docker)"),
            ));
        }
        Ok(Plan::ops(ops).into())
    }
}

fn add_to_group(user: &str) -> Op {
    let argv = |words: &[&str]| Run::Argv(words.iter().map(|w| w.to_string()).collect());
    Op::command_unless(
        argv(&["usermod", "-aG", "docker", user]),
        Run::Shell(format!(
            "id -nG {} | tr ' ' '\\n' | grep -qx docker",
            graphrun_plugin_api::shell::quote(user)
        )),
    )
}

impl Config {
    fn from_params(params: &Params) -> Result<Self, PluginError> {
        let args = Args::new(PARAMS, params);
        let users = args.strings("users")?;
        if let Some(bad) = users.iter().find(|u| !valid_user(u) && !is_template(u)) {
            return Err(PluginError::param(
                "users",
                format!("`{bad}` is not a user name"),
            ));
        }
        Ok(Config {
            source: Source::from_args(&args)?,
            users,
            service: args.flag("service")?,
        })
    }
}

fn valid_user(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

#[cfg(test)]
mod tests;
