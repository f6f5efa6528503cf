//! The OpenAPI 3.1 schemas of every object the REST API answers with, and
//! of its error body. Written by hand to match the JSON Settle serializes
//! today, field for field, and closed (`additionalProperties: false`) so a
//! test that checks a live response against them notices a field added to
//! the code and not to the description.

use serde_json::{Value, json};
use settle_domain::money::MAX_SAFE;
use settle_domain::rbac::all_permissions;
use settle_domain::webhook::EVENT_TYPES;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType,
    Type,
};
use utoipa::openapi::{Components, ComponentsBuilder, Ref, RefOr};

/// A `#/components/schemas/<name>` reference, so operations name the
/// shared schema instead of repeating it.
pub fn object_ref(name: &str) -> Ref {
    Ref::from_schema_name(name)
}

/// Every object the REST API returns, under the names operations refer to.
pub fn components() -> Components {
    ComponentsBuilder::new()
        .schema("Account", account())
        .schema("Customer", customer())
        .schema("Payment", payment())
        .schema("Refund", refund())
        .schema("LedgerEntry", ledger_entry())
        .schema("Event", event())
        .schema("WebhookEndpoint", webhook_endpoint())
        .schema("WebhookDelivery", webhook_delivery())
        .schema("WebhookAttempt", webhook_attempt())
        .schema("WebhookReplay", webhook_replay())
        .schema("WebhookStats", webhook_stats())
        .schema("ApiKey", api_key())
        .schema("Role", role())
        .schema("Policy", policy())
        .schema("PolicySchema", policy_schema())
        .schema("AuditEvent", audit_event())
        .schema("Queue", queue())
        .schema("Deleted", deleted())
        .schema("Error", error())
        .build()
}

/// The envelope every list route answers with, its `data` being `item`s.
pub fn list_of(item: &str) -> RefOr<Schema> {
    object(&format!(
        "One page of {item} objects, so a client walks any number of them at constant cost; `has_more` says whether another page follows."
    ))
    .field("object", constant("list"))
    .field("data", ArrayBuilder::new().items(object_ref(item)))
    .field("has_more", boolean())
    .field("url", string().description(Some("The route this page came from.")))
    .into()
}

/// A root schema that validates an instance against the component
/// `schema_name` of `document` (an OpenAPI document, or any JSON holding
/// `{"components": {"schemas": …}}`). The components ride along beside the
/// `$ref`, so the `#/components/schemas/…` references inside them resolve
/// within this one schema, with no registry or retrieval; a JSON Schema
/// 2020-12 validator ignores the unknown `components` keyword.
pub fn validation_root(document: &Value, schema_name: &str) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{schema_name}"),
        "components": document.get("components").cloned().unwrap_or(Value::Null),
    })
}

/// Adds a property to an object schema; `field` marks it required, which in
/// Settle's JSON means always present (null when it has no value).
trait Fields {
    fn field(self, name: &str, schema: impl Into<RefOr<Schema>>) -> Self;
    fn optional(self, name: &str, schema: impl Into<RefOr<Schema>>) -> Self;
}

impl Fields for ObjectBuilder {
    fn field(self, name: &str, schema: impl Into<RefOr<Schema>>) -> Self {
        self.property(name, schema).required(name)
    }

    fn optional(self, name: &str, schema: impl Into<RefOr<Schema>>) -> Self {
        self.property(name, schema)
    }
}

