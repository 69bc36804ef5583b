//! Tests: scheduler.
