use super::*;
use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, DEBIAN_12, RECORDED};
use serde_json::json;

fn fresh(_: &Probe) -> Option<graphrun_plugin_api::ProbeResult> {
    None
}

#[test]
fn docker_ce_on_each_recorded_os() {
    for host in RECORDED {
        let plan = Request::new(json!({"version": "28.0.4", "users": ["rke"]}))
            .host(&host)
            .plan(&DockerPlugin, |probe| match probe.name.as_str() {
                // An older install from the distribution, to be replaced.
                PROBE_INSTALLED => Some(testkit::ok(
                    "docker.io 20.10.24 ii \nrunc 1.1.5 ii \nca-certificates 2024 ii \n",
                )),
                _ => None,
            })
            .unwrap();
        assert_snapshot(
            env!("CARGO_MANIFEST_DIR"),
            &format!("docker-ce-{}", host.name),
            &render(&plan),
        );
    }
}

#[test]
fn distro_on_each_recorded_os() {
    for host in RECORDED {
        let plan = Request::new(json!({"source": "distro", "users": ["rke"]}))
            .host(&host)
            .plan(&DockerPlugin, |probe| {
                // Debian 13 ships the client as a package of its own.
                (probe.name == source::PROBE_CLI_PACKAGE && host.name == "debian-13")
                    .then(|| testkit::ok(""))
            })
            .unwrap();
        assert_snapshot(
            env!("CARGO_MANIFEST_DIR"),
            &format!("distro-{}", host.name),
            &render(&plan),
        );
    }
}

#[test]
fn an_installed_engine_with_its_users_plans_no_change() {
    let plan = Request::new(json!({"source": "distro", "users": ["rke", "ci"]}))
        .host(&DEBIAN_12)
        .plan(&DockerPlugin, |probe| match probe.name.as_str() {
            PROBE_INSTALLED => Some(testkit::ok("docker.io 20.10.24 ii \n")),
            PROBE_GROUP => Some(testkit::ok("ci,rke\n")),
            _ => None,
        })
        .unwrap();
    // Enable (guarded: a no-op when enabled and running) and the read-only check.
    assert_eq!(plan.ops.len(), 2, "{}", render(&plan));
    assert!(!plan.ops[1].may_change());
}

#[test]
fn offline_packages_are_uploaded_then_installed_without_downloads() {
    let dir = std::env::temp_dir().join(format!("graphrun-docker-debs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("debs")).unwrap();
    for name in [
        "docker.io_20.10.24_amd64.deb",
        "runc_1.1.5_amd64.deb",
        "notes.txt",
    ] {
        std::fs::write(dir.join("debs").join(name), b"x").unwrap();
    }
    let mut request =
        Request::new(json!({"source": "packages", "packages_dir": "debs", "service": false}))
            .host(&DEBIAN_12)
            .build();
    request.playbook_dir = dir.display().to_string();
    let PlanResponse::Probe { probes } = DockerPlugin.plan(&request).unwrap() else {
        panic!()
    };
    assert!(
        probes[1]
            .as_run()
            .unwrap()
            .to_shell()
            .contains("docker.io runc"),
        "{:?}",
        probes[1]
    );
    request
        .probes
        .insert(os::PROBE.into(), testkit::ok(DEBIAN_12.os));
    request
        .probes
        .insert(PROBE_INSTALLED.into(), testkit::ok("runc 1.1.5 ii \n"));
    let PlanResponse::Plan(plan) = DockerPlugin.plan(&request).unwrap() else {
        panic!()
    };
    let text = render(&plan);
    assert!(text.contains("debs/docker.io_20.10.24_amd64.deb → /var/cache/graphrun/docker-debs/docker.io_20.10.24_amd64.deb"), "{text}");
    assert!(text.contains("install --no-download --no-install-recommends /var/cache/graphrun/docker-debs/docker.io_20.10.24_amd64.deb /var/cache/graphrun/docker-debs/runc_1.1.5_amd64.deb"), "{text}");
    assert!(!text.contains("notes.txt"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hosts_it_cannot_serve_get_a_clear_error() {
    let alpine = testkit::Recorded {
        name: "alpine",
        os: "id=alpine\nversion=3.20\narch=x86_64\ninit=other\napt=no\n",
    };
    let error = Request::new(json!({}))
        .host(&alpine)
        .plan(&DockerPlugin, fresh)
        .unwrap_err();
    assert!(
        error.message.contains("runs alpine 3.20 without apt-get"),
        "{error}"
    );
    let no_systemd = testkit::Recorded {
        name: "debian-container",
        os: "id=debian\nversion=12\ncodename=bookworm\narch=x86_64\ninit=other\napt=yes\n",
    };
    let error = Request::new(json!({}))
        .host(&no_systemd)
        .plan(&DockerPlugin, fresh)
        .unwrap_err();
    assert_eq!(error.param.as_deref(), Some("service"));
    assert!(error.message.contains("set service = false"), "{error}");
}

#[test]
fn parameters_are_checked() {
    let errors = |params| DockerPlugin.validate(&serde_json::from_value(params).unwrap());
    assert!(errors(json!({"version": "5:28.0.4-1~debian.12~bookworm", "mirror": "https://mirror.local/docker/"})).is_empty());
    assert_eq!(
        errors(json!({"source": "snap"}))[0].param.as_deref(),
        Some("source")
    );
    assert_eq!(
        errors(json!({"source": "distro", "version": "1"}))[0]
            .param
            .as_deref(),
        Some("version")
    );
    assert_eq!(
        errors(json!({"source": "packages"}))[0].param.as_deref(),
        Some("source")
    );
    assert_eq!(
        errors(json!({"version": "28; rm -rf /"}))[0]
            .param
            .as_deref(),
        Some("version")
    );
    assert_eq!(
        errors(json!({"mirror": "ftp://x"}))[0].param.as_deref(),
        Some("mirror")
    );
    assert_eq!(
        errors(json!({"users": ["-o"]}))[0].param.as_deref(),
        Some("users")
    );
}
