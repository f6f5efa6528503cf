//! Objects as the pipeline gives them (REST's JSON: a fresh answer and a
//! replayed one look the same) into their protobuf messages, and the
//! protobuf shapes of lists and metadata patches into the operations'.

use std::collections::{BTreeMap, HashMap};

use prost_types::value::Kind;
use serde_json::Value;
use settle_core::ops::ListParams;
use settle_core::pipeline::Failure;
use settle_core::shown::{int, opt_text, text, texts};
use settle_store::list::{DEFAULT_LIMIT, MAX_LIMIT};
use settle_store::{Cursor, ListQuery};
use uuid::Uuid;

use crate::pb;

fn metadata(v: &Value) -> HashMap<String, String> {
    v["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn list<T>(page: &Value, item: fn(&Value) -> T) -> (Vec<T>, bool) {
    let data = page["data"]
        .as_array()
        .map(|a| a.iter().map(item).collect())
        .unwrap_or_default();
    (data, page["has_more"].as_bool().unwrap_or(false))
}

pub fn account(v: &Value) -> pb::Account {
    pb::Account {
        id: text(v, "id"),
        name: text(v, "name"),
        currency: text(v, "currency"),
        balance: int(v, "balance"),
        pending_out: int(v, "pending_out"),
        available: int(v, "available"),
        allow_negative: v["allow_negative"].as_bool().unwrap_or(false),
        processor: v["processor"].as_bool().unwrap_or(false),
        customer: opt_text(v, "customer"),
        metadata: metadata(v),
        version: int(v, "version"),
        created: int(v, "created"),
    }
}

pub fn accounts(page: &Value) -> pb::AccountList {
    let (data, has_more) = list(page, account);
    pb::AccountList { data, has_more }
}

pub fn customer(v: &Value) -> pb::Customer {
    pb::Customer {
        id: text(v, "id"),
        name: opt_text(v, "name"),
        email: opt_text(v, "email"),
        metadata: metadata(v),
        version: int(v, "version"),
        created: int(v, "created"),
    }
}

pub fn customers(page: &Value) -> pb::CustomerList {
    let (data, has_more) = list(page, customer);
    pb::CustomerList { data, has_more }
}

/// A relation as REST shows it: its id, or the object when expanded.
fn related<T>(v: &Value, k: &str, object: fn(&Value) -> T) -> (Option<String>, Option<T>) {
    match &v[k] {
        Value::String(id) => (Some(id.clone()), None),
        expanded @ Value::Object(_) => (opt_text(expanded, "id"), Some(object(expanded))),
        _ => (None, None),
    }
}

pub fn payment(v: &Value) -> pb::Payment {
    let (customer, customer_expanded) = related(v, "customer", self::customer);
    let (source, source_expanded) = related(v, "source", account);
    let (destination, destination_expanded) = related(v, "destination", account);
    pb::Payment {
        id: text(v, "id"),
        amount: int(v, "amount"),
        currency: text(v, "currency"),
        source: source.unwrap_or_default(),
        destination: destination.unwrap_or_default(),
        customer,
        customer_expanded,
        source_expanded,
        destination_expanded,
        status: text(v, "status"),
        amount_captured: int(v, "amount_captured"),
        amount_refunded: int(v, "amount_refunded"),
        description: opt_text(v, "description"),
        metadata: metadata(v),
        version: int(v, "version"),
        created: int(v, "created"),
    }
}

pub fn payments(page: &Value) -> pb::PaymentList {
    let (data, has_more) = list(page, payment);
    pb::PaymentList { data, has_more }
}

pub fn refund(v: &Value) -> pb::Refund {
    pb::Refund {
        id: text(v, "id"),
        payment: text(v, "payment"),
        amount: int(v, "amount"),
        currency: text(v, "currency"),
        reason: opt_text(v, "reason"),
        status: text(v, "status"),
        created: int(v, "created"),
    }
}

pub fn refunds(page: &Value) -> pb::RefundList {
    let (data, has_more) = list(page, refund);
    pb::RefundList { data, has_more }
}

pub fn event(v: &Value) -> pb::Event {
    let data = match json_to_proto(&v["data"]).kind {
        Some(Kind::StructValue(s)) => Some(s),
        _ => None,
    };
    pb::Event {
        id: text(v, "id"),
        r#type: text(v, "type"),
        data,
        sequence: int(v, "sequence"),
        position: v["position"].as_i64(),
        request_id: opt_text(v, "request_id"),
        created: int(v, "created"),
    }
}

pub fn events(page: &Value) -> pb::EventList {
    let (data, has_more) = list(page, event);
    pb::EventList { data, has_more }
}

pub fn webhook_endpoint(v: &Value) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: text(v, "id"),
        url: text(v, "url"),
        enabled_events: texts(v, "enabled_events"),
        description: opt_text(v, "description"),
        metadata: metadata(v),
        status: text(v, "status"),
        disabled_reason: opt_text(v, "disabled_reason"),
        version: int(v, "version"),
        created: int(v, "created"),
        secret: opt_text(v, "secret"),
    }
}

