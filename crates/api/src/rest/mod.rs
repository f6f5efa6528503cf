//! One module per resource: each route reads its operation's input from
//! the request and hands it to the pipeline ([`serve`]).

pub mod accounts;
pub mod api_keys;
pub mod customers;
pub mod events;
pub mod payments;
pub mod policies;
pub mod queue;
pub mod refunds;
pub mod roles;
pub mod serve;
pub mod webhooks;
