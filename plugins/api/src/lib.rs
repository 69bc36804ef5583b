//! The one crate a graphrun plugin depends on.
//!
//! A plugin turns a step's parameters (and, if it asks, the host's facts and probe results) into
//! [`Op`]s: pure data that the engine carries out over SSH or locally. A plugin never does I/O,
//! so `graphrun plan` can show exactly what would change and every plugin can be tested without
//! a host. The same crate is linked into graphrun (built-in steps) or built as a `cdylib` and
//! named in a playbook (`[plugins.NAME] path = "…"`), exported with [`export_plugin!`].
//!
//! A complete plugin that keeps a message of the day:
//!
//! ```
//! use graphrun_plugin_api::{
//!     Op, ParamKind, ParamSpec, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo,
//! };
//!
//! #[derive(Default)]
//! pub struct Motd;
//!
//! impl Plugin for Motd {
//!     fn info(&self) -> PluginInfo {
//!         PluginInfo {
//!             name: "motd".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             summary: "Sets /etc/motd".into(),
//!             params: vec![ParamSpec::required("text", ParamKind::String, "The message")],
//!             outputs: vec![],
//!             ..Default::default()
//!         }
//!     }
//!
//!     fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
//!         let text = request.params.required_str("text")?;
//!         let op = Op::file("/etc/motd", &format!("{text}\n")).with_mode("0644");
//!         Ok(Plan::ops(vec![op]).into())
//!     }
//! }
//!
//! // In a cdylib crate: graphrun_plugin_api::export_plugin!(Motd);
//! # let request = PlanRequest {
//! #     params: serde_json::from_value(serde_json::json!({"text": "hi"})).unwrap(),
//! #     ..Default::default()
//! # };
//! # assert!(matches!(Motd.plan(&request), Ok(PlanResponse::Plan(_))));
//! ```

#![deny(missing_docs)]

mod artifact;
mod error;
pub mod ffi;
pub mod kube;
mod op;
pub mod params;
mod plan;
mod schema;
pub mod shell;

pub use artifact::Checksum;
pub use error::PluginError;
pub use kube::{KubeRef, Wait};
pub use op::{valid_mode, Attrs, Op, Run, Target};
pub use params::Params;
pub use plan::{HostInfo, Plan, PlanRequest, PlanResponse, Probe, ProbeQuery, ProbeResult};
pub use schema::{ParamKind, ParamSpec, PluginInfo};

/// A step type: describes its parameters and plans ops for one host.
///
/// Implementations must be pure: the same request gives the same answer, and nothing is read
/// from or written to the machine (the engine does all I/O).
pub trait Plugin: Send + Sync + 'static {
    /// Name, version, parameters and outputs.
    fn info(&self) -> PluginInfo;

    /// Checks parameters beyond their types (combinations, formats) before any host is touched.
    /// Values may be unrendered templates: skip those ([`Params::is_unrendered`]).
    fn validate(&self, params: &Params) -> Vec<PluginError> {
        let _ = params;
        Vec::new()
    }

    /// Plans one (step, host) node: ops, or first the probes it needs.
    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError>;
}

/// Mode, owner and group parameters shared by plugins that manage files.
pub fn attrs_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::optional("mode", ParamKind::String, "Octal mode, e.g. \"0644\""),
        ParamSpec::optional("owner", ParamKind::String, "Owning user"),
        ParamSpec::optional("group", ParamKind::String, "Owning group"),
    ]
}

/// Reads the parameters declared by [`attrs_params`], checking the mode.
pub fn attrs_from(params: &Params) -> Result<Attrs, PluginError> {
    let mode = params.str("mode")?.map(str::to_string);
    if let Some(mode) = &mode {
        if !params.is_unrendered("mode") && !valid_mode(mode) {
            return Err(PluginError::param(
                "mode",
                format!("`{mode}` is not an octal mode: write it as a string such as \"0644\""),
            ));
        }
    }
    Ok(Attrs {
        mode,
        owner: params.str("owner")?.map(str::to_string),
        group: params.str("group")?.map(str::to_string),
    })
}
