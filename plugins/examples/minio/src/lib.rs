//! An example custom graphrun plugin: MinIO, the S3-compatible object store an on-prem ML
//! pipeline keeps its datasets and checkpoints in.
//!
//! A site-specific step like this one lives in its own crate, is built as a `cdylib` and named in
//! a playbook (`[plugins.minio] path = "…/libgraphrun_plugin_minio.so"`). Sites are often
//! air-gapped, so the server binary is not downloaded: the step uploads a local copy (checked
//! against its sha256 when given). See README.md for the guide "Write a custom plugin".
//!
//! What one node plans, in order:
//! 1. the system user (`useradd`, unless `id -u USER` succeeds);
//! 2. the data directory, owned by that user, mode 0750;
//! 3. the binary, uploaded to `/usr/local/bin/minio`, mode 0755;
//! 4. `/etc/default/minio` (credentials, volumes, addresses), mode 0600;
//! 5. with `service = "systemd"`: the unit file, a restart when the probe saw another version
//!    installed, `systemctl enable --now` unless already enabled and running, and a read-only
//!    health check of `/minio/health/live` with curl or wget (whichever the host has).
//!
//! The plugin never touches the host: it asks for facts (is systemd there?) and probes (which
//! version is installed, is there an HTTP client) and the engine runs them.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{
    Attrs, Op, ParamKind, ParamSpec, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError,
    PluginInfo, Probe, ProbeResult, Run,
};
use graphrun_plugin_kit::systemd;

/// Where the binary is installed (under `root`).
pub const BINARY_PATH: &str = "/usr/local/bin/minio";
/// The environment file read by the unit (under `root`).
pub const ENV_PATH: &str = "/etc/default/minio";
/// The systemd unit (under `root`).
pub const UNIT_PATH: &str = "/etc/systemd/system/minio.service";

/// Probe: first line of `minio --version` of the installed binary (empty when none).
const PROBE_INSTALLED: &str = "installed";
/// Probe: path of curl or wget on the host (empty when neither).
const PROBE_HTTP: &str = "http_client";
/// Seconds the health check waits for the server to answer.
const HEALTH_WAIT_SECONDS: u32 = 30;

/// The `minio` step.
#[derive(Debug, Default)]
pub struct MinioPlugin;

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// A systemd unit, enabled and started.
    Systemd,
    /// Files only (images, containers, hosts where something else starts minio).
    None,
}

/// The step's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// MinIO release, e.g. `RELEASE.2024-06-13T22-53-53Z`.
    pub version: String,
    /// Local path of the server binary (relative to the playbook).
    pub binary: String,
    /// Expected sha256 of `binary`.
    pub sha256: Option<String>,
    /// Data directory on the host.
    pub data_dir: String,
    /// System user running the server.
    pub user: String,
    /// S3 API listen address.
    pub address: String,
    /// Web console listen address.
    pub console_address: String,
    /// Root user name.
    pub root_user: String,
    /// Root password (a secret).
    pub root_password: String,
    /// How the server runs.
    pub service: Service,
    /// Prefix of every path written (`/` on a real host).
    pub root: String,
}

impl Plugin for MinioPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "minio".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Installs MinIO (S3-compatible object store) from a local binary, as a systemd service".into(),
            params: vec![
                ParamSpec::required("version", ParamKind::String, "MinIO release of the binary, e.g. \"RELEASE.2024-06-13T22-53-53Z\"; a different installed version is restarted"),
                ParamSpec::required("binary", ParamKind::String, "Local path of the `minio` server binary to upload (relative to the playbook)"),
                ParamSpec::optional("sha256", ParamKind::String, "Expected sha256 of `binary`, checked before anything is sent"),
                ParamSpec::optional("data_dir", ParamKind::String, "Data directory (MINIO_VOLUMES)")
                    .with_default("/var/lib/minio".into()),
                ParamSpec::optional("user", ParamKind::String, "System user running the server (created if missing)")
                    .with_default("minio-user".into()),
                ParamSpec::optional("address", ParamKind::String, "S3 API address, [host]:port")
                    .with_default(":9000".into()),
                ParamSpec::optional("console_address", ParamKind::String, "Web console address, [host]:port")
                    .with_default(":9001".into()),
                ParamSpec::required("root_user", ParamKind::String, "Root user name (at least 3 characters)"),
                ParamSpec::required("root_password", ParamKind::String, "Root password, at least 8 characters: a secret, write { env = \"MINIO_ROOT_PASSWORD\" }"),
                ParamSpec::optional("service", ParamKind::String, "\"systemd\" (install, enable and start a unit) or \"none\" (only lay out files)")
                    .with_default("systemd".into()),
                ParamSpec::optional("root", ParamKind::String, "Prefix of every path written, like DESTDIR (tests, image builds)")
                    .with_default("/".into()),
            ],
            outputs: vec!["endpoint".into()],
            needs_facts: true,
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        check_params(params)
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        if let Some(error) = check_params(&request.params).into_iter().next() {
            return Err(error);
        }
        let config = Config::from_params(&request.params)?;
        if config.service == Service::Systemd {
            if let Some(init) = request.facts.get("init").filter(|i| *i != "systemd") {
                return Err(PluginError::param(
                    "service",
                    format!(
                        "host `{}` does not run systemd (init={init}): set service = \"none\" and start minio another way",
                        request.host.name
                    ),
                ));
            }
            // First call: look at what is installed and which HTTP client there is.
            if request.probes.is_empty() {
                return Ok(PlanResponse::Probe {
                    probes: probes(&config),
                });
            }
        }
        let mut plan = Plan::ops(plan_ops(&config, request));
        plan.outputs
            .insert("endpoint".into(), endpoint(&config, request).into());
        Ok(plan.into())
    }
}

