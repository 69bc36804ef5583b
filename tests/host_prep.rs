//! Host preparation steps (docker, swap, sysctl, dns, preflight) on the lab's hosts that boot
//! systemd: s1 (Debian 12) and s2 (Debian 13), from `tests/lab/lab.sh systemd-up`. Skipped
//! unless GRAPHRUN_LAB_SYSTEMD_INVENTORY is set; CI=true makes a missing lab an error.
//!
//! What a lab host cannot show: active swap (its root is an overlay: no swap file can be turned
//! on), loading a module (no `/lib/modules`; the machine's built-in br_netfilter is present), and
//! pulling images (the lab reaches only the package mirror). The Docker daemon really runs and
//! answers `docker version` on both releases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::MutexGuard;

use crate::support::{assert_exit, events, statuses};

/// The systemd hosts, locked for one test, with a private known_hosts.
struct Hosts {
    _guard: MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    inventory: PathBuf,
    key: PathBuf,
    net: String,
}

fn hosts() -> Option<Hosts> {
    let Ok(inventory) = std::env::var("GRAPHRUN_LAB_SYSTEMD_INVENTORY") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must start the lab's systemd hosts (tests/lab/lab.sh systemd-up)"
        );
        eprintln!("skipped: no systemd hosts (run tests/lab/lab.sh systemd-up and eval \"$(tests/lab/lab.sh env)\")");
        return None;
    };
    let guard = crate::support::lock_systemd_hosts();
    let lab_dir = PathBuf::from(std::env::var("GRAPHRUN_LAB_DIR").expect("lab.sh env sets it"));
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let text = std::fs::read_to_string(&inventory).unwrap().replace(
        &lab_dir.join("known_hosts").display().to_string(),
        &known_hosts.display().to_string(),
    );
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, text).unwrap();
    Some(Hosts {
        _guard: guard,
        dir,
        inventory,
        key: lab_dir.join("id_ed25519"),
        net: std::env::var("GRAPHRUN_LAB_NET").expect("lab.sh env sets it"),
    })
}

impl Hosts {
    fn address(&self, host: &str) -> String {
        let n: u32 = host[1..].parse().expect("systemd hosts are named sN");
        format!("{}.{}", self.net, 100 + n)
    }

    fn playbook(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `graphrun COMMAND PLAYBOOK --inventory … [--output json]` (plan and apply print events).
    fn graphrun(&self, command: &str, playbook: &Path) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_graphrun"));
        cmd.arg(command)
            .arg(playbook)
            .arg("--inventory")
            .arg(&self.inventory);
        if command != "validate" {
            cmd.args(["--output", "json"]);
        }
        cmd.output().unwrap()
    }

