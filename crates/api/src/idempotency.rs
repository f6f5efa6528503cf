//! The REST side of `Idempotency-Key` (Stripe's contract; the rules live in
//! the operation pipeline): the header, replaying a stored answer as the
//! response it was, and the version 1 fingerprint records stored before
//! operations were typed still match.

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use settle_core::pipeline::canonical_json;
use settle_store::idempotency::StoredResponse;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// Version 1 of "the same parameters", from before operations were typed:
/// method, path (with its ids) and the canonical body. Kept so that records
/// stored under it still replay (see `settle_core::pipeline::fingerprint`).
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
            Ok(value) => h.update(canonical_json(&value).as_bytes()),
            Err(_) => h.update(body),
        }
    }
    h.finalize().to_vec()
}

/// The stored answer of an earlier request with the same key, byte for byte.
/// `secret_omitted`: the first answer showed a secret stored nowhere (the
/// pipeline knows which operations do), so the client learns why this one
/// lacks it.
pub fn replay(stored: StoredResponse, secret_omitted: bool) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let json = status
        .is_success()
        .then(|| serde_json::from_slice::<Value>(&stored.body).ok())
        .flatten();
    // The ETag the first answer had: the version and a digest of these bytes.
    let etag = json
        .as_ref()
        .map(|v| settle_core::cache::etag_of(v.get("version").and_then(Value::as_i64), &stored.body));
    let mut response = (status, Body::from(stored.body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    if secret_omitted {
        headers.insert("idempotent-secret-omitted", HeaderValue::from_static("true"));
    }
    if let Some(etag) = etag
        && let Ok(tag) = HeaderValue::from_str(&etag)
    {
        headers.insert(ETAG, tag);
    }
    response
}

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
}
