//! `settle bench webhooks`: the figures of issue 16, each printed next to
//! its target, for every queue setup the machine offers (embedded on
//! SQLite; embedded on PostgreSQL with `DATABASE_URL`; NATS JetStream when
//! NATS answers), each phase on a fresh database:
//!
//! 1. the receiver's own rate under a plain keep-alive client: the ceiling;
//! 2. end to end: payments through the HTTP API as fast as the clients can
//!    for the bench's seconds, one endpoint for `payment.succeeded`, until
//!    every delivery arrived;
//! 3. payment creation with one endpoint for every event, against none;
//! 4. backlog drain: the delivery worker alone on `--backlog` pending
//!    deliveries, to one endpoint and across ten;
//! 5. paced: about 100 payments a second, commit → receipt p50/p99 on the
//!    client's clock.
//!
//! The server, its queue and workers run as `settle serve` runs them, from
//! the same configuration (file and `SETTLE_*`); the bench only lets the
//! worker reach a loopback receiver. Each figure is printed with the
//! machine's load average, since the bench shares its cores.

mod backlog;
mod receiver;
mod report;
mod served;

use std::net::SocketAddr;

use clap::Args;
use settle_core::secrets::MasterKeys;
use settle_core::tls::OutgoingTls;

use super::LoadArgs;
use super::target::Target;
use crate::config::{Config, QueueBackend};
use receiver::Receiver;
use report::{Goals, Section, at_least_rate, at_least_ratio, at_most_ms, summary, thousands};

#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Deliveries in each backlog drain.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: u64,
    /// Deliver to this URL (e.g. nginx answering 204) instead of the
    /// in-process receiver; each endpoint adds a query string of its own.
    /// Completion is then read from the store, and latency is not measured.
    #[arg(long)]
    pub receiver: Option<String>,
}

/// One queue setup's share of the run.
struct Setup<'a> {
    args: &'a WebhookArgs,
    receiver: &'a Receiver,
    /// The configuration every phase starts from.
    base: &'a Config,
    /// The PostgreSQL server (a fresh database on it per phase); none: SQLite.
    database_url: Option<String>,
    backend: QueueBackend,
}

impl Setup<'_> {
    /// `settle serve`'s configuration on `target`, with a NATS prefix of its own.
    fn config_for(&self, target: &Target) -> Config {
        let mut c = self.base.clone();
        c.database_url = target.postgres_url();
        c.database_listen_url = None;
        c.queue.backend = self.backend;
        c.queue.nats_prefix = format!("bench{:x}", rand::random::<u32>());
        c
    }

    fn label(&self) -> String {
        let queue = match self.backend {
            QueueBackend::Embedded => "embedded",
            QueueBackend::Nats => "NATS JetStream",
        };
        let db = if self.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        format!("{queue} on {db}")
    }
}

pub async fn run(args: &WebhookArgs, config: &Config) -> anyhow::Result<()> {
    let receiver = Receiver::start(args.receiver.clone()).await?;
    let base = bench_config(config);
    let delivery = crate::queue::delivery_options(&base.webhooks, &base.queue, OutgoingTls::default());
    println!(
        "settle bench webhooks: {} clients, {} s per load, backlogs of {}",
        args.load.clients,
        args.load.seconds,
        thousands(args.backlog as f64)
    );
    println!("  receiver: {}", receiver.describe());
    println!(
        "  payments: through the HTTP API (POST /v1/payments on keep-alive connections), server, queue and workers as `settle serve` runs them"
    );
    println!(
        "  delivery settings as configured: {} in flight per endpoint at first, growing to {}, {} in all, timeout {} s; \
         database pool: {}",
        delivery.per_endpoint,
        delivery.max_per_endpoint,
        delivery.global,
        delivery.timeout.as_secs(),
        base.db_pool_size
            .map_or("the store's default".to_owned(), |n| n.to_string())
    );
    let mut done: Vec<Section> = Vec::new();
    for (database_url, backend) in super::queue_configs(&config.database_url, &config.queue.nats_url).await {
        let setup = Setup {
            args,
            receiver: &receiver,
            base: &base,
            database_url,
            backend,
        };
        let section = measure(&setup, delivery.global, &done).await;
        done.push(section);
    }
    receiver.stop();
    summary(&done);
    Ok(())
}

/// The server's configuration with what the bench needs: a loopback
/// receiver allowed, a master key (generated unless configured), any port.
fn bench_config(config: &Config) -> Config {
    let mut c = config.clone();
    c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.webhooks.allow_private_targets = true;
    if c.webhooks.master_key.is_none() {
        c.webhooks.master_key = Some(MasterKeys::generate_text());
    }
    c
}

/// Deletes the streams a NATS run created under its prefix.
async fn remove_streams(config: &Config) {
    if config.queue.backend != QueueBackend::Nats {
        return;
    }
    let Ok(client) = async_nats::connect(config.queue.nats_url.as_str()).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    for suffix in ["EVENTS", "DEAD"] {
        let _ = js
            .delete_stream(format!("{}_{suffix}", config.queue.nats_prefix.to_uppercase()))
            .await;
    }
}