impl Config {
    /// Reads the parameters (defaults are applied by the engine; applied here too so that the
    /// plugin can be called directly).
    pub fn from_params(params: &Params) -> Result<Self, PluginError> {
        let service = match params.str("service")?.unwrap_or("systemd") {
            "systemd" => Service::Systemd,
            "none" => Service::None,
            other => {
                return Err(PluginError::param(
                    "service",
                    format!("`{other}` is not \"systemd\" or \"none\""),
                ))
            }
        };
        let text = |name: &str, default: &str| -> Result<String, PluginError> {
            Ok(params.str(name)?.unwrap_or(default).to_string())
        };
        Ok(Config {
            version: params.required_str("version")?.to_string(),
            binary: params.required_str("binary")?.to_string(),
            sha256: params.str("sha256")?.map(|s| s.to_ascii_lowercase()),
            data_dir: text("data_dir", "/var/lib/minio")?,
            user: text("user", "minio-user")?,
            address: text("address", ":9000")?,
            console_address: text("console_address", ":9001")?,
            root_user: params.required_str("root_user")?.to_string(),
            root_password: params.required_str("root_password")?.to_string(),
            service,
            root: text("root", "/")?,
        })
    }

    /// A host path under `root`.
    pub fn path(&self, path: &str) -> String {
        let root = self.root.trim_end_matches('/');
        format!("{root}{path}")
    }
}

/// Every problem with the parameters; unrendered templates are checked once rendered.
fn check_params(params: &Params) -> Vec<PluginError> {
    let mut errors = Vec::new();
    let config = match Config::from_params(params) {
        Ok(config) => config,
        Err(error) => return vec![error],
    };
    let mut check = |name: &str, ok: bool, message: String| {
        if !ok && !params.is_unrendered(name) {
            errors.push(PluginError::param(name, message));
        }
    };
    let v = &config.version;
    check(
        "version",
        !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '/'),
        format!("`{v}` is not a release name such as \"RELEASE.2024-06-13T22-53-53Z\""),
    );
    check(
        "binary",
        !config.binary.is_empty(),
        "is empty: give the local path of the minio binary".into(),
    );
    if let Some(sum) = &config.sha256 {
        check(
            "sha256",
            sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()),
            "must be 64 hex digits (`sha256sum minio`)".into(),
        );
    }
    for (name, path) in [("data_dir", &config.data_dir), ("root", &config.root)] {
        check(
            name,
            path.starts_with('/') && !path.contains('\n'),
            format!("`{path}` is not an absolute path"),
        );
    }
    let u = &config.user;
    check(
        "user",
        (1..=32).contains(&u.len())
            && u.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && u.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
        format!("`{u}` is not a valid user name (lowercase letters, digits, `_`, `-`)"),
    );
    for (name, address) in [
        ("address", &config.address),
        ("console_address", &config.console_address),
    ] {
        check(
            name,
            port(address).is_some(),
            format!("`{address}` is not [host]:port, e.g. \":9000\""),
        );
    }
    check(
        "console_address",
        params.is_unrendered("address") || config.address != config.console_address,
        "must differ from `address`".into(),
    );
    check(
        "root_user",
        config.root_user.chars().count() >= 3 && env_value_ok(&config.root_user),
        "needs at least 3 characters, on one line".into(),
    );
    // Never quote the password in a message: it would end up in logs (it is redacted, but still).
    check(
        "root_password",
        config.root_password.chars().count() >= 8 && env_value_ok(&config.root_password),
        "needs at least 8 characters, on one line".into(),
    );
    errors
}

