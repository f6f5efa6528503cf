//! Every query path Settle runs against a table that could grow large, with
//! sample parameters, so plan tests can `EXPLAIN` exactly what runs and
//! prove each path has its index (and that no index goes unused).

use super::customers::IN_USE_SQL;
use super::entries::SUM_SQL;
use super::events::{AFTER_POSITION_SQL, LAST_SEQUENCE_SQL};
use super::idempotency::REAP_SQL;
use super::list::{FilterValue, list_sql};
use super::queue::{REAP_PROCESSED_SQL, ready_sql};
use super::rbac::{ROLE_BY_NAME_SQL, ROLE_IN_USE_SQL};
use super::rows::{
    ACCOUNT_COLS, API_KEY_COLS, AUDIT_COLS, CUSTOMER_COLS, ENTRIES_OF_ACCOUNTS, ENTRY_COLS, EVENT_COLS, PAYMENT_COLS,
    POLICY_COLS, REFUND_COLS, REFUNDS_OF_PAYMENTS, ROLE_COLS, newest_per_parent_sql,
};
use super::webhook_replays::REPLAY_COLS;
use super::webhooks::{ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS};

/// A statement and the index that must serve it (`None`: the primary key).
#[derive(Debug, Clone)]
pub struct QueryPath {
    pub name: String,
    pub sql: String,
    pub binds: Vec<FilterValue>,
    pub index: Option<&'static str>,
    /// Whether the plan must also avoid a sort (ordered lists).
    pub ordered: bool,
}

/// An equality filter: (column, the index that serves it with the order).
pub type Filter = (&'static str, &'static str);

/// The lists: table, columns, and each equality filter with its index.
pub const LISTS: &[(&str, &str, &[Filter])] = &[
    ("accounts", ACCOUNT_COLS, &[("customer_id", "accounts_customer_id")]),
    ("customers", CUSTOMER_COLS, &[("email", "customers_email_id")]),
    (
        "payments",
        PAYMENT_COLS,
        &[
            ("status", "payments_status_id"),
            ("customer_id", "payments_customer_id"),
            ("source_id", "payments_source_id"),
            ("destination_id", "payments_destination_id"),
        ],
    ),
    ("refunds", REFUND_COLS, &[("payment_id", "refunds_payment_id")]),
    (
        "ledger_entries",
        ENTRY_COLS,
        &[("account_id", "ledger_entries_account_id")],
    ),
    (
        "events",
        EVENT_COLS,
        &[("type", "events_type_id"), ("object_id", "events_object_id")],
    ),
    ("webhook_endpoints", ENDPOINT_COLS, &[]),
    (
        "webhook_deliveries",
        DELIVERY_COLS,
        &[("endpoint_id", "webhook_deliveries_endpoint_id")],
    ),
    (
        "webhook_attempts",
        ATTEMPT_COLS,
        &[("delivery_id", "webhook_attempts_delivery_id")],
    ),
    (
        "webhook_replays",
        REPLAY_COLS,
        &[("endpoint_id", "webhook_replays_endpoint_id")],
    ),
    ("roles", ROLE_COLS, &[]),
    ("api_keys", API_KEY_COLS, &[]),
    ("policies", POLICY_COLS, &[]),
    ("audit_events", AUDIT_COLS, &[]),
];

fn sample(column: &str) -> FilterValue {
    match column {
        "status" => FilterValue::Text("succeeded".into()),
        "email" => FilterValue::Text("ada@example.com".into()),
        "type" => FilterValue::Text("payment.succeeded".into()),
        _ => FilterValue::Bytes(vec![0x01; 16]),
    }
}

fn bounds() -> [FilterValue; 2] {
    [FilterValue::Bytes(vec![0x00; 16]), FilterValue::Bytes(vec![0xff; 16])]
}

