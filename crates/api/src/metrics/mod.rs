//! `/metrics` in the Prometheus text format: what an alert needs to see
//! work piling up (queue depth, oldest pending age, relay lag, dead
//! letters) or the processor failing (breaker state and transitions).

mod admission;
mod webhooks;

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use settle_core::Settle;
use settle_core::commits::WakeStats;
use settle_core::operations::QueueStatus;
use settle_core::pipeline::OutcomeClass;
use settle_core::pipeline::stats::{BUCKETS, OperationSnapshot};

use crate::listener::ListenerStats;

/// One metric in the text format: its help and type, then a line per
/// (labels, value).
fn metric(out: &mut String, name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// One histogram family: for each series its labels (`a="b",c="d"`, or
/// empty), its counts per bucket of `bounds` (not cumulative, one more
/// than the bounds: the overflow last) and the sum of what it observed.
fn histogram<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[f64],
    series: impl IntoIterator<Item = (String, &'a [u64], f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (labels, counts, sum) in series {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in bounds.iter().zip(counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count: u64 = counts.iter().sum();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

fn render(s: &QueueStatus) -> String {
    let mut out = String::new();
    let mut gauge =
        |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| metric(&mut out, name, help, kind, rows);
    let per = |f: &dyn Fn(&settle_core::operations::ConsumerStatus) -> f64| {
        s.consumers
            .iter()
            .map(|c| (format!("{{consumer=\"{}\"}}", c.consumer), f(c)))
            .collect::<Vec<_>>()
    };
    gauge(
        "settle_queue_pending",
        "Messages waiting or in flight, per consumer.",
        "gauge",
        per(&|c| c.pending as f64),
    );
    gauge(
        "settle_queue_oldest_pending_seconds",
        "Age of the oldest pending message, per consumer.",
        "gauge",
        per(&|c| c.oldest_pending_age_ms as f64 / 1000.0),
    );
    gauge(
        "settle_queue_dead_letters",
        "Messages that used up their deliveries, per consumer.",
        "gauge",
        per(&|c| c.dead_letters as f64),
    );
    gauge(
        "settle_queue_relay_pending",
        "Committed events not yet acknowledged by the broker.",
        "gauge",
        vec![(String::new(), s.relay.pending as f64)],
    );
    gauge(
        "settle_queue_relay_lag_seconds",
        "How long the oldest unrelayed event has waited.",
        "gauge",
        vec![(String::new(), s.relay.lag_ms as f64 / 1000.0)],
    );
    gauge(
        "settle_events_consumed_total",
        "Events the fan-out stage recorded in this process.",
        "counter",
        vec![(String::new(), s.fanout_processed as f64)],
    );
    if let Some(p) = &s.processor {
        let state = |name: &str| (format!("{{state=\"{name}\"}}"), f64::from(u8::from(p.breaker == name)));
        gauge(
            "settle_processor_breaker_state",
            "1 for the processor breaker's current state.",
            "gauge",
            vec![state("closed"), state("open"), state("half_open")],
        );
        gauge(
            "settle_processor_breaker_transitions_total",
            "Times the processor breaker opened or closed.",
            "counter",
            vec![
                ("{to=\"open\"}".into(), p.breaker_opened as f64),
                ("{to=\"closed\"}".into(), p.breaker_closed as f64),
            ],
        );
        gauge(
            "settle_processor_calls_total",
            "Processor calls by outcome.",
            "counter",
            vec![
                ("{outcome=\"succeeded\"}".into(), p.charges_succeeded as f64),
                ("{outcome=\"declined\"}".into(), p.charges_declined as f64),
                ("{outcome=\"transient\"}".into(), p.charges_failed_transiently as f64),
            ],
        );
    }
    out
}

/// The listener's connections (how many are open, how often a limit had
/// to act) and the SQL statements the process ran.
fn render_process(out: &mut String, s: &ListenerStats) {
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let rows = [
        (
            "settle_http_connections_open",
            "Connections open now.",
            "gauge",
            load(&s.open),
        ),
        (
            "settle_http_connections_accepted_total",
            "Connections accepted.",
            "counter",
            load(&s.accepted),
        ),
        (
            "settle_http_connection_limit_reached_total",
            "Times every connection slot was taken and new connections had to wait.",
            "counter",
            load(&s.at_capacity),
        ),
        (
            "settle_http_header_timeouts_total",
            "Connections closed because a request head did not arrive in time.",
            "counter",
            load(&s.header_timeouts),
        ),
        (
            "settle_http_idle_timeouts_total",
            "Idle connections closed after the idle timeout.",
            "counter",
            load(&s.idle_timeouts),
        ),
    ];
    let rows = rows.into_iter().chain([(
        "settle_db_statements_total",
        "SQL statements this process ran (transaction control excluded).",
        "counter",
        settle_store::sql::statements::process_total(),
    )]);
    for (name, help, kind, value) in rows {
        metric(out, name, help, kind, vec![(String::new(), value as f64)]);
    }
}

/// Why workers woke: a commit, a listener resync, a time they set, or the
/// safety-net poll. Polls growing while commits do not is a deaf listener.
fn render_wakes(out: &mut String, wakes: &WakeStats) {
    let rows = [
        ("committed", &wakes.committed),
        ("resync", &wakes.resync),
        ("due", &wakes.due),
        ("poll", &wakes.poll),
    ]
    .into_iter()
    .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), n.load(Ordering::Relaxed) as f64))
    .collect();
    metric(
        out,
        "settle_commit_wakes_total",
        "Times a worker waiting on the commit stream woke, by reason.",
        "counter",
        rows,
    );
}