/// A closed object: a property the schema does not list is an error.
fn object(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

fn typed(types: &[Type]) -> ObjectBuilder {
    let schema_type = match types {
        [one] => SchemaType::new(one.clone()),
        many => many.iter().cloned().collect(),
    };
    ObjectBuilder::new().schema_type(schema_type)
}

fn string() -> ObjectBuilder {
    typed(&[Type::String])
}

fn nullable_string() -> ObjectBuilder {
    typed(&[Type::String, Type::Null])
}

fn boolean() -> ObjectBuilder {
    typed(&[Type::Boolean])
}

fn int64(types: &[Type]) -> ObjectBuilder {
    typed(types).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

fn integer() -> ObjectBuilder {
    int64(&[Type::Integer])
}

/// A count or a duration: never negative.
fn count() -> ObjectBuilder {
    integer().minimum(Some(0))
}

fn timestamp(description: &str) -> ObjectBuilder {
    integer().description(Some(description))
}

fn created() -> ObjectBuilder {
    timestamp("When the object was created, in Unix seconds.")
}

fn nullable_timestamp(description: &str) -> ObjectBuilder {
    int64(&[Type::Integer, Type::Null]).description(Some(description))
}

/// An amount a client sent: positive and exact in every JSON client.
fn amount() -> ObjectBuilder {
    integer().minimum(Some(1)).maximum(Some(MAX_SAFE))
}

/// A sum of amounts (captured, refunded, held): never negative.
fn total() -> ObjectBuilder {
    integer().minimum(Some(0)).maximum(Some(MAX_SAFE))
}

fn version() -> ObjectBuilder {
    integer().minimum(Some(1)).description(Some(
        "Grows by one on every change; sent back as `ETag` and checked against `If-Match`.",
    ))
}

/// The one value `object` takes for a type, so a reader can dispatch on it.
fn constant(value: &str) -> ObjectBuilder {
    string().enum_values(Some([value]))
}

fn one_of_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    string().enum_values(Some(values))
}

/// A closed set whose value may also be null; JSON Schema checks `enum`
/// apart from `type`, so null has to be one of the values too.
fn nullable_one_of(values: &[&str]) -> ObjectBuilder {
    let values: Vec<Value> = values.iter().map(|v| json!(v)).chain([Value::Null]).collect();
    nullable_string().enum_values(Some(values))
}

/// An id as the API shows it: prefix, `_`, then a UUIDv7 as 26 Crockford
/// base32 characters, upper case, the first at most `7` (128 bits in 130).
/// The id prefix of the objects a schema describes (for cursors), if any.
pub fn id_prefix_of(schema_name: &str) -> Option<&'static str> {
    use settle_domain::ids::*;
    Some(match schema_name {
        "Account" => AccountId::PREFIX,
        "Customer" => CustomerId::PREFIX,
        "Payment" => PaymentId::PREFIX,
        "Refund" => RefundId::PREFIX,
        "LedgerEntry" => LedgerEntryId::PREFIX,
        "Event" => EventId::PREFIX,
        "WebhookEndpoint" => WebhookEndpointId::PREFIX,
        "WebhookDelivery" => WebhookDeliveryId::PREFIX,
        "WebhookAttempt" => WebhookAttemptId::PREFIX,
        "WebhookReplay" => WebhookReplayId::PREFIX,
        "ApiKey" => ApiKeyId::PREFIX,
        "Role" => RoleId::PREFIX,
        "Policy" => PolicyId::PREFIX,
        "AuditEvent" => AuditEventId::PREFIX,
        _ => return None,
    })
}

/// What ids with `prefixes` look like (Crockford base32 of a UUIDv7).
pub fn id_pattern(prefixes: &str) -> String {
    format!("^{prefixes}_[0-7][0-9A-HJKMNP-TV-Z]{{25}}$")
}

fn id(prefix: &str) -> ObjectBuilder {
    string().pattern(Some(id_pattern(prefix)))
}

fn nullable_id(prefix: &str) -> ObjectBuilder {
    nullable_string().pattern(Some(id_pattern(prefix)))
}

/// A field that holds an object's id, or the object itself when the
/// request asked for it with `expand[]`.
fn expandable(id: ObjectBuilder, object: &str) -> OneOfBuilder {
    OneOfBuilder::new()
        .item(id)
        .item(object_ref(object))
        .description(Some(format!(
            "The {object}'s id, or the {object} itself when named in `expand[]`."
        )))
}

