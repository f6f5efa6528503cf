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
mod report;
mod server;
mod stats;
mod traffic;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::ratio;
use super::target::Target;
use report::{ms, ratio_of};
use server::Server;
use stats::{Class, Sample, lag_p99_ms, summarize};
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
        "  {} API keys (Zipf traffic: the first sends {:.0}%), at most {} requests in flight, \
         mix: creates 30% (a third held), captures 10%, reads 35%, lists of 100 25%",
        harness.keys(),
        harness.hot_share() * 100.0,
        harness.outstanding
    );
    let step = Duration::from_secs(args.step_seconds.max(1));
    let mut totals = Totals::default();
    // Unmeasured, but its failures count with the rest.
    for warm_up in harness.run(&[stage(args.low_rate, WARM_UP)]).await {
        totals.add(&warm_up.samples);
    }
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
        report::phase(name, rate, result, secs);
    }
    report::keys(&surge.samples, harness.keys());
    report::recovery_times(&before.samples, &after.samples, phase);
    report::targets([before, surge, after], phase, saturating_goodput, &totals);
    report::refusals(&harness.refusals());
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

/// Steps the offered rate up from [`FIRST_STEP`] until a step saturates
/// (misses twice in a row);
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
    let mut retried = false;
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
            match (fast && served, retried) {
                (true, _) => "passes",
                (false, false) => "missed: measured once more",
                (false, true) => "saturated",
            }
        );
        if !(fast && served) {
            // One slow spell (a checkpoint, a neighbour on the machine)
            // must not end the search: a step is saturated when it misses
            // twice in a row.
            if retried {
                break;
            }
            retried = true;
            continue;
        }
        retried = false;
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
