use super::*;
use graphrun_plugin_api::{Op, Probe, ProbeResult, Run};
use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, DEBIAN_12};
use serde_json::json;

fn site() -> serde_json::Value {
    json!({
        "version": "3.19.0",
        "repositories": {"jetstack": "http://10.77.0.14:8879", "lab": "http://10.77.0.14:8879"},
        "charts": {
            "cert-manager": {
                "chart": "jetstack/cert-manager",
                "namespace": "cert-manager",
                "version": "v1.21.1",
                "values": {"crds": {"enabled": true}},
                "wait": "5m",
                "rollback_on_failure": true,
            },
            "demo": {"chart": "lab/demo-app", "namespace": "apps", "values": {"replicas": 2}},
        },
    })
}

fn fresh(_: &Probe) -> Option<ProbeResult> {
    None
}

#[test]
fn helm_3_its_repositories_and_two_releases_on_a_fresh_host() {
    let plan = Request::new(site())
        .host(&DEBIAN_12)
        .plan(&HelmPlugin, fresh)
        .unwrap();
    assert_snapshot(env!("CARGO_MANIFEST_DIR"), "helm3-fresh", &render(&plan));
}

#[test]
fn helm_4_uses_its_own_flags() {
    let mut params = site();
    params["version"] = json!("4.3.1");
    let plan = Request::new(params)
        .host(&DEBIAN_12)
        .plan(&HelmPlugin, fresh)
        .unwrap();
    let text = render(&plan);
    assert!(text.contains("helm-v4.3.1-linux-amd64.tar.gz"), "{text}");
    assert!(
        text.contains(" --wait=watcher --timeout 5m --rollback-on-failure`"),
        "{text}"
    );
}

#[test]
fn everything_in_place_plans_no_command_that_changes_the_host() {
    let plan = Request::new(site())
        .host(&DEBIAN_12)
        .plan(&HelmPlugin, |probe| {
            let repositories = "[{\"name\":\"jetstack\",\"url\":\"http://10.77.0.14:8879\"},{\"name\":\"lab\",\"url\":\"http://10.77.0.14:8879\"}]";
            let release = |chart: &str, values: &str| {
                format!(
                    "#graphrun:version\nv3.19.0\n#graphrun:repositories\n{repositories}\n\
                     #graphrun:release\n[{{\"status\":\"deployed\",\"chart\":\"{chart}\"}}]\n#graphrun:values\n{values}\n"
                )
            };
            let stdout = match probe.name.as_str() {
                PROBE_REPOSITORIES => format!("#graphrun:repositories\n{repositories}\n"),
                "helm-release:cert-manager/cert-manager" => {
                    release("cert-manager-v1.21.1", "{\"crds\":{\"enabled\":true}}")
                }
                "helm-release:apps/demo" => release("demo-app-0.1.0", "{\"replicas\":2}"),
                _ => return None,
            };
            Some(testkit::ok(&stdout))
        })
        .unwrap();
    let text = render(&plan);
    for op in &plan.ops {
        // The extract is guarded by the version it would install.
        if let Op::Command { unless: None, .. } = op {
            assert!(!op.may_change(), "{text}");
        }
    }
    assert!(
        !text.contains("upgrade") && !text.contains("repo "),
        "{text}"
    );
}

#[test]
fn releases_share_one_values_folder_and_each_repository_is_updated_once() {
    let mut params = site();
    params["charts"]["cert-manager-2"] = params["charts"]["cert-manager"].clone();
    let plan = Request::new(params)
        .host(&DEBIAN_12)
        .plan(&HelmPlugin, fresh)
        .unwrap();
    let text = render(&plan);
    let count = |needle: &str| text.matches(needle).count();
    assert_eq!(count("directory /var/lib/graphrun/helm"), 1, "{text}");
    assert_eq!(count("repo update jetstack"), 1, "{text}");
    assert_eq!(count("repo add --force-update jetstack"), 1, "{text}");
    assert_eq!(count("upgrade --install"), 3, "{text}");
}

