//! Checks each schema of [`super`] against real instances serialized the
//! way the REST API serializes them, so the published description cannot
//! drift from the JSON clients receive.

use std::collections::BTreeMap;

use http_body_util::BodyExt;
use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::ids::*;
use settle_domain::ledger::LedgerEntry;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_domain::payment::{Payment, PaymentStatus};
use settle_domain::rbac::Role;
use settle_domain::refund::{Refund, RefundReason, RefundStatus};
use settle_domain::webhook::*;
use settle_store::list::Page;
use settle_store::records::{ApiKey, AuditEvent, Deleted, Event, StoredPolicy};

use super::*;

/// Builds a validator for one component: the trick in
/// [`validation_root`], compiled as JSON Schema 2020-12.
fn validator_for(document: &Value, schema_name: &str) -> jsonschema::Validator {
    jsonschema::draft202012::new(&validation_root(document, schema_name)).expect("the schema compiles")
}

fn document() -> Value {
    json!({ "components": serde_json::to_value(components()).expect("components serialize") })
}

/// Fails with every violation listed, so a mismatch is fixed in one go.
fn check(name: &str, instance: &impl serde::Serialize) -> Value {
    let value = serde_json::to_value(instance).expect("the instance serializes");
    let errors: Vec<String> = validator_for(&document(), name)
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name} {value}: {errors:#?}");
    value
}

fn rejects(name: &str, value: &Value) {
    assert!(
        !validator_for(&document(), name).is_valid(value),
        "{name} accepted {value}"
    );
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid_v7(1_700_000_000_000 + n as u64, n)
}

fn usd() -> Currency {
    Currency::parse("usd").expect("usd is known")
}

fn meta() -> Metadata {
    Metadata::parse(BTreeMap::from([("order".into(), "42".into())])).expect("small metadata")
}

fn account(customer: Option<CustomerId>) -> Account {
    Account {
        id: AccountId::from_uuid(uuid(1)),
        name: "Operating".into(),
        currency: usd(),
        balance: -500,
        pending_out: 200,
        allow_negative: true,
        processor: false,
        customer,
        metadata: meta(),
        version: 3,
        created: 1_700_000_000,
    }
}

fn payment(customer: Option<CustomerId>, description: Option<String>) -> Payment {
    Payment {
        id: PaymentId::from_uuid(uuid(2)),
        amount: 1_000,
        currency: usd(),
        source: AccountId::from_uuid(uuid(3)),
        destination: AccountId::from_uuid(uuid(4)),
        customer,
        status: PaymentStatus::RequiresCapture,
        amount_captured: 0,
        amount_refunded: 0,
        description,
        metadata: Metadata::default(),
        version: 1,
        created: 1_700_000_000,
    }
}

fn endpoint() -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(uuid(5)),
        url: "https://example.com/hook".into(),
        enabled_events: EnabledEvents::new(vec!["payment.succeeded".into()]).expect("a known type"),
        description: None,
        metadata: Metadata::default(),
        status: EndpointStatus::Disabled,
        disabled_reason: Some("410 Gone".into()),
        version: 2,
        created: 1_700_000_000,
    }
}

fn event(data: Value) -> Event {
    Event {
        id: EventId::from_uuid(uuid(6)),
        event_type: "payment.succeeded".into(),
        data: json!({ "object": data }),
        sequence: 2,
        position: None,
        request_id: Some("req_0000000000000000000000000A".into()),
        created: 1_700_000_000,
        traceparent: None,
    }
}

#[test]
fn every_component_compiles_and_is_closed() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert_eq!(schemas.len(), 19);
    for (name, schema) in schemas {
        validator_for(&doc, name);
        if schema["type"] == "object" {
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert!(schema["description"].is_string(), "{name}");
        }
    }
}

