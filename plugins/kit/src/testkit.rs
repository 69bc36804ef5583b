//! For plugin tests (feature `testkit`): a [`PlanRequest`] builder, probe stubs, hosts recorded
//! from real systems, and plan snapshots.
//!
//! ```
//! use graphrun_plugin_kit::testkit::{render, Request, DEBIAN_12};
//! # use graphrun_plugin_api::*;
//! # struct Motd;
//! # impl Plugin for Motd {
//! #     fn info(&self) -> PluginInfo { unimplemented!() }
//! #     fn plan(&self, r: &PlanRequest) -> Result<PlanResponse, PluginError> {
//! #         Ok(Plan::ops(vec![Op::file("/etc/motd", r.params.required_str("text")?)]).into())
//! #     }
//! # }
//! let plan = Request::new(serde_json::json!({"text": "hi\n"}))
//!     .host(&DEBIAN_12)
//!     .plan(&Motd, |_probe| None)
//!     .unwrap();
//! assert_eq!(render(&plan), "1. file /etc/motd (3 bytes)\n   | hi\n");
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use graphrun_plugin_api::{
    HostInfo, Op, Plan, PlanRequest, PlanResponse, Plugin, PluginError, Probe, ProbeResult,
};

/// A host as a real system answered the OS probe ([`crate::os::probe`]).
#[derive(Clone, Copy, Debug)]
pub struct Recorded {
    /// Inventory name used in snapshots (`ubuntu-24.04`).
    pub name: &'static str,
    /// What the OS probe printed there.
    pub os: &'static str,
}

macro_rules! recorded {
    ($const:ident, $name:literal, $id:literal, $version:literal, $codename:literal, $like:literal) => {
        #[doc = concat!("`", $name, "` (x86_64, systemd, apt), as its os-release reads.")]
        pub const $const: Recorded = Recorded {
            name: $name,
            os: concat!(
                "id=",
                $id,
                "\nlike=",
                $like,
                "\nversion=",
                $version,
                "\ncodename=",
                $codename,
                "\narch=x86_64\ninit=systemd\napt=yes\n"
            ),
        };
    };
}

recorded!(
    UBUNTU_20_04,
    "ubuntu-20.04",
    "ubuntu",
    "20.04",
    "focal",
    "debian"
);
recorded!(
    UBUNTU_22_04,
    "ubuntu-22.04",
    "ubuntu",
    "22.04",
    "jammy",
    "debian"
);
recorded!(
    UBUNTU_24_04,
    "ubuntu-24.04",
    "ubuntu",
    "24.04",
    "noble",
    "debian"
);
recorded!(DEBIAN_12, "debian-12", "debian", "12", "bookworm", "");
recorded!(DEBIAN_13, "debian-13", "debian", "13", "trixie", "");

/// Every recorded host, oldest first.
pub const RECORDED: [Recorded; 5] = [
    UBUNTU_20_04,
    UBUNTU_22_04,
    UBUNTU_24_04,
    DEBIAN_12,
    DEBIAN_13,
];

/// Builds a [`PlanRequest`] and plans it with stubbed probes.
#[derive(Clone, Debug, Default)]
pub struct Request {
    request: PlanRequest,
    os: Option<&'static str>,
}

impl Request {
    /// A request with these parameters (a JSON object) on a host named `host`.
    pub fn new(params: serde_json::Value) -> Self {
        let mut request = PlanRequest {
            step: "step".into(),
            params: serde_json::from_value(params).expect("parameters are a JSON object"),
            ..Default::default()
        };
        request.host = HostInfo {
            name: "host".into(),
            address: "10.0.0.10".into(),
            ..Default::default()
        };
        Request { request, os: None }
    }

    /// On a recorded host: its name, and its answer to the OS probe.
    pub fn host(mut self, host: &Recorded) -> Self {
        self.request.host.name = host.name.into();
        self.os = Some(host.os);
        self
    }