fn env_value_ok(value: &str) -> bool {
    !value.contains(['\n', '\r', '\0'])
}

/// The port of `[host]:port`.
fn port(address: &str) -> Option<u16> {
    let (_, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|p| *p != 0)
}

/// The host part of `[host]:port`, `None` for every interface.
fn listen_host(address: &str) -> Option<&str> {
    let host = address.rsplit_once(':').map_or("", |(h, _)| h);
    match host {
        "" | "0.0.0.0" | "[::]" | "::" => None,
        host => Some(host),
    }
}

fn probes(config: &Config) -> Vec<Probe> {
    let binary = quote(&config.path(BINARY_PATH));
    vec![
        Probe::run(
            PROBE_INSTALLED,
            Run::Shell(format!(
                "if [ -x {binary} ]; then {binary} --version 2>/dev/null | head -n 1; fi"
            )),
        ),
        Probe::run(
            PROBE_HTTP,
            Run::Shell("command -v curl || command -v wget || true".into()),
        ),
    ]
}

/// The ops of one node (after the probes, for `service = "systemd"`).
pub fn plan_ops(config: &Config, request: &PlanRequest) -> Vec<Op> {
    let user = &config.user;
    let owned = |mode: &str| Attrs {
        mode: Some(mode.into()),
        owner: Some(user.clone()),
        group: Some(user.clone()),
    };
    let mut ops = vec![
        Op::command_unless(
            Run::Argv(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    &config.data_dir,
                    "--shell",
                    "/usr/sbin/nologin",
                    user,
                ]
                .map(String::from)
                .to_vec(),
            ),
            Run::Argv(["id", "-u", user].map(String::from).to_vec()),
        ),
        Op::directory(&config.path(&config.data_dir)).with_attrs(owned("0750")),
        Op::Upload {
            source: config.binary.clone(),
            path: config.path(BINARY_PATH),
            sha256: config.sha256.clone(),
            attrs: Attrs {
                mode: Some("0755".into()),
                ..Attrs::default()
            },
        },
        Op::file(&config.path(ENV_PATH), &env_file(config)).with_mode("0600"),
    ];
    if config.service == Service::None {
        return ops;
    }
    ops.push(Op::file(&config.path(UNIT_PATH), &unit_file(config)).with_mode("0644"));
    let installed = probe_stdout(request, PROBE_INSTALLED);
    if !installed.is_empty() && !installed.contains(config.version.as_str()) {
        // Another version runs: the upload above replaced it, restart it now.
        ops.push(systemd::restart("minio"));
    }
    ops.push(systemd::enable_now("minio"));
    let client = probe_stdout(request, PROBE_HTTP);
    if let Some(get) = http_get(&client, &health_url(config)) {
        ops.push(systemd::health_check(
            "minio",
            &get,
            HEALTH_WAIT_SECONDS,
            &format!(
                "minio did not answer {} within {HEALTH_WAIT_SECONDS}s (journalctl -u minio)",
                health_url(config)
            ),
        ));
    }
    ops
}

fn probe_stdout(request: &PlanRequest, name: &str) -> String {
    request
        .probes
        .get(name)
        .map(|ProbeResult { stdout, .. }| stdout.trim().to_string())
        .unwrap_or_default()
}

/// A quiet GET of `url` with the probed client; `None` when the host has neither.
fn http_get(client: &str, url: &str) -> Option<String> {
    let name = client.rsplit('/').next().unwrap_or_default();
    let url = quote(url);
    match name {
        "curl" => Some(format!("curl -fsS -o /dev/null --max-time 2 {url}")),
        "wget" => Some(format!("wget -q -O /dev/null -T 2 {url}")),
        _ => None,
    }
}

/// The liveness URL, asked from the host itself.
pub fn health_url(config: &Config) -> String {
    let host = listen_host(&config.address).unwrap_or("127.0.0.1");
    let port = port(&config.address).unwrap_or(9000);
    format!("http://{host}:{port}/minio/health/live")
}

/// The S3 endpoint clients use.
pub fn endpoint(config: &Config, request: &PlanRequest) -> String {
    let host = listen_host(&config.address)
        .map(str::to_string)
        .unwrap_or_else(|| request.host.address.clone());
    let port = port(&config.address).unwrap_or(9000);
    format!("http://{host}:{port}")
}

