//! HTTP caching of `/v1` answers: they hold customer data, so shared
//! caches must not keep them and a browser must ask again each time
//! (`Cache-Control: private, no-cache`); asking again is cheap, since a
//! read whose `ETag` the client already holds (`If-None-Match`) answers
//! `304 Not Modified` with no body.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// What every `/v1` answer says about caching it.
pub const CACHE_CONTROL_VALUE: &str = "private, no-cache";

pub async fn conditional(req: Request, next: Next) -> Response {
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    let held = read
        .then(|| {
            req.headers()
                .get(IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .flatten();
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    if response.status() != StatusCode::OK {
        return response;
    }
    let current = response.headers().get(ETAG).and_then(|v| v.to_str().ok());
    if let (Some(held), Some(current)) = (held, current)
        && matches(&held, current)
    {
        let (mut parts, _) = response.into_parts();
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(axum::http::header::CONTENT_TYPE);
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    response
}

/// `If-None-Match`'s weak comparison: any listed tag (or `*`) equal to the
/// current one, `W/` ignored.
fn matches(held: &str, current: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let current = bare(current);
    held.split(',').any(|tag| tag.trim() == "*" || bare(tag) == current)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn tags_compare_weakly() {
        assert!(matches("\"3-ab\"", "\"3-ab\""));
        assert!(matches("W/\"3-ab\"", "\"3-ab\""));
        assert!(matches("\"x\", \"3-ab\"", "\"3-ab\""));
        assert!(matches("*", "\"3-ab\""));
        assert!(!matches("\"3-ac\"", "\"3-ab\""));
        assert!(!matches("\"3\"", "\"3-ab\""));
    }
}
