//! Proves the cross-cutting error behaviour of SPEC "Errors" over HTTP: every response carries a `Request-Id` that error bodies repeat, bad bodies, keys, permissions, list parameters and amounts get the documented 4xx, and no bad input anywhere gets a 5xx.

use crate::support::Resp;

mod auth;
pub(crate) mod bodies;
mod lists;
mod sweeps;

fn assert_400(r: &Resp, code: &str, param: &str) {
    r.assert_error(400, "invalid_request_error", code);
    assert_eq!(r.body["error"]["param"], param, "body: {}", r.body);
}

fn request_id(r: &Resp) -> String {
    let id = r
        .headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .expect("Request-Id header")
        .to_owned();
    assert!(id.starts_with("req_") && id.len() > "req_".len(), "request id `{id}`");
    id
}

/// Asserts that `r` is not a 5xx, and that a 4xx has SPEC's error shape with
/// the response's request id.
fn assert_client_side(r: &Resp, what: &str) {
    let status = r.status.as_u16();
    assert!(status < 500, "{what}: {status} {}", r.body);
    let id = request_id(r);
    if status >= 400 {
        let error = &r.body["error"];
        assert!(
            error["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{what}: {}",
            r.body
        );
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{what}: {}",
            r.body
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {}",
            r.body
        );
        assert_eq!(error["request_id"], id.as_str(), "{what}: {}", r.body);
    }
}
