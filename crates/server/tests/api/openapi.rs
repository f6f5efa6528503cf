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

/// A syntactically valid id that names nothing, of the kind a path's
/// `{id}` holds.
fn unknown_id(path: &str) -> String {
    let collection = path.trim_start_matches("/v1/").split('/').next().unwrap_or_default();
    let prefix = match collection {
        "accounts" => "acct",
        "customers" => "cus",
        "payments" => "pay",
        "refunds" => "re",
        "events" => "evt",
        "webhook_endpoints" => "we",
        "webhook_deliveries" => "wd",
        "api_keys" => "key",
        "roles" => "role",
        "policies" => "pol",
        other => panic!("no id prefix known for `{other}` ({path}); add it here"),
    };
    let uuid = settle_domain::ids::uuid_v7(1_800_000_000_000, rand::random::<u128>());
    format!("{prefix}_{}", settle_domain::ids::encode_base32(uuid.as_u128()))
}

/// Whether `path` (query string aside) is an instance of `template`.
fn instance_of(path: &str, template: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (given, wanted): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), template.split('/').collect());
    given.len() == wanted.len() && given.iter().zip(&wanted).all(|(g, w)| g == w || *w == "{id}")
}

/// Calls operations through HTTP and checks every answer against the
/// document, remembering which operations answered a success and which a
/// failure, so the test fails when one is left out.
struct Contract<'a> {
    app: &'a TestApp,
    doc: Value,
    routes: Vec<Route>,
    validators: HashMap<String, jsonschema::Validator>,
    succeeded: BTreeSet<&'static str>,
    failed: BTreeSet<&'static str>,
    problems: Vec<String>,
}

impl<'a> Contract<'a> {
    async fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            doc: served_document(app).await,
            routes: routes(),
            validators: HashMap::new(),
            succeeded: BTreeSet::new(),
            failed: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    fn route(&self, operation: &str) -> &Route {
        self.routes
            .iter()
            .find(|r| r.operation == operation)
            .unwrap_or_else(|| panic!("no route for `{operation}`"))
    }

    /// `operation` at `path` with the admin key, the JSON `body` and `headers`.
    async fn send(&self, operation: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        let route = self.route(operation);
        assert!(
            instance_of(path, route.path),
            "{path} is not a path of {}",
            describe(route)
        );
        let mut req = self
            .app
            .client
            .request(method_of(route), self.app.url(path))
            .bearer_auth(&self.app.admin_key);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        Resp::read(req.send().await.unwrap()).await
    }

    /// Validates `r`, the answer of `operation` at `path`, against the
    /// document's response for its status.
    fn check(&mut self, operation: &str, path: &str, r: &Resp) {
        let route = self.route(operation);
        let (template, method, name) = (route.path, route.method.as_str().to_lowercase(), describe(route));
        let at = format!("{name} at {path} answered {}", r.status.as_u16());
        // The document names 200 for every success.
        let status = r.status.as_u16().to_string();
        let response = self.doc["paths"][template][&method]["responses"][&status].clone();
        if response.is_null() {
            self.problems
                .push(format!("{at}, a status the document does not list: {}", r.body));
            return;
        }
        // The headers the document promises (`Request-Id`, `ETag` of a
        // versioned object), except the one sent only on a replay.
        let promised = response["headers"].as_object().cloned().unwrap_or_default();
        for name in promised.keys().filter(|n| *n != "Idempotent-Replayed") {
            if header(r, name).is_empty() {
                self.problems
                    .push(format!("{at} without the documented `{name}` header"));
            }
        }
        let content_type = header(r, "content-type");
        let content = response["content"].as_object().cloned().unwrap_or_default();
        let Some((media, described)) = content
            .iter()
            .find(|(media, _)| content_type.starts_with(media.as_str()))
        else {
            self.problems.push(format!(
                "{at} as `{content_type}`; the document says {:?}",
                content.keys().collect::<Vec<_>>()
            ));
            return;
        };
        if media != "application/json" {
            return;
        }
        let key = format!("{method} {template} {status}");
        match self.violations(&key, &described["schema"], &r.body) {
            Ok(errors) if errors.is_empty() => {}
            Ok(errors) => self.problems.push(format!(
                "{at}, breaking its schema:\n{}\n  body: {}",
                errors.join("\n"),
                r.body
            )),
            Err(e) => self.problems.push(format!("{at}: {e}")),
        }
    }

