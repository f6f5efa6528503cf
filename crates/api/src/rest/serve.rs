//! How a REST route reaches the operation pipeline: read who asks and the
//! request's options from headers, let the pipeline authenticate and check
//! permissions, then read the path, query and body into the operation's
//! typed input, and turn the outcome back into a response.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ETAG};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use settle_core::Settle;
use settle_core::expand::{Listed, Shown};
use settle_core::ops::{ListParams, Targeted, WithSecret};
use settle_core::pipeline::{Call, Failure, Input, Operation, Outcome, parse_timeout_ms};
use settle_store::Page;
use uuid::Uuid;

use crate::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::extract::{ListRequest, parse_json, single_header};
use crate::idempotency;
use crate::request::RequestId;

/// The header a client shortens its request's deadline with, in milliseconds.
pub const TIMEOUT_HEADER: &str = "settle-timeout-ms";

/// A request on its way to an operation; its body is read only once the
/// caller was let in.
pub struct Rest {
    parts: Parts,
    body: Body,
    id: String,
}

impl<S: Send + Sync> FromRequest<S> for Rest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        // Whatever the path holds (even bytes that are not UTF-8) is an id
        // that names nothing rather than a parsing error: the client gets
        // the same 404 as for an unknown id.
        let id = match Path::<String>::from_request_parts(&mut parts, state).await {
            Ok(Path(id)) => id,
            Err(_) => String::new(),
        };
        Ok(Self { parts, body, id })
    }
}

/// What a route reads its operation's input from, once the caller is in.
pub struct RestInput {
    id: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl RestInput {
    /// The `{id}` of the path.
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// The JSON body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body)
    }

    /// The JSON body as `T`, about the object the path names.
    pub fn targeted<T: DeserializeOwned + Targeted>(&self) -> Result<T, ApiError> {
        Ok(self.json::<T>()?.with_id(self.id()))
    }

    /// `T` about the object the path names, whatever the body holds (reads,
    /// deletes and actions without parameters).
    pub fn path_only<T: Default + Targeted>(&self) -> Result<T, ApiError> {
        Ok(T::default().with_id(self.id()))
    }

    /// `If-Match: "3"` (or `W/"3"`, `3`); `*` or no header means any version.
    pub fn if_match(&self) -> Result<Option<i64>, ApiError> {
        let Some(value) = single_header(&self.headers, axum::http::header::IF_MATCH, "If-Match")? else {
            return Ok(None);
        };
        let bad = || {
            ApiError::invalid(
                "parameter_invalid",
                "If-Match",
                "`If-Match` must be an ETag such as \"3\".",
            )
        };
        let text = value.to_str().map_err(|_| bad())?.trim();
        if text == "*" {
            return Ok(None);
        }
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        // An ETag of an expanded object is `version-digest`: the version counts.
        let version = text.split_once('-').map_or(text, |(version, _)| version);
        version.parse::<i64>().map(Some).map_err(|_| bad())
    }

    /// The raw query string.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// A list's page, at most one of `filters` and the paths to expand;
    /// `cursor` parses the listed resource's own id type.
    pub fn list(&self, filters: &[&str], cursor: fn(&str) -> Option<Uuid>) -> Result<ListParams, ApiError> {
        let req = ListRequest::parse(self.query(), filters, cursor)?;
        Ok(ListParams {
            query: req.query,
            filter: req.filter,
            expand: req.expand,
        })
    }

    /// `expand[]=a&expand[]=b.c` (or `expand=`) from the query string.
    pub fn expand(&self) -> Result<Vec<String>, ApiError> {
        crate::extract::expand_paths(self.query())
    }
}

/// The bearer secret, if the request carries a well-formed one.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = single_header(headers, AUTHORIZATION, "Authorization")? else {
        return Ok(None);
    };
    Ok(value.to_str().ok().and_then(settle_core::auth::bearer_secret))
}

/// The pipeline's view of a REST request: who asks, its idempotency key,
/// its deadline.
fn call_of(parts: &Parts) -> Result<Call, ApiError> {
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let traceparent = parts.headers.get("traceparent").and_then(|v| v.to_str().ok());
    let mut call = Call::new(request_id, bearer(&parts.headers)?).traced(traceparent);
    if let Some(meta) = parts.extensions.get::<settle_core::pipeline::RequestMeta>() {
        call.received = meta.received;
    }
    if let Some(value) = single_header(&parts.headers, idempotency::HEADER, "Idempotency-Key")? {
        // Not UTF-8 is not printable ASCII either: the pipeline refuses it.
        call.idempotency_key = Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    if let Some(value) = single_header(&parts.headers, TIMEOUT_HEADER, "Settle-Timeout-Ms")? {
        let text = value.to_str().unwrap_or_default();
        call.timeout = Some(parse_timeout_ms(text, "Settle-Timeout-Ms")?);
    }
    Ok(call)
}

impl Rest {
    /// Runs `O`, built by `build` from the request, through the pipeline.
    pub async fn serve<O, F>(self, settle: &Settle, build: F) -> Response
    where
        O: Operation,
        O::Output: Render,
        F: FnOnce(&RestInput) -> Result<O, ApiError> + Send,
    {
        let Rest { parts, body, id } = self;
        let call = match call_of(&parts) {
            Ok(call) => call,
            Err(e) => return e.into_response(),
        };

        let keyed = call.idempotency_key.is_some();
        let path = parts.uri.path().to_owned();
        let method = parts.method.clone();
        let query = parts.uri.query().map(str::to_owned);
        // A body that could not be read leaves the connection unusable: its
        // error keeps `Connection: close`, which the pipeline's error
        // shape does not carry.
        let unread: Arc<Mutex<Option<ApiError>>> = Arc::default();
        let unread_slot = Arc::clone(&unread);
        let list_path = path.clone();
        let outcome = settle
            .execute(call, move || async move {
                let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        let error = crate::body::read_error(&e);
                        *unread_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
                        return Err(Failure::from(error));
                    }
                };
                let input = RestInput {
                    id,
                    query,
                    headers: parts.headers,
                    body: bytes,
                };
                if !O::EXPANDS && !crate::extract::expand_paths(input.query())?.is_empty() {
                    return Err(Failure::invalid(
                        "parameter_invalid",
                        "expand",
                        format!("`{}` has nothing to expand.", O::SPEC.name),
                    ));
                }
                let op = build(&input).map_err(Failure::from)?;
                let legacy_fingerprint = keyed.then(|| idempotency::request_hash(&method, &path, &input.body));
                Ok(Input { op, legacy_fingerprint })
            })
            .await;
        match outcome {
            Ok(Outcome::Done(output)) => output.render(&list_path),
            Ok(Outcome::Replayed {
                response,
                secret_omitted,
            }) => idempotency::replay(response, secret_omitted),
            Err(failure) => {
                let unread = unread.lock().unwrap_or_else(|e| e.into_inner()).take();
                unread.unwrap_or_else(|| failure.into()).into_response()
            }
        }
    }
}

