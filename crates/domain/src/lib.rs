//! Settle's domain: the rules of money movement, free of any database or web
//! framework so that every interface and both storage backends share one
//! definition of what is allowed.

pub mod account;
pub mod customer;
pub mod error;
pub mod ids;
pub mod ledger;
pub mod metadata;
pub mod money;
pub mod payment;
pub mod rbac;
pub mod refund;
pub mod text;
pub mod webhook;

pub use error::DomainError;
