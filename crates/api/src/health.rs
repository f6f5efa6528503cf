//! Unauthenticated probes: `/healthz` says the process answers, `/readyz`
//! says the database answers with every migration applied.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use settle_core::Settle;

use crate::error::ApiError;
use crate::request::RouteName;

/// The routes that need no API key, and the only ones.
/// `/metrics` is for the scraper on the operator's network, like the probes.
pub const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(State(settle): State<Settle>) -> Result<axum::Json<Value>, ApiError> {
    match settle.readiness().await {
        Ok(()) => Ok(axum::Json(
            json!({ "status": "ready", "database": settle.store().backend() }),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            Err(ApiError::unavailable("The database is not ready."))
        }
    }
}

pub fn router(_settle: Settle) -> Router<Settle> {
    let named = |name: &'static str| {
        axum::middleware::map_response(move |mut r: axum::response::Response| async move {
            r.extensions_mut().insert(RouteName(name));
            r
        })
    };
    Router::new()
        .route(PUBLIC_PATHS[0], get(healthz).layer(named(PUBLIC_PATHS[0])))
        .route(PUBLIC_PATHS[1], get(readyz).layer(named(PUBLIC_PATHS[1])))
        .route(
            PUBLIC_PATHS[2],
            get(crate::metrics::metrics).layer(named(PUBLIC_PATHS[2])),
        )
}
