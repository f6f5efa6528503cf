//! How the surge harness prints: a table per phase and class, each key's
//! share of the refusals, the recovery per class, and the targets as
//! ratios measured in the same run.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Totals;
use super::stats::{self, Class, Outcome, Sample, lag_p99_ms, recovery, summarize};
use super::traffic::StageResult;
use crate::bench::ratio;

/// The targets, each next to its figure: `phases` are 1×, 10× and
/// 1× again.
pub fn targets(phases: [&StageResult; 3], phase: Duration, saturating_goodput: f64, totals: &Totals) {
    let [before, surge, after] = phases;
    let secs = phase.as_secs_f64();
    let money = |r: &StageResult| summarize(&r.samples, Some(Class::Money), secs);
    let (money_before, money_surge) = (money(before), money(surge));
    let all_surge = summarize(&surge.samples, None, secs);
    let normal = summarize(&before.samples, None, secs).p99_ms;
    let back = normal.and_then(|p99| recovery(&after.samples, None, p99 * 2.0, phase));
    println!("  targets (ratios within this run):");
    println!(
        "    money writes served 10×/1×: {} ({:.0}/s vs {:.0}/s; target ≥ 0.9×)",
        ratio(money_surge.goodput, money_before.goodput),
        money_surge.goodput,
        money_before.goodput
    );
    println!(
        "    money write p99 10×/1× (admitted): {} ({} ms vs {} ms; target ≤ 3×)",
        ratio_of(money_surge.p99_ms, money_before.p99_ms),
        ms(money_surge.p99_ms),
        ms(money_before.p99_ms)
    );
    println!(
        "    goodput 10× / saturating: {} ({:.0}/s vs {saturating_goodput:.0}/s; target ≥ 0.6×; \
         the generator shares the machine's cores)",
        ratio(all_surge.goodput, saturating_goodput),
        all_surge.goodput
    );
    println!(
        "    back to the normal p99 after the surge: {} (target ≤ 5 s)",
        back.map_or_else(
            || format!("not within the {} s phase", phase.as_secs()),
            |d| format!("{:.1} s", d.as_secs_f64())
        )
    );
    println!(
        "    5xx other than deliberate 503/429, whole run: {} (target 0); timeouts {}, connection errors {}, \
         not sent (generator saturated) {}",
        totals.server_errors, totals.timeouts, totals.connection_errors, totals.not_sent
    );
    // The surge's backlog outlives it: its memory may peak just after.
    let surge_rss = surge.rss_peak_kb.max(after.rss_peak_kb);
    println!(
        "    server peak RSS during and after the surge / under 1×: {} ({:.1} MB vs {:.1} MB; target < 2×)",
        ratio(surge_rss as f64, before.rss_peak_kb as f64),
        mb(surge_rss),
        mb(before.rss_peak_kb)
    );
}

/// Every answer other than 2xx of the run, by status and error code.
pub fn refusals(refusals: &BTreeMap<String, u64>) {
    if !refusals.is_empty() {
        let list: Vec<String> = refusals.iter().map(|(what, n)| format!("{what} ×{n}")).collect();
        println!("  answers other than 2xx, whole run: {}", list.join(", "));
    }
}

/// One phase's table: a line per class and one for the whole mix.
pub fn phase(name: &str, rate: f64, result: &StageResult, secs: f64) {
    println!(
        "  {name}: {rate:.0}/s offered for {secs:.0} s; server peak RSS {:.1} MB; generator lag p99 {} ms",
        mb(result.rss_peak_kb),
        ms(lag_p99_ms(&result.samples))
    );
    println!(
        "    {:<6} {:>9} {:>9} {:>8} {:>8} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8}",
        "class", "offered/s", "goodput/s", "p50 ms", "p99 ms", "shed", "5xx", "4xx", "timeouts", "conn err", "not sent"
    );
    let classes = Class::ALL.map(Some).into_iter().chain([None]);
    for class in classes {
        let s = summarize(&result.samples, class, secs);
        println!(
            "    {:<6} {:>9.0} {:>9.0} {:>8} {:>8} {:>5.1}% {:>5} {:>5} {:>8} {:>8} {:>8}",
            class.map_or("all", Class::name),
            s.offered,
            s.goodput,
            ms(s.p50_ms),
            ms(s.p99_ms),
            s.shed * 100.0,
            s.server_errors,
            s.client_errors,
            s.timeouts,
            s.connection_errors,
            s.not_sent
        );
    }
}

/// Each key's share of the surge's requests and the share of those shed:
/// per-key rate limits refuse the hot keys more, while admission control
/// spreads its refusals over everyone.
pub fn keys(samples: &[Sample], keys: usize) {
    let total = samples.len().max(1) as f64;
    let per_key: Vec<String> = (0..keys)
        .map(|key| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| usize::from(s.key) == key).collect();
            let sent = mine.iter().filter(|s| s.outcome != Outcome::NotSent).count();
            let shed = mine.iter().filter(|s| s.outcome == Outcome::Shed).count();
            format!(
                "key {} {:.0}% ({:.0}% shed)",
                key + 1,
                mine.len() as f64 * 100.0 / total,
                shed as f64 * 100.0 / sent.max(1) as f64
            )
        })
        .collect();
    println!("    per API key in the surge: {}", per_key.join(", "));
}

/// Per class, when the second 1× phase's p99 came back within 2× the
/// first's.
pub fn recovery_times(before: &[Sample], after: &[Sample], phase: Duration) {
    let classes = Class::ALL.map(Some).into_iter().chain([None]);
    let per_class: Vec<String> = classes
        .map(|class| {
            let name = class.map_or("all", Class::name);
            let normal = summarize(before, class, phase.as_secs_f64()).p99_ms;
            match normal.map(|p99| recovery(after, class, p99 * 2.0, phase)) {
                Some(Some(at)) => format!("{name} {:.1} s", at.as_secs_f64()),
                Some(None) => format!("{name} not within the phase"),
                None => format!("{name} n/a"),
            }
        })
        .collect();
    println!(
        "    p99 back within 2× the 1× p99 ({} in a row of {} ms windows) after: {}",
        stats::GOOD_IN_A_ROW,
        stats::WINDOW.as_millis(),
        per_class.join(", ")
    );
}

/// Milliseconds with two decimals, `-` for none.
pub fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// KiB as MB.
pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `ratio` of two figures that may be missing.
pub fn ratio_of(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) => ratio(v, b),
        _ => "n/a".to_owned(),
    }
}
