//! Refunds: money moving back from a payment's destination to its source.

use serde::{Deserialize, Serialize};

use crate::ids::{PaymentId, RefundId};
use crate::money::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RefundReason::Duplicate,
            RefundReason::Fraudulent,
            RefundReason::RequestedByCustomer,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// Refunds move money synchronously inside Settle, so today every stored
/// refund has succeeded; the status is kept for refunds through a processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Succeeded,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        "succeeded"
    }

    pub fn parse(text: &str) -> Option<Self> {
        (text == "succeeded").then_some(RefundStatus::Succeeded)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "refund")]
pub struct Refund {
    pub id: RefundId,
    pub payment: PaymentId,
    pub amount: i64,
    pub currency: Currency,
    pub reason: Option<RefundReason>,
    pub status: RefundStatus,
    pub created: i64,
}
