//! Webhooks: endpoints with sealed signing secrets, deliveries made by the
//! fan-out in the consumer's own transaction, and the worker that attempts
//! them with Standard Webhooks signatures, a retry schedule, per-endpoint
//! protection against unreachable receivers (a breaker on a failure rate,
//! adaptive concurrency) and an SSRF guard that also runs at connection time.

pub mod deliver;
pub mod guard;
pub mod handoff;
mod recorder;
mod service;
pub mod signers;
pub mod signing;
pub mod stats;
pub mod target;

pub use service::{ResealReport, WebhookSetup};
