//! The built-in `dns` step: names in `/etc/hosts`, nameservers and search domains through the
//! resolver the host really uses.
//!
//! Probes (one round trip): the OS, `/etc/hosts`, `/etc/resolv.conf`, and which resolver owns
//! it — systemd-resolved (a drop-in under `/etc/systemd/resolved.conf.d`, then a restart),
//! resolvconf (its `head`, then `resolvconf -u`), or the file itself. Where `/etc/resolv.conf`
//! is systemd-resolved's 127.0.0.53 stub, the output `kubelet_resolv_conf` names the real
//! upstream file (a kubelet reading the stub makes CoreDNS forward to itself in a loop).

use std::collections::BTreeMap;
use std::net::IpAddr;

use graphrun_plugin_api::params::is_template;
use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo, Probe,
    Run,
};
use graphrun_plugin_kit::params::{specs, Args, Param};
use graphrun_plugin_kit::{os, probe, report};
use serde_json::Value;

const PROBE_RESOLVER: &str = "resolver";
const PROBE_HOSTS: &str = "hosts";
const PROBE_RESOLV_CONF: &str = "resolv_conf";
const PROBE_DROP_IN: &str = "resolved_drop_in";

const RESOLV_CONF: &str = "/etc/resolv.conf";
const RESOLVED_DROP_IN: &str = "/etc/systemd/resolved.conf.d/graphrun.conf";
const RESOLVCONF_HEAD: &str = "/etc/resolvconf/resolv.conf.d/head";
/// systemd-resolved's list of the real upstream servers (what a kubelet must read).
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// The managed block's id (`# BEGIN graphrun dns`).
const BLOCK_ID: &str = "dns";

const RESOLVER_SCRIPT: &str = r#"if grep -qE '^nameserver[[:space:]]+127\.0\.0\.53' /etc/resolv.conf 2>/dev/null; then echo stub=yes; else echo stub=no; fi
if [ -d /run/systemd/resolve ] && systemctl is-active --quiet systemd-resolved 2>/dev/null; then echo resolver=systemd-resolved
elif command -v resolvconf >/dev/null 2>&1 && [ -d /etc/resolvconf/resolv.conf.d ]; then echo resolver=resolvconf
else echo resolver=file; fi"#;

const PARAMS: &[Param] = &[
    Param::optional("hosts_entries", ParamKind::StringMap, "Names and their addresses, kept in a managed block of /etc/hosts, e.g. { \"rancher-demo.domain.test\" = \"192.168.86.35\" }"),
    Param::optional("nameservers", ParamKind::StringList, "DNS servers (IP addresses), written through the host's resolver"),
    Param::optional("search", ParamKind::StringList, "Search domains, written through the host's resolver"),
    Param::optional("hosts_file", ParamKind::String, "The hosts file").default_str("/etc/hosts"),
];

/// The `dns` step.
#[derive(Debug, Default)]
pub struct DnsPlugin;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    entries: BTreeMap<String, String>,
    nameservers: Vec<String>,
    search: Vec<String>,
    hosts_file: String,
}

impl Plugin for DnsPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "dns".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Keeps names in /etc/hosts and nameservers/search domains in the resolver the host uses".into(),
            params: specs(PARAMS),
            outputs: vec!["kubelet_resolv_conf".into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        Config::from_params(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let config = Config::from_params(&request.params)?;
        if request.probes.is_empty() {
            return Ok(PlanResponse::Probe {
                probes: vec![
                    os::probe(),
                    Probe::run(PROBE_RESOLVER, Run::Shell(RESOLVER_SCRIPT.into())),
                    probe::file(PROBE_HOSTS, &config.hosts_file),
                    probe::file(PROBE_RESOLV_CONF, RESOLV_CONF),
                    probe::file(PROBE_DROP_IN, RESOLVED_DROP_IN),
                ],
            });
        }
        Ok(plan(&config, request).into())
    }
}

impl Config {
    fn from_params(params: &Params) -> Result<Self, PluginError> {
        let args = Args::new(PARAMS, params);
        let config = Config {
            entries: args.string_map("hosts_entries")?,
            nameservers: args.strings("nameservers")?,
            search: args.strings("search")?,
            hosts_file: args.required_str("hosts_file")?.to_string(),
        };
        for (name, address) in &config.entries {
            check(params, "hosts_entries", valid_name(name), || {
                format!("`{name}` is not a host name")
            })?;
            check(params, "hosts_entries", is_address(address), || {
                format!("`{address}` (for `{name}`) is not an IP address")
            })?;
        }
        for server in &config.nameservers {
            check(params, "nameservers", is_address(server), || {
                format!("`{server}` is not an IP address")
            })?;
        }
        for domain in &config.search {
            check(
                params,
                "search",
                valid_name(domain) || is_template(domain),
                || format!("`{domain}` is not a domain name"),
            )?;
        }
        check(
            params,
            "hosts_file",
            config.hosts_file.starts_with('/'),
            || format!("`{}` is not an absolute path", config.hosts_file),
        )?;
        Ok(config)
    }
}

