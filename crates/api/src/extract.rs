//! Parsing that turns bad input into the right 400, never a 500: JSON
//! bodies (with the failing field named), list query strings, headers that
//! must not repeat.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use settle_store::list::{DEFAULT_LIMIT, MAX_LIMIT};
use settle_store::{CreatedRange, Cursor, ListQuery};
use uuid::Uuid;

use crate::error::ApiError;

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.inner();
    if matches!(
        inner.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "malformed_json",
            format!("The body is not valid JSON: {inner}"),
        );
    }
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or_default().to_owned();
    let field = |marker: &str| {
        message
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = message.starts_with("unknown field").then(|| field("field `")).flatten() {
        // The path of an unknown field already ends with the field itself.
        let param = if path == "." || path.is_empty() {
            name.clone()
        } else {
            path.clone()
        };
        return ApiError::invalid("parameter_unknown", param, format!("Unknown parameter `{name}`."));
    }
    if let Some(name) = message.starts_with("missing field").then(|| field("field `")).flatten() {
        return ApiError::invalid(
            "parameter_missing",
            join(name.clone()),
            format!("Missing required parameter `{name}`."),
        );
    }
    let param = if path == "." { "body".to_owned() } else { path };
    ApiError::invalid(
        "parameter_invalid",
        param.clone(),
        format!("Invalid `{param}`: {message}."),
    )
}

/// A JSON body into `T`, the failing field named; an empty body reads as `{}`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde would also read a struct from an array of its fields in
    // order; the API takes objects only.
    let starts_as_object = text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object && serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
        return Err(ApiError::invalid(
            "parameter_invalid",
            "body",
            "The body must be a JSON object.",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "malformed_json",
            format!("The body is not valid JSON: {e}"),
        )
    })?;
    refuse_nul_in_json(text)?;
    Ok(value)
}

/// A NUL character is refused in every text a client sends: PostgreSQL
/// cannot store it in `text` at all, and SQLite would keep it, so the two
/// backends would disagree. JSON can only carry one as the escape `\u0000`,
/// so a body without that sequence is passed without a second parse.
fn refuse_nul_in_json(text: &[u8]) -> Result<(), ApiError> {
    if !text.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) else {
        return Ok(());
    };
    match nul_path(&value, String::new()) {
        Some(path) => Err(nul_error(if path.is_empty() { "body".into() } else { path })),
        None => Ok(()),
    }
}

/// The dotted path of the first string or key holding a NUL, if any.
/// Recursion is bounded by serde_json's own nesting limit of 128.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                // Never echo the NUL back: name the object that holds the key.
                Some(path.clone())
            } else {
                nul_path(v, join(k))
            }
        }),
        _ => None,
    }
}

/// 400 `parameter_invalid` for a NUL character in `param`.
pub fn nul_error(param: impl Into<String>) -> ApiError {
    let param = param.into();
    ApiError::invalid(
        "parameter_invalid",
        param.clone(),
        format!("`{param}` must not contain a NUL character."),
    )
}

/// The one value of a header that must not be repeated. Two
/// `Authorization`, `Idempotency-Key` or `If-Match` headers are ambiguous
/// (which one did the client mean, and which one did a proxy add?), so
/// they are refused rather than resolved by taking the first.
pub fn single_header<'a, K: axum::http::header::AsHeaderName>(
    headers: &'a axum::http::HeaderMap,
    name: K,
    label: &'static str,
) -> Result<Option<&'a HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::invalid(
            "parameter_invalid",
            label,
            format!("The `{label}` header is given more than once; send it once."),
        ));
    }
    Ok(first)
}

/// A parsed list query string: the common parameters plus at most one filter.
pub struct ListRequest {
    pub query: ListQuery<()>,
    pub filter: Option<(String, String)>,
    /// `expand[]` paths, in the order given.
    pub expand: Vec<String>,
}

/// Whether a query key names an expansion (`expand[]`, `expand[0]`, or
/// `expand`), which may repeat.
fn is_expand(key: &str) -> bool {
    key == "expand" || (key.starts_with("expand[") && key.ends_with(']'))
}

/// The `key=value` pairs of a query string, in order; a malformed one is a
/// 400 naming `query`.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
        ApiError::invalid(
            "parameter_invalid",
            "query",
            format!("The query string is malformed: {e}"),
        )
    })
}

/// The `expand[]` paths of a query string.
pub fn expand_paths(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    Ok(query_pairs(raw)?
        .into_iter()
        .filter(|(k, _)| is_expand(k))
        .map(|(_, v)| v)
        .collect())
}

impl ListRequest {
    /// Parses `limit`, `starting_after`, `ending_before`, `created[...]` and
    /// one of `filters`. `cursor_id` parses the resource's own id type; a
    /// cursor that is malformed or of another type names nothing.
    pub fn parse(raw: Option<&str>, filters: &[&str], cursor_id: fn(&str) -> Option<Uuid>) -> Result<Self, ApiError> {
        let pairs = query_pairs(raw)?;
        let mut seen = BTreeMap::new();
        let mut expand = Vec::new();
        for (k, v) in pairs {
            if is_expand(&k) {
                if v.contains('\0') {
                    return Err(nul_error("expand"));
                }
                expand.push(v);
                continue;
            }
            if k.contains('\0') {
                return Err(nul_error("query"));
            }
            if v.contains('\0') {
                return Err(nul_error(k));
            }
            if seen.insert(k.clone(), v).is_some() {
                return Err(ApiError::invalid(
                    "parameter_invalid",
                    k.clone(),
                    format!("`{k}` is given more than once."),
                ));
            }
        }
        let mut query = ListQuery::first(DEFAULT_LIMIT);
        let mut filter = None;
        let mut created = CreatedRange::default();
        let mut starting_after = None;
        let mut ending_before = None;
        for (key, value) in seen {
            let int = |v: &str| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::invalid("parameter_invalid", key.clone(), format!("`{key}` must be an integer."))
                })
            };
            let cursor = |v: &str| {
                cursor_id(v).ok_or_else(|| {
                    ApiError::invalid("resource_missing", key.clone(), format!("`{key}` names nothing."))
                })
            };
            match key.as_str() {
                "limit" => {
                    let limit = int(&value)?;
                    if !(1..=i64::from(MAX_LIMIT)).contains(&limit) {
                        return Err(ApiError::invalid(
                            "parameter_invalid",
                            "limit",
                            format!("`limit` must be between 1 and {MAX_LIMIT}."),
                        ));
                    }
                    query.limit = limit as u32;
                }
                "starting_after" => starting_after = Some(cursor(&value)?),
                "ending_before" => ending_before = Some(cursor(&value)?),
                "created[gte]" => created.gte = Some(int(&value)?),
                "created[gt]" => created.gt = Some(int(&value)?),
                "created[lte]" => created.lte = Some(int(&value)?),
                "created[lt]" => created.lt = Some(int(&value)?),
                other if filters.contains(&other) => {
                    if filter.is_some() {
                        return Err(ApiError::invalid(
                            "parameter_invalid",
                            other,
                            "At most one equality filter is allowed per list request.",
                        ));
                    }
                    filter = Some((other.to_owned(), value));
                }
                other => {
                    return Err(ApiError::invalid(
                        "parameter_unknown",
                        other,
                        format!("Unknown parameter `{other}`."),
                    ));
                }
            }
        }
        query.cursor = match (starting_after, ending_before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "parameter_invalid",
                    "ending_before",
                    "Give `starting_after` or `ending_before`, not both.",
                ));
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (None, None) => None,
        };
        query.created = created;
        Ok(Self { query, filter, expand })
    }
}
