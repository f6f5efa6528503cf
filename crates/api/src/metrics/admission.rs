//! Admission in `/metrics`: the concurrency limit and what it admitted and
//! shed per class, the brownout, the wait before admission, and the rate
//! limits' refusals and where their checks were decided.

use std::sync::atomic::Ordering;

use settle_core::Settle;
use settle_core::admission::Class;
use settle_core::pipeline::stats::BUCKETS;

use super::{histogram, metric};

fn per_class<T: Copy + Into<f64>>(values: [T; 3]) -> Vec<(String, f64)> {
    Class::ALL
        .iter()
        .zip(values)
        .map(|(class, n)| (format!("{{class=\"{}\"}}", class.name()), n.into()))
        .collect()
}

fn as_f64(values: [u64; 3]) -> [f64; 3] {
    values.map(|n| n as f64)
}

pub(super) fn render_admission(out: &mut String, settle: &Settle) {
    let s = settle.admission().snapshot();
    metric(
        out,
        "settle_admission_limit",
        "Operations the adaptive limit lets run at once now (money may use all of it, single reads 75%, lists 50%).",
        "gauge",
        vec![(String::new(), f64::from(s.limit))],
    );
    metric(
        out,
        "settle_admission_in_flight",
        "Operations running now, by class.",
        "gauge",
        per_class(s.in_flight),
    );
    metric(
        out,
        "settle_admission_admitted_total",
        "Operations admitted, by class.",
        "counter",
        per_class(as_f64(s.admitted)),
    );
    let mut shed = per_class(as_f64(s.shed));
    for row in &mut shed {
        row.0.insert_str(row.0.len() - 1, ",reason=\"overloaded\"");
    }
    for (class, n) in Class::ALL.iter().zip(s.browned_out) {
        shed.push((format!("{{class=\"{}\",reason=\"brownout\"}}", class.name()), n as f64));
    }
    metric(
        out,
        "settle_admission_shed_total",
        "Operations refused with 503 before they started, by class and reason.",
        "counter",
        shed,
    );
    metric(
        out,
        "settle_admission_brownout",
        "1 while sustained overload has lists, replays and summaries refused outright.",
        "gauge",
        vec![(String::new(), f64::from(u8::from(s.brownout)))],
    );
    histogram(
        out,
        "settle_admission_queue_delay_seconds",
        "Time admitted operations spent between arriving and admission (reading and routing the request).",
        &BUCKETS,
        [(String::new(), &s.delay_buckets[..], s.delay_seconds)],
    );

    let rates = settle.rate_limiter();
    metric(
        out,
        "settle_rate_limited_total",
        "Requests refused with 429 because their API key exceeded its limit, by class.",
        "counter",
        per_class(as_f64(
            rates.stats.limited.each_ref().map(|n| n.load(Ordering::Relaxed)),
        )),
    );
    metric(
        out,
        "settle_rate_limit_checks_total",
        "Rate-limit checks by where they were decided: shared (Redis), local (no shared store), fallback (the shared store failed: this process's share).",
        "counter",
        [
            ("shared", &rates.stats.shared_checks),
            ("local", &rates.stats.local_checks),
            ("fallback", &rates.stats.fallback_checks),
        ]
        .iter()
        .map(|(at, n)| (format!("{{decided=\"{at}\"}}"), n.load(Ordering::Relaxed) as f64))
        .collect(),
    );
    metric(
        out,
        "settle_live_processes",
        "Processes sharing the rate limits, as last counted by their heartbeats (1 without Redis).",
        "gauge",
        vec![(String::new(), f64::from(rates.live_processes()))],
    );
}
