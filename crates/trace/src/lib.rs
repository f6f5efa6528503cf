//! Traces that follow a payment from its request through its commit, the
//! outbox, the fan-out and every webhook delivery it causes, across
//! processes: the W3C trace context (`traceparent`), spans as plain
//! records, the sampler OpenTelemetry's variables choose, and one global
//! sink an exporter installs. Without a sink (the default) nothing is
//! recorded and every call here is a check of one pointer.
//!
//! Recording never waits: a sink must take a span without blocking (the
//! OTLP exporter drops it, and counts it, when its queue is full), so a
//! slow or absent collector cannot slow a request.

mod context;
mod sampler;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub use context::TraceContext;
pub use sampler::Sampler;

/// What a span stands for, numbered as OTLP numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

/// A finished span, as an exporter sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The span's own trace and span id.
    pub context: TraceContext,
    pub parent_span_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// Set when what the span stands for failed.
    pub error: Option<String>,
}

/// Where finished spans go. `take` must not block or wait.
pub trait SpanSink: Send + Sync {
    fn take(&self, span: SpanRecord);
}

struct Installed {
    sink: Arc<dyn SpanSink>,
    sampler: Sampler,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Turns tracing on for the process (once; later calls are ignored).
pub fn install(sink: Arc<dyn SpanSink>, sampler: Sampler) {
    let _ = INSTALLED.set(Installed { sink, sampler });
}

/// Whether spans are recorded at all.
pub fn enabled() -> bool {
    INSTALLED.get().is_some()
}

/// Counters the exporter keeps and `/metrics` shows.
pub struct ExportStats {
    pub exported: AtomicU64,
    /// Dropped because the export queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Dropped because the collector refused them or did not answer.
    pub dropped_export_failed: AtomicU64,
}

pub static STATS: ExportStats = ExportStats {
    exported: AtomicU64::new(0),
    dropped_queue_full: AtomicU64::new(0),
    dropped_export_failed: AtomicU64::new(0),
};

impl ExportStats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The trace a unit of work starting here belongs to: the caller's, when
/// it sent one, else a new one; sampled as the installed sampler decides.
/// `None` while tracing is off.
pub fn begin(parent: Option<TraceContext>) -> Option<TraceContext> {
    let installed = INSTALLED.get()?;
    let trace_id = parent.map_or_else(context::random_trace_id, |p| p.trace_id);
    let sampled = installed.sampler.sample(parent.as_ref(), &trace_id);
    Some(match parent {
        Some(p) => TraceContext { sampled, ..p },
        None => TraceContext {
            trace_id,
            span_id: [0; 8],
            sampled,
        },
    })
}

/// Nanoseconds since the Unix epoch now.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A span under way. Ends (and is recorded, if sampled) when dropped or
/// [`end`](Span::end)ed.
#[derive(Debug)]
pub struct Span {
    /// The span's context, also when the trace is not sampled (its flag
    /// still goes to whatever the work calls).
    context: Option<TraceContext>,
    record: Option<SpanRecord>,
}

impl Span {
    /// A child of `parent` (a parent with a zero span id is the root of a
    /// new trace, so this span has no parent). Records nothing unless the
    /// trace is sampled and tracing is on.
    pub fn start(name: impl Into<String>, kind: SpanKind, parent: &TraceContext) -> Span {
        let on = enabled();
        let context = parent.child();
        let record = (parent.sampled && on).then(|| SpanRecord {
            context,
            parent_span_id: (parent.span_id != [0; 8]).then_some(parent.span_id),
            name: name.into(),
            kind,
            start_unix_nanos: now_unix_nanos(),
            end_unix_nanos: 0,
            attributes: Vec::new(),
            error: None,
        });
        Span {
            context: on.then_some(context),
            record,
        }
    }

    /// A span that records nothing, for work outside any trace.
    pub fn none() -> Span {
        Span {
            context: None,
            record: None,
        }
    }

    /// This span's context, to pass to its children and to receivers
    /// (`None` while tracing is off).
    pub fn context(&self) -> Option<TraceContext> {
        self.context
    }

    /// Whether anything is recorded: attributes worth computing.
    pub fn is_recording(&self) -> bool {
        self.record.is_some()
    }

    pub fn attr(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(r) = &mut self.record {
            r.attributes.push((key, value.into()));
        }
    }

    pub fn fail(&mut self, error: impl Into<String>) {
        if let Some(r) = &mut self.record {
            r.error = Some(error.into());
        }
    }

    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.end_unix_nanos = now_unix_nanos().max(record.start_unix_nanos);
            emit(record);
        }
    }
}

/// Records a span whose times were taken elsewhere (a transaction timed
/// on the database's writer), as a child of `parent`; returns its context.
pub fn record_span(
    parent: &TraceContext,
    name: &str,
    kind: SpanKind,
    (start, end): (u64, u64),
    attributes: Vec<(&'static str, Value)>,
) -> TraceContext {
    let context = parent.child();
    if parent.sampled && enabled() {
        emit(SpanRecord {
            context,
            parent_span_id: (parent.span_id != [0; 8]).then_some(parent.span_id),
            name: name.to_owned(),
            kind,
            start_unix_nanos: start,
            end_unix_nanos: end.max(start),
            attributes,
            error: None,
        });
    }
    context
}

fn emit(record: SpanRecord) {
    if let Some(installed) = INSTALLED.get() {
        installed.sink.take(record);
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `work` with `context` as the current trace context, for code
/// below it that starts spans without being handed one.
pub async fn within<F: std::future::Future>(context: Option<TraceContext>, work: F) -> F::Output {
    match context {
        Some(c) => CURRENT.scope(c, work).await,
        None => work.await,
    }
}

/// The current trace context, if the work runs [`within`] one.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}
