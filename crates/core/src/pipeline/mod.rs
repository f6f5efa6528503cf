//! The one pipeline every operation runs through, whichever face (REST,
//! GraphQL, gRPC) received it: admission (the concurrency limit, which
//! sheds the least important work first, before anything else runs),
//! authentication, the key's rate limit, the permission check, attribute
//! policies on the typed input, idempotency (claim, replay, release), a
//! deadline, the write with its events and audit row, and a typed outcome
//! or a [`Failure`]. A face translates its wire format into an
//! [`Operation`] and the outcome back; it decides no rule of its own.

mod deadline;
mod failure;
mod fingerprint;
pub mod registry;
pub mod stats;
mod viewer;

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use settle_domain::rbac::{Action, Permission, Resource};
use settle_store::WriteContext;
use settle_store::idempotency::{ClaimOutcome, IdempotencyClaim, StoredResponse};
use settle_store::records::AuditDraft;

pub use deadline::{Deadline, MAX_TIMEOUT_MS, parse_timeout_ms};
pub use failure::Failure;
pub use fingerprint::{canonical_json, fingerprint, parse_idempotency_key};
pub use stats::{Face, OutcomeClass};
pub use viewer::Viewer;

use crate::auth::Principal;
use crate::policy::{PolicyEngine, ResourceAttrs};
use crate::service::Settle;

/// What the pipeline knows of an operation before its input is read: the
/// name it is registered under, the one permission it needs, and a line
/// for the API document.
#[derive(Debug, PartialEq, Eq)]
pub struct OperationSpec {
    pub name: &'static str,
    pub permission: Permission,
    pub summary: &'static str,
}

impl OperationSpec {
    /// Writes take idempotency keys and leave an audit row.
    pub fn is_write(&self) -> bool {
        self.permission.action == Action::Write
    }

    /// Money movement is checked against policies by the store once its
    /// amounts are resolved inside the transaction (a refund's real amount,
    /// a payment's accounts as locked); everything else up front.
    fn policy_in_store(&self) -> bool {
        self.is_write() && matches!(self.permission.resource, Resource::Payments | Resource::Refunds)
    }
}

/// One operation with its typed input. `Serialize` gives the input's
/// canonical form, which idempotency fingerprints ("the same parameters").
pub trait Operation: Serialize + Send + Sized + 'static {
    type Output: Serialize + Send + 'static;
    const SPEC: &'static OperationSpec;
    /// The fresh answer carries a secret that is stored nowhere (a new API
    /// key, an endpoint's signing secret): its replay cannot show it.
    const SHOWS_SECRET: bool = false;
    /// Its answer's relations can be expanded (`expand[]`); a face refuses
    /// an expansion asked of any other operation rather than ignore it.
    const EXPANDS: bool = false;

    /// The attributes Cedar policies see for this input (ids it names).
    fn attributes(&self) -> ResourceAttrs {
        ResourceAttrs::default()
    }

    /// The operation itself, given what the pipeline established.
    fn run(self, settle: &Settle, ctx: &OperationContext)
    -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// The request around an operation, as a face received it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The API key's secret; `None` when the request carried none.
    pub credential: Option<String>,
    pub request_id: String,
    /// The client's idempotency key, unparsed (writes only; reads ignore it).
    pub idempotency_key: Option<String>,
    /// A budget shorter than the configured one, if the client sent one.
    pub timeout: Option<Duration>,
    /// When the face received the request: the deadline counts from here.
    pub received: Instant,
    /// Which face received it (`/metrics` counts operations per face).
    pub face: Face,
    /// The caller's W3C trace context (`traceparent`), continued by the
    /// operation's span when tracing is on.
    pub trace_parent: Option<settle_trace::TraceContext>,
}

/// The largest request any face reads (a REST body, a gRPC message):
/// past it the request is refused before it is parsed.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// A fresh request id (`req_...`): every face names each request it
/// receives, for its logs, its errors and the audit trail.
pub fn new_request_id() -> String {
    use rand::Rng;
    format!(
        "req_{}",
        settle_domain::ids::encode_base32(rand::rng().random::<u128>() >> 2)
    )
}

impl Call {
    pub fn new(request_id: impl Into<String>, credential: Option<String>) -> Self {
        Self {
            credential,
            request_id: request_id.into(),
            idempotency_key: None,
            timeout: None,
            received: Instant::now(),
            face: Face::Rest,
            trace_parent: None,
        }
    }

    /// The same call continuing the caller's trace, given its
    /// `traceparent` (a malformed one is ignored, as W3C asks: the
    /// operation starts a trace of its own).
    pub fn traced(mut self, traceparent: Option<&str>) -> Self {
        self.trace_parent = traceparent.and_then(settle_trace::TraceContext::parse);
        self
    }

    /// The same call, as received by `face`.
    pub fn on(mut self, face: Face) -> Self {
        self.face = face;
        self
    }
}

