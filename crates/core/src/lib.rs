//! Settle's service layer: the one place every interface (REST today,
//! GraphQL and gRPC later) calls. It authenticates keys, stamps each write
//! with its context and time, and turns storage answers into the errors
//! interfaces map.

mod access;
pub mod admission;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod commits;
pub mod error;
pub mod expand;
pub mod operations;
pub mod ops;
pub mod outgoing;
pub mod pipeline;
pub mod policy;
pub mod processor;
pub mod queue;
pub mod redis_calls;
pub mod secrets;
mod service;
pub mod shown;
pub mod tls;
pub mod webhook;
pub mod workers;

pub use access::{PolicyEdit, PolicyStatus};
pub use error::ServiceError;
pub use service::{ServiceOptions, Settle};
