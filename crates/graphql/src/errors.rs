//! A pipeline [`Failure`] as a GraphQL error: the message, and in
//! `extensions` SPEC's `code` and `type`, the HTTP status REST would have
//! answered, and the parameter it names.

use async_graphql::ErrorExtensions;
use settle_core::pipeline::Failure;

pub fn error(failure: Failure) -> async_graphql::Error {
    async_graphql::Error::new(failure.message.clone()).extend_with(|_, e| {
        e.set("code", failure.code);
        e.set("type", failure.kind);
        e.set("status", failure.status);
        if let Some(param) = &failure.param {
            e.set("param", param.clone());
        }
    })
}
