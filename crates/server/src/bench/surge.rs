//! `settle bench surge`: an open-loop load harness for capability 5
//! (surviving a 10× surge). Requests leave at fixed arrival rates whatever
//! the answers, and each is timed from the instant it was due, so a server
//! that stalls is charged for the requests it kept waiting.
//!
//! 1. A low-load phase sets the mix's normal p99.
//! 2. The offered rate steps up until the p99 passes 2× that or goodput
//!    falls under 0.9× the offered rate: the last step that passed is the
//!    saturating rate.
//! 3. 1× (half the saturating rate), 10× (five times the saturating rate)
//!    and 1× again, back to back, each printed per class (money writes,
//!    reads, lists): goodput, p50/p99 of admitted requests, shed fraction,
//!    other 5xx, timeouts, the server's peak RSS and, after the surge, the
//!    time until the p99 is back to normal.
//! 4. Every payment create is sent again with its idempotency key and the
//!    ledger read whole: nothing lost, nothing made twice.
//!
//! The server is `settle serve` from this binary as a child process on a
//! fresh database, with its rate limits and admission control as
//! configured (on by default); on a machine with two cores or more it is
//! pinned to one and the generator to the others.

mod ledger;
mod server;
mod stats;
mod traffic;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::ratio;
use super::target::Target;
use server::Server;
use stats::{Class, Outcome, Sample, Summary, lag_p99_ms, recovery, summarize};
use traffic::{Harness, Stage, StageResult};

/// API keys the traffic comes from; the first two are hot.
const KEYS: usize = 6;
/// The first step of the saturation search (or twice the low rate).
const FIRST_STEP: f64 = 200.0;
/// Each step offers this much more than the last.
const STEP_FACTOR: f64 = 1.5;
/// At most this many steps.
const MAX_STEPS: usize = 16;
/// A step fails when its p99 passes this multiple of the low-load p99.
const SATURATED_P99: f64 = 2.0;
/// Or when its goodput falls under this share of the offered rate.
const SATURATED_GOODPUT: f64 = 0.9;
/// Unmeasured traffic first: connections, caches, a few payments to list.
const WARM_UP: Duration = Duration::from_secs(4);
/// The surge, as a multiple of the 1× rate.
const SURGE: f64 = 10.0;

/// `settle bench surge`: how long each part runs, and its rates.
#[derive(Debug, Clone, Args)]
pub struct SurgeArgs {
    /// Seconds of each phase: 1×, 10×, 1×.
    #[arg(long, default_value_t = 30)]
    pub phase_seconds: u64,
    /// Seconds of each step of the saturation search (and of the low-load
    /// phase).
    #[arg(long, default_value_t = 5)]
    pub step_seconds: u64,
    /// Skip the search and take this offered rate (requests/s) as the
    /// saturating one; one step at it still measures its goodput.
    #[arg(long)]
    pub saturation: Option<f64>,
    /// Requests/s of the low-load phase that sets the normal p99.
    #[arg(long, default_value_t = 50.0)]
    pub low_rate: f64,
}

pub async fn run(args: &SurgeArgs, database_url: Option<String>) -> anyhow::Result<()> {
    let target = Target::create(database_url).await?;
    let result = measure(args, &target).await;
    target.remove().await;
    result
}

async fn measure(args: &SurgeArgs, target: &Target) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let server = Server::start(target, cores, KEYS).await?;
    println!(
        "settle bench surge: {}, {cores} cores; {}",
        target.backend(),
        server.pinning
    );
    let result = drive(args, &server).await;
    server.stop().await;
    result
}

/// Failures counted over every measured request of the run.
#[derive(Debug, Default)]
struct Totals {
    server_errors: u64,
    timeouts: u64,
    connection_errors: u64,
    not_sent: u64,
}

impl Totals {
    fn add(&mut self, samples: &[Sample]) {
        let all = summarize(samples, None, 1.0);
        self.server_errors += all.server_errors;
        self.timeouts += all.timeouts;
        self.connection_errors += all.connection_errors;
        self.not_sent += all.not_sent;
    }
}