/// `/etc/default/minio`, as the official unit reads it.
pub fn env_file(config: &Config) -> String {
    format!(
        "# Managed by graphrun (minio {version}); changes are overwritten.\n\
         MINIO_ROOT_USER={user}\n\
         MINIO_ROOT_PASSWORD={password}\n\
         MINIO_VOLUMES={volumes}\n\
         MINIO_OPTS={opts}\n",
        version = config.version,
        user = env_quote(&config.root_user),
        password = env_quote(&config.root_password),
        volumes = env_quote(&config.data_dir),
        opts = env_quote(&format!(
            "--address {} --console-address {}",
            config.address, config.console_address
        )),
    )
}

/// A double-quoted value for a systemd `EnvironmentFile`.
fn env_quote(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$");
    format!("\"{escaped}\"")
}

/// The systemd unit (after MinIO's own `minio.service`).
pub fn unit_file(config: &Config) -> String {
    format!(
        "# Managed by graphrun; changes are overwritten.\n\
         [Unit]\n\
         Description=MinIO object storage ({version})\n\
         Documentation=https://min.io/docs/minio/linux/index.html\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         AssertFileIsExecutable={BINARY_PATH}\n\
         \n\
         [Service]\n\
         Type=notify\n\
         User={user}\n\
         Group={user}\n\
         EnvironmentFile={ENV_PATH}\n\
         ExecStart={BINARY_PATH} server $MINIO_OPTS $MINIO_VOLUMES\n\
         Restart=always\n\
         LimitNOFILE=1048576\n\
         TasksMax=infinity\n\
         TimeoutStopSec=infinity\n\
         SendSIGKILL=no\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        version = config.version,
        user = config.user,
    )
}

