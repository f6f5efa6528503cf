//! Requests Settle has sent and not yet heard back from, and connections
//! it opened, by destination: what `/metrics` shows of outgoing HTTP (the
//! client's own connection pool does not say how many connections it
//! holds; these counts are Settle's). Connections opened growing as fast
//! as requests sent means keep-alive is not working: every request pays a
//! new TCP (and TLS) handshake.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};

/// One destination's counts.
#[derive(Debug, Default)]
pub struct Outgoing {
    in_flight: AtomicI64,
    sent: AtomicU64,
    connections: AtomicU64,
}

impl Outgoing {
    /// Counts `request` as in flight until it is answered (or dropped).
    pub async fn track<T>(&self, request: impl Future<Output = T>) -> T {
        struct Landed<'a>(&'a AtomicI64);
        impl Drop for Landed<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _landed = Landed(&self.in_flight);
        request.await
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Connections the client opened to this destination.
    pub fn connections_opened(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// A layer for the client's connector (`connector_layer`) that counts
    /// each connection it opens here.
    pub fn count_connections(&'static self) -> CountConnections {
        CountConnections(self)
    }
}

/// Counts the connections a client's connector opens.
#[derive(Debug, Clone, Copy)]
pub struct CountConnections(&'static Outgoing);

impl<S> tower::Layer<S> for CountConnections {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner, counts: self.0 }
    }
}

/// A connector whose successful connects are counted.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    counts: &'static Outgoing,
}

impl<S, R> tower::Service<R> for Counted<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.inner.call(request);
        let counts = self.counts;
        Box::pin(async move {
            let connected = connecting.await;
            if connected.is_ok() {
                counts.connections.fetch_add(1, Ordering::Relaxed);
            }
            connected
        })
    }
}

/// Webhook deliveries to receivers.
pub static WEBHOOKS: Outgoing = Outgoing {
    in_flight: AtomicI64::new(0),
    sent: AtomicU64::new(0),
    connections: AtomicU64::new(0),
};

/// Charges to the external processor.
pub static PROCESSOR: Outgoing = Outgoing {
    in_flight: AtomicI64::new(0),
    sent: AtomicU64::new(0),
    connections: AtomicU64::new(0),
};
