//! The external processor's contract, as Settle calls it.
//!
//! `POST {base}/v1/charges` with `Idempotency-Key: settle_charge_<payment>`
//! (the same key on every retry, so a retried call never charges twice) and
//! a JSON body `{"amount", "currency", "payment", "source"}`. The processor
//! answers `200 {"status": "succeeded", "id"}` when it charged, and
//! `402 {"status": "declined", "reason"}` when it refused: final, never
//! retried. Any other 4xx is also a refusal, except 408, 409 and 429, which
//! like a 5xx, a timeout or a broken connection are transient: retried with
//! backoff, and counted by the circuit breaker.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use settle_domain::payment::Payment;

use crate::tls::OutgoingTls;

/// What a call to the processor came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeResult {
    Succeeded,
    Declined(String),
    /// Nothing is known: try again later with the same key.
    Transient(String),
}

#[derive(Serialize)]
struct ChargeRequest<'a> {
    amount: i64,
    currency: &'a str,
    payment: String,
    source: String,
}

#[derive(Deserialize)]
struct ChargeAnswer {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The idempotency key of a payment's charge: derived, so every retry (in
/// any process) sends the same one.
pub fn charge_key(payment: &Payment) -> String {
    format!("settle_charge_{}", payment.id)
}

#[derive(Debug, Clone)]
pub struct ProcessorClient {
    http: reqwest::Client,
    charges_url: String,
}

impl ProcessorClient {
    /// `base` is the processor's URL (`SETTLE_PROCESSOR_URL`); every call
    /// gives up after `timeout`.
    pub fn new(base: &str, timeout: Duration, tls: &OutgoingTls) -> Result<Self, String> {
        // Checked at start-up rather than failing every charge later.
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "SETTLE_PROCESSOR_URL must be an http:// or https:// URL (got `{base}`)"
            ));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.client_config()?)
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .connector_layer(crate::outgoing::PROCESSOR.count_connections())
            // Says which process called, for the processor's logs (and tests).
            .user_agent(format!(
                "settle/{} pid/{}",
                env!("CARGO_PKG_VERSION"),
                std::process::id()
            ))
            .build()
            .map_err(|e| format!("cannot build the processor client: {e}"))?;
        Ok(Self {
            http,
            charges_url: format!("{}/v1/charges", base.trim_end_matches('/')),
        })
    }

    /// Asks for the charge; `traceparent` (the charge's span, when traced)
    /// lets the processor continue the payment's trace.
    pub async fn charge(&self, payment: &Payment, traceparent: Option<&str>) -> ChargeResult {
        let body = ChargeRequest {
            amount: payment.amount,
            currency: payment.currency.code(),
            payment: payment.id.to_string(),
            source: payment.source.to_string(),
        };
        let sent = crate::outgoing::PROCESSOR
            .track(
                self.http
                    .post(&self.charges_url)
                    .header("Idempotency-Key", charge_key(payment))
                    .headers(crate::webhook::deliver::traceparent_header(traceparent))
                    .json(&body)
                    .send(),
            )
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return ChargeResult::Transient("the processor timed out".into()),
            Err(e) => return ChargeResult::Transient(format!("cannot reach the processor: {e}")),
        };
        let status = response.status().as_u16();
        let answer = response.json::<ChargeAnswer>().await.ok();
        classify(status, answer)
    }
}

fn classify(status: u16, answer: Option<ChargeAnswer>) -> ChargeResult {
    let reason = |default: String| answer.as_ref().and_then(|a| a.reason.clone()).unwrap_or(default);
    let said = answer.as_ref().map(|a| a.status.as_str());
    match status {
        200..=299 => match said {
            Some("succeeded") => ChargeResult::Succeeded,
            Some("declined") => ChargeResult::Declined(reason("declined".into())),
            _ => ChargeResult::Transient(format!("the processor answered {status} with an unknown body")),
        },
        408 | 409 | 429 => ChargeResult::Transient(format!("the processor answered {status}")),
        400..=499 => ChargeResult::Declined(reason(format!("the processor refused the charge ({status})"))),
        _ => ChargeResult::Transient(format!("the processor answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &str) -> Option<ChargeAnswer> {
        Some(ChargeAnswer {
            status: status.into(),
            reason: None,
        })
    }

    #[test]
    fn only_plain_http_processors_are_accepted() {
        let tls = OutgoingTls::default();
        assert!(ProcessorClient::new("http://127.0.0.1:8090", Duration::from_secs(1), &tls).is_ok());
        assert!(ProcessorClient::new("https://processor.example", Duration::from_secs(1), &tls).is_ok());
        assert!(ProcessorClient::new("processor.example", Duration::from_secs(1), &tls).is_err());
    }

    #[test]
    fn declines_are_final_and_the_rest_is_retried() {
        assert_eq!(classify(200, answer("succeeded")), ChargeResult::Succeeded);
        assert!(matches!(classify(402, answer("declined")), ChargeResult::Declined(_)));
        assert!(matches!(classify(400, None), ChargeResult::Declined(_)));
        for status in [408, 409, 429, 500, 502, 503] {
            assert!(matches!(classify(status, None), ChargeResult::Transient(_)), "{status}");
        }
        assert!(matches!(classify(200, None), ChargeResult::Transient(_)));
    }
}
