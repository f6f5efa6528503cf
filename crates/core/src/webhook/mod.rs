//! The pieces of webhook delivery that need no storage: signing per the
//! Standard Webhooks specification, and the guard that keeps receivers on
//! public addresses (SSRF).

pub mod signing;
pub mod target;
