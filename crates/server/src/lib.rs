//! The `settle` program: configuration, start-up, telemetry and the command
//! line. Tests build an [`app::Application`] on port 0 exactly as `settle
//! serve` does.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod master_key;
pub mod otlp;
pub mod processor_sim;
pub mod queue;
pub mod redis_cache;
pub mod redis_rates;
pub mod runtime;
pub mod seed;
pub mod telemetry;
