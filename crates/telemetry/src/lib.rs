//! Logging and metrics set-up shared by every binary.
//!
//! Log lines are JSON (or pretty in development) on stdout, filtered by `RUST_LOG`,
//! optionally shipped to Loki. Metrics go to one process-wide Prometheus recorder.

mod metrics_recorder;
mod tracing_setup;

pub use metrics_recorder::{prometheus_handle, render_metrics};
pub use tracing_setup::{init_tracing, TelemetryError, TelemetryGuard};