#[test]
fn money_objects_match() {
    let customer = CustomerId::from_uuid(uuid(7));
    check("Account", &account(None));
    check("Account", &account(Some(customer)));
    check("Payment", &payment(None, None));
    check("Payment", &payment(Some(customer), Some("Invoice 7".into())));
    check(
        "Customer",
        &Customer {
            id: customer,
            name: None,
            email: Some("a@b.co".into()),
            metadata: meta(),
            version: 1,
            created: 1_700_000_000,
        },
    );
    for reason in [None, Some(RefundReason::RequestedByCustomer)] {
        check(
            "Refund",
            &Refund {
                id: RefundId::from_uuid(uuid(8)),
                payment: PaymentId::from_uuid(uuid(2)),
                amount: 250,
                currency: usd(),
                reason,
                status: RefundStatus::Succeeded,
                created: 1_700_000_000,
            },
        );
    }
    check(
        "LedgerEntry",
        &LedgerEntry {
            id: LedgerEntryId::from_uuid(uuid(9)),
            account: AccountId::from_uuid(uuid(3)),
            amount: -1_000,
            payment: Some(PaymentId::from_uuid(uuid(2))),
            refund: None,
            created: 1_700_000_000,
        },
    );
}

#[test]
fn events_carry_each_kind_of_object() {
    let deleted = Deleted {
        id: CustomerId::from_uuid(uuid(7)).to_string(),
        object: "customer",
        deleted: true,
    };
    for data in [
        serde_json::to_value(payment(None, None)),
        serde_json::to_value(account(None)),
        serde_json::to_value(endpoint()),
        serde_json::to_value(&deleted),
    ] {
        check("Event", &event(data.expect("serializes")));
    }
    let good = check(
        "Event",
        &event(serde_json::to_value(payment(None, None)).expect("serializes")),
    );
    let mut unknown = good.clone();
    unknown["type"] = json!("payment.exploded");
    rejects("Event", &unknown);
    // The `$ref`s inside `data.object` are followed, and stay closed.
    let mut nested = good;
    nested["data"]["object"]["surprise"] = json!(true);
    rejects("Event", &nested);
}

#[test]
fn webhook_objects_match() {
    let plain = check("WebhookEndpoint", &endpoint());
    let mut created = plain.clone();
    created["secret"] = json!(settle_core::webhook::signing::SigningSecret::generate().reveal());
    check("WebhookEndpoint", &created);
    let delivery = WebhookDeliveryId::from_uuid(uuid(10));
    check(
        "WebhookDelivery",
        &WebhookDelivery {
            id: delivery,
            endpoint: WebhookEndpointId::from_uuid(uuid(5)),
            event: EventId::from_uuid(uuid(6)),
            event_type: "payment.succeeded".into(),
            status: DeliveryStatus::Pending,
            attempts: 1,
            next_attempt: Some(1_700_000_005),
            last_status: Some(500),
            created: 1_700_000_000,
            replayed: false,
        },
    );
    check(
        "WebhookAttempt",
        &WebhookAttempt {
            id: WebhookAttemptId::from_uuid(uuid(11)),
            delivery,
            duration_ms: 12,
            request_id: "req_0000000000000000000000000A".into(),
            response_status: None,
            response_excerpt: None,
            error: Some("connection refused".into()),
            created: 1_700_000_000,
        },
    );
    check(
        "WebhookReplay",
        &WebhookReplay {
            id: WebhookReplayId::from_uuid(uuid(12)),
            endpoint: WebhookEndpointId::from_uuid(uuid(5)),
            since: 1_699_000_000,
            until: 1_700_000_000,
            failed_only: false,
            status: "running".into(),
            deliveries: 0,
            created: 1_700_000_000,
        },
    );
}

#[test]
fn access_objects_match() {
    let key_id = ApiKeyId::from_uuid(uuid(13));
    let fresh = settle_core::auth::generate_secret(key_id);
    let key = ApiKey {
        id: key_id,
        name: "ci".into(),
        prefix: fresh.prefix.clone(),
        role: "developer".into(),
        secret_hash: fresh.hash.clone(),
        created: 1_700_000_000,
        last_used: None,
        expires_at: Some(1_800_000_000),
        revoked_at: None,
    };
    let mut created = check("ApiKey", &key);
    created["secret"] = json!(fresh.secret);
    check("ApiKey", &created);
    check(
        "Role",
        &Role {
            id: RoleId::from_uuid(uuid(14)),
            name: "developer".into(),
            permissions: settle_domain::rbac::builtin_permissions("developer").expect("built in"),
            builtin: true,
            version: 1,
            created: 1_700_000_000,
        },
    );
    check(
        "Policy",
        &StoredPolicy {
            id: PolicyId::from_uuid(uuid(15)),
            name: "small refunds".into(),
            policy: "permit(principal, action, resource);".into(),
            description: None,
            version: 1,
            created: 1_700_000_000,
            disabled_at: Some(1_700_000_100),
        },
    );
    check("PolicySchema", &settle_core::policy::SCHEMA);
    check(
        "AuditEvent",
        &AuditEvent {
            id: AuditEventId::from_uuid(uuid(16)),
            api_key: Some(key_id),
            operation: "create_payment".into(),
            permission: "payments:write".into(),
            target: None,
            request_id: "req_0000000000000000000000000A".into(),
            outcome: "insufficient_funds".into(),
            status: 422,
            created: 1_700_000_000,
        },
    );
    for object in ["role", "policy", "webhook_endpoint"] {
        let id = match object {
            "role" => RoleId::from_uuid(uuid(14)).to_string(),
            "policy" => PolicyId::from_uuid(uuid(15)).to_string(),
            _ => WebhookEndpointId::from_uuid(uuid(5)).to_string(),
        };
        check(
            "Deleted",
            &Deleted {
                id,
                object,
                deleted: true,
            },
        );
    }
}

