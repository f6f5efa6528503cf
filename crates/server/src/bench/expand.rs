//! `expand[]`, GraphQL and gRPC against their alternatives, in one run on
//! one database: the same page of 100 payments plain (the baseline), with
//! its customer, source and destination expanded in the same request
//! (batched loads), the same through GraphQL and through gRPC's
//! `ListPayments` with `expand`, and fetched the N+1 way a client
//! without either would (the page, then each related object by id). Requests/s, p50/p99 and SQL statements per
//! page, from the server's own statement counter.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use settle_core::clock::SystemClock;

use super::grpc_page::GrpcPage;
use super::http::{Connections, Prepared};
use super::load::closed_loop;
use super::target::Target;
use super::{LoadArgs, ratio};
use crate::app::Application;
use crate::config::Config;

const PAGE: usize = 100;

/// The same page and relations as the expanded REST request, as GraphQL.
const GRAPHQL_PAGE: &str = "{ payments(first: 100) { edges { node { id amount currency status created \
    customer { id name email } source { id name balance available } destination { id name balance available } } } \
    pageInfo { hasNextPage endCursor } } }";

/// The statements one GraphQL page costs, from the server's counter.
async fn graphql_statements(http: &reqwest::Client, server: &Server, query: &Value) -> u64 {
    let Ok(res) = http
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&server.secret)
        .json(query)
        .send()
        .await
    else {
        return 0;
    };
    res.headers()
        .get("settle-statements")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Server {
    base: String,
    secret: String,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(target: &Target) -> anyhow::Result<Server> {
    let store = target.open_store(None).await?;
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        statement_header: true,
        ..Config::default()
    };
    config.webhooks.master_key = Some(settle_core::secrets::MasterKeys::generate_text());
    let app = Application::with_store(&config, store, Arc::new(SystemClock)).await?;
    let base = format!("http://{}", app.local_addr()?);
    let settle = app.settle().clone();
    let ctx = settle.context("bench", None);
    let (_, secret) = settle.create_api_key(&ctx, None, "bench".into(), "admin", None).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok(Server { base, secret, stop })
}

async fn post(http: &reqwest::Client, server: &Server, path: &str, body: Value) -> anyhow::Result<String> {
    let res = http
        .post(format!("{}{path}", server.base))
        .bearer_auth(&server.secret)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
    let json: Value = res.json().await?;
    Ok(json["id"].as_str().unwrap_or_default().to_owned())
}

/// 100 payments, each with its own customer, source and destination.
async fn seed(http: &reqwest::Client, server: &Server) -> anyhow::Result<()> {
    let bank = post(
        http,
        server,
        "/v1/accounts",
        json!({"name": "bank", "currency": "usd", "allow_negative": true}),
    )
    .await?;
    for i in 0..PAGE {
        let customer = post(http, server, "/v1/customers", json!({"name": format!("customer {i}")})).await?;
        let account = |name: String| json!({"name": name, "currency": "usd", "customer": customer});
        let source = post(http, server, "/v1/accounts", account(format!("wallet {i}"))).await?;
        let shop = post(http, server, "/v1/accounts", account(format!("shop {i}"))).await?;
        let fund = json!({"amount": 10_000, "currency": "usd", "source": bank, "destination": source});
        post(http, server, "/v1/payments", fund).await?;
        let pay =
            json!({"amount": 500, "currency": "usd", "source": source, "destination": shop, "customer": customer});
        post(http, server, "/v1/payments", pay).await?;
    }
    Ok(())
}

/// One request, its whole body read (not parsed: the client's own JSON
/// work is not Settle's): the body and the answer's statement count.
async fn get(http: &reqwest::Client, server: &Server, path: &str) -> Option<(bytes::Bytes, u64)> {
    let res = http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.secret)
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    let statements = res
        .headers()
        .get("settle-statements")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((res.bytes().await.ok()?, statements))
}

/// The page, then every related object by id, as a client without
/// `expand[]` would: the statements of all those requests.
async fn n_plus_one(http: &reqwest::Client, server: &Server, page: &str) -> Option<u64> {
    let (body, mut statements) = get(http, server, page).await?;
    let body: Value = serde_json::from_slice(&body).ok()?;
    for payment in body["data"].as_array()? {
        for (field, collection) in [
            ("customer", "customers"),
            ("source", "accounts"),
            ("destination", "accounts"),
        ] {
            if let Some(id) = payment[field].as_str() {
                statements += get(http, server, &format!("/v1/{collection}/{id}")).await?.1;
            }
        }
    }
    Some(statements)
}

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
    statements: u64,
}