/// What every face knows of a request before it reads it: its id (for
/// logs, errors and audit) and when it arrived (deadlines count from
/// there). The HTTP layer puts it in each request's extensions.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub received: Instant,
}

/// An operation's typed input as a face built it.
#[derive(Debug)]
pub struct Input<O> {
    pub op: O,
    /// The fingerprint an earlier version gave this same request, so an
    /// idempotency record stored before the fingerprint changed still
    /// replays; only a face that had requests before can tell.
    pub legacy_fingerprint: Option<Vec<u8>>,
}

impl<O> Input<O> {
    pub fn new(op: O) -> Self {
        Self {
            op,
            legacy_fingerprint: None,
        }
    }
}

/// What an operation gave back: its fresh result, or the answer an earlier
/// request with the same idempotency key stored, replayed as it was.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    Replayed {
        response: StoredResponse,
        /// The first answer showed a secret this one lacks.
        secret_omitted: bool,
    },
}

/// What an operation runs with: who asks, the context its write carries
/// (idempotency claim, audit draft, policies, deadline), and its deadline.
pub struct OperationContext {
    pub principal: Principal,
    pub deadline: Instant,
    /// The policies in force for this request (expansion checks each
    /// object it shows against them).
    pub(crate) engine: PolicyEngine,
    write: WriteContext,
}

impl OperationContext {
    /// The context of this operation's write, for the store.
    pub fn write(&self) -> &WriteContext {
        &self.write
    }
}

impl Settle {
    /// Runs `O` for `call`. `input` builds the typed input (reading a
    /// body if the face has one); it is called after authentication and the
    /// permission check, so a caller without the permission learns nothing
    /// about the shape of the input and sends no body for nothing.
    pub async fn execute<O, F, Fut>(&self, call: Call, input: F) -> Result<Outcome<O::Output>, Failure>
    where
        O: Operation,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Input<O>, Failure>> + Send,
    {
        let running = self.operation_stats.start(O::SPEC, call.face);
        let mut span = match settle_trace::begin(call.trace_parent) {
            Some(trace) => {
                let mut span = settle_trace::Span::start(O::SPEC.name, settle_trace::SpanKind::Server, &trace);
                if span.is_recording() {
                    span.attr("settle.operation", O::SPEC.name);
                    span.attr("settle.face", call.face.name());
                    span.attr("settle.request_id", call.request_id.clone());
                }
                span
            }
            None => settle_trace::Span::none(),
        };
        let trace = span.context();
        let result = settle_trace::within(trace, self.admitted_or_shed(call, input)).await;
        if let Err(failure) = &result {
            span.attr("settle.error_code", failure.code);
            span.attr("http.response.status_code", i64::from(failure.status));
            if failure.status >= 500 {
                span.fail(failure.message.clone());
            }
        }
        span.end();
        running.finish(match &result {
            Ok(Outcome::Done(_)) => OutcomeClass::Ok,
            Ok(Outcome::Replayed { .. }) => OutcomeClass::Replayed,
            Err(failure) if matches!(failure.code, "overloaded" | "rate_limited") => OutcomeClass::Shed,
            Err(failure) => OutcomeClass::of_status(failure.status),
        });
        result
    }

    /// Admission first: the operation runs if admitted, a shed cached read
    /// is answered from the cache only, anything else shed is refused.
    async fn admitted_or_shed<O, F, Fut>(&self, call: Call, input: F) -> Result<Outcome<O::Output>, Failure>
    where
        O: Operation,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Input<O>, Failure>> + Send,
    {
        match self.admission.try_admit(O::SPEC.class(), call.received) {
            Ok(permit) => {
                let result = self.authenticated(call, input).await;
                // Only work that ran tells the limiter how loaded it is.
                let ran = match &result {
                    Ok(Outcome::Done(_)) => true,
                    Ok(Outcome::Replayed { .. }) => false,
                    Err(failure) => failure.status >= 500 || failure.status == 408,
                };
                if !ran {
                    permit.unsampled();
                }
                result
            }
            // A cached single read is served from the cache, stale if need
            // be, rather than refused; a miss is refused as shed.
            Err(crate::admission::Shed::Overloaded(_))
                if O::SPEC.reads_through_cache() && self.cache.options().enabled =>
            {
                crate::cache::only_cached(self.authenticated(call, input)).await
            }
            Err(shed) => Err(shed.failure()),
        }
    }

    /// What this process's webhook attempts came to (`/metrics`, the
    /// dashboard's overview).
    pub fn delivery_stats(&self) -> &crate::webhook::stats::DeliveryStats {
        &self.delivery_stats
    }

    /// Requests each operation served, by face and outcome (`/metrics`).
    pub fn operation_stats(&self) -> &stats::OperationStats {
        &self.operation_stats
    }