#[test]
fn queue_status_matches() {
    use settle_core::operations::*;
    let mut status = QueueStatus {
        object: "queue",
        backend: "embedded",
        consumers: vec![ConsumerStatus {
            consumer: "webhooks".into(),
            pending: 3,
            oldest_pending_age_ms: 40,
            dead_letters: 0,
        }],
        relay: RelayStatus { pending: 0, lag_ms: 0 },
        processor: None,
        fanout_processed: 9,
        buried: 0,
        broker_error: None,
    };
    check("Queue", &status);
    status.processor = Some(ProcessorStatus {
        breaker: "half_open",
        breaker_opened: 1,
        breaker_closed: 0,
        charges_succeeded: 5,
        charges_declined: 1,
        charges_failed_transiently: 2,
    });
    status.broker_error = Some("timed out".into());
    check("Queue", &status);
}

async fn body(response: axum::response::Response) -> Value {
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("JSON body")
}

#[tokio::test]
async fn rendered_errors_and_lists_match() {
    let request_id = "req_3ZZZZZZZZZZZZZZZZZZZZZZZZZ";
    let with_param =
        body(crate::error::ApiError::invalid("parameter_invalid", "amount", "Bad.").render(request_id)).await;
    check("Error", &with_param);
    let without = body(crate::error::ApiError::internal().render(request_id)).await;
    assert!(without["error"].get("param").is_none());
    check("Error", &without);

    let page = Page {
        data: vec![payment(None, None)],
        has_more: true,
    };
    let list = body(crate::rest::serve::Render::render(page, "/v1/payments")).await;
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "$ref": "#/$defs/list",
        "$defs": { "list": serde_json::to_value(list_of("Payment")).expect("serializes") },
    });
    let validator = jsonschema::draft202012::new(&root).expect("compiles");
    assert!(validator.is_valid(&list), "{list}");
    let mut wrong = list.clone();
    wrong["data"][0]["object"] = json!("refund");
    assert!(!validator.is_valid(&wrong));
}

#[test]
fn undocumented_missing_or_mistyped_fields_are_caught() {
    let good = serde_json::to_value(payment(None, None)).expect("serializes");
    let mut extra = good.clone();
    extra["surprise"] = json!(1);
    rejects("Payment", &extra);
    let mut missing = good.clone();
    missing.as_object_mut().map(|o| o.remove("customer"));
    rejects("Payment", &missing);
    let mut lower = good.clone();
    lower["id"] = json!(good["id"].as_str().map(str::to_lowercase));
    rejects("Payment", &lower);
    let mut foreign = good.clone();
    foreign["id"] = json!(AccountId::from_uuid(uuid(1)).to_string());
    rejects("Payment", &foreign);
    let mut too_big = good;
    too_big["amount"] = json!(MAX_SAFE + 1);
    rejects("Payment", &too_big);
    let mut refund = serde_json::to_value(Refund {
        id: RefundId::from_uuid(uuid(8)),
        payment: PaymentId::from_uuid(uuid(2)),
        amount: 250,
        currency: usd(),
        reason: None,
        status: RefundStatus::Succeeded,
        created: 1_700_000_000,
    })
    .expect("serializes");
    refund["reason"] = json!("because");
    rejects("Refund", &refund);
    rejects(
        "Error",
        &json!({"error": {"type": "api_error", "code": "x", "message": "y", "request_id": "r"}}),
    );
}
