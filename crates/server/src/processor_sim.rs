//! `settle processor-sim`: a stand-in for an external card or bank
//! processor that speaks the contract in `settle_core::processor`, with
//! the faults real ones have: latency, latency spikes, transient 503s and
//! declines. It remembers each idempotency key's result, so a retried
//! charge is answered again without a second effect, and it counts what
//! tests need to check that (`GET /stats`). `POST /control` changes the
//! failure rate while it runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Json, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The simulator's behaviour, as `settle processor-sim` takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct SimOptions {
    /// Time every call takes.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Share of calls answered 503 without effect (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Share of charges declined with 402 (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub decline_rate: f64,
    /// Share of calls that answer `spike-ms` late, after taking effect (a
    /// client with a shorter timeout gives up on a charge that happened).
    #[arg(long, default_value_t = 0.0)]
    pub spike_rate: f64,
    #[arg(long, default_value_t = 2000)]
    pub spike_ms: u64,
    /// Seeds the choices, so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Charge {
    status: &'static str,
    amount: i64,
    payment: String,
    /// Calls that took effect: 1 unless the processor charged twice.
    effects: u32,
    calls: u32,
}

#[derive(Default)]
struct Ledger {
    charges: HashMap<String, Charge>,
    in_flight: HashMap<String, u32>,
    calls: u64,
    failures: u64,
    concurrent_duplicates: u64,
    /// Calls per `User-Agent`: which callers shared the work.
    agents: HashMap<String, u64>,
}

struct Sim {
    options: Mutex<SimOptions>,
    rng: Mutex<StdRng>,
    ledger: Mutex<Ledger>,
}

type Shared = Arc<Sim>;

#[derive(Deserialize)]
struct ChargeRequest {
    amount: i64,
    payment: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn answer(charge: &Charge) -> Response {
    match charge.status {
        "succeeded" => (
            StatusCode::OK,
            Json(json!({"status": "succeeded", "id": charge.payment})),
        )
            .into_response(),
        _ => (
            StatusCode::PAYMENT_REQUIRED,
            Json(json!({"status": "declined", "reason": "card_declined"})),
        )
            .into_response(),
    }
}

async fn charge(State(sim): State<Shared>, headers: HeaderMap, Json(body): Json<ChargeRequest>) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key is required"})),
        )
            .into_response();
    };
    let options = lock(&sim.options).clone();
    let (fail, decline, spike) = {
        let mut rng = lock(&sim.rng);
        (
            rng.random_bool(options.failure_rate.clamp(0.0, 1.0)),
            rng.random_bool(options.decline_rate.clamp(0.0, 1.0)),
            rng.random_bool(options.spike_rate.clamp(0.0, 1.0)),
        )
    };
    {
        let mut ledger = lock(&sim.ledger);
        ledger.calls += 1;
        let agent = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_owned();
        *ledger.agents.entry(agent).or_insert(0) += 1;
        let busy = ledger.in_flight.entry(key.clone()).or_insert(0);
        *busy += 1;
        if *busy > 1 {
            ledger.concurrent_duplicates += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(options.latency_ms)).await;
    let response = {
        let mut ledger = lock(&sim.ledger);
        if let Some(busy) = ledger.in_flight.get_mut(&key) {
            *busy -= 1;
        }
        if let Some(done) = ledger.charges.get_mut(&key) {
            done.calls += 1;
            answer(done)
        } else if fail {
            ledger.failures += 1;
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "temporarily unavailable"})),
            )
                .into_response();
        } else {
            let charge = Charge {
                status: if decline { "declined" } else { "succeeded" },
                amount: body.amount,
                payment: body.payment,
                effects: 1,
                calls: 1,
            };
            let response = answer(&charge);
            ledger.charges.insert(key, charge);
            response
        }
    };
    if spike {
        tokio::time::sleep(Duration::from_millis(options.spike_ms)).await;
    }
    response
}

async fn stats(State(sim): State<Shared>) -> Response {
    let ledger = lock(&sim.ledger);
    Json(json!({
        "calls": ledger.calls,
        "failures": ledger.failures,
        "concurrent_duplicates": ledger.concurrent_duplicates,
        "agents": ledger.agents,
        "charges": ledger.charges,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Control {
    failure_rate: Option<f64>,
    latency_ms: Option<u64>,
}

async fn control(State(sim): State<Shared>, Json(body): Json<Control>) -> Response {
    let mut options = lock(&sim.options);
    if let Some(rate) = body.failure_rate {
        options.failure_rate = rate;
    }
    if let Some(ms) = body.latency_ms {
        options.latency_ms = ms;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Serves the simulator on `listen` until the process ends; prints the
/// bound address first so a test can start it on port 0.
pub async fn run(listen: SocketAddr, options: SimOptions) -> anyhow::Result<()> {
    let sim = Arc::new(Sim {
        rng: Mutex::new(StdRng::seed_from_u64(options.seed)),
        options: Mutex::new(options),
        ledger: Mutex::new(Ledger::default()),
    });
    let app = axum::Router::new()
        .route("/v1/charges", post(charge))
        .route("/stats", get(stats))
        .route("/control", post(control))
        .with_state(sim);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