/// A value check, skipped while the whole parameter is an unrendered template (templates inside
/// lists and tables are skipped by the checks themselves).
fn check(
    params: &Params,
    name: &str,
    ok: bool,
    message: impl FnOnce() -> String,
) -> Result<(), PluginError> {
    if ok || params.is_unrendered(name) {
        Ok(())
    } else {
        Err(PluginError::param(name, message()))
    }
}

/// An IP address, or a template that renders to one (checked again once rendered).
fn is_address(value: &str) -> bool {
    value.parse::<IpAddr>().is_ok() || is_template(value)
}

fn valid_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn plan(config: &Config, request: &PlanRequest) -> Plan {
    let resolver = probe::stdout(request, PROBE_RESOLVER);
    let stub = resolver.lines().any(|l| l == "stub=yes");
    let mut ops = Vec::new();
    if !config.entries.is_empty() {
        let block: String = config
            .entries
            .iter()
            .map(|(name, address)| format!("{address} {name}\n"))
            .collect();
        let marked = format!("# BEGIN graphrun {BLOCK_ID}\n{block}# END graphrun {BLOCK_ID}\n");
        let current = probe::file_content(request, PROBE_HOSTS).unwrap_or_default();
        if !current.contains(&marked) {
            ops.push(Op::block(&config.hosts_file, BLOCK_ID, &block));
        }
    }
    if !config.nameservers.is_empty() || !config.search.is_empty() {
        if resolver.lines().any(|l| l == "resolver=systemd-resolved") {
            ops.extend(resolved_ops(config, request));
        } else if resolver.lines().any(|l| l == "resolver=resolvconf") {
            ops.extend(resolvconf_ops(config));
        } else {
            ops.extend(resolv_conf_ops(config, request));
        }
    }
    let kubelet_resolv_conf = if stub {
        ops.push(report::warning(&format!(
            "{RESOLV_CONF} is systemd-resolved's 127.0.0.53 stub: kubelet must read {RESOLVED_UPSTREAM} (output kubelet_resolv_conf) or CoreDNS loops"
        )));
        RESOLVED_UPSTREAM
    } else {
        RESOLV_CONF
    };
    let mut plan = Plan::ops(ops);
    plan.outputs.insert(
        "kubelet_resolv_conf".into(),
        Value::from(kubelet_resolv_conf),
    );
    plan
}

/// Lines of resolv.conf(5) for the configured servers and domains.
fn resolv_lines(config: &Config) -> String {
    let mut text = String::new();
    if !config.search.is_empty() {
        text.push_str(&format!("search {}\n", config.search.join(" ")));
    }
    for server in &config.nameservers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    text
}

fn resolved_ops(config: &Config, request: &PlanRequest) -> Vec<Op> {
    let mut content = String::from("# Managed by graphrun; changes are overwritten.\n[Resolve]\n");
    if !config.nameservers.is_empty() {
        content.push_str(&format!("DNS={}\n", config.nameservers.join(" ")));
    }
    if !config.search.is_empty() {
        content.push_str(&format!("Domains={}\n", config.search.join(" ")));
    }
    if probe::file_content(request, PROBE_DROP_IN) == Some(content.as_str()) {
        return Vec::new();
    }
    vec![
        Op::file(RESOLVED_DROP_IN, &content).with_mode("0644"),
        Op::command(Run::Shell("systemctl restart systemd-resolved".into())),
    ]
}

fn resolvconf_ops(config: &Config) -> Vec<Op> {
    let lines = resolv_lines(config);
    let present = lines
        .lines()
        .map(|line| format!("grep -qxF {} {RESOLV_CONF}", quote(line)))
        .collect::<Vec<_>>()
        .join(" && ");
    vec![
        Op::block(RESOLVCONF_HEAD, BLOCK_ID, &lines),
        Op::command_unless(Run::Shell("resolvconf -u".into()), Run::Shell(present)),
    ]
}

