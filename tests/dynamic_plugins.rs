//! Tests: dynamic_plugins.