    /// Runs `command` on a host as root, outside graphrun; its stdout.
    fn ssh(&self, host: &str, command: &str) -> String {
        let output = crate::support::ssh_as_root(&self.key, &self.address(host), command);
        assert!(
            output.status.success(),
            "{host}: `{command}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// The machine's first nameserver: the hosts resolve through it, so the dns step keeps it.
fn machine_nameserver() -> String {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("nameserver "))
        .expect("a nameserver")
        .trim()
        .to_string()
}

fn prep_playbook(hosts: &Hosts) -> String {
    format!(
        r#"
[steps.preflight]
on = "all"
peers = ["s1", "s2"]
min_memory_mb = 128
min_disk_gb = 1

[steps.swap]
on = "all"
needs = ["preflight"]

[steps.sysctl]
on = "all"
needs = ["preflight"]
kubernetes = true
settings = {{ "net.ipv4.conf.all.rp_filter" = 2 }}

[steps.dns]
on = "all"
needs = ["preflight"]
hosts_entries = {{ "rancher-demo.domain.test" = "{s1}", "registry.lab.test" = "{s2}" }}
nameservers = ["{ns}"]
search = ["lab.test"]

[steps.docker]
on = "all"
needs = ["swap", "sysctl"]
source = "distro"
users = ["deploy"]
"#,
        s1 = hosts.address("s1"),
        s2 = hosts.address("s2"),
        ns = machine_nameserver(),
    )
}

#[test]
fn debian_12_and_13_are_prepared_and_a_second_apply_changes_nothing() {
    let Some(hosts) = hosts() else { return };
    for host in ["s1", "s2"] {
        // A swap entry to comment out (the lab cannot turn swap on: see the module's comment).
        hosts.ssh(host, "grep -q '^/swapfile' /etc/fstab || printf '/swapfile none swap sw 0 0\\n' >>/etc/fstab");
    }
    let playbook = hosts.playbook("prep.toml", &prep_playbook(&hosts));
    let first = hosts.graphrun("apply", &playbook);
    assert_exit(&first, 0);

    for host in ["s1", "s2"] {
        // docker: package, group, service, and the daemon answering through the client.
        hosts.ssh(
            host,
            "dpkg-query -W -f='${db:Status-Abbrev}' docker.io | grep -q '^ii'",
        );
        assert!(hosts
            .ssh(host, "id -nG deploy")
            .split_whitespace()
            .any(|g| g == "docker"));
        assert_eq!(
            hosts.ssh(host, "systemctl is-enabled docker").trim(),
            "enabled"
        );
        assert!(!hosts
            .ssh(host, "docker version --format '{{.Server.Version}}'")
            .trim()
            .is_empty());
        // swap: the entry commented out, one backup of the file as it was.
        let fstab = hosts.ssh(host, "cat /etc/fstab");
        assert!(
            fstab.contains("\n# /swapfile none swap sw 0 0\n"),
            "{fstab}"
        );
        assert!(hosts
            .ssh(host, "cat /etc/fstab.graphrun.bak")
            .contains("\n/swapfile none swap"));
        assert_eq!(hosts.ssh(host, "swapon --show --noheadings"), "");
        // sysctl: files, and live values read back.
        assert_eq!(
            hosts.ssh(host, "cat /etc/sysctl.d/99-graphrun.conf"),
            "# Managed by graphrun; changes are overwritten.\nnet.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.conf.all.rp_filter = 2\nnet.ipv4.ip_forward = 1\n"
        );
        assert!(hosts
            .ssh(host, "cat /etc/modules-load.d/graphrun.conf")
            .ends_with("\nbr_netfilter\n"));
        assert_eq!(
            hosts.ssh(host, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/ipv4/conf/all/rp_filter"),
            "1\n1\n2\n"
        );
        // dns: the managed block, our resolver lines first, names resolving.
        let etc_hosts = hosts.ssh(host, "cat /etc/hosts");
        assert!(etc_hosts.contains(&format!(
            "# BEGIN graphrun dns\n{} rancher-demo.domain.test\n{} registry.lab.test\n# END graphrun dns\n",
            hosts.address("s1"),
            hosts.address("s2")
        )), "{etc_hosts}");
        assert!(
            etc_hosts.starts_with("127.0.0.1 localhost\n"),
            "other lines untouched: {etc_hosts}"
        );
        assert!(hosts
            .ssh(host, "cat /etc/resolv.conf")
            .starts_with(&format!(
            "# nameserver and search lines managed by graphrun\nsearch lab.test\nnameserver {}\n",
            machine_nameserver()
        )));
        assert_eq!(
            hosts
                .ssh(host, "getent hosts registry.lab.test")
                .split_whitespace()
                .next(),
            Some(hosts.address("s2").as_str())
        );
    }

    let second = hosts.graphrun("apply", &playbook);
    assert_exit(&second, 0);
    let statuses = statuses(&second);
    assert_eq!(statuses.len(), 10);
    assert!(statuses.values().all(|s| s == "ok"), "{statuses:?}");
}

#[test]
fn plan_after_a_manual_edit_shows_exactly_that_edit() {
    let Some(hosts) = hosts() else { return };
    let playbook = hosts.playbook("prep.toml", &prep_playbook(&hosts));
    assert_exit(&hosts.graphrun("apply", &playbook), 0);
    // Someone edits the managed block by hand on s2.
    hosts.ssh(
        "s2",
        "sed -i 's/^.* registry.lab.test$/10.9.9.9 registry.lab.test/' /etc/hosts",
    );
    let plan = hosts.graphrun("plan", &playbook);
    assert_exit(&plan, 0);
    let would_change: Vec<String> = events(&plan, "op_finished")
        .filter(|e| e["status"] == "would_change")
        .map(|e| {
            format!(
                "{}: {}",
                e["node"].as_str().unwrap(),
                e["op"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(would_change, ["dns@s2: block `dns` in /etc/hosts"]);
    assert!(
        hosts
            .ssh("s2", "cat /etc/hosts")
            .contains("10.9.9.9 registry.lab.test"),
        "plan changed nothing"
    );
    assert_exit(&hosts.graphrun("apply", &playbook), 0);
    assert!(!hosts.ssh("s2", "cat /etc/hosts").contains("10.9.9.9"));
}

#[test]
fn preflight_reports_every_finding_and_fails_only_on_fail_on() {
    let Some(hosts) = hosts() else { return };
    // sshd listens on 22 on every host: a port finding for sure; an unknown peer, another.
    let playbook = |fail_on: &str| {
        hosts.playbook(
            "preflight.toml",
            &format!(
                "[steps.preflight]\non = \"all\"\nports = [22, 6443]\npeers = [\"s1\", \"nowhere.invalid\"]\nfail_on = {fail_on}\n"
            ),
        )
    };
    let warn = hosts.graphrun("apply", &playbook("[]"));
    assert_exit(&warn, 0);
    let warnings: Vec<String> = events(&warn, "op_finished")
        .filter(|e| e["status"] == "ok")
        .filter_map(|e| e["stderr"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        warnings.len(),
        2,
        "one passed check per host carries the warnings"
    );
    for text in warnings {
        assert!(
            text.contains("warning: ports: TCP ports already in use: 22 ("),
            "{text}"
        );
        assert!(
            text.contains("warning: names: cannot resolve nowhere.invalid"),
            "{text}"
        );
    }
    let fail = hosts.graphrun("apply", &playbook("[\"ports\"]"));
    assert_exit(&fail, 1);
    let errors: Vec<String> = events(&fail, "node_finished")
        .map(|e| e["error"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(errors.len(), 2);
    for error in errors {
        assert!(
            error.contains("error: ports: TCP ports already in use: 22"),
            "{error}"
        );
        assert!(
            error.contains("warning: names: cannot resolve nowhere.invalid"),
            "all findings at once: {error}"
        );
    }
}

#[test]
fn docker_from_deb_files_on_an_air_gapped_host() {
    let Some(hosts) = hosts() else { return };
    // The control machine is Debian 12 like s1: its apt computes what s1 lacks (from s1's own
    // package database) and downloads it, into a cache kept across runs.
    hosts.ssh("s1", "systemctl disable --now docker.socket docker containerd >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get -y -q purge docker.io containerd runc tini >/dev/null && apt-get -y -q autoremove --purge >/dev/null");
    let status = hosts.dir.path().join("status");
    std::fs::write(&status, hosts.ssh("s1", "cat /var/lib/dpkg/status")).unwrap();
    let debs = hosts.dir.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let names = download_closure(&status, &debs, "docker.io");
    assert!(
        names.iter().any(|n| n.starts_with("docker.io_")),
        "{names:?}"
    );

    crate::ssh::lab_script(&["airgap", "s1"]);
    let _reconnect = Reconnect;
    let mirror = hosts.ssh(
        "s1",
        "timeout 5 bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' && echo reached || echo cut",
    );
    assert_eq!(mirror.trim(), "cut", "s1 must not reach the mirror");
    let playbook = hosts.playbook(
        "offline.toml",
        "[steps.docker]\non = [\"s1\"]\nsource = \"packages\"\npackages_dir = \"debs\"\nusers = [\"ops\"]\n",
    );
    let first = hosts.graphrun("apply", &playbook);
    assert_exit(&first, 0);
    assert_eq!(
        hosts.ssh(
            "s1",
            "dpkg-query -W -f='${db:Status-Abbrev}\\n' docker.io containerd runc"
        ),
        "ii \nii \nii \n"
    );
    assert!(!hosts
        .ssh("s1", "docker version --format '{{.Server.Version}}'")
        .trim()
        .is_empty());
    assert!(hosts
        .ssh("s1", "id -nG ops")
        .split_whitespace()
        .any(|g| g == "docker"));
    let second = hosts.graphrun("apply", &playbook);
    assert_exit(&second, 0);
    assert_eq!(statuses(&second)["docker@s1"], "ok");
    assert!(
        !events(&second, "op_finished").any(|e| e["op"].as_str().unwrap().starts_with("upload")),
        "nothing is uploaded once installed"
    );
}

/// Ends the air gap even when the test fails.
struct Reconnect;

impl Drop for Reconnect {
    fn drop(&mut self) {
        crate::ssh::lab_script(&["reconnect", "s1"]);
    }
}

/// Downloads `package` and what a host with dpkg database `status` lacks for it into `dir`
/// (through a cache kept across runs); returns the file names.
fn download_closure(status: &Path, dir: &Path, package: &str) -> Vec<String> {
    // One cache per lab: apt runs here unlocked, and labs run side by side.
    let lab = std::env::var("GRAPHRUN_LAB_ID").unwrap_or_else(|_| "0".into());
    let cache = PathBuf::from(format!("/var/cache/graphrun-lab/debs-{lab}-bookworm"));
    let cache = cache.as_path();
    std::fs::create_dir_all(cache.join("partial")).unwrap();
    let listing = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(listing.path().join("partial")).unwrap();
    let apt = |archives: &Path, extra: &[&str]| {
        let output = Command::new("apt-get")
            .arg("-o")
            .arg(format!("Dir::State::status={}", status.display()))
            .arg("-o")
            .arg(format!("Dir::Cache::archives={}", archives.display()))
            .args([
                "-o",
                "Debug::NoLocking=1",
                "-y",
                "-qq",
                "--no-install-recommends",
            ])
            .args(extra)
            .args(["install", package])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "apt-get: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // An empty archive folder: --print-uris lists every file the host needs.
    let names: Vec<String> = apt(listing.path(), &["--print-uris"])
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_string))
        .collect();
    apt(cache, &["--download-only"]);
    for name in &names {
        std::fs::copy(cache.join(name), dir.join(name)).unwrap();
    }
    names
}

#[test]
fn parameters_with_shell_metacharacters_reach_the_host_literally() {
    let Some(hosts) = hosts() else { return };
    let dir = "/tmp/gr meta'$(touch /tmp/gr-pwned)`touch /tmp/gr-pwned`;x";
    hosts.ssh(
        "s2",
        &format!(
            "rm -f /tmp/gr-pwned; mkdir -p {d}; printf '127.0.0.1 localhost\\n/dev/sdz9 none swap sw 0 0\\n' >{d}/fstab; cp {d}/fstab {d}/hosts",
            d = graphrun_plugin_api::shell::quote(dir)
        ),
    );
    let toml_dir = dir.replace('\\', "\\\\").replace('"', "\\\"");
    let playbook = hosts.playbook(
        "meta.toml",
        &format!(
            "[steps.swap]\non = [\"s2\"]\nfstab = \"{toml_dir}/fstab\"\nmask_units = false\n\n[steps.dns]\non = [\"s2\"]\nhosts_file = \"{toml_dir}/hosts\"\nhosts_entries = {{ \"x.test\" = \"10.0.0.1\" }}\n"
        ),
    );
    assert_exit(&hosts.graphrun("apply", &playbook), 0);
    let quoted = graphrun_plugin_api::shell::quote(dir);
    assert_eq!(
        hosts.ssh("s2", &format!("cat {quoted}/fstab")),
        "127.0.0.1 localhost\n# /dev/sdz9 none swap sw 0 0\n"
    );
    assert!(hosts
        .ssh("s2", &format!("cat {quoted}/hosts"))
        .ends_with("# BEGIN graphrun dns\n10.0.0.1 x.test\n# END graphrun dns\n"));
    assert_eq!(
        hosts
            .ssh("s2", "ls /tmp/gr-pwned 2>/dev/null || echo absent")
            .trim(),
        "absent"
    );

    // Values that name things on the host (users, peers, addresses, domains) are checked before
    // any connection: metacharacters are refused with the parameter named, exit 2.
    let refused = hosts.playbook(
        "refused.toml",
        "[steps.docker]\nsource = \"distro\"\nusers = [\"$(id)\"]\n\n[steps.preflight]\npeers = [\"a;b\"]\n\n[steps.dns]\nnameservers = [\"`id`\"]\n",
    );
    let output = hosts.graphrun("validate", &refused);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for message in [
        "`$(id)` is not a user name",
        "`a;b` is not a host name",
        "``id`` is not an IP address",
    ] {
        assert!(stderr.contains(message), "{message}: {stderr}");
    }
}

#[test]
fn the_walkthrough_playbook_and_its_lab_variant_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let validate = |playbook: &str, inventory: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_graphrun"));
        command.arg("validate").arg(root.join(playbook));
        if let Some(inventory) = inventory {
            command.arg("--inventory").arg(inventory);
        }
        let output = command.output().unwrap();
        assert_exit(&output, 0);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(
        validate("playbooks/host-prep.toml", None).contains("valid (5 steps, 2 hosts, 10 nodes)")
    );
    // Validation never connects: any addresses do for the lab's two host names.
    let dir = tempfile::tempdir().unwrap();
    let inventory = crate::support::write_file(
        dir.path(),
        "inventory.toml",
        "[hosts.s1]\naddress = \"127.0.0.1\"\n\n[hosts.s2]\naddress = \"127.0.0.2\"\n",
    );
    assert!(validate("playbooks/host-prep-lab.toml", Some(&inventory))
        .contains("valid (5 steps, 2 hosts, 10 nodes)"));
}

#[test]
fn warnings_of_a_passing_check_are_shown_under_the_recap() {
    let playbook = crate::support::TempPlaybook::new(
        "[hosts.here]\nconnection = \"local\"\n\n[steps.look]\nplugin = \"command\"\nrun = \"echo 'warning: disk nearly full' >&2; echo 'not a warning' >&2\"\nchanged = false\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("apply")
        .arg(&playbook.path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("WARNING look@here:\n  warning: disk nearly full\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("not a warning"), "{stdout}");
}