    /// What `schema`, a schema of the document cached under `key`, finds
    /// wrong with `instance`; `Err` when the schema cannot be used at all.
    fn violations(&mut self, key: &str, schema: &Value, instance: &Value) -> Result<Vec<String>, String> {
        if !self.validators.contains_key(key) {
            let mut root = schema.clone();
            let fields = root
                .as_object_mut()
                .ok_or_else(|| format!("the document gives no schema for {key}: {schema}"))?;
            // As in `settle_api::openapi::schemas::validation_root`: the
            // components ride along so `#/components/schemas/…` resolves.
            fields.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
            fields.insert("components".into(), self.doc["components"].clone());
            let validator = jsonschema::draft202012::new(&root)
                .map_err(|e| format!("the schema of {key} does not compile: {e}"))?;
            self.validators.insert(key.to_owned(), validator);
        }
        Ok(self.validators[key]
            .iter_errors(instance)
            .map(|e| format!("  {e} at `{}`", e.instance_path()))
            .collect())
    }

    /// Checks the document's request body schema of `operation` against
    /// `body`, which the server `accepted` or refused, so a client that
    /// validates its requests by the document sends what the server takes.
    fn check_request(&mut self, operation: &str, body: &Value, accepted: bool) {
        let route = self.route(operation);
        let (template, method, name) = (route.path, route.method.as_str().to_lowercase(), describe(route));
        let schema =
            self.doc["paths"][template][&method]["requestBody"]["content"]["application/json"]["schema"].clone();
        if schema.is_null() {
            self.problems
                .push(format!("{name} takes {body}, but documents no JSON body"));
            return;
        }
        match self.violations(&format!("{method} {template} request"), &schema, body) {
            Ok(errors) if errors.is_empty() == accepted => {}
            Ok(errors) if accepted => self.problems.push(format!(
                "{name}: the server accepted {body}, its documented request schema does not:\n{}",
                errors.join("\n")
            )),
            Ok(_) => self.problems.push(format!(
                "{name}: the server refused {body}, its documented request schema accepts it"
            )),
            Err(e) => self.problems.push(format!("{name}: {e}")),
        }
    }

    /// Calls `operation`, which must succeed, checks the answer and returns its body.
    async fn ok(&mut self, operation: &str, path: &str, body: Option<Value>) -> Value {
        self.ok_with(operation, path, body, &[]).await
    }

    async fn ok_with(&mut self, operation: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Value {
        let r = self.send(operation, path, body.as_ref(), headers).await;
        assert!(
            r.status.is_success(),
            "{operation} at {path} with {body:?} answered {}: {}",
            r.status,
            r.body
        );
        self.check(operation, path, &r);
        if let Some(body) = &body {
            self.check_request(operation, body, true);
        }
        self.succeeded.insert(self.route(operation).operation);
        r.body
    }

    /// Makes `route` fail once: an unknown id in the path (404), otherwise
    /// an unknown query parameter, body field, or a bad header (400).
    async fn fail(&mut self, index: usize) {
        let route = &self.routes[index];
        let (operation, template, write) = (route.operation, route.path, route.spec.is_write());
        let list = matches!(route.answer, Answer::List(..));
        let (path, body, headers, status) = if template.contains("{id}") {
            let path = template.replace("{id}", &unknown_id(template));
            let body = route.body.is_some().then(|| json!({}));
            (path, body, vec![], 404)
        } else if write {
            (template.to_owned(), Some(json!({"no_such_field": 1})), vec![], 400)
        } else if list {
            (format!("{template}?no_such_parameter=1"), None, vec![], 400)
        } else {
            (template.to_owned(), None, vec![("settle-timeout-ms", "0")], 400)
        };
        let r = self.send(operation, &path, body.as_ref(), &headers).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{operation} at {path} with {body:?} and {headers:?}: {}",
            r.body
        );
        self.check(operation, &path, &r);
        if let (400, Some(body)) = (status, &body) {
            self.check_request(operation, body, false);
        }
        self.failed.insert(operation);
    }

