//! `GET /v1/queue`: the queue's health for operators: backlog and oldest
//! pending age per consumer, relay lag, dead letters, processor breaker.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::queue::QueueSummary;

use super::serve::Rest;

pub async fn summary(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |_| Ok(QueueSummary)).await
}