#[test]
fn bad_charts_repositories_and_versions_are_refused_at_validate() {
    let cases = [
        (json!({"version": "2.17.0"}), "version", "neither 3.x nor 4.x"),
        (json!({"version": "latest"}), "version", "is not a helm version"),
        (
            json!({"version": "3.19.0", "path": "helm"}),
            "path",
            "not an absolute path",
        ),
        (
            json!({"version": "3.19.0", "repositories": {"x": "ftp://a"}}),
            "repositories",
            "is not an http:// or https:// URL",
        ),
        (
            json!({"version": "3.19.0", "charts": {"a": {"chart": "jetstack/cert-manager"}}}),
            "charts",
            "`a`: `jetstack/cert-manager` comes from the repository `jetstack`, which `repositories` does not list",
        ),
        (
            json!({"version": "3.19.0", "charts": {"a": {"chart": "/c", "valeus": {}}}}),
            "charts",
            "`a`: unknown key `valeus`",
        ),
        (
            json!({"version": "3.19.0", "charts": {"A": {"chart": "/c"}}}),
            "charts",
            "`A`: `name`: `A` is not a valid name",
        ),
        (
            json!({"version": "3.19.0", "charts": {"a": {"chart": "/c", "wait": 5}}}),
            "charts",
            "`a`: `wait` must be a string",
        ),
    ];
    for (params, param, message) in cases {
        let params: Params = serde_json::from_value(params).unwrap();
        let errors = HelmPlugin.validate(&params);
        assert_eq!(errors.len(), 1, "{params:?}");
        assert_eq!(errors[0].param.as_deref(), Some(param), "{errors:?}");
        assert!(errors[0].message.contains(message), "{}", errors[0].message);
    }
    let templated: Params = serde_json::from_value(json!({
        "version": "3.19.0",
        "charts": {"a": {"chart": "{{ vars.chart }}", "version": "{{ vars.v }}"}},
    }))
    .unwrap();
    assert!(HelmPlugin.validate(&templated).is_empty());
}

/// The extract runs for real: a release-shaped tarball, `sh`, the guard.
#[test]
fn the_binary_is_extracted_from_the_tarball_unless_that_version_is_there() {
    let dir = std::env::temp_dir().join(format!("graphrun-helm-extract-{}", std::process::id()));
    let tree = dir.join("tree/linux-amd64");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("helm"),
        "#!/bin/sh\n[ \"$1\" = version ] && printf v3.19.0\n",
    )
    .unwrap();
    let ops = install::ops(
        "3.19.0",
        &dir.join("bin-helm").display().to_string(),
        "x86_64",
    )
    .unwrap();
    let Op::Artifact { path: tarball, .. } = &ops[1] else {
        panic!("{ops:?}")
    };
    let Op::Command {
        run,
        unless: Some(guard),
        ..
    } = &ops[2]
    else {
        panic!("{ops:?}")
    };
    // The tarball where the artifact op would put it, as upstream packs it.
    let local_tarball = dir.join("helm.tar.gz");
    let sh = |script: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script.replace(tarball.as_str(), &local_tarball.display().to_string()))
            .status()
            .unwrap()
            .success()
    };
    assert!(sh(&format!(
        "cd {} && chmod +x linux-amd64/helm && tar -czf {} linux-amd64",
        dir.join("tree").display(),
        local_tarball.display()
    )));
    let guard = guard.to_shell();
    assert!(!sh(&guard), "no helm yet");
    assert!(sh(&run.to_shell()));
    assert!(sh(&guard), "the guard sees v3.19.0");
    let mode = std::fs::metadata(dir.join("bin-helm")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o755
    );
    let Op::Command { run: check, .. } = &ops[3] else {
        panic!()
    };
    assert!(matches!(check, Run::Shell(_)) && sh(&check.to_shell()));
    std::fs::remove_dir_all(&dir).unwrap();
}
