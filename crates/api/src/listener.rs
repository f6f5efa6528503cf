//! The listener: HTTP/1.1 and HTTP/2 with prior knowledge on one port,
//! served by hyper-util with the limits `axum::serve` leaves out. Without
//! them a client that connects and sends nothing, half a request line or
//! a body that never ends holds a connection (and a file descriptor) for
//! ever; a thousand such clients hold the server.
//!
//! - A request head must arrive within `header_timeout` of its first byte
//!   (of the connection's opening, for the first request).
//! - A connection with no request in flight is closed after `idle_timeout`
//!   without a byte from its client.
//! - Bodies keep a minimum pace ([`crate::body::BodyPace`]) or get 408.
//! - At most `max_connections` are open; past that the listener stops
//!   accepting (the kernel's backlog holds newcomers) and says so in the log
//!   and in `/metrics`.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::body::{BodyPace, PacedBody};

/// Limits of the listener; every one is a setting (README "Security").
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub body: BodyPace,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 2048,
            body: BodyPace {
                grace: Duration::from_secs(10),
                min_rate: 1024,
            },
        }
    }
}

/// What the listener has seen, for `/metrics`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Times the listener found every connection slot taken.
    pub at_capacity: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
}

/// One connection's activity, shared by its socket, its requests and its
/// watchdog. Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the connection last became idle (opened, or its last response ready).
    idle_since: AtomicU64,
    /// Bytes arrived while idle: a request head is being read since this time.
    head_started: AtomicU64,
    head_reading: AtomicBool,
    /// HTTP/2 sends frames of its own between requests; only idleness counts.
    http2: AtomicBool,
    first_read: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            // A new connection owes its first request head at once: a
            // client that connects and says nothing gets the header timeout.
            head_started: AtomicU64::new(0),
            head_reading: AtomicBool::new(true),
            http2: AtomicBool::new(false),
            first_read: AtomicBool::new(true),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read(&self, bytes: &[u8]) {
        if self.first_read.swap(false, Ordering::Relaxed) && bytes.starts_with(b"PRI * HTTP/2.0") {
            self.http2.store(true, Ordering::Relaxed);
            self.head_reading.store(false, Ordering::Relaxed);
            self.idle_since.store(self.now(), Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && !self.http2.load(Ordering::Relaxed)
            && !self.head_reading.swap(true, Ordering::Relaxed)
        {
            self.head_started.store(self.now(), Ordering::Relaxed);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_reading.store(false, Ordering::Relaxed);
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Which limit the connection has passed, if any.
    fn expired(&self, options: &ListenerOptions) -> Option<Expired> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        let past = |since: u64, limit: Duration| {
            now.saturating_sub(since) > u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
        };
        if self.head_reading.load(Ordering::Relaxed) {
            past(self.head_started.load(Ordering::Relaxed), options.header_timeout).then_some(Expired::Head)
        } else {
            past(self.idle_since.load(Ordering::Relaxed), options.idle_timeout).then_some(Expired::Idle)
        }
    }
}

enum Expired {
    Head,
    Idle,
}

/// The socket, telling its connection's [`Activity`] when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks a request finished when its response has been written (or abandoned).
struct InFlight(Arc<Activity>);

/// A response body that holds its request's [`InFlight`] mark until hyper
/// has written it all and drops it.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, asks every connection to finish its requests and close, and
/// returns once all have. The caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ListenerOptions,
    stats: Arc<ListenerStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Heads are timed by the watchdog below, which also knows idleness;
    // hyper's own header timer would close idle keep-alive connections early.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                stats.at_capacity.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    max_connections = options.max_connections,
                    "connection limit reached; new connections wait until one closes"
                );
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                    Some(_) = connections.join_next() => continue,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept:
                    // wait a little rather than spin, and keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
            Some(_) = connections.join_next() => continue,
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let connection = serve_connection(
            stream,
            router.clone(),
            Arc::clone(&builder),
            options.clone(),
            Arc::clone(&stats),
            stop_rx.clone(),
        );
        connections.spawn(async move {
            connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    options: ListenerOptions,
    stats: Arc<ListenerStats>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let pace = options.body;
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        requests.request_started();
        let in_flight = InFlight(Arc::clone(&requests));
        let mut router = router.clone();
        let req = req.map(|body| Body::new(PacedBody::new(body, pace)));
        async move {
            // The request stays in flight until its response body has been
            // written (or dropped), so a slow reader is never taken for idle.
            let response = tower::Service::call(&mut router, req).await;
            response.map(|response| {
                response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _in_flight: in_flight,
                    })
                })
            })
        }
    });
    let connection = builder.serve_connection(io, service);
    let mut connection = pin!(connection);
    let check_every = options
        .header_timeout
        .min(options.idle_timeout)
        .div_f32(4.0)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(check_every);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = watchdog.tick() => match activity.expired(&options) {
                Some(_) if closing => break,
                Some(why) => {
                    match why {
                        Expired::Head => stats.header_timeouts.fetch_add(1, Ordering::Relaxed),
                        Expired::Idle => stats.idle_timeouts.fetch_add(1, Ordering::Relaxed),
                    };
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                None => {}
            },
        }
    }
    stats.open.fetch_sub(1, Ordering::Relaxed);
}
