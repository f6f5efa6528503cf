//! The command line: `serve` (the default), `migrate`, `keys`, `policies`
//! (the break-glass for a policy that locks everyone out), and the tools.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use settle_core::Settle;
use settle_core::clock::SystemClock;

use crate::app::{Application, open_store, shutdown_signal};
use crate::config::{Config, FlagLayer};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "settle",
    version,
    about = "A self-hostable payments ledger and event backend"
)]
struct Cli {
    /// A settle.toml to read (default: ./settle.toml if it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on [env: SETTLE_LISTEN] (default 127.0.0.1:8080).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Directory for the embedded database [env: SETTLE_DATA_DIR] (default ./settle-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run a benchmark that needs Settle's internals; prints ratios
    /// against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
    /// Generate realistic data in bulk (millions of rows in minutes).
    Seed(crate::seed::SeedArgs),
    /// Check every ledger invariant over the whole database.
    Verify,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect, disable or delete attribute policies straight in the
    /// database, without an API key: the way out when a policy denies every
    /// request (a running server follows within SETTLE_AUTH_CACHE_TTL_MS).
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Master-key chores for the sealed webhook signing secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Inspect the queue and replay dead letters.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Run a simulated external processor (the contract in README) for
    /// tests and demos; prints its URL on stdout. Listens on `--listen`
    /// (default 127.0.0.1:8090).
    ProcessorSim(crate::processor_sim::SimOptions),
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Print the queue summary (backlog, relay lag, dead letters) as JSON.
    Status,
    /// Put dead letters back in the queue.
    Replay {
        /// Only this consumer's (fanout, processor).
        #[arg(long)]
        consumer: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Finish a master-key rotation: seal every secret still under an older
    /// key with the current (first) key of SETTLE_MASTER_KEY. Safe while
    /// Settle serves; afterwards the older keys can be removed.
    Reseal,
}

#[derive(Debug, Subcommand)]
enum PoliciesCommand {
    /// One JSON line per policy: id, name, status, and whether its text
    /// compiles under the current limits (with the error when it does not).
    List,
    /// Stop a policy from applying; its text is kept (enable it again with
    /// `PATCH /v1/policies/{id}` and `{"status": "enabled"}`).
    Disable {
        /// The policy's id (`pol_...`).
        id: String,
    },
    /// Delete a policy for good.
    Delete {
        /// The policy's id (`pol_...`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List keys (never their secrets): id, prefix, role, created, last used, expiry, revocation.
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_...`).
        id: String,
    },
    /// Create a key; prints its secret alone on stdout.
    Create {
        /// admin, developer or viewer.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Unix seconds after which the key stops working.
        #[arg(long)]
        expires_at: Option<i64>,
    },
}

pub async fn run() -> anyhow::Result<()> {
    // Before any HTTP client is built: the benches and tools use the default.
    settle_core::tls::install_default_provider();
    let cli = Cli::parse();
    let flags = FlagLayer {
        listen: cli.listen.clone(),
        data_dir: cli.data_dir.clone(),
    };
    let config = Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok(), &flags)?;
    telemetry::init(config.log_format);
    let result = run_command(cli, config).await;
    telemetry::flush();
    result
}

async fn run_command(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config).await,
        Command::ProcessorSim(options) => {
            let listen = cli.listen.as_deref().unwrap_or("127.0.0.1:8090");
            let listen = listen
                .parse()
                .with_context(|| format!("`{listen}` is not an address such as 127.0.0.1:8090"))?;
            crate::processor_sim::run(listen, options).await
        }
        Command::Queue { command } => queue(&config, command).await,
        Command::Policies { command } => policies(&config, command).await,
        Command::Secrets {
            command: SecretsCommand::Reseal,
        } => {
            let settle = Settle::new(open_store(&config).await?, Arc::new(SystemClock));
            let keys = crate::master_key::load(config.webhooks.master_key.as_deref(), &config.data_dir)?;
            settle.attach_webhooks(config.webhooks.setup(keys));
            let report = settle
                .reseal_webhook_secrets()
                .await
                .context("cannot reseal the webhook secrets")?;
            println!(
                "{} endpoints, {} resealed under the current master key",
                report.endpoints, report.resealed
            );
            Ok(())
        }
        Command::Bench { command } => crate::bench::run(command, &config).await,
        Command::Seed(args) => {
            let store = crate::app::open_sql_store(&config).await?;
            let now_ms = settle_core::clock::Clock::now_ms(&SystemClock);
            let seeded = crate::seed::seed(&store, &args, now_ms).await?;
            eprintln!(
                "seeded {} payments, {} refunds, {} ledger entries in {:.1} s ({:.0} rows/s)",
                seeded.payments,
                seeded.refunds,
                seeded.entries,
                seeded.elapsed.as_secs_f64(),
                (seeded.payments + seeded.refunds + seeded.entries) as f64 / seeded.elapsed.as_secs_f64()
            );
            if args.verify {
                verify(&store).await?;
            }
            Ok(())
        }
        Command::Verify => verify(&crate::app::open_sql_store(&config).await?).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            tracing::info!(database = store.backend(), "migrations applied");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Create { role, name, expires_at },
        } => {
            let store = open_store(&config).await?;
            let settle = Settle::new(store, Arc::new(SystemClock));
            let ctx = settle.context("cli", None);
            let (key, secret) = settle
                .create_api_key(&ctx, None, name, &role, expires_at)
                .await
                .context("cannot create the key")?;
            eprintln!("created {} ({}) with role {}", key.id, key.prefix, key.role);
            println!("{secret}");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let settle = Settle::new(open_store(&config).await?, Arc::new(SystemClock));
            let mut q = settle_store::ListQuery::first(100);
            loop {
                let page = settle.list_api_keys(&q).await?;
                for k in &page.data {
                    println!("{}", serde_json::to_string(k)?);
                }
                q.cursor = page
                    .data
                    .last()
                    .map(|k| settle_store::Cursor::StartingAfter(k.id.uuid()));
                if !page.has_more {
                    return Ok(());
                }
            }
        }
        Command::Keys {
            command: KeysCommand::Revoke { id },
        } => {
            let settle = Settle::new(open_store(&config).await?, Arc::new(SystemClock));
            let ctx = settle.context("cli", None);
            let key = settle
                .revoke_api_key(&ctx, None, settle_domain::ids::ApiKeyId::parse(&id))
                .await
                .with_context(|| format!("cannot revoke {id}"))?;
            eprintln!("revoked {} ({})", key.id, key.prefix);
            Ok(())
        }
    }
}

/// The policy break-glass. Works on the database directly, like `keys
/// revoke`, because the API may be the thing a policy has locked; each change
/// is written with an audit record naming the command line as its actor.
async fn policies(config: &Config, command: PoliciesCommand) -> anyhow::Result<()> {
    use settle_domain::ids::PolicyId;
    let settle = Settle::new(open_store(config).await?, Arc::new(SystemClock));
    let mut ctx = settle.context("cli", None);
    let mut audit = |operation: &'static str| {
        ctx.audit = Some(settle_store::records::AuditDraft {
            api_key: None,
            operation,
            permission: "policies:write".into(),
            request_id: "cli".into(),
        });
        ctx.clone()
    };
    match command {
        PoliciesCommand::List => {
            for p in settle.all_policies().await? {
                let compiles = settle_core::policy::validate_isolated(p.policy.clone()).await;
                let line = serde_json::json!({
                    "id": p.id,
                    "name": p.name,
                    "status": if p.enabled() { "enabled" } else { "disabled" },
                    "compiles": compiles.is_ok(),
                    "error": compiles.err().map(|e| e.to_string()),
                });
                println!("{line}");
            }
        }
        PoliciesCommand::Disable { id } => {
            let edit = settle_core::PolicyEdit {
                status: Some(settle_core::PolicyStatus::Disabled),
                ..Default::default()
            };
            let p = settle
                .update_policy(&audit("disable_policy"), PolicyId::parse(&id), edit)
                .await
                .with_context(|| format!("cannot disable {id}"))?;
            eprintln!("disabled {} ({})", p.id, p.name);
        }
        PoliciesCommand::Delete { id } => {
            let deleted = settle
                .delete_policy(&audit("delete_policy"), PolicyId::parse(&id))
                .await
                .with_context(|| format!("cannot delete {id}"))?;
            eprintln!("deleted {}", deleted.id);
        }
    }
    Ok(())
}

/// Prints each ledger invariant with its violations; fails if any.
async fn verify(store: &settle_store::sql::SqlStore) -> anyhow::Result<()> {
    let mut broken = 0;
    for (invariant, violations) in settle_store::sql::verify::check(&mut store.reader()).await? {
        let outcome = if violations == 0 {
            "ok".to_owned()
        } else {
            format!("{violations} VIOLATIONS")
        };
        eprintln!("verify: {invariant}: {outcome}");
        broken += violations;
    }
    anyhow::ensure!(broken == 0, "the ledger invariants do not hold");
    Ok(())
}

async fn queue(config: &Config, command: QueueCommand) -> anyhow::Result<()> {
    let settle = Settle::new(open_store(config).await?, Arc::new(SystemClock));
    let runtime = crate::queue::QueueRuntime::build(&config.queue, &config.webhooks, &settle, None).await?;
    match command {
        QueueCommand::Status => {
            println!("{}", serde_json::to_string_pretty(&settle.queue_status().await?)?);
        }
        QueueCommand::Replay { consumer } => {
            let n = runtime.replay_dead(&settle, consumer.as_deref()).await?;
            eprintln!("replayed {n} dead letters");
        }
    }
    Ok(())
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let app = Application::build(config).await?;
    tracing::info!(address = %app.local_addr()?, database = app.settle().store().backend(), "listening");
    app.run_until(shutdown_signal()).await
}
