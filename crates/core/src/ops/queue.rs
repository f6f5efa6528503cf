//! The queue's health for operators: backlog and oldest pending age per
//! consumer, relay lag, dead letters, the processor's breaker.

use serde::Serialize;

use crate::Settle;
use crate::operations::QueueStatus;
use crate::pipeline::registry::QUEUE_SUMMARY;
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueSummary;

impl Operation for QueueSummary {
    type Output = QueueStatus;
    const SPEC: &'static OperationSpec = &QUEUE_SUMMARY;

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<QueueStatus, Failure> {
        Ok(settle.queue_status().await?)
    }
}
