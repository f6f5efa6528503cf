//! The operation registry: every operation Settle serves, with the one
//! permission it needs. Faces route to these; tests enumerate them; an
//! operation cannot exist without a permission.

use settle_domain::rbac::{Action, Permission, Resource};

use super::OperationSpec;

macro_rules! operations {
    ($($konst:ident = $name:literal, $action:ident($resource:ident), $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub static $konst: OperationSpec = OperationSpec {
                name: $name,
                permission: Permission::new(Resource::$resource, Action::$action),
                summary: $summary,
            };
        )*
        /// Every operation, in the order of the API document.
        pub static ALL: &[&OperationSpec] = &[$(&$konst),*];
    };
}

operations! {
    CREATE_ACCOUNT = "create_account", Write(Accounts), "Open an account in one currency.";
    LIST_ACCOUNTS = "list_accounts", Read(Accounts), "List accounts, newest first.";
    RETRIEVE_ACCOUNT = "retrieve_account", Read(Accounts), "Read one account with its balances.";
    UPDATE_ACCOUNT = "update_account", Write(Accounts), "Rename an account or edit its metadata (optimistic, with If-Match).";
    LIST_LEDGER_ENTRIES = "list_ledger_entries", Read(Accounts), "List an account's ledger entries, newest first.";
    CREATE_CUSTOMER = "create_customer", Write(Customers), "Create a customer.";
    LIST_CUSTOMERS = "list_customers", Read(Customers), "List customers, newest first.";
    RETRIEVE_CUSTOMER = "retrieve_customer", Read(Customers), "Read one customer.";
    UPDATE_CUSTOMER = "update_customer", Write(Customers), "Edit a customer (optimistic, with If-Match).";
    DELETE_CUSTOMER = "delete_customer", Write(Customers), "Delete a customer no account or payment refers to.";
    CREATE_PAYMENT = "create_payment", Write(Payments), "Move money from one account to another, at once or as a hold to capture later.";
    LIST_PAYMENTS = "list_payments", Read(Payments), "List payments, newest first.";
    RETRIEVE_PAYMENT = "retrieve_payment", Read(Payments), "Read one payment.";
    CAPTURE_PAYMENT = "capture_payment", Write(Payments), "Capture a held payment, in full or in part; the rest is released.";
    CANCEL_PAYMENT = "cancel_payment", Write(Payments), "Cancel a held payment and release its hold.";
    CREATE_REFUND = "create_refund", Write(Refunds), "Refund a payment, in full or in part, from its destination back to its source.";
    LIST_REFUNDS = "list_refunds", Read(Refunds), "List refunds, newest first.";
    RETRIEVE_REFUND = "retrieve_refund", Read(Refunds), "Read one refund.";
    LIST_EVENTS = "list_events", Read(Events), "List events, newest first.";
    RETRIEVE_EVENT = "retrieve_event", Read(Events), "Read one event.";
    CREATE_WEBHOOK_ENDPOINT = "create_webhook_endpoint", Write(Webhooks), "Register a URL to receive signed events; the signing secret is shown once.";
    LIST_WEBHOOK_ENDPOINTS = "list_webhook_endpoints", Read(Webhooks), "List webhook endpoints.";
    RETRIEVE_WEBHOOK_ENDPOINT = "retrieve_webhook_endpoint", Read(Webhooks), "Read one webhook endpoint.";
    UPDATE_WEBHOOK_ENDPOINT = "update_webhook_endpoint", Write(Webhooks), "Edit a webhook endpoint (optimistic, with If-Match).";
    DELETE_WEBHOOK_ENDPOINT = "delete_webhook_endpoint", Write(Webhooks), "Delete a webhook endpoint and its pending deliveries.";
    ROTATE_WEBHOOK_SECRET = "rotate_webhook_secret", Write(Webhooks), "Replace an endpoint's signing secret; the new one is shown once.";
    REPLAY_WEBHOOKS = "replay_webhooks", Write(Webhooks), "Send again every event of a time range to one endpoint, or only its failed deliveries (recovery).";
    SEND_WEBHOOK_TEST = "send_webhook_test", Write(Webhooks), "Send a webhook_endpoint.test event to one endpoint alone.";
    LIST_WEBHOOK_REPLAYS = "list_webhook_replays", Read(Webhooks), "List an endpoint's replays.";
    WEBHOOK_STATS = "webhook_stats", Read(Webhooks), "Deliveries per minute by outcome over the last hour, commit-to-receipt latency, each endpoint's backlog and breaker, dead letters.";
    LIST_WEBHOOK_DELIVERIES = "list_webhook_deliveries", Read(Webhooks), "List an endpoint's deliveries.";
    RETRIEVE_WEBHOOK_DELIVERY = "retrieve_webhook_delivery", Read(Webhooks), "Read one delivery.";
    LIST_WEBHOOK_ATTEMPTS = "list_webhook_attempts", Read(Webhooks), "List a delivery's attempts.";
    RETRY_WEBHOOK_DELIVERY = "retry_webhook_delivery", Write(Webhooks), "Send one delivery again now.";
    CREATE_API_KEY = "create_api_key", Write(ApiKeys), "Create an API key with a role; the secret is shown once.";
    LIST_API_KEYS = "list_api_keys", Read(ApiKeys), "List API keys (never their secrets).";
    RETRIEVE_API_KEY = "retrieve_api_key", Read(ApiKeys), "Read one API key.";
    REVOKE_API_KEY = "revoke_api_key", Write(ApiKeys), "Revoke an API key.";
    CREATE_ROLE = "create_role", Write(Roles), "Create a role from permissions.";
    LIST_ROLES = "list_roles", Read(Roles), "List roles.";
    RETRIEVE_ROLE = "retrieve_role", Read(Roles), "Read one role.";
    UPDATE_ROLE = "update_role", Write(Roles), "Replace a role's permissions (optimistic, with If-Match).";
    DELETE_ROLE = "delete_role", Write(Roles), "Delete a custom role no key holds.";
    CREATE_POLICY = "create_policy", Write(Policies), "Add a Cedar attribute policy.";
    LIST_POLICIES = "list_policies", Read(Policies), "List policies.";
    POLICY_SCHEMA = "policy_schema", Read(Policies), "The Cedar schema policies are validated against.";
    RETRIEVE_POLICY = "retrieve_policy", Read(Policies), "Read one policy.";
    UPDATE_POLICY = "update_policy", Write(Policies), "Edit, enable or disable a policy (optimistic, with If-Match).";
    DELETE_POLICY = "delete_policy", Write(Policies), "Delete a policy.";
    LIST_AUDIT_EVENTS = "list_audit_events", Read(Audit), "List audit events, newest first.";
    QUEUE_SUMMARY = "queue_summary", Read(Queue), "The queue, its consumers, relay lag and dead letters.";
}

/// The operation registered under `name`.
pub fn by_name(name: &str) -> Option<&'static OperationSpec> {
    ALL.iter().copied().find(|spec| spec.name == name)
}
