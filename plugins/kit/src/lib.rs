//! Helpers graphrun's plugins share, by domain, so ten plugin crates do not copy each other.
//!
//! This crate sits beside `graphrun-plugin-api` rather than inside it: helpers change without
//! moving the plugin ABI/API version that the loader checks.
//!
//! - [`params`]: parameters declared once (spec, defaults and typed reading from one table);
//! - [`os`]: the host's OS, init system and apt, read by a probe, with clear errors;
//! - [`probe`]: reading probe results, probing files;
//! - [`apt`]: installed packages, installs and removals of what differs;
//! - [`systemd`]: unit files, enable and start, restart on change, health checks;
//! - [`sysctl`]: kernel modules and sysctl settings, persisted and read back;
//! - [`arch`]: architecture names for download URLs;
//! - [`artifacts`]: upstream URLs and checksum files of kubectl, helm, rke and rke2 releases;
//! - [`kube_version`]: Kubernetes server versions and the ranges charts support;
//! - [`chart`]: the parameters every chart step shares, read into a [`helm::Release`];
//! - [`helm`]: chart releases, upgraded only when their chart version or values differ;
//! - [`names`]: host names and Kubernetes object names, checked as the API server does;
//! - [`report`]: warnings listed under the recap;
//! - `testkit` (feature `testkit`): request builder, probe stubs, recorded hosts, snapshots.

#![deny(missing_docs)]

pub mod apt;
pub mod arch;
pub mod artifacts;
pub mod chart;
pub mod helm;
pub mod kube_version;
pub mod names;
pub mod os;
pub mod params;
pub mod probe;
pub mod report;
pub mod sysctl;
pub mod systemd;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
