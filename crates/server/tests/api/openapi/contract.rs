//! Every operation driven to a success and to a failure through HTTP, each
//! answer checked against the document's own schema for its status, plain
//! and expanded.

#![allow(clippy::wildcard_imports)]

use super::*;
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
pub(super) struct Contract<'a> {
    app: &'a TestApp,
    pub(super) doc: Value,
    routes: Vec<Route>,
    validators: HashMap<String, jsonschema::Validator>,
    succeeded: BTreeSet<&'static str>,
    failed: BTreeSet<&'static str>,
    pub(super) problems: Vec<String>,
}

impl<'a> Contract<'a> {
    pub(super) async fn new(app: &'a TestApp) -> Self {
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

    pub(super) fn route(&self, operation: &str) -> &Route {
        self.routes
            .iter()
            .find(|r| r.operation == operation)
            .unwrap_or_else(|| panic!("no route for `{operation}`"))
    }

    /// `operation` at `path` with the admin key, the JSON `body` and `headers`.
    pub(super) async fn send(
        &self,
        operation: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
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
    pub(super) fn check(&mut self, operation: &str, path: &str, r: &Resp) {
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
    pub(super) fn violations(&mut self, key: &str, schema: &Value, instance: &Value) -> Result<Vec<String>, String> {
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
    pub(super) fn check_request(&mut self, operation: &str, body: &Value, accepted: bool) {
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
    pub(super) async fn ok(&mut self, operation: &str, path: &str, body: Option<Value>) -> Value {
        self.ok_with(operation, path, body, &[]).await
    }

    pub(super) async fn ok_with(
        &mut self,
        operation: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Value {
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
    pub(super) async fn fail(&mut self, index: usize) {
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
    pub(super) fn finish(self) {
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
pub(super) async fn quick_queue(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
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
        "replay_webhooks",
        &format!("/v1/webhook_endpoints/{we}/replay"),
        Some(json!({"since": 0, "failed_only": true})),
    )
    .await;
    c.ok("send_webhook_test", &format!("/v1/webhook_endpoints/{we}/test"), None)
        .await;
    c.ok(
        "list_webhook_deliveries",
        &format!("{deliveries}?event_type=webhook_endpoint.test"),
        None,
    )
    .await;
    c.ok("webhook_stats", "/v1/webhook_stats", None).await;
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
