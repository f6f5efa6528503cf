//! Authorization cost per request: the same tiny response through an
//! unauthenticated route (`/healthz`) and through a guarded one
//! (`/v1/policies/schema`: key lookup, role check, policy evaluation), with
//! the key cache on (the default) and off (a database read per request).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use settle_core::clock::SystemClock;

use super::load::closed_loop;
use super::target::Target;
use super::{LoadArgs, ratio};
use crate::app::Application;
use crate::config::Config;

async fn serve(
    target: &Target,
    cache_ttl: Duration,
) -> anyhow::Result<(String, String, tokio::sync::oneshot::Sender<()>)> {
    let store = target.open_store(None).await?;
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        auth_cache_ttl: cache_ttl,
        ..Config::default()
    };
    let mut config = config;
    config.webhooks.master_key = Some(settle_core::secrets::MasterKeys::generate_text());
    let app = Application::with_store(&config, store, Arc::new(SystemClock)).await?;
    let base = format!("http://{}", app.local_addr()?);
    let settle = app.settle().clone();
    let ctx = settle.context("bench", None);
    let (_, secret) = settle.create_api_key(&ctx, None, "bench".into(), "admin", None).await?;
    // A policy to evaluate on every request, as in a real deployment.
    let policy = r#"forbid(principal, action == Action::"refunds:write", resource) when { principal.role == "support" && resource.amount > 5000 };"#;
    settle.create_policy(&ctx, "bench".into(), policy.into(), None).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok((base, secret, stop))
}

async fn rate(args: &LoadArgs, url: String, secret: Option<String>) -> f64 {
    let http = reqwest::Client::new();
    closed_loop(args.clients, args.duration(), move |_, _| {
        let mut req = http.get(&url);
        if let Some(s) = &secret {
            req = req.bearer_auth(s);
        }
        async move { matches!(req.send().await, Ok(r) if r.status().is_success()) }
    })
    .await
    .rate()
}

pub async fn run(args: &LoadArgs, database_url: Option<String>) -> anyhow::Result<()> {
    let target = Target::create(database_url).await?;
    let result = async {
        let (base, secret, stop) = serve(&target, Duration::from_secs(5)).await?;
        let open = rate(args, format!("{base}/healthz"), None).await;
        let guarded = rate(args, format!("{base}/v1/policies/schema"), Some(secret)).await;
        let _ = stop.send(());
        let (base, secret, stop) = serve(&target, Duration::ZERO).await?;
        let uncached = rate(args, format!("{base}/v1/policies/schema"), Some(secret)).await;
        let _ = stop.send(());
        println!(
            "settle bench auth: {}, {} clients, {} s each",
            target.backend(),
            args.clients,
            args.seconds
        );
        println!(
            "  {:<52} {:>9.0}/s  1.00× (baseline)",
            "GET /healthz (no authentication)", open
        );
        println!(
            "  {:<52} {:>9.0}/s  {}",
            "GET /v1/policies/schema (key cache, role, policy)",
            guarded,
            ratio(guarded, open)
        );
        println!(
            "  {:<52} {:>9.0}/s  {}",
            "  same, cache off (a key read per request)",
            uncached,
            ratio(uncached, open)
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    target.remove().await;
    result
}
