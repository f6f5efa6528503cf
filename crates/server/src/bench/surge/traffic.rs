//! The open-loop generator: requests leave at fixed arrival rates whatever
//! the answers, each in its own task, timed from its intended send instant
//! (so a slow server cannot slow the clock that judges it, as a closed loop
//! lets it). The mix is the issue's: payment creates with idempotency keys,
//! captures of held payments, reads and lists, from several API keys of
//! which the first two carry most of the traffic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use super::server::{Rss, Server};
use super::stats::{Class, Outcome, Sample};

/// Accounts the payments move money between.
const ACCOUNTS: usize = 200;
/// Payment ids kept for reads (the newest replace random older ones).
const READ_POOL: usize = 10_000;
/// Requests in flight at most (fewer if the open-file limit is low); a
/// request due when all are taken is counted as not sent.
const MAX_OUTSTANDING: usize = 4096;
/// The client's timeout per request: past it, a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the mix draws.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Create,
    Capture,
    Retrieve,
    List,
}

impl Kind {
    /// Creates 30%, captures 10%, retrieves 35%, lists 25%.
    fn draw() -> Self {
        match rand::random_range(0..100u32) {
            0..30 => Kind::Create,
            30..40 => Kind::Capture,
            40..75 => Kind::Retrieve,
            _ => Kind::List,
        }
    }

    fn class(self) -> Class {
        match self {
            Kind::Create | Kind::Capture => Class::Money,
            Kind::Retrieve => Class::Reads,
            Kind::List => Class::Lists,
        }
    }
}

/// A payment create the harness sent: enough to send it again.
pub struct CreateAttempt {
    /// The API key it was sent with (idempotency keys are scoped to it).
    pub key: usize,
    pub body: Bytes,
    /// The payment a 2xx named during the run.
    pub answered: Option<String>,
}

#[derive(Default)]
struct Pools {
    /// Payments created with `capture: false` and not captured yet.
    held: Vec<String>,
    /// Payments to read.
    payments: Vec<String>,
}

/// A rate held for a while.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
}

/// What one stage of a schedule produced.
pub struct StageResult {
    pub samples: Vec<Sample>,
    /// The server's peak resident memory during the stage, KiB.
    pub rss_peak_kb: u64,
}

/// The generator's state shared by every request of a run.
pub struct Harness {
    pub(super) http: reqwest::Client,
    base: String,
    /// `Bearer <secret>` per API key.
    auth: Vec<String>,
    /// Cumulative traffic shares of the keys: Zipf with exponent 1, so with
    /// six keys the first sends 41% and the second 20%.
    key_cdf: Vec<f64>,
    accounts: Vec<String>,
    /// Tells this run's idempotency keys from any other's.
    run: u32,
    pools: Mutex<Pools>,
    pub(super) creates: Mutex<Vec<CreateAttempt>>,
    /// Answers other than 2xx, by status and error code.
    refusals: Mutex<BTreeMap<String, u64>>,
    /// The first `RateLimit-Limit` header seen per class (the server
    /// limits money writes, reads and lists apart).
    rate_limits: [OnceLock<String>; 3],
    rss: Arc<Rss>,
    /// Requests in flight at most.
    pub outstanding: usize,
}

/// A payment as the harness reads it.
#[derive(Debug, Deserialize)]
pub(super) struct PaymentSeen {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub amount: i64,
}

/// An account as the harness reads it.
#[derive(Debug, Deserialize)]
pub(super) struct AccountSeen {
    pub id: String,
    #[serde(default)]
    pub balance: i64,
    #[serde(default)]
    pub pending_out: i64,
}

