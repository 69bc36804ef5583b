use super::*;
use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, DEBIAN_12, RECORDED};
use serde_json::json;

/// Port 6443 listening (0x192B), 22 too.
const TCP: &str = "  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A\n   1: 00000000:192B 00000000:0000 0A\n   2: 0100007F:2379 0100007F:AAAA 01\n";

fn bad_host(probe: &graphrun_plugin_api::Probe) -> Option<graphrun_plugin_api::ProbeResult> {
    Some(testkit::ok(match probe.name.as_str() {
        "ssh_forwarding" => "no\n",
        "user" => "ubuntu\nubuntu adm sudo\n",
        "swap" => "/swap.img file 2097148 0 -2\n",
        "sysctl" => "net/bridge/bridge-nf-call-iptables=\nnet/ipv4/ip_forward=0\n",
        "clock" => "1000\n",
        "names" => "master yes\nworker no\n",
        "ports" => TCP,
        "memory" => "1016000\n",
        "disk" => "5242880\n",
        _ => return None,
    }))
}

fn good_host(probe: &graphrun_plugin_api::Probe) -> Option<graphrun_plugin_api::ProbeResult> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Some(match probe.name.as_str() {
        "ssh_forwarding" => testkit::ok("yes\n"),
        "user" => testkit::ok("rke\nrke docker\n"),
        "swap" => testkit::ok(""),
        "sysctl" => testkit::ok("net/bridge/bridge-nf-call-iptables=1\nnet/ipv4/ip_forward=1\n"),
        "clock" => testkit::ok(&format!("{now}\n")),
        "names" => testkit::ok("master yes\nworker yes\n"),
        "ports" => testkit::ok("   0: 00000000:0016 00000000:0000 0A\n"),
        "memory" => testkit::ok("8000000\n"),
        "disk" => testkit::ok("52428800\n"),
        _ => return None,
    })
}

#[test]
fn every_finding_at_once_on_each_recorded_os() {
    for host in RECORDED {
        let plan = Request::new(json!({"peers": ["master", "worker"], "fail_on": ["swap"]}))
            .host(&host)
            .plan(&PreflightPlugin, bad_host)
            .unwrap();
        let text = render(&plan).replace(&plan_skew(&plan), "SKEW");
        assert_snapshot(
            env!("CARGO_MANIFEST_DIR"),
            &format!("findings-{}", host.name),
            &text,
        );
    }
}

/// The clock finding names the skew, which depends on when the test runs.
fn plan_skew(plan: &Plan) -> String {
    let text = render(plan);
    let start = text
        .find("clock is ")
        .map(|i| i + "clock is ".len())
        .unwrap();
    text[start..].split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_ready_host_has_no_findings_and_no_ops() {
    let plan = Request::new(json!({"peers": ["master", "worker"], "fail_on": ["swap"]}))
        .host(&DEBIAN_12)
        .plan(&PreflightPlugin, good_host)
        .unwrap();
    assert_eq!(plan.ops, []);
    assert_eq!(plan.outputs["findings"], json!([]));
}

#[test]
fn fail_on_decides_the_exit_code() {
    let exit = |fail_on: serde_json::Value| {
        let plan = Request::new(json!({"fail_on": fail_on}))
            .host(&DEBIAN_12)
            .plan(&PreflightPlugin, bad_host)
            .unwrap();
        let Op::Command {
            run,
            changes: false,
            ..
        } = &plan.ops[0]
        else {
            panic!()
        };
        std::process::Command::new("sh")
            .arg("-c")
            .arg(run.to_shell())
            .output()
            .unwrap()
    };
    let warn = exit(json!([]));
    assert!(warn.status.success());
    let stderr = String::from_utf8(warn.stderr).unwrap();
    assert!(
        stderr.contains("warning: swap: swap is on (/swap.img)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: ports: TCP ports already in use: 6443"),
        "{stderr}"
    );
    let fail = exit(json!(["ports"]));
    assert!(!fail.status.success());
    assert!(String::from_utf8(fail.stderr)
        .unwrap()
        .contains("error: ports:"));
}

#[test]
fn parameters_are_checked() {
    let errors = |params| PreflightPlugin.validate(&serde_json::from_value(params).unwrap());
    assert!(errors(json!({"ports": [6443, "2379"]})).is_empty());
    assert_eq!(
        errors(json!({"fail_on": ["swapp"]}))[0].param.as_deref(),
        Some("fail_on")
    );
    assert_eq!(
        errors(json!({"ports": [70000]}))[0].param.as_deref(),
        Some("ports")
    );
    assert_eq!(
        errors(json!({"peers": ["$(id)"]}))[0].param.as_deref(),
        Some("peers")
    );
    assert_eq!(
        errors(json!({"min_memory_mb": -1}))[0].param.as_deref(),
        Some("min_memory_mb")
    );
}
