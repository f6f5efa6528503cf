//! `GET /v1/queue`: the queue's health for operators: backlog and oldest
//! pending age per consumer, relay lag, dead letters, processor breaker.

use axum::extract::State;
use settle_core::Settle;
use settle_core::operations::QueueStatus;

use crate::error::ApiError;

pub async fn summary(State(settle): State<Settle>) -> Result<axum::Json<QueueStatus>, ApiError> {
    Ok(axum::Json(settle.queue_status().await?))
}
