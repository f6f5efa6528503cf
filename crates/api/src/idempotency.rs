//! `Idempotency-Key` on every mutating route, Stripe's contract. The claim is
//! taken (and committed) before the handler runs, so a concurrent duplicate
//! gets 409 at once; the operation's own transaction stores the success
//! response; an error the operation itself answered is stored here; a
//! failure before the operation started (parsing, validation), a permission
//! or policy denial (even one the store makes once amounts are resolved) or
//! a 5xx releases the key so the client can fix and resend.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use settle_core::Settle;
use settle_core::auth::Principal;
use settle_store::idempotency::{ClaimOutcome, IdempotencyClaim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::request::RequestId;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

fn idempotency_error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError::new(status, "idempotency_error", code, message)
}

/// 1..255 printable ASCII characters.
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(
            "parameter_invalid",
            "Idempotency-Key",
            "`Idempotency-Key` must be 1 to 255 printable ASCII characters.",
        )
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(bad());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| bad())
}

/// JSON with object keys sorted at every depth, so key order and whitespace
/// do not make two requests differ.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// "Same parameters": method, path (with its ids) and the canonical body.
pub fn request_hash(method: &Method, path: &str, body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    if body.iter().all(u8::is_ascii_whitespace) {
        h.update(b"{}");
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => h.update(canonical(&value).as_bytes()),
            Err(_) => h.update(body),
        }
    }
    h.finalize().to_vec()
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let json = status
        .is_success()
        .then(|| serde_json::from_slice::<Value>(&stored.body).ok())
        .flatten();
    let etag = json.as_ref().and_then(|v| v.get("version").and_then(Value::as_i64));
    let secret_omitted = json.as_ref().is_some_and(|v| {
        v.get("object").and_then(Value::as_str) == Some("api_key")
            && v.get("revoked_at").is_some_and(Value::is_null)
            && v.get("secret").is_none()
    });
    let mut response = (status, Body::from(stored.body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    // A created API key's secret is never stored: say the replay lacks it.
    if secret_omitted {
        headers.insert("idempotent-secret-omitted", HeaderValue::from_static("true"));
    }
    if let Some(version) = etag
        && let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\""))
    {
        headers.insert(ETAG, tag);
    }
    response
}

pub async fn idempotency(State(settle): State<Settle>, req: Request, next: Next) -> Response {
    let value = match crate::extract::single_header(req.headers(), HEADER, "Idempotency-Key") {
        Ok(Some(value)) => value.clone(),
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let key = match parse_key(&value) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        tracing::error!("idempotency layer ran before authentication");
        return ApiError::internal().into_response();
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => return crate::body::read_error(&e).into_response(),
    };
    let hash = request_hash(&parts.method, parts.uri.path(), &bytes);
    match settle.claim_idempotency(principal.key, &key, hash).await {
        Err(e) => ApiError::from(e).into_response(),
        Ok(ClaimOutcome::Replay(stored)) => replay(stored),
        Ok(ClaimOutcome::Mismatch) => idempotency_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different method, path or body.",
        )
        .into_response(),
        Ok(ClaimOutcome::InFlight) => idempotency_error(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still running; retry later.",
        )
        .into_response(),
        Ok(ClaimOutcome::Claimed(claim)) => {
            let mut req = Request::from_parts(parts, Body::from(Bytes::clone(&bytes)));
            req.extensions_mut().insert(claim.clone());
            let response = next.run(req).await;
            settle_claim(&settle, &claim, response, &request_id).await
        }
    }
}

/// Decides what becomes of the claim once the handler answered.
async fn settle_claim(settle: &Settle, claim: &IdempotencyClaim, mut response: Response, request_id: &str) -> Response {
    let error = response.extensions_mut().remove::<ApiError>();
    let stored_by_operation = claim.started() && response.status().is_success();
    if stored_by_operation {
        return response;
    }
    match error {
        Some(error)
            if claim.started()
                && !error.status.is_server_error()
                && error.kind != "idempotency_error"
                && error.kind != "permission_error" =>
        {
            let mut rendered = error.render(request_id);
            let (parts, body) = rendered.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let stored = StoredResponse {
                status: parts.status.as_u16(),
                body: bytes.to_vec(),
            };
            if let Err(e) = settle.complete_idempotency(claim, &stored).await {
                tracing::warn!(error = %e, "could not store an idempotent error response");
            }
            rendered = Response::from_parts(parts, Body::from(bytes));
            rendered.extensions_mut().extend(response.extensions().clone());
            rendered.extensions_mut().insert(Rendered);
            rendered.extensions_mut().insert(error);
            rendered
        }
        error => {
            if let Err(e) = settle.release_idempotency(claim).await {
                tracing::warn!(error = %e, "could not release an idempotency claim; it expires with the lock timeout");
            }
            if let Some(error) = error {
                response.extensions_mut().insert(error);
            }
            response
        }
    }
}

/// Marks an error response already rendered (and stored) here.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a = request_hash(
            &Method::POST,
            "/v1/payments",
            br#"{"a": 1, "b": {"y": [1, 2], "x": null}}"#,
        );
        let b = request_hash(&Method::POST, "/v1/payments", br#"{"b":{"x":null,"y":[1,2]},"a":1}"#);
        assert_eq!(a, b);
        let c = request_hash(
            &Method::POST,
            "/v1/payments",
            br#"{"a": 2, "b": {"y": [1, 2], "x": null}}"#,
        );
        assert_ne!(a, c);
        let d = request_hash(
            &Method::POST,
            "/v1/refunds",
            br#"{"a": 1, "b": {"y": [1, 2], "x": null}}"#,
        );
        assert_ne!(a, d);
        assert_eq!(
            request_hash(&Method::POST, "/x", b""),
            request_hash(&Method::POST, "/x", b" {} ")
        );
    }

    #[test]
    fn key_rules() {
        assert!(parse_key(&HeaderValue::from_static("abc-123")).is_ok());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        let long = "k".repeat(256);
        assert!(parse_key(&HeaderValue::from_str(&long).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
    }
}