graphrun_plugin_api::export_plugin!(MinioPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn params(extra: serde_json::Value) -> Params {
        let mut base = json!({
            "version": "RELEASE.2024-06-13T22-53-53Z",
            "binary": "files/minio",
            "root_user": "admin",
            "root_password": "s3cret-pass",
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn request(params: Params) -> PlanRequest {
        PlanRequest {
            step: "minio".into(),
            host: graphrun_plugin_api::HostInfo {
                name: "store1".into(),
                address: "10.0.0.7".into(),
                ..Default::default()
            },
            params,
            facts: BTreeMap::from([("init".to_string(), "systemd".to_string())]),
            ..Default::default()
        }
    }

    fn with_probes(mut request: PlanRequest, installed: &str, http: &str) -> PlanRequest {
        for (name, stdout) in [(PROBE_INSTALLED, installed), (PROBE_HTTP, http)] {
            request.probes.insert(
                name.into(),
                ProbeResult {
                    exit_code: 0,
                    stdout: format!("{stdout}\n"),
                    stderr: String::new(),
                },
            );
        }
        request
    }

    fn plan(request: &PlanRequest) -> Plan {
        match MinioPlugin.plan(request).unwrap() {
            PlanResponse::Plan(plan) => plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    fn owned(mode: &str, user: &str) -> Attrs {
        Attrs {
            mode: Some(mode.into()),
            owner: Some(user.into()),
            group: Some(user.into()),
        }
    }

    const ENV: &str =
        "# Managed by graphrun (minio RELEASE.2024-06-13T22-53-53Z); changes are overwritten.\n\
        MINIO_ROOT_USER=\"admin\"\n\
        MINIO_ROOT_PASSWORD=\"s3cret-pass\"\n\
        MINIO_VOLUMES=\"/var/lib/minio\"\n\
        MINIO_OPTS=\"--address :9000 --console-address :9001\"\n";

    fn file_ops(root: &str, user: &str) -> Vec<Op> {
        vec![
            Op::command_unless(
                Run::Argv(
                    [
                        "useradd",
                        "--system",
                        "--user-group",
                        "--no-create-home",
                        "--home-dir",
                        "/var/lib/minio",
                        "--shell",
                        "/usr/sbin/nologin",
                        user,
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                Run::Argv(["id", "-u", user].map(String::from).to_vec()),
            ),
            Op::directory(&format!("{root}/var/lib/minio")).with_attrs(owned("0750", user)),
            Op::Upload {
                source: "files/minio".into(),
                path: format!("{root}/usr/local/bin/minio"),
                sha256: None,
                attrs: Attrs {
                    mode: Some("0755".into()),
                    ..Attrs::default()
                },
            },
            Op::file(&format!("{root}/etc/default/minio"), ENV).with_mode("0600"),
        ]
    }

    #[test]
    fn service_none_lays_out_files_only() {
        let request = request(params(json!({"service": "none"})));
        let plan = plan(&request);
        assert_eq!(plan.ops, file_ops("", "minio-user"));
        assert_eq!(plan.outputs["endpoint"], json!("http://10.0.0.7:9000"));
    }

    #[test]
    fn root_prefixes_every_written_path_but_not_the_config() {
        let request = request(params(
            json!({"service": "none", "root": "/tmp/x/", "user": "root"}),
        ));
        assert_eq!(plan(&request).ops, file_ops("/tmp/x", "root"));
    }

    #[test]
    fn systemd_probes_first_then_plans_unit_start_and_health_check() {
        let first = request(params(json!({})));
        let PlanResponse::Probe { probes } = MinioPlugin.plan(&first).unwrap() else {
            panic!("expected probes first");
        };
        assert_eq!(
            probes.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            [PROBE_INSTALLED, PROBE_HTTP]
        );

        let request = with_probes(first, "", "/usr/bin/curl");
        let plan = plan(&request);
        let config = Config::from_params(&request.params).unwrap();
        let mut expected = file_ops("", "minio-user");
        expected.push(Op::file(UNIT_PATH, &unit_file(&config)).with_mode("0644"));
        expected.push(systemd::enable_now("minio"));
        assert_eq!(plan.ops[..expected.len()], expected[..]);
        let [Op::Command {
            run: Run::Shell(check),
            changes: false,
            creates: None,
            unless: None,
            ..
        }] = &plan.ops[expected.len()..]
        else {
            panic!("expected one read-only check last, got {:?}", plan.ops);
        };
        assert!(check.contains(
            "curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:9000/minio/health/live"
        ));
        assert!(unit_file(&config).contains("User=minio-user\nGroup=minio-user\n"));
    }

    #[test]
    fn health_check_uses_wget_or_nothing() {
        let base = request(params(json!({"address": "10.0.0.7:9100"})));
        let wget = plan(&with_probes(base.clone(), "", "/usr/bin/wget"));
        let Some(Op::Command {
            run: Run::Shell(check),
            changes: false,
            ..
        }) = wget.ops.last()
        else {
            panic!("expected a check last");
        };
        assert!(check.contains("wget -q -O /dev/null -T 2 http://10.0.0.7:9100/minio/health/live"));
        assert_eq!(wget.outputs["endpoint"], json!("http://10.0.0.7:9100"));

        let neither = plan(&with_probes(base, "", ""));
        assert!(
            neither.ops.iter().all(Op::may_change),
            "no check without curl or wget"
        );
    }

    #[test]
    fn another_installed_version_is_restarted() {
        let base = request(params(json!({})));
        let same = plan(&with_probes(
            base.clone(),
            "minio version RELEASE.2024-06-13T22-53-53Z (commit-id=abc)",
            "",
        ));
        let old = plan(&with_probes(
            base,
            "minio version RELEASE.2023-01-01T00-00-00Z (commit-id=abc)",
            "",
        ));
        let restart = systemd::restart("minio");
        assert!(!same.ops.contains(&restart));
        assert_eq!(old.ops.len(), same.ops.len() + 1);
        assert_eq!(old.ops[5], restart);
    }

    #[test]
    fn without_systemd_the_step_says_what_to_do() {
        let mut request = request(params(json!({})));
        request.facts.insert("init".into(), "other".into());
        let error = MinioPlugin.plan(&request).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("service"));
        assert!(error.message.contains("set service = \"none\""));
    }

    #[test]
    fn secrets_and_paths_are_quoted_for_the_environment_file() {
        let config =
            Config::from_params(&params(json!({"root_password": "a\"b$c\\d-long"}))).unwrap();
        assert!(env_file(&config).contains("MINIO_ROOT_PASSWORD=\"a\\\"b\\$c\\\\d-long\"\n"));
    }

    #[test]
    fn parameters_are_validated() {
        let errors = |extra| -> Vec<String> {
            MinioPlugin
                .validate(&params(extra))
                .into_iter()
                .map(|e| e.param.unwrap_or_default())
                .collect()
        };
        assert!(errors(json!({})).is_empty());
        assert_eq!(errors(json!({"root_password": "short"})), ["root_password"]);
        assert_eq!(errors(json!({"service": "docker"})), ["service"]);
        assert_eq!(
            errors(json!({"address": "9000", "data_dir": "data", "user": "Minio"})),
            ["data_dir", "user", "address"]
        );
        assert_eq!(
            errors(json!({"console_address": ":9000"})),
            ["console_address"]
        );
        assert_eq!(errors(json!({"sha256": "abc"})), ["sha256"]);
        assert_eq!(
            errors(json!({"version": "{{ vars.minio }}"})),
            Vec::<String>::new()
        );
        let missing = MinioPlugin.validate(&serde_json::from_value(json!({})).unwrap());
        assert_eq!(missing[0].param.as_deref(), Some("version"));
    }
}
