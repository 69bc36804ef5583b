use super::*;
use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, DEBIAN_12};
use serde_json::json;

fn with_user(probe: &Probe) -> Option<graphrun_plugin_api::ProbeResult> {
    (probe.name == PROBE_USER).then(|| testkit::ok("ops:/home/ops\n"))
}

#[test]
fn kubectl_and_the_kubeconfig_for_the_login_user() {
    let plan = Request::new(json!({
        "version": "1.34.5",
        "kubeconfig": "/work/.graphrun/site/fetched/master/kube_config_cluster.yml",
    }))
    .host(&DEBIAN_12)
    .plan(&KubectlPlugin, with_user)
    .unwrap();
    assert_snapshot(
        env!("CARGO_MANIFEST_DIR"),
        "kubectl-with-kubeconfig",
        &render(&plan),
    );
    let Op::Upload { attrs, .. } = &plan.ops[3] else {
        panic!("the kubeconfig is uploaded: {}", render(&plan));
    };
    assert_eq!(attrs.mode.as_deref(), Some("0600"));
    assert_eq!(attrs.owner.as_deref(), Some("ops"));
}

#[test]
fn without_a_kubeconfig_only_the_binary_and_its_version() {
    let request =
        Request::new(json!({"version": "v1.34.5", "path": "/opt/bin/kubectl"})).host(&DEBIAN_12);
    let plan = request
        .plan(&KubectlPlugin, |probe| {
            assert_ne!(probe.name, PROBE_USER, "no home needed");
            None
        })
        .unwrap();
    assert_eq!(
        render(&plan),
        "1. artifact https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl → /opt/bin/kubectl (sha256 from https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl.sha256, mode 0755)\n\
         2. check `[ -x /opt/bin/kubectl ] || exit 0\n/opt/bin/kubectl version --client`\n"
    );
}

#[test]
fn the_user_probe_names_the_login_user_even_under_sudo_or_the_one_asked_for() {
    assert_eq!(
        user_probe(None).as_run().unwrap().to_shell(),
        "getent passwd \"${SUDO_USER:-$(id -un)}\" | cut -d: -f1,6"
    );
    assert_eq!(
        user_probe(Some("a b")).as_run().unwrap().to_shell(),
        "getent passwd 'a b' | cut -d: -f1,6"
    );
    let error = Request::new(json!({"version": "1.34.5", "kubeconfig": "k", "user": "nobody2"}))
        .host(&DEBIAN_12)
        .plan(&KubectlPlugin, |_| None)
        .unwrap_err();
    assert_eq!(error.param.as_deref(), Some("user"));
    assert_eq!(
        error.message,
        "debian-12 has no user `nobody2` with a home folder to put ~/.kube/config in"
    );
}

#[test]
fn bad_versions_and_relative_paths_are_refused() {
    for (params, param) in [
        (json!({"version": "latest"}), "version"),
        (json!({"version": "1.34.5", "path": "bin/kubectl"}), "path"),
    ] {
        let params: Params = serde_json::from_value(params).unwrap();
        let errors = KubectlPlugin.validate(&params);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].param.as_deref(), Some(param));
    }
    let templated: Params =
        serde_json::from_value(json!({"version": "{{ vars.kubectl }}"})).unwrap();
    assert!(KubectlPlugin.validate(&templated).is_empty());
}

/// The cluster check run by `sh` against a stand-in kubectl: `MINOR` is the server's minor
/// version (unset: no server answers), `NODES_EXIT` how `get nodes` ends.
fn run_check(minor: Option<&str>, nodes_exit: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "graphrun-kubectl-check-{}-{}-{nodes_exit}",
        std::process::id(),
        minor.unwrap_or("none")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let kubectl = dir.join("kubectl");
    std::fs::write(
        &kubectl,
        "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\n\
         case \"$*\" in\n\
         *'get --raw /version'*) [ -n \"$MINOR\" ] && printf '{\\n  \"major\": \"1\",\\n  \"minor\": \"%s\",\\n  \"minCompatibilityMinor\": \"9\"\\n}\\n' \"$MINOR\";;\n\
         *'get nodes'*) echo kwok-node-0 Ready; exit \"$NODES_EXIT\";;\n\
         esac\n",
    )
    .unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "apiVersion: v1\n").unwrap();
    std::process::Command::new("chmod")
        .args(["+x", &kubectl.display().to_string()])
        .status()
        .unwrap();
    let op = cluster_check::op(
        &kubectl.display().to_string(),
        &config.display().to_string(),
        Some(34),
    );
    let Op::Command { run, changes, .. } = op else {
        panic!("a command")
    };
    assert!(!changes, "a read-only check");
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(run.to_shell())
        .env("NODES_EXIT", nodes_exit);
    match minor {
        Some(minor) => command.env("MINOR", minor),
        None => command.env_remove("MINOR"),
    };
    let output = command.output().unwrap();
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
        calls,
    )
}

#[test]
fn a_server_one_minor_away_is_fine_and_its_nodes_are_listed() {
    for minor in ["33", "34", "35"] {
        let (code, stderr, calls) = run_check(Some(minor), "0");
        assert_eq!((code, stderr.as_str()), (0, ""), "server 1.{minor}");
        assert!(calls.contains("get nodes --request-timeout=10s"), "{calls}");
    }
}

#[test]
fn a_server_two_minors_away_is_a_warning() {
    let (code, stderr, _) = run_check(Some("32"), "0");
    assert_eq!(code, 0);
    assert_eq!(
        stderr,
        "warning: kubectl 1.34 is more than one minor version away from the API server (1.32): kubectl supports one either way; set version to 1.32.x\n"
    );
    let (_, stderr, _) = run_check(Some("36"), "0");
    assert!(stderr.contains("(1.36)"), "{stderr}");
}

#[test]
fn no_answering_cluster_is_a_warning_and_failing_nodes_a_failure() {
    let (code, stderr, calls) = run_check(None, "0");
    assert_eq!(code, 0);
    assert!(
        stderr.starts_with("warning: no Kubernetes API server answered with ")
            && stderr.ends_with("within 10s: `kubectl get nodes` skipped\n"),
        "{stderr}"
    );
    assert!(!calls.contains("get nodes"), "{calls}");
    let (code, _, _) = run_check(Some("34"), "1");
    assert_eq!(code, 1);
}