pub fn webhook_endpoints(page: &Value) -> pb::WebhookEndpointList {
    let (data, has_more) = list(page, webhook_endpoint);
    pb::WebhookEndpointList { data, has_more }
}

pub fn deleted(v: &Value) -> pb::Deleted {
    pb::Deleted {
        id: text(v, "id"),
        deleted: v["deleted"].as_bool().unwrap_or(false),
    }
}

/// JSON as `google.protobuf.Value` (numbers become doubles, as the
/// well-known type has no integers; amounts in events stay exact up to
/// 2^53).
fn json_to_proto(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_proto).collect(),
        }),
        Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), json_to_proto(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Metadata of a create: empty means none.
pub fn new_metadata(map: HashMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then(|| map.into_iter().collect())
}

/// A metadata patch: keys to set, and keys to remove.
pub fn metadata_patch(
    set: HashMap<String, String>,
    remove: Vec<String>,
) -> Result<Option<BTreeMap<String, Option<String>>>, Failure> {
    if let Some(both) = remove.iter().find(|k| set.contains_key(*k)) {
        return Err(Failure::invalid(
            "parameter_invalid",
            "metadata_remove",
            format!("`{both}` is both set and removed."),
        ));
    }
    let mut patch: BTreeMap<String, Option<String>> = set.into_iter().map(|(k, v)| (k, Some(v))).collect();
    patch.extend(remove.into_iter().map(|k| (k, None)));
    Ok((!patch.is_empty()).then_some(patch))
}

/// A `clear` list, checked against the fields that may be cleared.
pub fn clears(clear: &[String], allowed: &[&str], field: &str) -> Result<bool, Failure> {
    if let Some(unknown) = clear.iter().find(|c| !allowed.contains(&c.as_str())) {
        return Err(Failure::invalid(
            "parameter_invalid",
            "clear",
            format!("`{unknown}` cannot be cleared; these can: {}.", allowed.join(", ")),
        ));
    }
    Ok(clear.iter().any(|c| c == field))
}

/// A page and at most one equality filter, as REST reads them.
pub fn page(
    page: Option<pb::Page>,
    cursor: fn(&str) -> Option<Uuid>,
    filters: &[(&str, &Option<String>)],
) -> Result<ListParams, Failure> {
    let page = page.unwrap_or_default();
    let limit = match page.limit {
        0 => DEFAULT_LIMIT,
        n if n <= MAX_LIMIT => n,
        _ => {
            return Err(Failure::invalid(
                "parameter_invalid",
                "limit",
                format!("`limit` must be between 1 and {MAX_LIMIT}."),
            ));
        }
    };
    let mut query = ListQuery::first(limit);
    if let Some(after) = page.starting_after {
        let id = cursor(&after).ok_or_else(|| Failure::names_nothing("starting_after"))?;
        query.cursor = Some(Cursor::StartingAfter(id));
    }
    ListParams::new(query).one_filter(filters.iter().map(|(k, v)| (*k, v.as_deref())))
}
