//! The walkthrough's playbooks (`playbooks/rke-rancher.toml`, `playbooks/rke2-rancher.toml`):
//! they load and validate as shipped, their secrets from the environment as a user passes them.
//! Their hosts are example addresses: nothing here connects anywhere.

use std::process::Command;

use crate::support::assert_exit;

#[test]
fn the_walkthrough_playbooks_are_valid() {
    for (playbook, summary) in [
        (
            "playbooks/rke-rancher.toml",
            "valid (13 steps, 2 hosts, 19 nodes)",
        ),
        (
            "playbooks/rke2-rancher.toml",
            "valid (11 steps, 2 hosts, 15 nodes)",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
            .args(["validate", playbook])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RANCHER_BOOTSTRAP_PASSWORD", "walkthrough-password")
            .env("RKE2_TOKEN", "walkthrough-token")
            .output()
            .unwrap();
        assert_exit(&output, 0);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(summary), "{stdout}");
    }
}
