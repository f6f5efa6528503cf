//! The webhook object types: endpoints (their signing secret only in the
//! answer that makes one), each event's delivery to an endpoint, every
//! attempt of a delivery, and replays. Each is its REST JSON.

use async_graphql::{ID, Json, Object};
use serde_json::Value;

use super::{Answer, int, opt_int, opt_text, text, texts};

/// A receiver of signed events (its secret is never shown here).
pub struct WebhookEndpoint(pub(super) Value);
/// An endpoint as the answer that issued its signing secret gives it.
pub struct WebhookEndpointWithSecret(pub(super) Answer);
/// One event's delivery to one endpoint.
pub struct WebhookDelivery(pub(super) Value);
/// One try of a delivery.
pub struct WebhookAttempt(pub(super) Value);
/// Events of a time range sent again to one endpoint.
pub struct WebhookReplay(pub(super) Value);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn url(&self) -> String {
        text(&self.0, "url")
    }
    async fn enabled_events(&self) -> Vec<String> {
        texts(&self.0, "enabled_events")
    }
    async fn description(&self) -> Option<String> {
        opt_text(&self.0, "description")
    }
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    async fn disabled_reason(&self) -> Option<String> {
        opt_text(&self.0, "disabled_reason")
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0["metadata"].clone())
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

#[Object]
impl WebhookEndpointWithSecret {
    async fn webhook_endpoint(&self) -> WebhookEndpoint {
        WebhookEndpoint(self.0.json.clone())
    }
    /// The signing secret (`whsec_...`), shown in this answer only; `null`
    /// in a replay, which has only what was stored.
    async fn secret(&self) -> Option<String> {
        opt_text(&self.0.json, "secret")
    }
    /// This answer is a replay of an idempotency key and lacks the secret
    /// the first answer showed.
    async fn secret_omitted(&self) -> bool {
        self.0.secret_omitted
    }
}

#[Object]
impl WebhookDelivery {
    /// Also the `webhook-id` header of every attempt.
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn endpoint_id(&self) -> ID {
        ID(text(&self.0, "endpoint"))
    }
    async fn event_id(&self) -> ID {
        ID(text(&self.0, "event"))
    }
    async fn event_type(&self) -> String {
        text(&self.0, "event_type")
    }
    /// `pending`, `delivered` or `failed`.
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    async fn attempts(&self) -> i64 {
        int(&self.0, "attempts")
    }
    /// When the next attempt is due (Unix seconds), while pending.
    async fn next_attempt(&self) -> Option<i64> {
        opt_int(&self.0, "next_attempt")
    }
    /// The HTTP status of the last attempt, if the receiver answered.
    async fn last_status(&self) -> Option<i64> {
        opt_int(&self.0, "last_status")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

#[Object]
impl WebhookAttempt {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn delivery_id(&self) -> ID {
        ID(text(&self.0, "delivery"))
    }
    async fn duration_ms(&self) -> i64 {
        int(&self.0, "duration_ms")
    }
    async fn request_id(&self) -> String {
        text(&self.0, "request_id")
    }
    async fn response_status(&self) -> Option<i64> {
        opt_int(&self.0, "response_status")
    }
    /// Up to 4 KiB of the response body, as text.
    async fn response_excerpt(&self) -> Option<String> {
        opt_text(&self.0, "response_excerpt")
    }
    /// Why there was no answer (timeout, refused connection, SSRF guard).
    async fn error(&self) -> Option<String> {
        opt_text(&self.0, "error")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

#[Object]
impl WebhookReplay {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn endpoint_id(&self) -> ID {
        ID(text(&self.0, "endpoint"))
    }
    /// The range replayed, `[since, until)` in Unix seconds.
    async fn since(&self) -> i64 {
        int(&self.0, "since")
    }
    async fn until(&self) -> i64 {
        int(&self.0, "until")
    }
    /// A recovery: only the range's deliveries that failed for good.
    async fn failed_only(&self) -> bool {
        self.0
            .get("failed_only")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
    /// `running` until the last page is done.
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    /// The deliveries made so far.
    async fn deliveries(&self) -> i64 {
        int(&self.0, "deliveries")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}