fn currency() -> ObjectBuilder {
    string()
        .pattern(Some("^[a-z]{3}$"))
        .description(Some("Lower-case ISO 4217 code; amounts are in its minor unit."))
}

fn metadata() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Your own string keys and values; Settle only stores them."))
        .max_properties(Some(settle_domain::metadata::MAX_KEYS))
        .property_names(Some(
            string()
                .min_length(Some(1))
                .max_length(Some(settle_domain::metadata::MAX_KEY_CHARS)),
        ))
        .additional_properties(Some(
            string().max_length(Some(settle_domain::metadata::MAX_VALUE_CHARS)),
        ))
}

fn account() -> ObjectBuilder {
    object("A balance in one currency that payments move money into and out of.")
        .field("id", id("acct"))
        .field("object", constant("account"))
        .field("name", string())
        .field("currency", currency())
        .field("balance", integer().minimum(Some(-MAX_SAFE)).maximum(Some(MAX_SAFE)))
        .field(
            "pending_out",
            total().description(Some("Held by payments not yet captured.")),
        )
        .field(
            "available",
            integer().description(Some("`balance − pending_out`: what payments and refunds may spend.")),
        )
        .field("allow_negative", boolean())
        .field(
            "processor",
            boolean().description(Some(
                "Funded by an external processor: payments from it wait in `processing` for its answer.",
            )),
        )
        .field("customer", expandable(nullable_id("cus"), "Customer"))
        .field("metadata", metadata())
        .field("version", version())
        .field("created", created())
}

fn customer() -> ObjectBuilder {
    object("The person or business that accounts and payments belong to.")
        .field("id", id("cus"))
        .field("object", constant("customer"))
        .field("name", nullable_string())
        .field("email", nullable_string())
        .field("metadata", metadata())
        .field("version", version())
        .field("created", created())
}

fn payment() -> ObjectBuilder {
    object("Moves an amount from a source account to a destination, at once or after a hold and capture.")
        .field("id", id("pay"))
        .field("object", constant("payment"))
        .field("amount", amount())
        .field("currency", currency())
        .field("source", expandable(id("acct"), "Account"))
        .field("destination", expandable(id("acct"), "Account"))
        .field("customer", expandable(nullable_id("cus"), "Customer"))
        .field(
            "status",
            one_of_strings(settle_domain::payment::PaymentStatus::ALL.map(|s| s.as_str())),
        )
        .field("amount_captured", total())
        .field("amount_refunded", total())
        .field("description", nullable_string())
        .field("metadata", metadata())
        .field("version", version())
        .field("created", created())
}

fn refund() -> ObjectBuilder {
    object("Moves captured money of a payment back from its destination to its source.")
        .field("id", id("re"))
        .field("object", constant("refund"))
        .field("payment", expandable(id("pay"), "Payment"))
        .field("amount", amount())
        .field("currency", currency())
        .field(
            "reason",
            nullable_one_of(&["duplicate", "fraudulent", "requested_by_customer"]),
        )
        .field("status", one_of_strings(["succeeded"]))
        .field("created", created())
}

fn ledger_entry() -> ObjectBuilder {
    object("One signed line of the double-entry ledger, so every balance can be audited back to its movements.")
        .field("id", id("le"))
        .field("object", constant("ledger_entry"))
        .field("account", expandable(id("acct"), "Account"))
        .field(
            "amount",
            integer()
                .minimum(Some(-MAX_SAFE))
                .maximum(Some(MAX_SAFE))
                .description(Some("Negative when money leaves the account.")),
        )
        .field("payment", expandable(nullable_id("pay"), "Payment"))
        .field("refund", expandable(nullable_id("re"), "Refund"))
        .field("created", created())
}

