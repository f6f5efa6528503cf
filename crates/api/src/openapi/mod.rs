//! The OpenAPI 3.1 document of the REST API, built from the route registry
//! (every operation, its parameters, body and answers) and the schemas of
//! [`schemas`], served at `/openapi.json` with Swagger UI at `/docs`, its
//! assets compiled into the binary so it works offline.

pub mod schemas;

use axum::Router;
use axum::http::Method;
use settle_core::Settle;
use settle_core::pipeline::MAX_TIMEOUT_MS;
use settle_store::list::MAX_LIMIT;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, RefOr, Required, Response};

use crate::registry::{Answer, Route, routes};

/// Objects whose version is their `ETag` (and `If-Match` value).
const VERSIONED: &[&str] = &["Account", "Customer", "Payment", "Role", "WebhookEndpoint", "Policy"];

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
            utoipa::openapi::schema::KnownFormat::Int64,
        )))
}

fn parameter(name: &str, place: ParameterIn, schema: ObjectBuilder, description: &str) -> Parameter {
    let required = if matches!(place, ParameterIn::Path) {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .schema(Some(schema))
        .description(Some(description))
        .build()
}

fn request_id_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(string()))
        .description(Some("This request's id; errors carry it too. Quote it to support."))
        .build()
}

fn json(schema: impl Into<RefOr<Schema>>) -> Content {
    Content::new(Some(schema))
}

/// The error answers an operation can give, each in SPEC's error shape.
fn errors(route: &Route) -> Vec<(&'static str, &'static str)> {
    let write = route.spec.is_write();
    let mut codes = vec![
        (
            "400",
            "Bad input: the parameter is named in `error.param`; nothing changed.",
        ),
        ("401", "No API key, or one that is unknown, revoked or expired."),
        (
            "403",
            "The key's role lacks the permission (named), or a policy forbids it.",
        ),
    ];
    if route.path.contains("{id}") {
        codes.push(("404", "The id in the path names nothing."));
    }
    if write {
        codes.push((
            "409",
            "The idempotency key is in use, the object is in use, or its state forbids this.",
        ));
        codes.push(("413", "The body is larger than 1 MiB."));
        codes.push((
            "422",
            "Well-formed but impossible (funds, currency, amount), or an idempotency key reused with other parameters.",
        ));
    }
    if route.method == Method::PATCH {
        codes.push(("412", "`If-Match` names an older version."));
    }
    codes.push((
        "408",
        "The budget this request set with `Settle-Timeout-Ms` passed first; nothing changed.",
    ));
    codes.push(("429", "Too many requests; retry after `Retry-After`."));
    codes.push((
        "503",
        "Overloaded or the database is unavailable; retry after `Retry-After`.",
    ));
    codes.push((
        "504",
        "The deadline passed before the operation started (or while it read); nothing changed.",
    ));
    codes
}

fn success(route: &Route) -> Response {
    let mut response = ResponseBuilder::new().header("Request-Id", request_id_header());
    response = match route.answer {
        Answer::Object(name) => {
            let mut r = response
                .description(format!("The {name}."))
                .content("application/json", json(schemas::object_ref(name)));
            if VERSIONED.contains(&name) {
                r = r.header(
                    "ETag",
                    HeaderBuilder::new()
                        .schema(Some(string()))
                        .description(Some("The object's version, for `If-Match`."))
                        .build(),
                );
            }
            r
        }
        Answer::List(item, _) => response
            .description(format!("A page of {item} objects, newest first."))
            .content("application/json", json(schemas::list_of(item))),
        Answer::Text(name) => response
            .description("A text document.")
            .content("text/plain", json(schemas::object_ref(name))),
    };
    if route.spec.is_write() {
        response = response.header(
            "Idempotent-Replayed",
            HeaderBuilder::new()
                .schema(Some(string()))
                .description(Some(
                    "`true` when this is the stored answer of an earlier request with the same key.",
                ))
                .build(),
        );
    }
    response.build()
}