/// Runs every phase for one setup, printing each figure as it comes; a
/// phase that fails says so and leaves its figure out.
async fn measure(s: &Setup<'_>, connections: usize, done: &[Section]) -> Section {
    let postgres = s.database_url.is_some();
    let goals = Goals::new(postgres, s.backend, done);
    let mut section = Section::new(s.label(), postgres, s.backend);
    println!("\n{}", section.label);
    ceiling(s, connections, &mut section).await;
    end_to_end(s, &goals, &mut section).await;
    create_cost(s, &mut section).await;
    for (i, endpoints) in [1, 10].into_iter().enumerate() {
        drain(s, &goals, &mut section, i, endpoints).await;
    }
    paced(s, &goals, &mut section).await;
    section
}

async fn ceiling(s: &Setup<'_>, connections: usize, section: &mut Section) {
    match s.receiver.ceiling(connections, s.args.load.duration()).await {
        Ok(rate) => {
            section.ceiling = Some(rate);
            section.note(format!(
                "receiver ceiling, plain client on {connections} keep-alive connections for {} s: {}/s",
                s.args.load.seconds,
                thousands(rate)
            ));
        }
        Err(e) => println!("  receiver ceiling failed: {e:#}"),
    }
}

async fn end_to_end(s: &Setup<'_>, goals: &Goals, section: &mut Section) {
    let e = match served::end_to_end(s).await {
        Ok(e) => e,
        Err(e) => {
            println!("  end to end failed: {e:#}");
            return;
        }
    };
    section.end_to_end = e.rate;
    let failed = if e.failed > 0 {
        format!(" ({} requests failed)", e.failed)
    } else {
        String::new()
    };
    let figure = match e.rate {
        Some(rate) => format!(
            "all delivered: {}/s {}, {} the ceiling",
            thousands(rate),
            at_least_rate(rate, goals.end_to_end),
            super::ratio(rate, section.ceiling.unwrap_or(0.0))
        ),
        None => format!("FAILED: only {} of them delivered", thousands(e.arrived as f64)),
    };
    section.note(format!(
        "end to end, one endpoint for payment.succeeded, {} HTTP clients for {} s: {} payments{failed}, {figure}",
        s.args.load.clients,
        s.args.load.seconds,
        thousands(e.payments as f64)
    ));
}

async fn create_cost(s: &Setup<'_>, section: &mut Section) {
    let (without, with) = match served::create_cost(s).await {
        Ok(rates) => rates,
        Err(e) => {
            println!("  payment create with and without an endpoint failed: {e:#}");
            return;
        }
    };
    let ratio = with / without;
    section.create_ratio = Some(ratio);
    section.note(format!(
        "payment create, no endpoint: {}/s; one endpoint for `*`, its deliveries going out: {}/s: {ratio:.2}× {}",
        thousands(without),
        thousands(with),
        at_least_ratio(ratio, 0.8)
    ));
}

/// Drain `i` of the section: to one endpoint, then across ten.
async fn drain(s: &Setup<'_>, goals: &Goals, section: &mut Section, i: usize, endpoints: usize) {
    let spread = if endpoints == 1 {
        "to one endpoint".to_owned()
    } else {
        format!("across {endpoints} endpoints")
    };
    let d = match backlog::drain(s, endpoints).await {
        Ok(d) => d,
        Err(e) => {
            println!("  backlog drain {spread} failed: {e:#}");
            return;
        }
    };
    section.drains[i] = d.rate;
    let figure = match d.rate {
        Some(rate) => format!("{}/s {}", thousands(rate), goals.drain(i, rate)),
        None => format!("FAILED: only {} arrived", thousands(d.arrived as f64)),
    };
    section.note(format!(
        "backlog drain, {} deliveries {spread} (built in {:.1} s, not timed): {figure}",
        thousands(d.deliveries as f64),
        d.built_in.as_secs_f64()
    ));
}

async fn paced(s: &Setup<'_>, goals: &Goals, section: &mut Section) {
    if !s.receiver.is_local() {
        println!("  paced latency: skipped (an external receiver's receipts cannot be timed in process)");
        return;
    }
    let p = match served::paced(s).await {
        Ok(p) => p,
        Err(e) => {
            println!("  paced latency failed: {e:#}");
            return;
        }
    };
    let (Some(p50), Some(p99)) = (p.percentile(50), p.percentile(99)) else {
        println!("  paced: FAILED: none of {} deliveries arrived", p.sent);
        return;
    };
    section.paced = Some((p50, p99));
    let p99_goal = goals
        .p99_ms
        .map_or(String::new(), |g| format!(" {}", at_most_ms(p99, g)));
    section.note(format!(
        "paced, about 100 payments/s: {} of {} received, commit → receipt p50 {p50:.1} ms {}, p99 {p99:.1} ms{p99_goal}",
        p.latencies_ms.len(),
        p.sent,
        at_most_ms(p50, goals.p50_ms)
    ));
}