fn event() -> ObjectBuilder {
    let changed = OneOfBuilder::new()
        .item(object_ref("Account"))
        .item(object_ref("Customer"))
        .item(object_ref("Payment"))
        .item(object_ref("Refund"))
        .item(object_ref("WebhookEndpoint"))
        .item(object_ref("Deleted"))
        .description(Some(
            "The object as it was right after the change (`Deleted` for `customer.deleted`).",
        ));
    object("A state change, recorded in the same transaction as the change, that webhooks and readers follow.")
        .field("id", id("evt"))
        .field("object", constant("event"))
        .field(
            "type",
            one_of_strings(EVENT_TYPES.iter().copied().chain([settle_domain::webhook::TEST_EVENT])),
        )
        .field("data", object("What the event carries.").field("object", changed))
        .field(
            "sequence",
            integer()
                .minimum(Some(1))
                .description(Some("Orders the events of one object: 1, 2, 3…")),
        )
        .field(
            "position",
            int64(&[Type::Integer, Type::Null]).minimum(Some(1)).description(Some(
                "Orders all events by commit, without gaps; null until numbered (PostgreSQL).",
            )),
        )
        .field("request_id", nullable_string())
        .field("created", created())
}

fn webhook_endpoint() -> ObjectBuilder {
    let enabled = ArrayBuilder::new()
        .items(one_of_strings(["*"].into_iter().chain(EVENT_TYPES.iter().copied())))
        .min_items(Some(1))
        .description(Some("The event types delivered here, or `[\"*\"]` for all."));
    object("A receiver URL and the events it wants delivered, signed.")
        .field("id", id("we"))
        .field("object", constant("webhook_endpoint"))
        .field("url", string())
        .field("enabled_events", enabled)
        .field("description", nullable_string())
        .field("metadata", metadata())
        .field("status", one_of_strings(["enabled", "disabled"]))
        .field(
            "disabled_reason",
            nullable_string().description(Some("Why Settle disabled it; null when enabled or disabled by a user.")),
        )
        .field("version", version())
        .field("created", created())
        .optional(
            "secret",
            string().pattern(Some("^whsec_[A-Za-z0-9+/]+={0,2}$")).description(Some(
                "The signing secret; only in the answers to create and `rotate_secret`.",
            )),
        )
}

fn webhook_delivery() -> ObjectBuilder {
    object("One event's delivery to one endpoint, retried on its schedule until a 2xx or the end.")
        .field("id", id("wd"))
        .field("object", constant("webhook_delivery"))
        .field("endpoint", id("we"))
        .field("event", id("evt"))
        .field("event_type", string().description(Some("The event's type.")))
        .field("status", one_of_strings(["pending", "delivered", "failed"]))
        .field("attempts", count())
        .field(
            "next_attempt",
            nullable_timestamp("When the next attempt is due, in Unix seconds, while pending."),
        )
        .field(
            "last_status",
            int64(&[Type::Integer, Type::Null]).description(Some("The HTTP status of the last answer, if any.")),
        )
        .field("created", created())
}

fn webhook_attempt() -> ObjectBuilder {
    object("One try of a delivery as the receiver answered it, kept so failures can be diagnosed.")
        .field("id", id("wa"))
        .field("object", constant("webhook_attempt"))
        .field("delivery", id("wd"))
        .field("duration_ms", count())
        .field("request_id", string())
        .field("response_status", int64(&[Type::Integer, Type::Null]))
        .field(
            "response_excerpt",
            nullable_string().description(Some("Up to 4 KiB of the response body.")),
        )
        .field(
            "error",
            nullable_string().description(Some("Why there was no answer (timeout, refused, SSRF guard).")),
        )
        .field("created", created())
}