    /// On this inventory host (name, address, user, groups, vars).
    pub fn on(mut self, host: HostInfo) -> Self {
        self.request.host = host;
        self
    }

    /// With every host of the inventory (for plugins that declare `needs_inventory`).
    pub fn inventory(mut self, hosts: Vec<HostInfo>) -> Self {
        self.request.inventory = hosts;
        self
    }

    /// With this local fetch folder (outputs name fetched files under it).
    pub fn fetch_dir(mut self, dir: &str) -> Self {
        self.request.fetch_dir = dir.into();
        self
    }

    /// Sets a fact (for plugins that declare `needs_facts`).
    pub fn fact(mut self, name: &str, value: &str) -> Self {
        self.request.facts.insert(name.into(), value.into());
        self
    }

    /// The request as built (no probe results).
    pub fn build(&self) -> PlanRequest {
        self.request.clone()
    }

    /// Plans until the plugin stops asking for probes. `answer` answers each probe (`None`:
    /// the OS probe from the recorded host, any other probe prints nothing and exits 1).
    pub fn plan(
        &self,
        plugin: &dyn Plugin,
        answer: impl Fn(&Probe) -> Option<ProbeResult>,
    ) -> Result<Plan, PluginError> {
        let mut request = self.request.clone();
        for _round in 0..3 {
            match plugin.plan(&request)? {
                PlanResponse::Plan(plan) => return Ok(plan),
                PlanResponse::Probe { probes } => {
                    for probe in probes {
                        let result = answer(&probe).unwrap_or_else(|| self.default_answer(&probe));
                        request.probes.insert(probe.name.clone(), result);
                    }
                }
            }
        }
        panic!("the plugin kept asking for probes")
    }

    fn default_answer(&self, probe: &Probe) -> ProbeResult {
        match (probe.name.as_str(), self.os) {
            (crate::os::PROBE, Some(os)) => ok(os),
            _ => ProbeResult {
                exit_code: 1,
                ..Default::default()
            },
        }
    }
}

/// A probe result that printed `stdout` and exited 0.
pub fn ok(stdout: &str) -> ProbeResult {
    ProbeResult {
        exit_code: 0,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

/// A plan as people read it: numbered op summaries, written content indented under its op,
/// outputs last.
pub fn render(plan: &Plan) -> String {
    let mut text = String::new();
    for (index, op) in plan.ops.iter().enumerate() {
        text.push_str(&format!("{}. {}\n", index + 1, op.summary()));
        let body = match op {
            Op::File { content, .. } | Op::Block { content, .. } => Some(content),
            Op::Command { run, .. } if run.to_shell().contains('\n') => None,
            _ => None,
        };
        for line in body.into_iter().flat_map(|content| content.lines()) {
            text.push_str(&format!("   | {line}\n"));
        }
    }
    if !plan.outputs.is_empty() {
        text.push_str("outputs:\n");
        let outputs: BTreeMap<_, _> = plan.outputs.iter().collect();
        for (name, value) in outputs {
            text.push_str(&format!("  {name} = {value}\n"));
        }
    }
    text
}

/// Compares `text` with `DIR/snapshots/NAME.txt`; with `GRAPHRUN_SNAPSHOTS=update` in the
/// environment, writes it instead (review the diff, then commit).
pub fn assert_snapshot(dir: &str, name: &str, text: &str) {
    let path = Path::new(dir).join("snapshots").join(format!("{name}.txt"));
    if std::env::var("GRAPHRUN_SNAPSHOTS").as_deref() == Ok("update") {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("create snapshots/");
        std::fs::write(&path, text).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {} (run with GRAPHRUN_SNAPSHOTS=update to write it)",
            path.display()
        )
    });
    assert!(
        expected == text,
        "plan differs from {} (GRAPHRUN_SNAPSHOTS=update rewrites it):\n--- expected\n{expected}\n--- actual\n{text}",
        path.display()
    );
}