/// Every query path with its expected index.
pub fn query_paths() -> Vec<QueryPath> {
    let mut paths = Vec::new();
    for (table, columns, filters) in LISTS {
        for ascending in [false, true] {
            let dir = if ascending { "ending_before" } else { "starting_after" };
            // Entries, deliveries and attempts are only ever listed for
            // their account, endpoint or delivery.
            if ![
                "ledger_entries",
                "webhook_deliveries",
                "webhook_attempts",
                "webhook_replays",
            ]
            .contains(table)
            {
                paths.push(QueryPath {
                    name: format!("list {table} ({dir})"),
                    sql: list_sql(table, columns, &[], ascending, 100),
                    binds: bounds().to_vec(),
                    index: None,
                    ordered: true,
                });
            }
            for (column, index) in filters.iter() {
                let mut binds = vec![sample(column)];
                binds.extend(bounds());
                paths.push(QueryPath {
                    name: format!("list {table} by {column} ({dir})"),
                    sql: list_sql(table, columns, &[column], ascending, 100),
                    binds,
                    index: Some(index),
                    ordered: true,
                });
            }
        }
    }
    let by_endpoint_and = [
        ("status", "failed", "webhook_deliveries_endpoint_status"),
        ("event_type", "payment.succeeded", "webhook_deliveries_endpoint_type"),
    ];
    for (column, value, index) in by_endpoint_and {
        for ascending in [false, true] {
            let mut binds = vec![sample("endpoint_id"), FilterValue::Text(value.into())];
            binds.extend(bounds());
            paths.push(QueryPath {
                name: format!("list webhook_deliveries by endpoint and {column} (ascending: {ascending})"),
                sql: list_sql(
                    "webhook_deliveries",
                    DELIVERY_COLS,
                    &["endpoint_id", column],
                    ascending,
                    100,
                ),
                binds,
                index: Some(index),
                ordered: true,
            });
        }
    }
    // GraphQL's nested lists: the newest children of a whole page of parents.
    for (name, children, index) in [
        ("refunds of payments", REFUNDS_OF_PAYMENTS, "refunds_payment_id"),
        ("entries of accounts", ENTRIES_OF_ACCOUNTS, "ledger_entries_account_id"),
    ] {
        paths.push(QueryPath {
            name: format!("newest {name} (a window per parent)"),
            sql: newest_per_parent_sql(super::Dialect::Postgres, children, 2),
            binds: vec![
                FilterValue::Bytes(vec![0x01; 16]),
                FilterValue::Bytes(vec![0x02; 16]),
                FilterValue::Int(11),
            ],
            index: Some(index),
            ordered: false,
        });
    }
    let one = |name: &str, sql: &str, binds: Vec<FilterValue>, index: Option<&'static str>| QueryPath {
        name: name.into(),
        sql: sql.into(),
        binds,
        index,
        ordered: false,
    };
    let id = || vec![FilterValue::Bytes(vec![0x01; 16])];
    paths.push(one(
        "customer still referenced by an account",
        IN_USE_SQL[0],
        id(),
        Some("accounts_customer_id"),
    ));
    paths.push(one(
        "customer still referenced by a payment",
        IN_USE_SQL[1],
        id(),
        Some("payments_customer_id"),
    ));
    let text = |t: &str| vec![FilterValue::Text(t.into())];
    paths.push(one(
        "last event of an object",
        LAST_SEQUENCE_SQL,
        id(),
        Some("events_object_id"),
    ));
    paths.push(QueryPath {
        name: "events after a position (the commit stream)".into(),
        sql: AFTER_POSITION_SQL.into(),
        binds: vec![FilterValue::Int(1), FilterValue::Int(101)],
        index: Some("events_position"),
        ordered: true,
    });
    paths.push(one("role by name", ROLE_BY_NAME_SQL, text("admin"), Some("roles_name")));
    paths.push(one(
        "role still used by a key",
        ROLE_IN_USE_SQL,
        text("admin"),
        Some("api_keys_role"),
    ));
    paths.push(one(
        "sum of an account's entries",
        SUM_SQL,
        id(),
        Some("ledger_entries_account_id"),
    ));
    paths.push(one(
        "idempotency reaper batch",
        REAP_SQL,
        vec![FilterValue::Int(1), FilterValue::Int(1000)],
        Some("idempotency_keys_created"),
    ));
    paths.push(QueryPath {
        name: "ready jobs of a consumer".into(),
        // The claim's row-lock clause changes nothing in the plan.
        sql: ready_sql(super::Dialect::Sqlite, 1),
        binds: vec![
            FilterValue::Text("fanout".into()),
            FilterValue::Int(1),
            FilterValue::Int(100),
            FilterValue::Text("busy".into()),
        ],
        index: Some("jobs_ready"),
        ordered: true,
    });
    paths.push(one(
        "processed-message reaper batch",
        REAP_PROCESSED_SQL,
        vec![FilterValue::Int(1), FilterValue::Int(1000)],
        Some("processed_messages_processed"),
    ));
    paths
}