fn webhook_replay() -> ObjectBuilder {
    object("Delivers an endpoint's events of a time range again, for a receiver that lost them.")
        .field("id", id("wrp"))
        .field("object", constant("webhook_replay"))
        .field("endpoint", id("we"))
        .field("since", timestamp("Start of the range, in Unix seconds, inclusive."))
        .field("until", timestamp("End of the range, in Unix seconds, exclusive."))
        .field(
            "failed_only",
            boolean().description(Some(
                "A recovery: only the deliveries that failed for good (retries used up) within the range are sent again.",
            )),
        )
        .field("status", one_of_strings(["running", "done"]))
        .field("deliveries", count().description(Some("Deliveries made so far.")))
        .field("created", created())
}

fn webhook_stats() -> ObjectBuilder {
    let minute = object("One minute's attempts by outcome.")
        .field("start", timestamp("The minute's start, in Unix seconds."))
        .field("delivered", count())
        .field("retrying", count())
        .field("failed", count());
    let latency = |d: &str| {
        typed(&[Type::Number, Type::Null])
            .minimum(Some(0.0))
            .description(Some(d))
    };
    let receipt = object("Commit to a receiver's 2xx, first attempts only, over the window.")
        .field("count", count())
        .field("p50_ms", latency("Median, in ms; null without deliveries."))
        .field("p99_ms", latency("99th percentile, in ms; null without deliveries."));
    let endpoint = object("One endpoint's backlog and breaker.")
        .field("id", id("we"))
        .field("url", string())
        .field("status", one_of_strings(["enabled", "disabled"]))
        .field(
            "pending",
            count().description(Some("Deliveries waiting for an attempt.")),
        )
        .field(
            "breaker",
            typed(&[Type::String, Type::Null])
                .enum_values(Some(["closed", "open", "half_open"]))
                .description(Some("Null until this process has sent to the endpoint.")),
        );
    object(
        "Whether deliveries are healthy at a glance. Per-minute figures, latency and breakers are the answering \
         process's; backlog and dead letters cover every process.",
    )
    .field("object", constant("webhook_stats"))
    .field("window_minutes", count())
    .field("minutes", ArrayBuilder::new().items(minute))
    .field("commit_to_receipt", receipt)
    .field("endpoints", ArrayBuilder::new().items(endpoint))
    .field(
        "dead_letters",
        count().description(Some(
            "Events the fan-out gave up on (the queue's dead letters for webhooks).",
        )),
    )
}

fn api_key() -> ObjectBuilder {
    object("A credential bound to one role; its secret is shown once, at creation.")
        .field("id", id("key"))
        .field("object", constant("api_key"))
        .field("name", string())
        .field(
            "prefix",
            string()
                .pattern(Some("^sk_[0-9A-HJKMNP-TV-Z]{9}$"))
                .description(Some("The secret's first characters, to recognise it.")),
        )
        .field("role", string().description(Some("The role's name.")))
        .field("created", created())
        .field(
            "last_used",
            nullable_timestamp("Last request, in Unix seconds; recorded lazily."),
        )
        .field(
            "expires_at",
            nullable_timestamp("After this (Unix seconds) the key is refused."),
        )
        .field(
            "revoked_at",
            nullable_timestamp("When the key was revoked (Unix seconds)."),
        )
        .optional(
            "secret",
            string()
                .pattern(Some("^sk_[0-9A-HJKMNP-TV-Z]{26}_[0-9A-HJKMNP-TV-Z]{52}$"))
                .description(Some(
                    "The bearer token; only in the create answer, and absent from its idempotent replay.",
                )),
        )
}

fn permission() -> ObjectBuilder {
    let all: Vec<String> = all_permissions().iter().map(ToString::to_string).collect();
    string().enum_values(Some(all))
}

fn role() -> ObjectBuilder {
    object("A named set of permissions that API keys are granted through.")
        .field("id", id("role"))
        .field("object", constant("role"))
        .field("name", string().pattern(Some("^[a-z][a-z0-9_-]{0,63}$")))
        .field(
            "permissions",
            ArrayBuilder::new().items(permission()).unique_items(true),
        )
        .field(
            "builtin",
            boolean().description(Some("Built-in roles are defined in code and cannot change.")),
        )
        .field("version", version())
        .field("created", created())
}

