//! `/dashboard`: a page for people, over the same REST API as everything
//! else. The binary serves three fixed files (no CDN, no build step); the
//! page holds the API key in the tab's session storage and sends it as a
//! bearer token, so these routes themselves need no key and reveal nothing.
//! The Content-Security-Policy allows only this origin's script, style and
//! API calls, so even markup slipped into a receiver's response excerpt
//! could not run; the script also only ever writes text into the page.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::request::RouteName;

/// The dashboard's paths, none of which needs an API key.
pub const PATHS: [&str; 4] = ["/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/app.css"];

/// No inline script or style, nothing from another origin, no framing,
/// no form posts, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        // The files change with the binary: revalidate rather than run a stale copy.
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    (headers, body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PATHS[0], get(|| async { Redirect::permanent(PATHS[1]) }))
        .route(PATHS[1], get(index))
        .route(PATHS[2], get(script))
        .route(PATHS[3], get(style))
        // One name in the request log for all of it.
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.extensions_mut().insert(RouteName(PATHS[0]));
            r
        }))
}