async fn drive(args: &SurgeArgs, server: &Server) -> anyhow::Result<()> {
    let harness = Harness::setup(server).await?;
    println!(
        "  {} API keys (Zipf traffic: the first sends 41%), at most {} requests in flight, \
         mix: creates 30% (a third held), captures 10%, reads 35%, lists of 100 25%",
        harness.keys(),
        harness.outstanding
    );
    let step = Duration::from_secs(args.step_seconds.max(1));
    let mut totals = Totals::default();
    harness.run(&[stage(args.low_rate, WARM_UP)]).await;
    let low = one_stage(&harness, stage(args.low_rate, step), &mut totals).await;
    let low = summarize(&low.samples, None, step.as_secs_f64());
    let Some(low_p99) = low.p99_ms else {
        anyhow::bail!("no request was answered 2xx at the low rate of {}/s", args.low_rate);
    };
    println!(
        "  low load {:.0}/s: goodput {:.0}/s, p50 {} ms, p99 {low_p99:.2} ms (the normal p99)",
        args.low_rate,
        low.goodput,
        ms(low.p50_ms)
    );
    let limits: Vec<String> = Class::ALL
        .iter()
        .filter_map(|c| harness.rate_limit(*c).map(|limit| format!("{} {limit}", c.name())))
        .collect();
    if limits.is_empty() {
        println!("  no RateLimit-Limit header seen: the server's rate limits are off or absent");
    } else {
        println!("  rate limits on, RateLimit-Limit per key: {}", limits.join(", "));
    }

    let (saturating, saturating_goodput) = match args.saturation {
        Some(rate) => {
            let at = one_stage(&harness, stage(rate, step), &mut totals).await;
            let at = summarize(&at.samples, None, step.as_secs_f64());
            println!(
                "  saturating rate given: {rate:.0}/s, goodput there {:.0}/s, p99 {} ms",
                at.goodput,
                ms(at.p99_ms)
            );
            (rate, at.goodput)
        }
        None => search(&harness, args, step, (low_p99, low.goodput), &mut totals).await,
    };

    let one = saturating / 2.0;
    let phase = Duration::from_secs(args.phase_seconds.max(1));
    println!(
        "  phases of {} s: 1× = {one:.0}/s (half the saturating rate), {SURGE:.0}× = {:.0}/s, 1× again",
        phase.as_secs(),
        one * SURGE
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let phases = harness
        .run(&[stage(one, phase), stage(one * SURGE, phase), stage(one, phase)])
        .await;
    for result in &phases {
        totals.add(&result.samples);
    }
    let [before, surge, after] = &phases[..] else {
        anyhow::bail!("three phases were run, {} came back", phases.len());
    };
    let secs = phase.as_secs_f64();
    for (name, rate, result) in [
        ("1×", one, before),
        ("10×", one * SURGE, surge),
        ("1× again", one, after),
    ] {
        print_phase(name, rate, result, secs);
    }
    print_keys(&surge.samples, harness.keys());
    print_recovery(&before.samples, &after.samples, phase);

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
    println!(
        "    server peak RSS 10×/1×: {} ({:.1} MB vs {:.1} MB; target < 2×)",
        ratio(surge.rss_peak_kb as f64, before.rss_peak_kb as f64),
        mb(surge.rss_peak_kb),
        mb(before.rss_peak_kb)
    );
    let refusals = harness.refusals();
    if !refusals.is_empty() {
        let list: Vec<String> = refusals.iter().map(|(what, n)| format!("{what} ×{n}")).collect();
        println!("  answers other than 2xx, whole run: {}", list.join(", "));
    }
    ledger::check(&harness).await
}

fn stage(rate: f64, duration: Duration) -> Stage {
    Stage {
        rate: rate.max(1.0),
        duration,
    }
}

/// Runs one stage on its own (its backlog drained before the next).
async fn one_stage(harness: &Arc<Harness>, stage: Stage, totals: &mut Totals) -> StageResult {
    let mut results = harness.run(&[stage]).await;
    let result = results.pop().unwrap_or(StageResult {
        samples: Vec::new(),
        rss_peak_kb: 0,
    });
    totals.add(&result.samples);
    result
}

/// Steps the offered rate up from [`FIRST_STEP`] until a step saturates;
/// the last step that did not, and its goodput (the low-load phase's when
/// even the first step saturated).
async fn search(
    harness: &Arc<Harness>,
    args: &SurgeArgs,
    step: Duration,
    (low_p99, low_goodput): (f64, f64),
    totals: &mut Totals,
) -> (f64, f64) {
    let mut passed = None;
    let mut rate = FIRST_STEP.max(args.low_rate * 2.0);
    for _ in 0..MAX_STEPS {
        // A breath between steps: the last step's work (queue, outbox)
        // should not land on the next.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let result = one_stage(harness, stage(rate, step), totals).await;
        let s = summarize(&result.samples, None, step.as_secs_f64());
        let fast = s.p99_ms.is_some_and(|p99| p99 <= low_p99 * SATURATED_P99);
        let served = s.goodput >= rate * SATURATED_GOODPUT;
        println!(
            "  step {rate:>7.0}/s: goodput {:>7.0}/s ({}), p99 {:>8} ms ({} the normal p99), shed {:.1}%, \
             generator lag p99 {} ms: {}",
            s.goodput,
            ratio(s.goodput, rate),
            ms(s.p99_ms),
            ratio_of(s.p99_ms, Some(low_p99)),
            s.shed * 100.0,
            ms(lag_p99_ms(&result.samples)),
            if fast && served { "passes" } else { "saturated" }
        );
        if !(fast && served) {
            break;
        }
        passed = Some((rate, s.goodput));
        rate *= STEP_FACTOR;
    }
    passed.unwrap_or_else(|| {
        println!(
            "  (no step passed: the low-load rate, {:.0}/s, stands for the saturating one)",
            args.low_rate
        );
        (args.low_rate, low_goodput)
    })
}

fn print_phase(name: &str, rate: f64, result: &StageResult, secs: f64) {
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
        let s: Summary = summarize(&result.samples, class, secs);
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
/// the hot keys should take the refusals.
fn print_keys(samples: &[Sample], keys: usize) {
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
fn print_recovery(before: &[Sample], after: &[Sample], phase: Duration) {
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

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `ratio` of two figures that may be missing.
fn ratio_of(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) => ratio(v, b),
        _ => "n/a".to_owned(),
    }
}