/// How an operation's outcome becomes a response.
pub trait Render {
    /// `path` is the request's path, the `url` of a list.
    fn render(self, path: &str) -> Response;
}

/// A JSON body with its `ETag`: the version `If-Match` compares and a
/// digest of the representation (see [`settle_core::cache::etag_of`]).
fn json_with_etag<T: Serialize>(value: &T, version: Option<i64>) -> Response {
    match serde_json::to_vec(value) {
        Ok(json) => {
            let etag = settle_core::cache::etag_of(version, &json);
            json_body(Bytes::from(json), &etag)
        }
        Err(_) => ApiError::internal().into_response(),
    }
}

/// `json` as the body, with `etag`.
fn json_body(json: Bytes, etag: &str) -> Response {
    let mut response = (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response();
    if let Ok(tag) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(ETAG, tag);
    }
    response
}

/// Objects edited with optimistic locking: their version is their `ETag`.
macro_rules! versioned {
    ($($t:ty),*) => {
        $(impl Render for $t {
            fn render(self, _path: &str) -> Response {
                json_with_etag(&self, Some(self.version))
            }
        }

        impl Render for WithSecret<$t> {
            fn render(self, _path: &str) -> Response {
                json_with_etag(&self, Some(self.object.version))
            }
        })*
    };
}

versioned!(
    settle_domain::account::Account,
    settle_domain::customer::Customer,
    settle_domain::payment::Payment,
    settle_domain::rbac::Role,
    settle_domain::webhook::WebhookEndpoint,
    settle_store::records::StoredPolicy
);

/// Objects without a version: plain JSON.
macro_rules! plain {
    ($($t:ty),*) => {
        $(impl Render for $t {
            fn render(self, _path: &str) -> Response {
                axum::Json(self).into_response()
            }
        })*
    };
}

plain!(
    settle_domain::refund::Refund,
    settle_store::records::Deleted,
    settle_store::records::ApiKey,
    WithSecret<settle_store::records::ApiKey>,
    settle_domain::webhook::WebhookDelivery,
    settle_domain::webhook::WebhookReplay,
    settle_core::operations::QueueStatus,
    settle_core::ops::webhook_stats::WebhookStatsView
);

/// `{"object": "list", "data", "has_more", "url"}`, in that order.
#[derive(Serialize)]
struct ListBody<'a, T> {
    object: &'static str,
    data: Vec<T>,
    has_more: bool,
    url: &'a str,
}

impl<T: Serialize> Render for Page<T> {
    fn render(self, path: &str) -> Response {
        axum::Json(ListBody {
            object: "list",
            data: self.data,
            has_more: self.has_more,
            url: path,
        })
        .into_response()
    }
}

impl<T: Serialize> Render for Listed<T> {
    fn render(self, path: &str) -> Response {
        match self.expanded {
            None => self.page.render(path),
            Some(data) => Page {
                data,
                has_more: self.page.has_more,
            }
            .render(path),
        }
    }
}

/// Where a read's answer came from: `hit`, `miss`, `stale` (the database
/// could not answer; `Age` says how old the answer is) or `off`.
pub const CACHE_HEADER: &str = "settle-cache";

/// An object as read: the JSON as read (cached or not) when nothing is
/// expanded, else the expanded JSON with an `ETag` of its own (it changes
/// when an expanded object does).
impl<T> Render for Shown<T> {
    fn render(self, _path: &str) -> Response {
        let status = self.read.status;
        let mut response = match &self.expanded {
            None => json_body(self.read.json.clone(), &self.read.etag),
            Some(expanded) => json_with_etag(expanded, self.version()),
        };
        let headers = response.headers_mut();
        headers.insert(CACHE_HEADER, HeaderValue::from_static(status.as_str()));
        if let settle_core::cache::CacheStatus::Stale { age } = status {
            headers.insert(axum::http::header::AGE, HeaderValue::from(age.as_secs()));
        }
        response
    }
}

/// A text document (the Cedar schema).
impl Render for &'static str {
    fn render(self, _path: &str) -> Response {
        (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))],
            self,
        )
            .into_response()
    }
}