    /// Fails the test with every mismatch at once, or when an operation
    /// was not driven both ways.
    fn finish(self) {
        let all: BTreeSet<&str> = self.routes.iter().map(|r| r.operation).collect();
        let missing_ok: Vec<_> = all.difference(&self.succeeded).collect();
        let missing_failure: Vec<_> = all.difference(&self.failed).collect();
        assert!(
            self.problems.is_empty(),
            "{} disagreements with /openapi.json:\n{}",
            self.problems.len(),
            self.problems.join("\n")
        );
        assert!(missing_ok.is_empty(), "never driven to a success: {missing_ok:?}");
        assert!(
            missing_failure.is_empty(),
            "never driven to a failure: {missing_failure:?}"
        );
        assert_eq!(self.succeeded.len(), self.routes.len());
        assert_eq!(self.failed.len(), self.routes.len());
    }
}

fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_owned()
}

/// The default app, with a queue that polls often, so the first webhook
/// delivery is there in milliseconds rather than a poll interval.
async fn quick_queue(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let mut config = Config::default();
    config.queue.poll = Duration::from_millis(10);
    support::run_config(backend, config, case).await
}

both!(
    every_response_matches_the_document,
    every_response_matches_the_document_case,
    super::quick_queue
);
async fn every_response_matches_the_document_case(app: &TestApp) {
    let mut c = Contract::new(app).await;
    let if_first = [("if-match", "\"1\"")];

    // An endpoint before anything else, so every later event is delivered.
    let (hook, _seen) = crate::webhooks::receiver(&[200]).await;
    let endpoint = c
        .ok(
            "create_webhook_endpoint",
            "/v1/webhook_endpoints",
            Some(json!({"url": hook, "enabled_events": ["*"], "description": "contract", "metadata": {"team": "ops"}})),
        )
        .await;
    let we = id_of(&endpoint);
    c.ok("list_webhook_endpoints", "/v1/webhook_endpoints", None).await;
    c.ok(
        "retrieve_webhook_endpoint",
        &format!("/v1/webhook_endpoints/{we}"),
        None,
    )
    .await;
    c.ok_with(
        "update_webhook_endpoint",
        &format!("/v1/webhook_endpoints/{we}"),
        Some(json!({"description": "contract, edited"})),
        &if_first,
    )
    .await;
    c.ok(
        "rotate_webhook_secret",
        &format!("/v1/webhook_endpoints/{we}/rotate_secret"),
        None,
    )
    .await;

    let customer = c
        .ok(
            "create_customer",
            "/v1/customers",
            Some(json!({"name": "Ada", "email": "ada@example.com", "metadata": {"tier": "gold"}})),
        )
        .await;
    let cus = id_of(&customer);
    c.ok("list_customers", "/v1/customers", None).await;
    c.ok("list_customers", "/v1/customers?email=ada@example.com", None)
        .await;
    c.ok("retrieve_customer", &format!("/v1/customers/{cus}"), None).await;
    c.ok_with(
        "update_customer",
        &format!("/v1/customers/{cus}"),
        Some(json!({"name": "Ada L.", "email": null})),
        &if_first,
    )
    .await;
    let spare = c.ok("create_customer", "/v1/customers", Some(json!({}))).await;
    c.ok("delete_customer", &format!("/v1/customers/{}", id_of(&spare)), None)
        .await;

    let account = |name: &str, extra: Value| {
        let mut body = json!({"name": name, "currency": "usd"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let bank = id_of(
        &c.ok(
            "create_account",
            "/v1/accounts",
            Some(account("bank", json!({"allow_negative": true}))),
        )
        .await,
    );
    let alice = id_of(
        &c.ok(
            "create_account",
            "/v1/accounts",
            Some(account(
                "alice",
                json!({"customer": cus, "metadata": {"kind": "wallet"}}),
            )),
        )
        .await,
    );
    let shop = id_of(
        &c.ok("create_account", "/v1/accounts", Some(account("shop", json!({}))))
            .await,
    );
    c.ok("list_accounts", "/v1/accounts?limit=100", None).await;
    c.ok("list_accounts", &format!("/v1/accounts?customer={cus}"), None)
        .await;
    c.ok("retrieve_account", &format!("/v1/accounts/{alice}"), None).await;
    c.ok_with(
        "update_account",
        &format!("/v1/accounts/{alice}"),
        Some(json!({"name": "alice (main)", "metadata": {"kind": null}})),
        &if_first,
    )
    .await;

    let payment = |from: &str, to: &str, amount: i64, extra: Value| {
        let mut body = json!({"amount": amount, "currency": "usd", "source": from, "destination": to});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    c.ok(
        "create_payment",
        "/v1/payments",
        payment(
            &bank,
            &alice,
            10_000,
            json!({"customer": cus, "description": "top-up", "metadata": {"order": "1"}}),
        ),
    )
    .await;
    let held = c
        .ok(
            "create_payment",
            "/v1/payments",
            payment(&alice, &shop, 3_000, json!({"capture": false})),
        )
        .await;
    let held = id_of(&held);
    c.ok(
        "capture_payment",
        &format!("/v1/payments/{held}/capture"),
        Some(json!({"amount_to_capture": 2_000})),
    )
    .await;
    let released = c
        .ok(
            "create_payment",
            "/v1/payments",
            payment(&alice, &shop, 500, json!({"capture": false})),
        )
        .await;
    c.ok(
        "cancel_payment",
        &format!("/v1/payments/{}/cancel", id_of(&released)),
        Some(json!({})),
    )
    .await;
    c.ok("list_payments", "/v1/payments", None).await;
    c.ok("list_payments", "/v1/payments?status=canceled&limit=1", None)
        .await;
    c.ok("retrieve_payment", &format!("/v1/payments/{held}"), None).await;

    let refund = c
        .ok(
            "create_refund",
            "/v1/refunds",
            Some(json!({"payment": held, "amount": 500, "reason": "requested_by_customer"})),
        )
        .await;
    c.ok("create_refund", "/v1/refunds", Some(json!({"payment": held})))
        .await;
    c.ok("list_refunds", &format!("/v1/refunds?payment={held}"), None).await;
    c.ok("retrieve_refund", &format!("/v1/refunds/{}", id_of(&refund)), None)
        .await;
    c.ok(
        "list_ledger_entries",
        &format!("/v1/accounts/{alice}/entries?limit=100"),
        None,
    )
    .await;

    let events = c.ok("list_events", "/v1/events?limit=100", None).await;
    c.ok("list_events", "/v1/events?after_position=0&limit=100", None).await;
    c.ok("list_events", "/v1/events?type=payment.succeeded", None).await;
    let events = events["data"].as_array().cloned().unwrap_or_default();
    assert!(!events.is_empty(), "no events after all those writes");
    for event in &events {
        c.ok("retrieve_event", &format!("/v1/events/{}", id_of(event)), None)
            .await;
    }

    // A delivery that reached the receiver, so its attempts are not empty.
    let deliveries = format!("/v1/webhook_endpoints/{we}/deliveries");
    let delivery = eventually(Duration::from_secs(30), "a delivered webhook", || async {
        let list = app.get(&format!("{deliveries}?status=delivered")).await;
        list.body["data"].as_array().and_then(|d| d.first()).map(id_of)
    })
    .await;
    c.ok("list_webhook_deliveries", &format!("{deliveries}?limit=100"), None)
        .await;
    c.ok(
        "list_webhook_deliveries",
        &format!("{deliveries}?status=delivered"),
        None,
    )
    .await;
    c.ok(
        "retrieve_webhook_delivery",
        &format!("/v1/webhook_deliveries/{delivery}"),
        None,
    )
    .await;
    c.ok(
        "list_webhook_attempts",
        &format!("/v1/webhook_deliveries/{delivery}/attempts"),
        None,
    )
    .await;
    c.ok(
        "retry_webhook_delivery",
        &format!("/v1/webhook_deliveries/{delivery}/retry"),
        None,
    )
    .await;
    c.ok(
        "replay_webhooks",
        &format!("/v1/webhook_endpoints/{we}/replay"),
        Some(json!({"since": 0})),
    )
    .await;
    c.ok(
        "list_webhook_replays",
        &format!("/v1/webhook_endpoints/{we}/replay"),
        None,
    )
    .await;
    let doomed = c
        .ok(
            "create_webhook_endpoint",
            "/v1/webhook_endpoints",
            Some(json!({"url": hook, "enabled_events": ["refund.succeeded"]})),
        )
        .await;
    c.ok(
        "delete_webhook_endpoint",
        &format!("/v1/webhook_endpoints/{}", id_of(&doomed)),
        None,
    )
    .await;

    let role = c
        .ok(
            "create_role",
            "/v1/roles",
            Some(json!({"name": "auditor", "permissions": ["audit:read"]})),
        )
        .await;
    let role = id_of(&role);
    c.ok("list_roles", "/v1/roles", None).await;
    c.ok("retrieve_role", &format!("/v1/roles/{role}"), None).await;
    c.ok_with(
        "update_role",
        &format!("/v1/roles/{role}"),
        Some(json!({"permissions": ["audit:read", "queue:read"]})),
        &if_first,
    )
    .await;
    c.ok("delete_role", &format!("/v1/roles/{role}"), None).await;

    let key = c
        .ok(
            "create_api_key",
            "/v1/api_keys",
            Some(json!({"name": "contract", "role": "viewer", "expires_at": 4_000_000_000_i64})),
        )
        .await;
    let key = id_of(&key);
    c.ok("list_api_keys", "/v1/api_keys", None).await;
    c.ok("retrieve_api_key", &format!("/v1/api_keys/{key}"), None).await;
    c.ok("revoke_api_key", &format!("/v1/api_keys/{key}"), None).await;

    let policy = c
        .ok(
            "create_policy",
            "/v1/policies",
            Some(json!({
                "name": "no huge refunds",
                "policy": r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.amount > 5000000 };"#,
                "description": "contract",
            })),
        )
        .await;
    let policy = id_of(&policy);
    c.ok("list_policies", "/v1/policies", None).await;
    c.ok("policy_schema", "/v1/policies/schema", None).await;
    c.ok("retrieve_policy", &format!("/v1/policies/{policy}"), None).await;
    c.ok_with(
        "update_policy",
        &format!("/v1/policies/{policy}"),
        Some(json!({"description": null, "status": "disabled"})),
        &if_first,
    )
    .await;
    c.ok("delete_policy", &format!("/v1/policies/{policy}"), None).await;

    c.ok("list_audit_events", "/v1/audit_events?limit=100", None).await;
    c.ok("queue_summary", "/v1/queue", None).await;

    for index in 0..c.routes.len() {
        c.fail(index).await;
    }

    // The schemas have teeth: a field the document does not list is refused.
    let mut surprise = c.ok("retrieve_account", &format!("/v1/accounts/{alice}"), None).await;
    surprise["surprise"] = json!(1);
    let schema =
        c.doc["paths"]["/v1/accounts/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone();
    let errors = c.violations("get /v1/accounts/{id} 200", &schema, &surprise).unwrap();
    assert!(!errors.is_empty(), "the documented account accepts an unlisted field");
    c.finish();
}

/// Every operation that takes `expand[]`, with paths that expand every
/// relation it has, and the fields those paths turn into objects.
fn expansions(ids: &BTreeMap<&str, String>) -> Vec<(&'static str, String, &'static [&'static str])> {
    let (payment, account, refund) = (&ids["payment"], &ids["account"], &ids["refund"]);
    vec![
        (
            "list_payments",
            "/v1/payments?expand[]=data.customer&expand[]=data.source".to_owned(),
            &["customer", "source"],
        ),
        (
            "retrieve_payment",
            format!("/v1/payments/{payment}?expand[]=customer&expand[]=source&expand[]=destination"),
            &["customer", "source", "destination"],
        ),
        (
            "list_accounts",
            "/v1/accounts?expand[]=data.customer".to_owned(),
            &["customer"],
        ),
        (
            "retrieve_account",
            format!("/v1/accounts/{account}?expand[]=customer"),
            &["customer"],
        ),
        (
            "list_refunds",
            "/v1/refunds?expand[]=data.payment".to_owned(),
            &["payment"],
        ),
        (
            "retrieve_refund",
            format!("/v1/refunds/{refund}?expand[]=payment"),
            &["payment"],
        ),
        (
            "list_ledger_entries",
            format!("/v1/accounts/{account}/entries?expand[]=data.account&expand[]=data.payment&expand[]=data.refund"),
            &["account", "payment", "refund"],
        ),
    ]
}

both!(
    expanded_responses_match_the_document,
    expanded_responses_match_the_document_case
);
/// `expand[]` replaces an id with its object, so a schema that allows only
/// the id there rejects the answer a client asked for; kept apart from
/// [`every_response_matches_the_document_case`] so each says what it found.
async fn expanded_responses_match_the_document_case(app: &TestApp) {
    let mut c = Contract::new(app).await;
    let customer = app.post("/v1/customers", json!({"name": "Ada"})).await.id();
    let account = app
        .post(
            "/v1/accounts",
            json!({"name": "alice", "currency": "usd", "customer": customer}),
        )
        .await
        .id();
    let bank = app.account("bank", "usd", true).await;
    let payment = app
        .post(
            "/v1/payments",
            json!({"amount": 1_000, "currency": "usd", "source": bank, "destination": account, "customer": customer}),
        )
        .await
        .id();
    let refund = app
        .post("/v1/refunds", json!({"payment": payment, "amount": 100}))
        .await
        .id();
    let ids = BTreeMap::from([("payment", payment), ("account", account), ("refund", refund)]);

    for (operation, path, fields) in expansions(&ids) {
        let body = c.ok(operation, &path, None).await;
        // The server did expand (a null relation stays null): otherwise
        // this checks nothing.
        let shown: Vec<&Value> = body["data"].as_array().map_or(vec![&body], |d| d.iter().collect());
        for field in fields {
            assert!(
                shown.iter().all(|o| o[field].is_null() || o[field].is_object())
                    && shown.iter().any(|o| o[field].is_object()),
                "{path} did not expand `{field}`: {body}"
            );
        }
        let route = c.route(operation);
        if !has_parameter(operation_of(&c.doc, route), "expand[]", "query") {
            let name = describe(route);
            c.problems
                .push(format!("{name} takes `expand[]`, which the document does not list"));
        }
    }
    let problems = std::mem::take(&mut c.problems);
    assert!(
        problems.is_empty(),
        "{} disagreements of expanded answers with /openapi.json:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
