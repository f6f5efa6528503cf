//! The server under the surge: `settle serve` from this very binary, as a
//! child process, so that its memory can be read on its own and it can be
//! kept to one core while the generator runs on the others.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::bench::target::Target;

/// How long a fresh server may take to answer `/readyz` (migrations on a
/// debug build included).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How often the server's resident memory is read.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// The server's resident memory: the latest reading and the peak since the
/// last [`Rss::restart`].
#[derive(Debug, Default)]
pub struct Rss {
    current_kb: AtomicU64,
    peak_kb: AtomicU64,
}

impl Rss {
    fn observe(&self, kb: u64) {
        self.current_kb.store(kb, Ordering::Relaxed);
        self.peak_kb.fetch_max(kb, Ordering::Relaxed);
    }

    /// The peak since the last call (KiB); the next peak starts from now.
    pub fn restart(&self) -> u64 {
        self.peak_kb
            .swap(self.current_kb.load(Ordering::Relaxed), Ordering::Relaxed)
    }
}

/// A running `settle serve` child, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// One secret per API key, all with the `developer` role (writes
    /// payments and accounts, reads everything the mix reads).
    pub keys: Vec<String>,
    /// Which cores the server and the generator run on, for the report.
    pub pinning: String,
    pub rss: Arc<Rss>,
    sampler: tokio::task::JoinHandle<()>,
    /// The server's log (and, on PostgreSQL, its data directory), removed
    /// when it stops.
    work: PathBuf,
}

/// What the child is started with, on top of the bench's own environment
/// (its `settle.toml`, `SETTLE_*`, `REDIS_URL`, `NATS_URL` and rate-limit
/// settings apply to the server as they would to `settle serve`).
struct ChildEnv {
    listen: String,
    data_dir: PathBuf,
    database_url: Option<String>,
    master_key: String,
}

impl ChildEnv {
    fn apply(&self, command: &mut Command) {
        command
            .env("SETTLE_LISTEN", &self.listen)
            .env("SETTLE_DATA_DIR", &self.data_dir)
            .env("SETTLE_MASTER_KEY", &self.master_key)
            .env("SETTLE_LOG", "error")
            // The bench's own database's listener, not the configured one's.
            .env_remove("SETTLE_DB_LISTEN_URL");
        match &self.database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
    }
}

impl Server {
    /// Creates `keys` API keys on `target`, then starts `settle serve` on
    /// it at a free loopback port, pinned to one core when the machine has
    /// two or more (the generator then takes the others), and waits until
    /// it is ready.
    pub async fn start(target: &Target, cores: usize, keys: usize) -> anyhow::Result<Self> {
        let work = std::env::temp_dir().join(format!(
            "settle_surge_{}_{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
        let started = Self::launch(target, cores, keys, work.clone()).await;
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&work);
        }
        started
    }

    async fn launch(target: &Target, cores: usize, keys: usize, work: PathBuf) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the settle binary to start the server")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let env = ChildEnv {
            listen: format!("127.0.0.1:{port}"),
            data_dir: target
                .sqlite_file()
                .and_then(|file| file.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| work.clone()),
            database_url: target.postgres_url(),
            master_key: settle_core::secrets::MasterKeys::generate_text(),
        };

        let mut secrets = Vec::with_capacity(keys);
        for i in 0..keys {
            let mut create = Command::new(&exe);
            create.args(["keys", "create", "--role", "developer", "--name", &format!("surge-{i}")]);
            env.apply(&mut create);
            let out = create.output().await.context("cannot run `settle keys create`")?;
            if !out.status.success() {
                bail!(
                    "`settle keys create` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            secrets.push(String::from_utf8(out.stdout)?.trim().to_owned());
        }

        let cpus = allowed_cpus();
        let pin = cores >= 2 && cpus.len() >= 2 && taskset_runs().await;
        let log = work.join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let mut serve = if pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus[0].to_string()).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        serve
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        env.apply(&mut serve);
        let mut child = serve.spawn().context("cannot start `settle serve`")?;
        let pid = child.id().context("the server exited at once")?;

        let pinning = if pin {
            let others: Vec<String> = cpus[1..].iter().map(usize::to_string).collect();
            let others = others.join(",");
            if pin_self(&others).await {
                format!("server pinned to core {}, generator to cores {others}", cpus[0])
            } else {
                format!(
                    "server pinned to core {}, generator not pinned (taskset -a -p failed)",
                    cpus[0]
                )
            }
        } else if cores < 2 || cpus.len() < 2 {
            "one core: server and generator not pinned, they share it".to_owned()
        } else {
            "not pinned (no taskset)".to_owned()
        };

        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&mut child, &base, &log).await?;
        let rss = Arc::new(Rss::default());
        let sampler = tokio::spawn(sample_rss(pid, Arc::clone(&rss)));
        Ok(Server {
            child,
            base,
            keys: secrets,
            pinning,
            rss,
            sampler,
            work,
        })
    }

    /// Kills the server, says what it logged (at error level), and removes
    /// its files.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.sampler.abort();
        let logged = log_tail(&self.work.join("server.log"), 10);
        if !logged.is_empty() {
            println!("  the server logged (last lines):\n{logged}");
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Polls `/readyz` until it answers 2xx; fails if the child exits first.
async fn wait_ready(child: &mut Child, base: &str, log: &Path) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited ({status}):\n{}", log_tail(log, 20));
        }
        if let Ok(answer) = http.get(format!("{base}/readyz")).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the server did not answer /readyz within {} s:\n{}",
                READY_WITHIN.as_secs(),
                log_tail(log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `VmRSS` of `pid` every [`RSS_EVERY`] until the process is gone.
async fn sample_rss(pid: u32, rss: Arc<Rss>) {
    let path = format!("/proc/{pid}/status");
    let mut tick = tokio::time::interval(RSS_EVERY);
    loop {
        tick.tick().await;
        // A small kernel-made file: reading it does not block in practice.
        let Ok(status) = std::fs::read_to_string(&path) else {
            return;
        };
        if let Some(kb) = vm_rss_kb(&status) {
            rss.observe(kb);
        }
    }
}

/// `VmRSS:    12345 kB` of a `/proc/<pid>/status`.
fn vm_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// The cores this process may run on (`Cpus_allowed_list`), so that pinning
/// stays inside a container's cpuset.
fn allowed_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(parse_cpu_list)
        })
        .unwrap_or_default()
}

/// `0-3,8,10-11` → `[0, 1, 2, 3, 8, 10, 11]`.
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(first), Ok(last)) = (first.trim().parse::<usize>(), last.trim().parse::<usize>()) {
            cpus.extend(first..=last);
        }
    }
    cpus
}

async fn taskset_runs() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Moves every thread of this process (the generator) to `cpus`; threads
/// started later inherit it.
async fn pin_self(cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// The last `lines` lines of the server's log, indented.
fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("1"), vec![1]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn rss_is_read_from_proc_status() {
        let status = "Name:\tsettle\nVmPeak:\t  900 kB\nVmRSS:\t   48123 kB\nThreads:\t9\n";
        assert_eq!(vm_rss_kb(status), Some(48123));
        assert_eq!(vm_rss_kb("Name:\tx\n"), None);
    }
}
