//! A gRPC request as the pipeline's [`Call`]: the key from `authorization`,
//! the idempotency key from `idempotency-key`, the deadline from
//! `grpc-timeout`; and the outcome back as JSON (a fresh result and a
//! replayed one are the same object), or a status.

use std::time::{Duration, Instant};

use serde_json::Value;
use settle_core::Settle;
use settle_core::pipeline::{Call, Failure, Input, MAX_TIMEOUT_MS, Operation, Outcome, new_request_id};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::status::{refusal, status};

/// What a handler needs of its request: the pipeline's view of it.
pub struct Caller {
    call: Call,
}

impl Caller {
    /// Reads the metadata; a malformed `grpc-timeout` is the client's error.
    pub fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        Self::from_metadata(request.metadata())
    }

    pub fn from_metadata(metadata: &MetadataMap) -> Result<Self, Status> {
        let received = Instant::now();
        let request_id = new_request_id();
        let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let credential = text("authorization").and_then(|a| settle_core::auth::bearer_secret(&a));
        let mut call = Call::new(request_id.clone(), credential)
            .on(settle_core::pipeline::Face::Grpc)
            .traced(text("traceparent").as_deref());
        call.received = received;
        call.idempotency_key = text("idempotency-key");
        if let Some(timeout) = text("grpc-timeout") {
            call.timeout = match parse_grpc_timeout(&timeout) {
                Some(t) if t <= Duration::from_millis(MAX_TIMEOUT_MS) => Some(t),
                // Longer than a day is no deadline: the server's budget.
                Some(_) => None,
                None => {
                    let failure = Failure::invalid(
                        "parameter_invalid",
                        "grpc-timeout",
                        "`grpc-timeout` must be up to 8 digits and a unit (H, M, S, m, u or n).",
                    );
                    return Err(status(&failure, &request_id));
                }
            };
        }
        Ok(Self { call })
    }

    /// The same caller for the next read of a stream: its deadline counts
    /// from now (a stream outlives any one read's budget; the client ends
    /// it by going away or by its own deadline, which the stream keeps).
    pub fn renewed(&self) -> Self {
        let mut call = self.call.clone();
        call.received = Instant::now();
        call.timeout = None;
        Self { call }
    }

    /// When the client's own deadline for the whole call passes, if it set one.
    pub fn client_deadline(&self) -> Option<Instant> {
        self.call.timeout.map(|t| self.call.received + t)
    }

    pub fn request_id(&self) -> &str {
        &self.call.request_id
    }

    /// Runs the operation `build` makes of the request through the
    /// pipeline (built after authentication and the permission check, as
    /// every face does); the answer as REST would show it.
    pub async fn run<O, B>(&self, settle: &Settle, build: B) -> Result<Value, Status>
    where
        O: Operation,
        B: FnOnce() -> Result<O, Failure> + Send,
    {
        let id = &self.call.request_id;
        match settle
            .execute(self.call.clone(), || async { build().map(Input::new) })
            .await
        {
            Ok(Outcome::Done(output)) => serde_json::to_value(output).map_err(|_| status(&Failure::internal(), id)),
            Ok(Outcome::Replayed { response, .. }) => replayed(&response.body, response.status, id),
            Err(failure) => Err(status(&failure, id)),
        }
    }
}

/// A stored answer given again: the object, or the stored refusal.
fn replayed(body: &[u8], http_status: u16, request_id: &str) -> Result<Value, Status> {
    let json: Value = serde_json::from_slice(body).map_err(|_| status(&Failure::internal(), request_id))?;
    if (200..300).contains(&http_status) {
        return Ok(json);
    }
    let e = &json["error"];
    let text = |k: &str| e[k].as_str().unwrap_or_default();
    Err(refusal(
        http_status,
        text("type"),
        text("code"),
        text("message"),
        e["param"].as_str(),
        request_id,
    ))
}

/// `grpc-timeout`: at most 8 digits and a unit (gRPC over HTTP/2).
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let split = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_read_as_the_spec_writes_them() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "123456789m", "12x", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}