/// The read cache, tier `local` (in process): events by kind and its size.
/// A hit ratio is `hits / (hits + misses)`; `stale_served` growing means
/// the database is failing reads that the cache is covering for.
fn render_cache(out: &mut String, cache: &settle_core::cache::ObjectCache) {
    let s = cache.stats();
    let rows = tier_rows(
        "local",
        [
            ("hit", &s.hits),
            ("miss", &s.misses),
            ("fill", &s.fills),
            ("fill_spoiled", &s.fills_spoiled),
            ("eviction", &s.evictions),
            ("coalesced", &s.coalesced),
            ("stale_served", &s.stale_served),
            ("early_refresh", &s.early_refreshes),
            ("invalidation", &s.invalidations),
            ("flush", &s.flushes),
        ],
    );
    metric(
        out,
        "settle_cache_events_total",
        "Read cache events by tier and kind: hits, misses, fills (and fills dropped because the object changed while it was read), evictions, reads coalesced into another's, stale answers, early refreshes, invalidations, flushes.",
        "counter",
        rows,
    );
    if let Some(shared) = cache.shared() {
        let t = shared.stats();
        let rows = tier_rows(
            "redis",
            [
                ("hit", &t.hits),
                ("miss", &t.misses),
                ("fill", &t.fills),
                ("fill_refused", &t.fills_refused),
                ("lease_wait", &t.lease_waits),
                ("invalidation", &t.invalidations),
                ("error", &t.errors),
                ("skipped", &t.skipped),
                ("epoch", &t.epochs),
            ],
        );
        metric(
            out,
            "settle_cache_shared_events_total",
            "Shared (Redis) tier events: hits, misses, fills (and fills refused because the object changed meanwhile), reads that waited for another process's lease, invalidations, errors and timeouts, calls skipped while the breaker was open, new epochs after invalidations it missed.",
            "counter",
            rows,
        );
        metric(
            out,
            "settle_cache_shared_breaker_state",
            "The shared tier's breaker: 0 closed, 1 open (Redis is skipped), 2 trying one call.",
            "gauge",
            vec![(String::new(), shared.breaker() as u8 as f64)],
        );
        metric(
            out,
            "settle_cache_shared_in_flight",
            "Calls waiting for Redis now (one multiplexed connection).",
            "gauge",
            vec![(String::new(), shared.in_flight() as f64)],
        );
    }
    let (entries, bytes) = cache.size();
    metric(
        out,
        "settle_cache_entries",
        "Objects held by the read cache, by tier.",
        "gauge",
        vec![("{tier=\"local\"}".to_owned(), entries as f64)],
    );
    metric(
        out,
        "settle_cache_bytes",
        "Weight of the objects held by the read cache, by tier, in bytes (its bound is SETTLE_CACHE_BYTES).",
        "gauge",
        vec![("{tier=\"local\"}".to_owned(), bytes as f64)],
    );
}

/// One tier's event counters as labelled samples.
fn tier_rows<const N: usize>(tier: &str, counters: [(&str, &AtomicU64); N]) -> Vec<(String, f64)> {
    counters
        .into_iter()
        .map(|(event, n)| {
            (
                format!("{{tier=\"{tier}\",event=\"{event}\"}}"),
                n.load(Ordering::Relaxed) as f64,
            )
        })
        .collect()
}

