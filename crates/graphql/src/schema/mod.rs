//! The schema: queries for every resource kind as Relay connections on the
//! same keyset cursors and newest-first order as REST, the relations of
//! each object through the request's loaders, and writes as mutations.
//! Objects are their REST JSON underneath, so a replayed mutation (its
//! stored JSON) and a fresh one are the same object. This module builds
//! the schema and holds what every resolver shares: the request, its
//! loaders, and how an operation runs through the pipeline.

mod access_mutation;
mod access_objects;
mod access_query;
mod inputs;
mod mutation;
mod objects;
mod page;
mod query;
mod relations;
mod webhook_mutation;
mod webhook_objects;
mod webhook_query;

use async_graphql::{Context, EmptySubscription, Result, Schema};
use serde_json::Value;
use settle_core::Settle;
use settle_core::pipeline::{Call, Failure, Input, Operation, Outcome, Viewer};
use settle_core::shown::{int, opt_int, opt_text, text, texts};
use tokio::sync::OnceCell;

use crate::errors::error;
use crate::loaders::{self, Loaders};

pub use mutation::Mutation;
pub use query::Query;

pub type SettleSchema = Schema<Query, Mutation, EmptySubscription>;

/// How much one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    /// Each field costs 1, a list costs its `first` times its fields.
    pub complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            depth: 8,
            complexity: 20_000,
            introspection: true,
        }
    }
}

pub fn build_schema(limits: Limits) -> SettleSchema {
    let builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity);
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// What a request's resolvers share: the service, the request as the
/// pipeline sees it, and (made on first use) the reader and its loaders.
pub struct RequestContext {
    settle: Settle,
    call: Call,
    loaders: OnceCell<Result<Loaders, Failure>>,
}

impl RequestContext {
    pub fn new(settle: Settle, call: Call) -> Self {
        Self {
            settle,
            call,
            loaders: OnceCell::new(),
        }
    }

    async fn loaders(&self) -> Result<&Loaders> {
        let made = self
            .loaders
            .get_or_init(|| async {
                let viewer: Viewer = self.settle.viewer(&self.call).await?;
                Ok(loaders::for_request(self.settle.clone(), viewer))
            })
            .await;
        made.as_ref().map_err(|f| error(f.clone()))
    }

    /// Runs `op` through the pipeline; a replay is the stored JSON.
    async fn run<O: Operation>(&self, op: O, idempotency_key: Option<String>) -> Result<Value> {
        Ok(self.answer(move || Ok(op), idempotency_key).await?.json)
    }

    /// Runs the operation `build` makes (a list whose page may be refused),
    /// the answer's JSON.
    async fn run_with<O, F>(&self, build: F, idempotency_key: Option<String>) -> Result<Value>
    where
        O: Operation,
        F: FnOnce() -> Result<O, Failure> + Send,
    {
        Ok(self.answer(build, idempotency_key).await?.json)
    }

    /// Runs the operation `build` makes from the mutation's arguments.
    /// The pipeline calls `build` once it has let the caller in, as REST
    /// reads a body only then: a caller without the permission learns
    /// nothing of the input's shape.
    async fn answer<O, F>(&self, build: F, idempotency_key: Option<String>) -> Result<Answer>
    where
        O: Operation,
        F: FnOnce() -> Result<O, Failure> + Send,
    {
        let mut call = self.call.clone();
        call.idempotency_key = idempotency_key;
        match self
            .settle
            .execute(call, || async move { build().map(Input::new) })
            .await
        {
            Ok(Outcome::Done(output)) => Ok(Answer {
                json: serde_json::to_value(output).map_err(|_| error(Failure::internal()))?,
                secret_omitted: false,
            }),
            Ok(Outcome::Replayed {
                response,
                secret_omitted,
            }) => Ok(Answer {
                json: replayed(&response.body, response.status)?,
                secret_omitted,
            }),
            Err(failure) => Err(error(failure)),
        }
    }
}

/// What an operation answered, as JSON.
struct Answer {
    json: Value,
    /// The answer is a replay that lacks a secret the first one showed.
    secret_omitted: bool,
}

/// A stored answer given again: the object, or the stored refusal.
fn replayed(body: &[u8], status: u16) -> Result<Value> {
    let json: Value = serde_json::from_slice(body).map_err(|_| error(Failure::internal()))?;
    if (200..300).contains(&status) {
        return Ok(json);
    }
    let e = &json["error"];
    let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let mut failure = Failure::new(status, "invalid_request_error", "replayed_error", text("message"));
    failure.param = e["param"].as_str().map(str::to_owned);
    let mut err = error(failure);
    if let Some(ext) = err.extensions.as_mut() {
        ext.set("code", text("code"));
        ext.set("type", text("type"));
    }
    Ok(Value::Null).and(Err(err))
}

fn rc<'a>(ctx: &'a Context<'_>) -> Result<&'a RequestContext> {
    ctx.data::<RequestContext>()
}

fn opt_id(v: &Value, k: &str) -> Option<async_graphql::ID> {
    v[k].as_str().map(|s| async_graphql::ID(s.to_owned()))
}
