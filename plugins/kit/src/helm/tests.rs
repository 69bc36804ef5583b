use super::*;
use crate::testkit::{assert_snapshot, ok, render, Request};
use graphrun_plugin_api::Plan;
use serde_json::json;

/// What the probe printed on a host with Helm 3.19.0 and the release `demo` of chart
/// demo-app 0.1.0 deployed with `{"replicas": 2, "web": {"port": 8080.0}}` (recorded from real
/// helm against the test cluster; Helm prints the float back as an integer).
fn recorded(version: &str, status: &str) -> String {
    format!(
        "#graphrun:version\n{version}\n\
         #graphrun:repositories\n[{{\"name\":\"demo\",\"url\":\"http://10.77.0.14:8879\"}}]\n\
         #graphrun:release\n[{{\"name\":\"demo\",\"namespace\":\"apps\",\"revision\":\"1\",\"updated\":\"2026-11-28 00:55:29.717540909 +0000 UTC\",\"status\":\"{status}\",\"chart\":\"demo-app-0.1.0\",\"app_version\":\"1.0\"}}]\n\
         #graphrun:values\n{{\"replicas\":2,\"web\":{{\"port\":8080}}}}\n"
    )
}

/// Nothing: a host without helm, or a first install.
const FRESH: &str =
    "#graphrun:version\n\n#graphrun:repositories\n\n#graphrun:release\n\n#graphrun:values\n\n";

fn demo() -> Release {
    let mut release = Release::new("demo", "demo/demo-app", "apps");
    release.version = Some("0.1.0".into());
    release.repository = Some(("demo", "http://10.77.0.14:8879").into());
    release.values = json!({"replicas": 2, "web": {"port": 8080.0}})
        .as_object()
        .unwrap()
        .clone();
    release.kubeconfig = Some("/root/.kube/config".into());
    release.wait = Some("5m".into());
    release
}

fn plan(release: &Release, probed: &str, major: Option<Major>) -> Result<String, PluginError> {
    let mut request = Request::new(json!({})).build();
    request.probes.insert(release.probe_name(), ok(probed));
    let ops = release.plan(&request, major)?;
    Ok(render(&Plan::ops(ops)))
}

#[test]
fn a_first_install_with_helm_3_adds_the_repository_writes_the_values_and_upgrades() {
    let mut release = demo();
    release.rollback_on_failure = true;
    let text = plan(&release, FRESH, Some(Major::V3)).unwrap();
    assert_snapshot(env!("CARGO_MANIFEST_DIR"), "helm-install-helm3", &text);
}

#[test]
fn helm_4_waits_with_a_strategy_and_rolls_back_with_its_own_flag() {
    let mut release = demo();
    release.rollback_on_failure = true;
    // The probe found Helm 4 on the host, and the step said nothing.
    let text = plan(&release, &recorded("v4.3.1", "failed"), None).unwrap();
    assert_snapshot(env!("CARGO_MANIFEST_DIR"), "helm-upgrade-helm4", &text);
    assert!(text.contains(" --wait=watcher --timeout 5m --rollback-on-failure`"));
}

#[test]
fn a_deployed_release_with_the_same_version_and_values_is_left_alone() {
    for version in ["v3.19.0", "v4.3.1"] {
        let text = plan(&demo(), &recorded(version, "deployed"), None).unwrap();
        assert_eq!(
            text,
            "1. directory /var/lib/graphrun/helm, mode 0700\n\
             2. file /var/lib/graphrun/helm/apps.demo.json (55 bytes, mode 0600)\n   \
             | {\n   |   \"replicas\": 2,\n   |   \"web\": {\n   |     \"port\": 8080.0\n   |   }\n   | }\n",
            "{version}"
        );
    }
}

#[test]
fn another_version_other_values_or_a_failed_release_is_upgraded() {
    let deployed = recorded("v3.19.0", "deployed");
    let mut newer = demo();
    newer.version = Some("0.2.0".into());
    let mut other_values = demo();
    other_values.values.insert("replicas".into(), json!(3));
    let mut fewer_values = demo();
    fewer_values.values.remove("web");
    for (release, probed) in [
        (&newer, deployed.as_str()),
        (&other_values, &deployed),
        (&fewer_values, &deployed),
        (&demo(), &recorded("v3.19.0", "failed")),
        (&demo(), &recorded("v3.19.0", "pending-upgrade")),
    ] {
        let text = plan(release, probed, None).unwrap();
        assert!(
            text.contains("run `helm repo update demo`")
                && text.contains("run `helm upgrade --install demo demo/demo-app"),
            "{text}"
        );
        assert!(
            !text.contains("repo add"),
            "the repository is there: {text}"
        );
    }
}

#[test]
fn a_repository_with_another_url_is_replaced() {
    let mut release = demo();
    release.repository = Some(("demo", "http://10.77.0.15:8879").into());
    let text = plan(&release, &recorded("v3.19.0", "deployed"), None).unwrap();
    assert!(
        text.starts_with("1. run `helm repo add --force-update demo http://10.77.0.15:8879`\n"),
        "{text}"
    );
}

