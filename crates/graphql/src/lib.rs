//! The GraphQL face of Settle at `/graphql`: queries for every resource as
//! Relay connections on the REST cursors, nested relations loaded by
//! per-request loaders in batches, and writes as mutations. Every field
//! that reads or writes runs an operation through the pipeline in core,
//! so permissions, policies, idempotency, deadlines and audit are the same
//! as on REST. GraphiQL is served at `GET /graphql`, its assets compiled
//! into the binary.

mod errors;
mod graphiql;
mod loaders;
mod schema;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use settle_core::Settle;
use settle_core::pipeline::{Call, RequestMeta};

pub use schema::{Limits, SettleSchema, build_schema};

/// `/graphql` (POST and GET) and GraphiQL's assets.
pub fn router(limits: Limits) -> Router<Settle> {
    let schema = build_schema(limits);
    Router::new()
        .route("/graphql", get(graphiql::page).post(execute))
        .route("/graphql/assets/{file}", get(graphiql::asset))
        .layer(axum::Extension(schema))
}

/// The bearer secret of the request, if well-formed.
fn bearer(headers: &HeaderMap) -> Option<String> {
    settle_core::auth::bearer_secret(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

async fn execute(
    State(settle): State<Settle>,
    axum::Extension(schema): axum::Extension<SettleSchema>,
    meta: Option<axum::Extension<RequestMeta>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let message = format!("The body is not a GraphQL request (JSON with `query`): {e}");
            let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": "malformed_json"}}]});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let mut call = Call::new(String::new(), bearer(&headers))
        .on(settle_core::pipeline::Face::Graphql)
        .traced(traceparent);
    if let Some(axum::Extension(meta)) = meta {
        call.request_id = meta.request_id;
        call.received = meta.received;
    }
    let context = schema::RequestContext::new(settle, call);
    let response = schema.execute(request.data(context)).await;
    axum::Json(response).into_response()
}