/// `std`'s mutex, whose poisoning (a panicking holder) changes nothing here.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Harness {
    /// Opens [`ACCOUNTS`] accounts that may go negative (so no payment
    /// fails for funds and their balances must sum to zero).
    pub async fn setup(server: &Server) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .pool_max_idle_per_host(MAX_OUTSTANDING)
            .tcp_nodelay(true)
            .build()?;
        let weights: Vec<f64> = (1..=server.keys.len()).map(|k| 1.0 / k as f64).collect();
        let total: f64 = weights.iter().sum();
        let key_cdf = weights
            .iter()
            .scan(0.0, |sum, w| {
                *sum += w / total;
                Some(*sum)
            })
            .collect();
        let mut harness = Harness {
            http,
            base: server.base.clone(),
            auth: server.keys.iter().map(|s| format!("Bearer {s}")).collect(),
            key_cdf,
            accounts: Vec::with_capacity(ACCOUNTS),
            run: rand::random(),
            pools: Mutex::default(),
            creates: Mutex::default(),
            refusals: Mutex::default(),
            rate_limits: Default::default(),
            rss: Arc::clone(&server.rss),
            outstanding: MAX_OUTSTANDING.min(open_file_limit().saturating_sub(256)).max(64),
        };
        let mut accounts = Vec::with_capacity(ACCOUNTS);
        for i in 0..ACCOUNTS {
            let body = serde_json::json!({"name": format!("surge {i}"), "currency": "usd", "allow_negative": true});
            let url = harness.url("/v1/accounts");
            let opened: AccountSeen = harness
                .retrying(0, Duration::from_secs(30), || harness.http.post(&url).json(&body))
                .await
                .context("cannot open the accounts")?;
            accounts.push(opened.id);
        }
        harness.accounts = accounts;
        Ok(Arc::new(harness))
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn keys(&self) -> usize {
        self.auth.len()
    }

    /// The share of the traffic the hottest key sends.
    pub fn hot_share(&self) -> f64 {
        self.key_cdf.first().copied().unwrap_or(1.0)
    }

    /// This run's idempotency key of create attempt `index`.
    pub(super) fn idempotency_key(&self, index: usize) -> String {
        format!("surge-{:08x}-{index}", self.run)
    }

    /// The `RateLimit-Limit` the server announced for `class`, if any.
    pub fn rate_limit(&self, class: Class) -> Option<&str> {
        self.rate_limits[class.index()].get().map(String::as_str)
    }

    pub fn refusals(&self) -> BTreeMap<String, u64> {
        lock(&self.refusals).clone()
    }

    /// Runs `stages` back to back on one clock: a stage's requests are due
    /// at its start + i/rate, and the next stage starts when it ends, not
    /// when its answers are in (the surge's backlog meets the phase after
    /// it, as it would). Returns once every request has ended.
    pub async fn run(self: &Arc<Self>, stages: &[Stage]) -> Vec<StageResult> {
        let slots = Arc::new(Semaphore::new(self.outstanding));
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Sample)>();
        let mut peaks = Vec::with_capacity(stages.len());
        let mut start = Instant::now();
        self.rss.restart();
        for (stage_index, stage) in stages.iter().enumerate() {
            let count = (stage.rate * stage.duration.as_secs_f64()).round() as u64;
            for i in 0..count {
                let intended = start + Duration::from_secs_f64(i as f64 / stage.rate);
                // Behind schedule, the request leaves at once: none is skipped.
                if intended > Instant::now() {
                    tokio::time::sleep_until(intended).await;
                }
                let (kind, key) = (Kind::draw(), self.draw_key());
                let mut sample = Sample {
                    class: kind.class(),
                    outcome: Outcome::NotSent,
                    key: key as u8,
                    latency_us: 0,
                    lag_us: 0,
                    offset_ms: (intended - start).as_millis() as u32,
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    let _ = tx.send((stage_index, sample));
                    continue;
                };
                let (harness, tx) = (Arc::clone(self), tx.clone());
                tokio::spawn(async move {
                    sample.lag_us = micros(intended.elapsed());
                    sample.outcome = harness.send(kind, key).await;
                    sample.latency_us = micros(intended.elapsed());
                    drop(slot);
                    let _ = tx.send((stage_index, sample));
                });
            }
            start += stage.duration;
            tokio::time::sleep_until(start).await;
            peaks.push(self.rss.restart());
        }
        drop(tx);
        let mut samples = vec![Vec::new(); stages.len()];
        while let Some((stage_index, sample)) = rx.recv().await {
            samples[stage_index].push(sample);
        }
        samples
            .into_iter()
            .zip(peaks)
            .map(|(samples, rss_peak_kb)| StageResult { samples, rss_peak_kb })
            .collect()
    }

    fn draw_key(&self) -> usize {
        let u: f64 = rand::random();
        self.key_cdf.partition_point(|p| *p < u).min(self.auth.len() - 1)
    }

    fn account(&self) -> &str {
        &self.accounts[rand::random_range(0..self.accounts.len())]
    }

    async fn send(&self, kind: Kind, key: usize) -> Outcome {
        match kind {
            Kind::Create => self.create(key).await,
            Kind::Capture => {
                let held = lock(&self.pools).held.pop();
                match held {
                    Some(id) => self.capture(key, id).await,
                    None => self.create(key).await,
                }
            }
            Kind::Retrieve => {
                let path = {
                    let pools = lock(&self.pools);
                    match pools.payments.len() {
                        n if n > 0 && rand::random_bool(0.5) => {
                            format!("/v1/payments/{}", pools.payments[rand::random_range(0..n)])
                        }
                        _ => format!("/v1/accounts/{}", self.account()),
                    }
                };
                self.exchange(self.http.get(self.url(&path)), key, Class::Reads).await.0
            }
            Kind::List => {
                let path = match rand::random_range(0..3u32) {
                    0 => "/v1/payments?limit=100".to_owned(),
                    1 => "/v1/payments?limit=100&status=requires_capture".to_owned(),
                    _ => format!("/v1/payments?limit=100&source={}", self.account()),
                };
                self.exchange(self.http.get(self.url(&path)), key, Class::Lists).await.0
            }
        }
    }

    /// A payment of 1 to 500 cents between two accounts, held (to capture
    /// later) one time in three, under a new idempotency key.
    async fn create(&self, key: usize) -> Outcome {
        let from = rand::random_range(0..self.accounts.len());
        let to = (from + rand::random_range(1..self.accounts.len())) % self.accounts.len();
        let body = serde_json::json!({
            "amount": rand::random_range(1..=500u32),
            "currency": "usd",
            "source": self.accounts[from],
            "destination": self.accounts[to],
            "capture": !rand::random_ratio(1, 3),
        });
        let body = Bytes::from(body.to_string());
        let attempt = {
            let mut creates = lock(&self.creates);
            creates.push(CreateAttempt {
                key,
                body: body.clone(),
                answered: None,
            });
            creates.len() - 1
        };
        let request = self
            .http
            .post(self.url("/v1/payments"))
            .header(CONTENT_TYPE, "application/json")
            .header("idempotency-key", self.idempotency_key(attempt))
            .body(body);
        let (outcome, answer) = self.exchange(request, key, Class::Money).await;
        if let Some(payment) = answer.and_then(|a| serde_json::from_slice::<PaymentSeen>(&a).ok()) {
            if let Some(a) = lock(&self.creates).get_mut(attempt) {
                a.answered = Some(payment.id.clone());
            }
            let mut pools = lock(&self.pools);
            if payment.status == "requires_capture" {
                pools.held.push(payment.id.clone());
            }
            if pools.payments.len() < READ_POOL {
                pools.payments.push(payment.id);
            } else {
                let slot = rand::random_range(0..READ_POOL);
                pools.payments[slot] = payment.id;
            }
        }
        outcome
    }

    /// Captures all of a held payment; a shed capture puts it back.
    async fn capture(&self, key: usize, id: String) -> Outcome {
        let request = self.http.post(self.url(&format!("/v1/payments/{id}/capture")));
        let (outcome, _) = self.exchange(request, key, Class::Money).await;
        if outcome == Outcome::Shed {
            lock(&self.pools).held.push(id);
        }
        outcome
    }

    /// Sends `request` with key `key`'s credentials; the body of a 2xx.
    async fn exchange(&self, request: RequestBuilder, key: usize, class: Class) -> (Outcome, Option<Bytes>) {
        let answer = match request.header(AUTHORIZATION, &self.auth[key]).send().await {
            Ok(answer) => answer,
            Err(e) => return (failure(&e), None),
        };
        let status = answer.status();
        let announced = &self.rate_limits[class.index()];
        if announced.get().is_none()
            && let Some(limit) = answer.headers().get("ratelimit-limit").and_then(|v| v.to_str().ok())
        {
            let _ = announced.set(limit.to_owned());
        }
        let body = match answer.bytes().await {
            Ok(body) => body,
            Err(e) => return (failure(&e), None),
        };
        if status.is_success() {
            return (Outcome::Admitted, Some(body));
        }
        let code = error_code(&body);
        *lock(&self.refusals)
            .entry(format!("{} {code}", status.as_u16()))
            .or_default() += 1;
        let outcome = match (status, code.as_str()) {
            (StatusCode::TOO_MANY_REQUESTS, _) | (StatusCode::SERVICE_UNAVAILABLE, "overloaded" | "brownout") => {
                Outcome::Shed
            }
            (s, _) if s.is_server_error() => Outcome::ServerError,
            _ => Outcome::ClientError,
        };
        (outcome, None)
    }

    /// Sends what `build` builds with key `key` until a 2xx, for at most
    /// `patience`: refusals that say "later" (429, 503, 409 while the
    /// first request with an idempotency key still runs) and broken
    /// connections are retried after their `Retry-After` (at most 2 s);
    /// any other answer is an error. For setup and checks, not the load.
    pub(super) async fn retrying<T: DeserializeOwned>(
        &self,
        key: usize,
        patience: Duration,
        build: impl Fn() -> RequestBuilder,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + patience;
        loop {
            let (wait, last) = match build().header(AUTHORIZATION, &self.auth[key]).send().await {
                Ok(answer) if answer.status().is_success() => return Ok(answer.json().await?),
                Ok(answer) => {
                    let status = answer.status();
                    let wait = answer
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = answer.text().await.unwrap_or_default();
                    let later = [
                        StatusCode::TOO_MANY_REQUESTS,
                        StatusCode::SERVICE_UNAVAILABLE,
                        StatusCode::CONFLICT,
                    ];
                    if !later.contains(&status) {
                        bail!("{status}: {body}");
                    }
                    (wait, format!("{status}: {body}"))
                }
                Err(e) => (None, e.to_string()),
            };
            if Instant::now() >= deadline {
                bail!("no 2xx within {} s; the last answer: {last}", patience.as_secs());
            }
            let wait = wait.unwrap_or(Duration::from_millis(200));
            tokio::time::sleep(wait.clamp(Duration::from_millis(50), Duration::from_secs(2))).await;
        }
    }
}

fn failure(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::Connection
    }
}

/// `error.code` of an error body, or `-` when it has none.
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// This process's soft limit on open files (`/proc/self/limits`): every
/// request in flight holds a socket.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|soft| match soft {
                    "unlimited" => Some(usize::MAX),
                    soft => soft.parse().ok(),
                })
        })
        .unwrap_or(1024)
}