#[test]
fn values_reach_the_host_only_in_a_0600_file_never_on_a_command_line() {
    let secret = "s3cr3t 'pass' $(id)";
    let mut release = demo();
    release.values.insert("password".into(), json!(secret));
    let mut request = Request::new(json!({})).build();
    request.probes.insert(release.probe_name(), ok(FRESH));
    let ops = release.plan(&request, Some(Major::V3)).unwrap();
    let mut files = 0;
    for op in &ops {
        match op {
            Op::File { content, attrs, .. } => {
                assert!(content.contains("s3cr3t 'pass' $(id)"));
                assert_eq!(attrs.mode.as_deref(), Some("0600"));
                files += 1;
            }
            Op::Command { run, .. } => assert!(!run.to_shell().contains("s3cr3t"), "{op:?}"),
            _ => {}
        }
    }
    assert_eq!(files, 1);
    assert!(!release
        .probe()
        .as_run()
        .unwrap()
        .to_shell()
        .contains("s3cr3t"));
}

#[test]
fn oci_and_local_charts_need_no_repository() {
    for chart in ["oci://registry.lab/charts/demo-app", "/srv/charts/demo-app"] {
        let mut release = Release::new("demo", chart, "apps");
        release.validate().unwrap();
        let text = plan(&release, FRESH, None).unwrap();
        assert!(!text.contains("repo "), "{text}");
        assert!(
            text.ends_with(&format!(
                "run `helm upgrade --install demo {chart} --namespace apps --create-namespace -f /var/lib/graphrun/helm/apps.demo.json`\n"
            )),
            "{text}"
        );
        release.repository = Some(("demo", "http://x").into());
        assert_eq!(
            release.validate().unwrap_err().param.as_deref(),
            Some("chart")
        );
    }
}

#[test]
fn an_unknown_helm_waits_as_both_do_but_cannot_choose_a_rollback_flag() {
    let mut release = demo();
    let text = plan(&release, FRESH, None).unwrap();
    assert!(text.contains(" --wait --timeout 5m`"), "{text}");
    release.rollback_on_failure = true;
    let error = plan(&release, FRESH, None).unwrap_err();
    assert!(
        error.message.contains("install it in an earlier step"),
        "{error}"
    );
}

#[test]
fn bad_names_versions_charts_and_timeouts_are_refused() {
    let refused = |change: &dyn Fn(&mut Release), param: &str, message: &str| {
        let mut release = demo();
        change(&mut release);
        let error = release.validate().unwrap_err();
        assert_eq!(error.param.as_deref(), Some(param));
        assert!(error.message.contains(message), "{}", error.message);
    };
    refused(&|r| r.name = "Demo".into(), "name", "lower-case");
    refused(&|r| r.name = "x".repeat(54), "name", "at most 53");
    refused(
        &|r| r.namespace = "a.b".into(),
        "namespace",
        "`a.b` is not a valid namespace",
    );
    refused(
        &|r| r.version = Some("^0.1".into()),
        "version",
        "not an exact chart version",
    );
    refused(
        &|r| r.chart = "other/demo-app".into(),
        "chart",
        "name it `demo/CHART`",
    );
    refused(
        &|r| {
            r.repository = None;
            r.chart = "demo-app".into();
        },
        "chart",
        "neither REPOSITORY/CHART",
    );
    for timeout in ["5", "m", "5x", "", "5m x"] {
        refused(
            &|r| r.wait = Some(timeout.into()),
            "wait",
            "is not a duration",
        );
    }
    let mut release = demo();
    for timeout in ["90s", "5m", "1h30m"] {
        release.wait = Some(timeout.into());
        release.validate().unwrap();
    }
}

#[test]
fn the_probe_reads_each_section_and_shrugs_at_garbage() {
    let installed = Installed::parse(&recorded("v3.19.0", "deployed"));
    assert_eq!(installed.major, Some(Major::V3));
    assert_eq!(installed.repositories["demo"], "http://10.77.0.14:8879");
    assert_eq!(
        installed.release,
        Some(("demo-app-0.1.0".into(), "deployed".into()))
    );
    assert_eq!(installed.values["replicas"], 2);
    assert_eq!(Installed::parse(""), Installed::default());
    let garbage = "#graphrun:version\nhelm: not found\n#graphrun:release\nError: Kubernetes cluster unreachable\n";
    assert_eq!(Installed::parse(garbage), Installed::default());
}

/// The probe script itself, run by `sh` against a stand-in `helm` that records its arguments.
#[test]
fn the_probe_script_asks_helm_four_questions_in_one_shell() {
    let dir = std::env::temp_dir().join(format!("graphrun-helm-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let helm = dir.join("helm");
    std::fs::write(
        &helm,
        "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\ncase $1 in version) echo v4.3.1;; list) exit 1;; *) echo '[]';; esac\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&helm)
        .status()
        .unwrap();
    let mut release = demo();
    release.name = "demo.app".into();
    release.helm = helm.display().to_string();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(release.probe().as_run().unwrap().to_shell())
        .output()
        .unwrap();
    assert!(output.status.success());
    let installed = Installed::parse(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(installed.major, Some(Major::V4));
    assert_eq!(installed.release, None);
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    assert_eq!(
        calls,
        "version --template {{.Version}}\n\
         repo list -o json\n\
         list --namespace apps --kubeconfig /root/.kube/config --filter ^demo\\.app$ --deployed --failed --pending -o json\n\
         get values demo.app --namespace apps --kubeconfig /root/.kube/config -o json\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durations_read_as_helm_reads_them() {
    assert_eq!(duration_seconds("90s"), Some(90));
    assert_eq!(duration_seconds("5m"), Some(300));
    assert_eq!(duration_seconds("1h30m"), Some(5400));
    for bad in ["", "5", "m", "5x", "0s", "1.5m"] {
        assert_eq!(duration_seconds(bad), None, "{bad}");
    }
}