/// The file itself: our lines first (the resolver reads the first `search` and the first three
/// `nameserver`s), every other line kept in order; lines of a kind we do not set stay.
fn resolv_conf_ops(config: &Config, request: &PlanRequest) -> Vec<Op> {
    let current = probe::file_content(request, PROBE_RESOLV_CONF);
    let mut content = format!(
        "# nameserver and search lines managed by graphrun\n{}",
        resolv_lines(config)
    );
    for line in current.unwrap_or_default().lines() {
        let keyword = line.split_whitespace().next().unwrap_or_default();
        let ours = line.starts_with("# nameserver and search lines managed by graphrun");
        let replaced = match keyword {
            "nameserver" => !config.nameservers.is_empty(),
            "search" | "domain" => !config.search.is_empty(),
            _ => false,
        };
        if !ours && !replaced {
            content.push_str(line);
            content.push('\n');
        }
    }
    if current == Some(content.as_str()) {
        return Vec::new();
    }
    vec![Op::file(RESOLV_CONF, &content).with_mode("0644")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, RECORDED};
    use serde_json::json;

    fn params() -> serde_json::Value {
        json!({
            "hosts_entries": {"rancher-demo.domain.test": "192.168.86.35", "master": "192.168.86.36"},
            "nameservers": ["192.168.86.1", "1.1.1.1"],
            "search": ["domain.test"],
        })
    }

    /// Ubuntu uses systemd-resolved's stub, Debian a plain file (both as installed).
    fn resolver_of(host: &str) -> &'static str {
        if host.starts_with("ubuntu") {
            "stub=yes\nresolver=systemd-resolved\n"
        } else {
            "stub=no\nresolver=file\n"
        }
    }

    #[test]
    fn every_recorded_os_through_its_own_resolver() {
        for host in RECORDED {
            let plan = Request::new(params())
                .host(&host)
                .plan(&DnsPlugin, |probe| match probe.name.as_str() {
                    PROBE_RESOLVER => Some(testkit::ok(resolver_of(host.name))),
                    PROBE_HOSTS => Some(testkit::ok("127.0.0.1 localhost\n")),
                    PROBE_RESOLV_CONF => Some(testkit::ok(
                        "# from DHCP\nnameserver 10.0.0.1\noptions edns0\n",
                    )),
                    _ => None,
                })
                .unwrap();
            assert_snapshot(
                env!("CARGO_MANIFEST_DIR"),
                &format!("dns-{}", host.name),
                &render(&plan),
            );
        }
    }

    #[test]
    fn resolvconf_gets_its_head_and_an_update() {
        let plan = Request::new(params())
            .plan(&DnsPlugin, |probe| match probe.name.as_str() {
                PROBE_RESOLVER => Some(testkit::ok("stub=no\nresolver=resolvconf\n")),
                _ => None,
            })
            .unwrap();
        assert!(plan.ops.contains(&Op::block(
            RESOLVCONF_HEAD,
            "dns",
            "search domain.test\nnameserver 192.168.86.1\nnameserver 1.1.1.1\n"
        )));
        assert_eq!(
            plan.outputs["kubelet_resolv_conf"],
            json!("/etc/resolv.conf")
        );
    }

    #[test]
    fn nothing_differs_nothing_planned() {
        let hosts = "127.0.0.1 localhost\n# BEGIN graphrun dns\n192.168.86.36 master\n192.168.86.35 rancher-demo.domain.test\n# END graphrun dns\n";
        let resolv = "# nameserver and search lines managed by graphrun\nsearch domain.test\nnameserver 192.168.86.1\nnameserver 1.1.1.1\noptions edns0\n";
        let plan = Request::new(params())
            .plan(&DnsPlugin, |probe| match probe.name.as_str() {
                PROBE_RESOLVER => Some(testkit::ok("stub=no\nresolver=file\n")),
                PROBE_HOSTS => Some(testkit::ok(hosts)),
                PROBE_RESOLV_CONF => Some(testkit::ok(resolv)),
                _ => None,
            })
            .unwrap();
        assert_eq!(plan.ops, []);
    }

    #[test]
    fn search_alone_keeps_the_nameservers() {
        let plan = Request::new(json!({"search": ["lab.test"]}))
            .plan(&DnsPlugin, |probe| match probe.name.as_str() {
                PROBE_RESOLVER => Some(testkit::ok("stub=no\nresolver=file\n")),
                PROBE_RESOLV_CONF => Some(testkit::ok("search old.test\nnameserver 10.0.0.1\n")),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            plan.ops.last(),
            Some(
                &Op::file(
                    RESOLV_CONF,
                    "# nameserver and search lines managed by graphrun\nsearch lab.test\nnameserver 10.0.0.1\n"
                )
                .with_mode("0644")
            )
        );
    }

    #[test]
    fn names_and_addresses_are_checked() {
        let errors = |params| DnsPlugin.validate(&serde_json::from_value(params).unwrap());
        assert!(errors(params()).is_empty());
        assert_eq!(
            errors(json!({"hosts_entries": {"a b": "10.0.0.1"}}))[0]
                .param
                .as_deref(),
            Some("hosts_entries")
        );
        assert!(errors(json!({"hosts_entries": {"m": "10.0.0"}}))[0]
            .message
            .contains("not an IP address"));
        assert_eq!(
            errors(json!({"nameservers": ["$(id)"]}))[0]
                .param
                .as_deref(),
            Some("nameservers")
        );
        assert_eq!(
            errors(json!({"search": ["a;b"]}))[0].param.as_deref(),
            Some("search")
        );
    }
}
