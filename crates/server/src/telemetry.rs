//! Structured logs on stderr (stdout stays clean for commands whose output
//! scripts capture): text by default, JSON with `SETTLE_LOG_FORMAT=json`;
//! the level comes from `SETTLE_LOG` (e.g. `info`, `settle=debug`).
//!
//! A request's log line is handed to a thread of its own that writes to
//! stderr, several lines per write when they come fast: writing from the
//! request's task cost a system call per request, a fifth of a cached
//! read's time. Lines wait in a bounded queue; when it is full (stderr
//! blocked) a line is dropped and counted rather than stalling requests,
//! and the count is written once the queue drains. A process killed with
//! SIGKILL loses what was still queued, a few lines at most; a clean exit
//! waits for the queue ([`flush`]).

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Lines waiting for the writer thread, at most.
const QUEUE: usize = 65_536;

/// Lines dropped because the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The queue's sending side and the count of lines not yet written.
struct Queue {
    tx: SyncSender<Vec<u8>>,
    pending: AtomicU64,
}

static QUEUE_HANDLE: OnceLock<Queue> = OnceLock::new();

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SETTLE_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=error"));
    // Colours only for a terminal: escape codes in a file or a collector
    // are noise, and cost formatting time on every line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(Background::start());
    // A second init (tests start many apps in one process) is harmless.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Waits (at most two seconds) until every queued line is on stderr.
pub fn flush() {
    let Some(queue) = QUEUE_HANDLE.get() else { return };
    let deadline = Instant::now() + Duration::from_secs(2);
    while queue.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The writer the log layer formats each line into.
#[derive(Clone, Copy)]
struct Background;

impl Background {
    fn start() -> Self {
        QUEUE_HANDLE.get_or_init(|| {
            let (tx, rx) = sync_channel(QUEUE);
            // Without the thread the queue is closed: lines are dropped
            // and counted, requests go on.
            let _ = std::thread::Builder::new()
                .name("settle-log".into())
                .spawn(move || write_lines(rx));
            Queue {
                tx,
                pending: AtomicU64::new(0),
            }
        });
        Background
    }
}

/// How often the writer thread looks for lines. It sleeps rather than
/// waiting on the queue, so that queueing a line never wakes a thread: a
/// wake per request cost as much as the write it replaced.
const WRITE_EVERY: Duration = Duration::from_millis(5);

/// Writes what was queued, every [`WRITE_EVERY`], in one write. stderr is
/// locked only for that write: anything else in the process that writes
/// to stderr (an error on exit, a panic) must never wait on this thread.
fn write_lines(rx: Receiver<Vec<u8>>) {
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        std::thread::sleep(WRITE_EVERY);
        let mut n = 0;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    batch.extend_from_slice(&line);
                    n += 1;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            batch.extend_from_slice(
                format!("settle: {dropped} log lines dropped (stderr could not keep up)\n").as_bytes(),
            );
        }
        if batch.is_empty() {
            continue;
        }
        let _ = std::io::stderr().write_all(&batch);
        batch.clear();
        if let Some(queue) = QUEUE_HANDLE.get() {
            queue.pending.fetch_sub(n, Ordering::SeqCst);
        }
    }
}

/// One line on its way: formatted here, sent whole.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let Some(queue) = QUEUE_HANDLE.get() else { return };
        queue.pending.fetch_add(1, Ordering::SeqCst);
        match queue.tx.try_send(std::mem::take(&mut self.0)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                queue.pending.fetch_sub(1, Ordering::SeqCst);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for Background {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(256))
    }
}
