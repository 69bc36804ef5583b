//! Artifacts over SSH to lab hosts, through a mirror served over HTTP on the lab network (a
//! python3 http.server on h3): downloaded once, sent to the hosts that lack it, and not sent
//! again to a host that has it.

use super::*;
use crate::ssh::{lab, lab_ip, run_id};
use crate::support::assert_exit;

#[test]
fn lab_hosts_get_an_artifact_through_a_mirror_on_the_lab_network() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let root = format!("/tmp/gr-mirror-{id}");
    let file = format!("{root}/dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl");
    // A port of this run's own, so a server a killed run left behind is never in the way.
    let port = 20000 + id.bytes().fold(0u32, |h, b| (h * 31 + b as u32) % 20000);
    let serve = format!(
        "set -e; mkdir -p {dir}; head -c 6000000 /dev/urandom >{file}; \
         sha256sum <{file} | cut -d' ' -f1 >{file}.sha256; \
         nohup python3 -m http.server {port} --bind {ip} --directory {root} >{root}.log 2>&1 </dev/null & \
         echo $! >{root}.pid; \
         for i in $(seq 50); do python3 -c 'import urllib.request,sys; urllib.request.urlopen(sys.argv[1])' http://{ip}:{port}/ 2>/dev/null && break; sleep 0.1; done; \
         cat {file}.sha256",
        dir = file.rsplit_once('/').unwrap().0,
        ip = lab_ip("h3"),
    );
    let sha256 = lab.ssh("h3", &serve).trim().to_string();
    assert_eq!(sha256.len(), 64, "the lab mirror is up: {sha256:?}");
    let target = format!("/tmp/gr-artifact-{id}/kubectl");
    let playbook = lab.playbook(
        "artifacts.toml",
        &format!(
            "[artifacts]\nmirror = \"http://{ip}:{port}\"\ncache = \"cache\"\n\n\
             [steps.kubectl]\nplugin = \"file\"\non = [\"h1\", \"h2\"]\nurl = \"{KUBECTL}\"\n\
             checksum_url = \"{KUBECTL}.sha256\"\npath = \"{target}\"\nmode = \"0755\"\n",
            ip = lab_ip("h3"),
        ),
    );
    let downloads = || {
        lab.ssh(
            "h3",
            &format!("grep -c 'GET /dl.k8s.io/.*/kubectl HTTP' {root}.log"),
        )
        .trim()
        .to_string()
    };

    let first = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_exit(&first, 0);
    assert_eq!(ready(&first)["origin"], "downloaded");
    let sent = transfers(&first);
    assert_eq!(
        (sent["kubectl@h1"].as_str(), sent["kubectl@h2"].as_str()),
        ("sent", "sent")
    );
    for host in ["h1", "h2"] {
        let on_host = lab.ssh(
            host,
            &format!("sha256sum {target} | cut -d' ' -f1; stat -c %a {target}"),
        );
        assert_eq!(on_host, format!("{sha256}\n755\n"), "{host}");
    }
    assert_eq!(downloads(), "1");

    // h2 loses its copy: only h2 gets it again, from the cache.
    lab.ssh("h2", &format!("rm -f {target}"));
    let second = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_exit(&second, 0);
    assert_eq!(ready(&second)["origin"], "cache");
    let sent = transfers(&second);
    assert_eq!(
        (sent["kubectl@h1"].as_str(), sent["kubectl@h2"].as_str()),
        ("present", "sent")
    );
    assert_eq!(downloads(), "1", "the cache served the second run");

    lab.ssh(
        "h3",
        &format!("pkill -f 'http.server {port} ' ; rm -rf {root} {root}.log"),
    );
    for host in ["h1", "h2"] {
        lab.ssh(host, &format!("rm -rf /tmp/gr-artifact-{id}"));
    }
}
