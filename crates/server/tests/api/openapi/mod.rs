//! The published API description against the running server, on both
//! databases: `/openapi.json` names every registered operation at its
//! method and path with the headers and error answers each one takes; the
//! Swagger UI at `/docs/` loads with no network but this server; and every
//! operation, driven to a success and to a failure, answers JSON that the
//! document's own schema for that status accepts. A client generated from
//! the document is only as good as this agreement, and nothing else checks
//! it against live answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use settle::config::Config;
use settle_api::registry::{Answer, Route, routes};
use settle_core::pipeline::registry::ALL;

use crate::support::{self, Backend, Resp, TestApp, both, eventually};

/// The document as the server serves it, without an API key: the docs page
/// fetches it from a browser that has none.
async fn served_document(app: &TestApp) -> Value {
    let r = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "/openapi.json: {}", r.body);
    let content_type = header(&r, "content-type");
    assert!(
        content_type.starts_with("application/json"),
        "/openapi.json is served as `{content_type}`"
    );
    assert!(r.body.is_object(), "/openapi.json is not a JSON object: {}", r.body);
    r.body
}

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn method_of(route: &Route) -> Method {
    Method::from_bytes(route.method.as_str().as_bytes()).unwrap()
}

/// The document's operation object for a route (JSON null when missing).
fn operation_of<'d>(doc: &'d Value, route: &Route) -> &'d Value {
    &doc["paths"][route.path][route.method.as_str().to_lowercase()]
}

fn describe(route: &Route) -> String {
    format!("{} {} ({})", route.method, route.path, route.operation)
}

/// Whether the operation documents a parameter `name` in `place`.
fn has_parameter(op: &Value, name: &str, place: &str) -> bool {
    op["parameters"].as_array().is_some_and(|all| {
        all.iter()
            .any(|p| p["in"] == place && p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    })
}

/// Every `$ref` in `value`, so a dangling one is caught before a client
/// generator trips on it.
fn refs<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_operation_is_documented() {
    support::runtime().block_on(support::run(Backend::Sqlite, every_operation_is_documented_case))
}

async fn every_operation_is_documented_case(app: &TestApp) {
    let doc = served_document(app).await;
    let generated = serde_json::to_value(settle_api::openapi::document()).unwrap();
    assert!(
        doc == generated,
        "/openapi.json is not the document built from the registry"
    );

    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "`openapi` is `{version}`, not 3.1.x");

    // The three lists agree: core's operations, the REST routes, the document.
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("`paths` is an object") {
        for (method, op) in item.as_object().expect("a path item is an object") {
            let id = op["operationId"].as_str();
            let id = id.unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            documented.push(id.to_owned());
        }
    }
    let unique: BTreeSet<String> = documented.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        documented.len(),
        "an operationId is used twice: {documented:?}"
    );
    let core: BTreeSet<String> = ALL.iter().map(|spec| spec.name.to_owned()).collect();
    let rest: BTreeSet<String> = routes().iter().map(|r| r.operation.to_owned()).collect();
    assert_eq!(
        unique, core,
        "documented operations vs. settle_core's operation registry"
    );
    assert_eq!(unique, rest, "documented operations vs. the REST route registry");
    assert_eq!(documented.len(), routes().len());

    let mut problems = Vec::new();
    for route in routes() {
        let op = operation_of(&doc, &route);
        let name = describe(&route);
        if op["operationId"] != route.operation {
            problems.push(format!("{name}: the document has {} there", op["operationId"]));
            continue;
        }
        let write = route.spec.is_write();
        for (header, wanted) in [
            ("Idempotency-Key", write),
            ("If-Match", route.method == Method::PATCH),
            ("Settle-Timeout-Ms", true),
        ] {
            let documented = has_parameter(op, header, "header");
            if documented != wanted {
                problems.push(format!(
                    "{name}: documents the {header} header: {documented}, should: {wanted}"
                ));
            }
        }
        if has_parameter(op, "id", "path") != route.path.contains("{id}") {
            problems.push(format!("{name}: the `id` path parameter does not match the path"));
        }
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        if !responses.contains_key("200") {
            problems.push(format!("{name}: no 200 response"));
        }
        for (status, response) in &responses {
            if response["headers"]["Request-Id"].is_null() {
                problems.push(format!("{name}: response {status} lacks the Request-Id header"));
            }
        }
        for status in ["401", "403"] {
            let schema = &op["responses"][status]["content"]["application/json"]["schema"];
            if schema["$ref"] != "#/components/schemas/Error" {
                problems.push(format!("{name}: response {status} is not the Error schema: {schema}"));
            }
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    for target in targets {
        let resolved = target.strip_prefix('#').and_then(|pointer| doc.pointer(pointer));
        if resolved.is_none() {
            problems.push(format!("`$ref: {target}` resolves to nothing"));
        }
    }
    assert!(
        problems.is_empty(),
        "the document disagrees with the registry:\n{}",
        problems.join("\n")
    );
}

/// The values of `attribute` in every `<tag ...>` of `html`; enough for
/// the generated Swagger UI page, which quotes its attributes.
fn attributes(html: &str, tag: &str, attribute: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let mut out = Vec::new();
    for (start, _) in html.match_indices(&open) {
        let rest = &html[start..];
        let element = &rest[..rest.find('>').unwrap_or(rest.len())];
        for quote in ['"', '\''] {
            let key = format!(" {attribute}={quote}");
            if let Some(at) = element.find(&key) {
                let value = &element[at + key.len()..];
                out.push(value[..value.find(quote).unwrap_or(value.len())].to_owned());
            }
        }
    }
    out
}

#[test]
fn the_docs_page_works_offline() {
    support::runtime().block_on(support::run(Backend::Sqlite, the_docs_page_works_offline_case))
}

async fn the_docs_page_works_offline_case(app: &TestApp) {
    // No key: the page is for people with a browser.
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let content_type = page.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "/docs/ is `{content_type}`");
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "not the Swagger UI page: {html}");

    let scripts = attributes(&html, "script", "src");
    let links = attributes(&html, "link", "href");
    assert!(!scripts.is_empty() && !links.is_empty(), "no assets referenced: {html}");
    let mut initializer = None;
    for asset in scripts.iter().chain(&links) {
        assert!(
            !asset.contains("://") && !asset.starts_with("//"),
            "/docs/ loads `{asset}` from another host, so it breaks offline"
        );
        let path = if asset.starts_with('/') {
            asset.clone()
        } else {
            format!("/docs/{}", asset.trim_start_matches("./"))
        };
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset} ({path})");
        let kind = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = res.bytes().await.unwrap();
        // A fallback that answers every path with the page itself would pass a status check.
        assert!(!kind.starts_with("text/html"), "{path} is served as `{kind}`");
        let expected = match path.rsplit('.').next() {
            Some("js") => "javascript",
            Some("css") => "text/css",
            Some("png") => "image/png",
            _ => "",
        };
        assert!(kind.contains(expected), "{path} is served as `{kind}`, not {expected}");
        assert!(body.len() >= 64, "{path} is only {} bytes", body.len());
        if path.contains("initializer") {
            initializer = Some(String::from_utf8_lossy(&body).into_owned());
        }
    }
    let initializer = initializer.unwrap_or_else(|| panic!("no initializer script in {scripts:?}"));
    assert!(
        initializer.contains("\"/openapi.json\""),
        "the initializer does not load /openapi.json: {initializer}"
    );
}

mod contract;
mod expanded;