/// The database pools: a pool that is too small shows callers waiting and
/// waits growing before it shows timeouts (each a 503 to a client).
fn render_pools(out: &mut String, pools: &[settle_store::pool::PoolSnapshot]) {
    let label = |p: &settle_store::pool::PoolSnapshot| format!("{{pool=\"{}\"}}", p.name);
    type Gauge = fn(&settle_store::pool::PoolSnapshot) -> f64;
    let gauges: [(&str, &str, Gauge); 4] = [
        ("settle_db_pool_max", "Connections the pool may open.", |p| {
            f64::from(p.max)
        }),
        ("settle_db_pool_in_use", "Connections serving a caller now.", |p| {
            p.in_use as f64
        }),
        ("settle_db_pool_idle", "Open connections waiting for a caller.", |p| {
            p.idle as f64
        }),
        ("settle_db_pool_waiting", "Callers waiting for a connection now.", |p| {
            p.waiting as f64
        }),
    ];
    for (name, help, value) in gauges {
        metric(
            out,
            name,
            help,
            "gauge",
            pools.iter().map(|p| (label(p), value(p))).collect(),
        );
    }
    metric(
        out,
        "settle_db_pool_timeouts_total",
        "Callers refused because no connection freed up within the acquire timeout (503 to a client).",
        "counter",
        pools.iter().map(|p| (label(p), p.timeouts as f64)).collect(),
    );
    let name = "settle_db_pool_acquire_wait_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long callers waited for a connection.\n# TYPE {name} histogram"
    );
    for p in pools {
        for (bound, count) in &p.wait_buckets {
            let _ = writeln!(out, "{name}_bucket{{pool=\"{}\",le=\"{bound}\"}} {count}", p.name);
        }
        let _ = writeln!(out, "{name}_bucket{{pool=\"{}\",le=\"+Inf\"}} {}", p.name, p.wait_count);
        let _ = writeln!(out, "{name}_sum{{pool=\"{}\"}} {}", p.name, p.wait_seconds);
        let _ = writeln!(out, "{name}_count{{pool=\"{}\"}} {}", p.name, p.wait_count);
    }
}

/// Outgoing HTTP as Settle counts it: requests sent and awaiting an answer,
/// connections opened.
fn render_outgoing(out: &mut String) {
    use settle_core::outgoing::{PROCESSOR, WEBHOOKS};
    let to = [("webhooks", &WEBHOOKS), ("processor", &PROCESSOR)];
    metric(
        out,
        "settle_http_out_in_flight",
        "Outgoing requests sent and not yet answered, by destination.",
        "gauge",
        to.iter()
            .map(|(name, o)| (format!("{{to=\"{name}\"}}"), o.in_flight() as f64))
            .collect(),
    );
    metric(
        out,
        "settle_http_out_requests_total",
        "Outgoing requests sent, by destination.",
        "counter",
        to.iter()
            .map(|(name, o)| (format!("{{to=\"{name}\"}}"), o.sent() as f64))
            .collect(),
    );
    metric(
        out,
        "settle_http_out_connections_opened_total",
        "Connections opened for outgoing requests, by destination: growing as fast as requests sent means every request pays a new handshake.",
        "counter",
        to.iter()
            .map(|(name, o)| (format!("{{to=\"{name}\"}}"), o.connections_opened() as f64))
            .collect(),
    );
}

pub async fn metrics(State(settle): State<Settle>, Extension(listener): Extension<Arc<ListenerStats>>) -> Response {
    match settle.queue_status().await {
        Ok(status) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], {
            let mut out = render(&status);
            render_process(&mut out, &listener);
            render_wakes(&mut out, settle.commits().stats());
            render_cache(&mut out, settle.cache());
            render_pools(&mut out, &settle.store().pools());
            render_outgoing(&mut out);
            render_operations(&mut out, &settle.operation_stats().snapshot());
            admission::render_admission(&mut out, &settle);
            webhooks::render_webhooks(&mut out, &settle);
            render_telemetry(&mut out);
            render_redis(&mut out);
            render_os_process(&mut out);
            out
        })
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics unavailable");
            crate::error::ApiError::unavailable("Metrics are unavailable: the queue does not answer.").into_response()
        }
    }
}

/// Each Redis link (one multiplexed connection each): calls waiting on
/// it, how they ended, how long they took, reconnections. Absent without
/// `REDIS_URL`. Abandoned calls are ones the caller stopped waiting for
/// (its timeout): Redis slow or gone.
fn render_redis(out: &mut String) {
    use settle_core::redis_calls::{BUCKETS as REDIS_BUCKETS, LINKS};
    let links: Vec<_> = LINKS
        .iter()
        .map(|l| l.snapshot())
        .filter(|s| s.connections + s.ok + s.failed + s.abandoned + s.in_flight > 0)
        .collect();
    if links.is_empty() {
        return;
    }
    let label = |s: &settle_core::redis_calls::RedisSnapshot| format!("{{link=\"{}\"}}", s.name);
    metric(
        out,
        "settle_redis_in_flight",
        "Calls waiting on the link's connection now.",
        "gauge",
        links.iter().map(|s| (label(s), s.in_flight as f64)).collect(),
    );
    metric(
        out,
        "settle_redis_calls_total",
        "Calls by outcome: ok, error (Redis answered with an error or the connection failed), abandoned (the caller's timeout ran out first).",
        "counter",
        links
            .iter()
            .flat_map(|s| {
                [("ok", s.ok), ("error", s.failed), ("abandoned", s.abandoned)]
                    .map(|(outcome, n)| (format!("{{link=\"{}\",outcome=\"{outcome}\"}}", s.name), n as f64))
            })
            .collect(),
    );
    metric(
        out,
        "settle_redis_connections_opened_total",
        "Connections opened (a link reconnects by itself after a failure).",
        "counter",
        links.iter().map(|s| (label(s), s.connections as f64)).collect(),
    );
    histogram(
        out,
        "settle_redis_call_duration_seconds",
        "How long calls that ended took (abandoned ones are not timed).",
        &REDIS_BUCKETS,
        links
            .iter()
            .map(|s| (format!("link=\"{}\"", s.name), &s.buckets[..], s.seconds)),
    );
}