fn parameters(route: &Route) -> Vec<Parameter> {
    let mut out = Vec::new();
    if route.path.contains("{id}") {
        out.push(parameter("id", ParameterIn::Path, string(), "The object's id."));
    }
    if route.spec.is_write() {
        out.push(parameter(
            "Idempotency-Key",
            ParameterIn::Header,
            string().pattern(Some("^[\\x20-\\x7e]{1,255}$")),
            "Makes a retry safe: the same key with the same parameters answers what the first request answered, for 24 hours.",
        ));
    }
    if route.method == Method::PATCH {
        out.push(parameter(
            "If-Match",
            ParameterIn::Header,
            string().pattern(Some(r#"^(\*|(W/)?"?[0-9]+(-[0-9a-f]+)?"?)$"#)),
            "The version (`ETag`) the edit is based on; an older one is refused with 412.",
        ));
    }
    out.push(parameter(
        "Settle-Timeout-Ms",
        ParameterIn::Header,
        integer().minimum(Some(1)).maximum(Some(MAX_TIMEOUT_MS)),
        "This request's budget in milliseconds, if shorter than the server's: an operation not started by then is not started (408).",
    ));
    if route.expands {
        out.push(
            ParameterBuilder::new()
                .name("expand[]")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(ArrayBuilder::new().items(string()).max_items(Some(20))))
                .description(Some(
                    "Relations to show as whole objects instead of ids, e.g. `customer`, `source.customer`; on a list prefixed `data.`; up to 4 levels.",
                ))
                .build(),
        );
    }
    if let Answer::List(_, filters) = route.answer {
        out.push(parameter(
            "limit",
            ParameterIn::Query,
            integer().minimum(Some(1)).maximum(Some(MAX_LIMIT)),
            "Objects per page (default 10).",
        ));
        let cursor = || match route.answer {
            Answer::List(item, _) => match schemas::id_prefix_of(item) {
                Some(prefix) => string().pattern(Some(schemas::id_pattern(prefix))),
                None => string(),
            },
            _ => string(),
        };
        out.push(parameter(
            "starting_after",
            ParameterIn::Query,
            cursor(),
            "The page after this object (the last id of the previous page).",
        ));
        out.push(parameter(
            "ending_before",
            ParameterIn::Query,
            cursor(),
            "The page before this object (the first id of the next page); not with `starting_after`.",
        ));
        for bound in ["gte", "gt", "lte", "lt"] {
            out.push(parameter(
                &format!("created[{bound}]"),
                ParameterIn::Query,
                integer(),
                "Creation time bound, Unix seconds.",
            ));
        }
        for filter in filters {
            out.push(parameter(
                filter,
                ParameterIn::Query,
                string(),
                "Equality filter; at most one per request.",
            ));
        }
        if route.operation == "list_events" {
            out.push(parameter(
                "after_position",
                ParameterIn::Query,
                integer().minimum(Some(0)),
                "The commit stream: events committed after this position, oldest first; takes only `limit`.",
            ));
        }
    }
    out
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let resource = route.spec.permission.resource.as_str();
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.operation))
        .summary(Some(route.spec.summary))
        .description(Some(format!("Needs the `{}` permission.", route.permission)))
        .tag(resource)
        .parameters(Some(parameters(route)))
        .response("200", success(route));
    for (code, why) in errors(route) {
        let mut response = ResponseBuilder::new()
            .description(why)
            .header("Request-Id", request_id_header())
            .content("application/json", json(schemas::object_ref("Error")));
        if matches!(code, "429" | "503" | "504") {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(integer()))
                    .description(Some("Seconds to wait before retrying."))
                    .build(),
            );
        }
        op = op.response(code, response.build());
    }
    if let Some(body) = route.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::False))
                .description(Some("JSON; an empty body reads as `{}`."))
                .content("application/json", json(body()))
                .build(),
        ));
    }
    op.build()
}

fn http_method(method: &Method) -> HttpMethod {
    match method.as_str() {
        "POST" => HttpMethod::Post,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The whole document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for route in routes() {
        paths.add_path_operation(route.path, vec![http_method(&route.method)], operation(&route));
    }
    let mut components = schemas::components();
    // The schemas the request bodies refer to (e.g. a policy's status).
    for route in routes() {
        if let Some(nested) = route.body_schemas {
            let mut found = Vec::new();
            nested(&mut found);
            for (name, schema) in found {
                components.schemas.insert(name, schema);
            }
        }
    }
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("sk_...")
                .build(),
        ),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Settle")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A self-hostable payments ledger and event backend: accounts, payments, refunds, signed webhooks.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .security(Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]))
        .build()
}

/// `/openapi.json` and Swagger UI at `/docs`.
pub fn router() -> Router<Settle> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", document())
        .into()
}