fn policy() -> ObjectBuilder {
    object("A Cedar policy for the decisions permissions alone cannot express.")
        .field("id", id("pol"))
        .field("object", constant("policy"))
        .field("name", string())
        .field(
            "policy",
            string().description(Some("Cedar text, validated against `PolicySchema`.")),
        )
        .field("description", nullable_string())
        .field("version", version())
        .field("created", created())
        .field(
            "status",
            one_of_strings(["enabled", "disabled"]).description(Some("A disabled policy is kept but not applied.")),
        )
}

/// Not JSON: the route answers `text/plain`.
fn policy_schema() -> ObjectBuilder {
    string().content_media_type("text/plain").description(Some(
        "The Cedar schema (served as text/plain) that policy authors write against.",
    ))
}

fn audit_event() -> ObjectBuilder {
    object("A record of who attempted which write, and how it ended, for accountability.")
        .field("id", id("au"))
        .field("object", constant("audit_event"))
        .field("api_key", nullable_id("key"))
        .field("operation", string())
        .field("permission", permission())
        .field(
            "target",
            nullable_string().description(Some("The id of the object written, when the write succeeded.")),
        )
        .field("request_id", string())
        .field("outcome", string().description(Some("`succeeded`, or the error code.")))
        .field("status", integer().minimum(Some(100)).maximum(Some(599)))
        .field("created", created())
}

fn queue() -> ObjectBuilder {
    let consumer = object("One consumer's backlog.")
        .field("consumer", string())
        .field("pending", count())
        .field("oldest_pending_age_ms", count())
        .field("dead_letters", count());
    let relay = object("Committed outbox rows the broker has not acknowledged yet.")
        .field("pending", count())
        .field("lag_ms", count());
    let processor = object("The external processor's breaker and outcomes; null when none is configured.")
        .schema_type([Type::Object, Type::Null].into_iter().collect::<SchemaType>())
        .field("breaker", one_of_strings(["closed", "open", "half_open"]))
        .field("breaker_opened", count())
        .field("breaker_closed", count())
        .field("charges_succeeded", count())
        .field("charges_declined", count())
        .field("charges_failed_transiently", count());
    object("The queue's health, so operators see backlog, lag and dead letters before users do.")
        .field("object", constant("queue"))
        .field("backend", one_of_strings(["embedded", "nats"]))
        .field("consumers", ArrayBuilder::new().items(consumer))
        .field("relay", relay)
        .field("processor", processor)
        .field("fanout_processed", count())
        .field("buried", count())
        .field(
            "broker_error",
            nullable_string().description(Some(
                "Set when the broker did not answer; consumer figures are then missing.",
            )),
        )
}

fn deleted() -> ObjectBuilder {
    object("Confirms a deletion, naming what is gone.")
        .field("id", string().pattern(Some(id_pattern("(cus|we|role|pol)"))))
        .field(
            "object",
            one_of_strings(["customer", "webhook_endpoint", "role", "policy"]),
        )
        .field("deleted", boolean().enum_values(Some([true])))
}

fn error() -> ObjectBuilder {
    let detail = object("What went wrong.")
        .field(
            "type",
            one_of_strings([
                "invalid_request_error",
                "authentication_error",
                "permission_error",
                "idempotency_error",
                "rate_limit_error",
                "api_error",
            ]),
        )
        .field("code", string().description(Some("Stable, for programs to branch on.")))
        .field("message", string().description(Some("For people; may change.")))
        .optional(
            "param",
            string().description(Some("The parameter at fault; absent when none is.")),
        )
        .field(
            "request_id",
            string()
                .pattern(Some("^req_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))
                .description(Some(
                    "Also in the `Request-Id` header; quote it when asking about a failure.",
                )),
        );
    object("Every failure, in one shape, so a client handles errors once.").field("error", detail)
}

#[cfg(test)]
mod tests;