async fn measure<F, Fut>(args: &LoadArgs, view: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<u64>> + Send,
{
    let times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let view = Arc::new(view);
    let outcome = {
        let (times, statements) = (Arc::clone(&times), Arc::clone(&statements));
        closed_loop(args.clients, args.duration(), move |client, _| {
            let (view, times, statements) = (Arc::clone(&view), Arc::clone(&times), Arc::clone(&statements));
            async move {
                let started = Instant::now();
                let Some(n) = view(client).await else { return false };
                times.lock().unwrap_or_else(|e| e.into_inner()).push(started.elapsed());
                statements.store(n, std::sync::atomic::Ordering::Relaxed);
                true
            }
        })
        .await
    };
    let mut times = std::mem::take(&mut *times.lock().unwrap_or_else(|e| e.into_inner()));
    times.sort_unstable();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        rate: outcome.rate(),
        p50: at(0.50),
        p99: at(0.99),
        statements: statements.load(std::sync::atomic::Ordering::Relaxed),
    }
}

pub async fn run(args: &LoadArgs, database_url: Option<String>) -> anyhow::Result<()> {
    let target = Target::create(database_url).await?;
    let result = async {
        let server = Arc::new(serve(&target).await?);
        let http = reqwest::Client::new();
        seed(&http, &server).await?;
        let page = format!("/v1/payments?limit={PAGE}");
        let expanded = format!("{page}&expand[]=data.customer&expand[]=data.source&expand[]=data.destination");
        // The page alone and expanded go through the benchmarks' own lean
        // client (a general one spends a third of the rate on itself); the
        // statements are read once from the server's counter.
        let addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
        let host = addr.to_string();
        let conns = Arc::new(Connections::open(addr, args.clients).await?);
        let auth = format!("Bearer {}", server.secret);
        let lean_request = |prepared: Prepared| -> anyhow::Result<_> {
            let prepared = Arc::new(prepared.header("authorization", auth.clone()));
            let (conns, host) = (Arc::clone(&conns), host.clone());
            Ok(move |client: usize| {
                let (conns, host, prepared) = (Arc::clone(&conns), host.clone(), Arc::clone(&prepared));
                async move { conns.send(client, &host, &prepared).await.then_some(0) }
            })
        };
        let lean = |path: &str| lean_request(Prepared::get(path));
        let statements_of = |body: Option<(bytes::Bytes, u64)>| body.map_or(0, |(_, n)| n);
        let mut plain = measure(args, lean(&page)?).await;
        plain.statements = statements_of(get(&http, &server, &page).await);
        let mut batched = measure(args, lean(&expanded)?).await;
        batched.statements = statements_of(get(&http, &server, &expanded).await);
        let query = json!({"query": GRAPHQL_PAGE});
        let mut graphql = measure(args, lean_request(Prepared::post_json("/graphql", &query)?)?).await;
        graphql.statements = graphql_statements(&http, &server, &query).await;
        let grpc_page = Arc::new(GrpcPage::open(addr, args.clients, &server.secret, PAGE as u32).await?);
        let grpc_statements = Arc::clone(&grpc_page).fetch(0).await.unwrap_or(0);
        let mut grpc = measure(args, move |client| Arc::clone(&grpc_page).fetch(client)).await;
        grpc.statements = grpc_statements;
        let naive = {
            let (http, server, page) = (http.clone(), Arc::clone(&server), page.clone());
            measure(args, move |_| {
                let (http, server, page) = (http.clone(), Arc::clone(&server), page.clone());
                async move { n_plus_one(&http, &server, &page).await }
            })
            .await
        };
        println!(
            "settle bench expand: {}, a page of {PAGE} payments, {} clients, {} s each",
            target.backend(),
            args.clients,
            args.seconds
        );
        println!(
            "  {:<58} {:>9} {:>8} {:>9} {:>9} {:>11}",
            "", "pages/s", "ratio", "p50 ms", "p99 ms", "statements"
        );
        for (name, f) in [
            ("page alone (baseline)", &plain),
            ("page + expand[] customer, source, destination", &batched),
            ("GraphQL: the page with customer, source, destination", &graphql),
            ("gRPC: ListPayments with the same expand", &grpc),
            ("page + each related object by id (N+1, no expand[])", &naive),
        ] {
            println!(
                "  {:<58} {:>9.0} {:>8} {:>9.2} {:>9.2} {:>11}",
                name,
                f.rate,
                ratio(f.rate, plain.rate),
                f.p50.as_secs_f64() * 1000.0,
                f.p99.as_secs_f64() * 1000.0,
                f.statements
            );
        }
        if let Ok(server) = Arc::try_unwrap(server) {
            let _ = server.stop.send(());
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    target.remove().await;
    result
}