    async fn authenticated<O, F, Fut>(&self, call: Call, input: F) -> Result<Outcome<O::Output>, Failure>
    where
        O: Operation,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Input<O>, Failure>> + Send,
    {
        let spec = O::SPEC;
        let secret = call.credential.as_deref().ok_or_else(Failure::api_key_missing)?;
        let principal = self.authenticate(secret).await?;
        crate::admission::note_permissions(&principal.permissions);
        // After the key is verified: a wrong secret must not drain the
        // bucket of the key it names.
        if let Some(Err(limited)) = self.rate_limiter.check(principal.key, spec.class()).await {
            return Err(limited);
        }
        let audit = spec.is_write().then(|| AuditDraft {
            api_key: Some(principal.key),
            operation: spec.name,
            permission: spec.permission.to_string(),
            request_id: call.request_id.clone(),
        });
        let result = self.admitted(&call, principal, audit.clone(), input).await;
        if let (Some(draft), Err(failure)) = (&audit, &result) {
            self.record_failed_write(draft, failure.code, failure.status).await;
        }
        result
    }

    async fn admitted<O, F, Fut>(
        &self,
        call: &Call,
        principal: Principal,
        audit: Option<AuditDraft>,
        input: F,
    ) -> Result<Outcome<O::Output>, Failure>
    where
        O: Operation,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Input<O>, Failure>> + Send,
    {
        let spec = O::SPEC;
        if !principal.allows(spec.permission) {
            return Err(crate::ServiceError::Forbidden(spec.permission).into());
        }
        let deadline = Deadline::of(call, self.options.operation_budget);
        let engine = self.policy_engine().await?;
        let Input { op, legacy_fingerprint } = input().await?;
        if !spec.policy_in_store() {
            self.check_policy(&engine, &principal, spec.permission, &op.attributes())?;
        }
        deadline.ensure_not_passed()?;
        let claim = match (spec.is_write(), &call.idempotency_key) {
            (true, Some(key)) => {
                let key = parse_idempotency_key(key)?;
                let hash = fingerprint(spec.name, &op)?;
                match self
                    .claim_idempotency_as(principal.key, &key, hash, legacy_fingerprint)
                    .await?
                {
                    ClaimOutcome::Claimed(claim) => Some(claim),
                    ClaimOutcome::Replay(response) => {
                        let secret_omitted = O::SHOWS_SECRET && (200..300).contains(&response.status);
                        return Ok(Outcome::Replayed {
                            response,
                            secret_omitted,
                        });
                    }
                    ClaimOutcome::Mismatch => {
                        return Err(Failure::new(
                            422,
                            "idempotency_error",
                            "idempotency_key_reused",
                            "This Idempotency-Key was used with a different operation or parameters.",
                        ));
                    }
                    ClaimOutcome::InFlight => {
                        return Err(Failure::new(
                            409,
                            "idempotency_error",
                            "idempotency_key_in_use",
                            "A request with this Idempotency-Key is still running; retry later.",
                        ));
                    }
                }
            }
            _ => None,
        };
        let mut write = self.request_context(&call.request_id, &principal, Some(engine.clone()), audit);
        write.idempotency = claim.clone();
        // Every face records 200 for a successful write (Stripe's
        // convention, also for creation); replays answer the same.
        write.success_status = Some(200);
        write.deadline = Some(deadline.at);
        let ctx = OperationContext {
            principal,
            deadline: deadline.at,
            engine,
            write,
        };
        let result = if spec.is_write() {
            // A write is never cut short from outside: the store refuses
            // to begin it past the deadline, and once begun it commits or
            // fails as a whole.
            op.run(self, &ctx).await
        } else {
            tokio::time::timeout_at(deadline.at.into(), op.run(self, &ctx))
                .await
                .unwrap_or_else(|_| Err(deadline.passed("while reading; nothing was changed")))
        };
        let result = result.map_err(|failure| deadline.explain(failure));
        if let Some(claim) = &claim {
            self.settle_claim(claim, &result, &call.request_id).await;
        }
        result.map(Outcome::Done)
    }

    /// What becomes of an idempotency claim once its operation answered: a
    /// success was stored by the operation's own transaction; a final
    /// refusal is stored here for replays; anything else releases the key.
    async fn settle_claim<T>(&self, claim: &IdempotencyClaim, result: &Result<T, Failure>, request_id: &str) {
        match result {
            Ok(_) if claim.started() => {}
            Err(failure) if claim.started() && failure.is_final_answer() => {
                let stored = StoredResponse {
                    status: failure.status,
                    body: failure.body(request_id),
                };
                if let Err(e) = self.complete_idempotency(claim, &stored).await {
                    tracing::warn!(error = %e, "could not store an idempotent error response");
                }
            }
            _ => {
                if let Err(e) = self.release_idempotency(claim).await {
                    tracing::warn!(error = %e, "could not release an idempotency claim; it expires with the lock timeout");
                }
            }
        }
    }
}