/// Trace export (zeros while tracing is off): spans dropped rather than
/// waited for, so a growing count means the collector is down or slow,
/// never that requests were held back.
fn render_telemetry(out: &mut String) {
    let s = &settle_trace::STATS;
    metric(
        out,
        "settle_telemetry_spans_exported_total",
        "Spans the collector accepted.",
        "counter",
        vec![(String::new(), s.exported.load(Ordering::Relaxed) as f64)],
    );
    metric(
        out,
        "settle_telemetry_spans_dropped_total",
        "Spans dropped: the export queue was full (queue_full), or the collector refused them or did not answer (export_failed).",
        "counter",
        vec![
            (
                "{reason=\"queue_full\"}".to_owned(),
                s.dropped_queue_full.load(Ordering::Relaxed) as f64,
            ),
            (
                "{reason=\"export_failed\"}".to_owned(),
                s.dropped_export_failed.load(Ordering::Relaxed) as f64,
            ),
        ],
    );
}

/// Every operation by face: requests by outcome class, latency, in flight.
/// Only operations that served something are listed (the rest are zeros).
fn render_operations(out: &mut String, ops: &[OperationSnapshot]) {
    let labels = |s: &OperationSnapshot| format!("operation=\"{}\",face=\"{}\"", s.operation, s.face.name());
    let _ = writeln!(
        out,
        "# HELP settle_requests_total Requests each operation answered, by face and outcome class (ok, replayed, client_error, server_error, shed: refused on purpose with 503 overloaded or 429).\n# TYPE settle_requests_total counter"
    );
    for s in ops {
        for (class, n) in OutcomeClass::ALL.iter().zip(s.outcomes) {
            let _ = writeln!(
                out,
                "settle_requests_total{{{},outcome=\"{}\"}} {n}",
                labels(s),
                class.name()
            );
        }
    }
    histogram(
        out,
        "settle_request_duration_seconds",
        "Time from the pipeline's start to the operation's answer, by operation and face.",
        &BUCKETS,
        ops.iter().map(|s| (labels(s), &s.buckets[..], s.seconds)),
    );
    metric(
        out,
        "settle_requests_in_flight",
        "Requests each operation is serving now, by face.",
        "gauge",
        ops.iter()
            .map(|s| (format!("{{{}}}", labels(s)), s.in_flight as f64))
            .collect(),
    );
}

/// The process as the kernel sees it (Linux `/proc`; elsewhere nothing),
/// under the names Prometheus's client libraries use.
fn render_os_process(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| -> Option<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    if let Some(kb) = field("VmRSS:") {
        metric(
            out,
            "process_resident_memory_bytes",
            "Resident memory.",
            "gauge",
            vec![(String::new(), kb * 1024.0)],
        );
    }
    if let Some(threads) = field("Threads:") {
        metric(
            out,
            "process_threads",
            "Threads of the process.",
            "gauge",
            vec![(String::new(), threads)],
        );
    }
    // utime and stime, the 14th and 15th fields, in the kernel's fixed
    // user-visible tick of 1/100 s; the command name (field 2) may hold
    // spaces, so count from the parenthesis that closes it.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks: Option<f64> = stat.rsplit_once(')').and_then(|(_, rest)| {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let user: f64 = fields.get(11)?.parse().ok()?;
        let system: f64 = fields.get(12)?.parse().ok()?;
        Some(user + system)
    });
    if let Some(ticks) = ticks {
        metric(
            out,
            "process_cpu_seconds_total",
            "CPU time used, user and system.",
            "counter",
            vec![(String::new(), ticks / 100.0)],
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(
            out,
            "process_open_fds",
            "Open file descriptors (sockets included).",
            "gauge",
            vec![(String::new(), fds.count() as f64)],
        );
    }
}
