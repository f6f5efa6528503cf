//! `WatchEvents`: every committed event after a position, in commit order,
//! then each new one as it commits. One task per stream reads pages
//! through the pipeline (so a revoked key or a removed permission ends the
//! stream at its next read) and sleeps on the commit stream between them:
//! no polling per client. The task hands events to the response through a
//! bounded buffer; a client that leaves it full past the grace is cut with
//! `RESOURCE_EXHAUSTED` naming the position to resume from, so a slow
//! reader never holds more than the buffer. When the server shuts down,
//! every stream ends at once with `UNAVAILABLE` and the same position, so
//! shutdown does not wait for watchers that would never leave.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use settle_core::Settle;
use settle_core::commits::Topic;
use settle_core::ops::events::ListEvents;
use settle_core::pipeline::Failure;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::call::Caller;
use crate::convert;
use crate::pb;
use crate::status::status;

/// Events read per page of the commit stream.
const PAGE: u32 = 100;

/// Why a stream ended on the server's side, told to the client ahead of
/// anything still buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum End {
    Open = 0,
    SlowClient = 1,
    ShuttingDown = 2,
}

#[derive(Debug, Default)]
struct EndFlag(AtomicU8);

impl EndFlag {
    fn set(&self, end: End) {
        self.0.store(end as u8, Ordering::Release);
    }

    fn get(&self) -> End {
        match self.0.load(Ordering::Acquire) {
            1 => End::SlowClient,
            2 => End::ShuttingDown,
            _ => End::Open,
        }
    }
}

/// Tells every open stream the server is shutting down.
#[derive(Debug, Clone)]
pub struct Closing(watch::Receiver<bool>);

impl Closing {
    /// The signal and its sender: send `true` when shutdown begins.
    pub fn channel() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    async fn wait(&mut self) {
        // A dropped sender is no shutdown: wait for ever.
        if self.0.wait_for(|closing| *closing).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How streams treat their clients.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// Events waiting for a client to read them, at most.
    pub buffer: usize,
    /// How long the buffer may stay full before the client is cut.
    pub slow_client_grace: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            buffer: 256,
            slow_client_grace: Duration::from_secs(10),
        }
    }
}

type Item = Result<pb::Event, Status>;

impl Watch {
    /// Checks the caller may read events (the first page is read here, so
    /// a refusal is the call's status, not a stream that ends at once) and
    /// starts the stream's task.
    pub(crate) async fn start(
        &self,
        settle: &Settle,
        closing: Closing,
        caller: Caller,
        after: i64,
    ) -> Result<EventStream, Status> {
        if after < 0 {
            let failure = Failure::invalid(
                "parameter_invalid",
                "after_position",
                "`after_position` must be 0 or more.",
            );
            return Err(status(&failure, caller.request_id()));
        }
        let mut commits = settle.commits().subscribe(Topic::Positions);
        let first = read(settle, &caller, after).await?;
        let (tx, rx) = mpsc::channel(self.buffer.max(1));
        let end = Arc::new(EndFlag::default());
        let request_id = caller.request_id().to_owned();
        let task = Feeder {
            settle: settle.clone(),
            caller,
            tx,
            end: Arc::clone(&end),
            grace: self.slow_client_grace,
            closing,
        };
        tokio::spawn(async move {
            let deadline = task.caller.client_deadline();
            let tx = task.tx.clone();
            let id = task.caller.request_id().to_owned();
            let fed = task.feed(first, after, &mut commits);
            let Some(at) = deadline else { return fed.await };
            if tokio::time::timeout_at(at.into(), fed).await.is_err() {
                let failure = Failure::new(
                    408,
                    "invalid_request_error",
                    "deadline_exceeded",
                    "The deadline this call set with grpc-timeout passed; watch again from the last position read.",
                );
                let _ = tx.try_send(Err(status(&failure, &id)));
            }
        });
        Ok(EventStream {
            rx,
            end,
            last_position: after,
            finished: false,
            request_id,
        })
    }
}

async fn read(settle: &Settle, caller: &Caller, after: i64) -> Result<Vec<pb::Event>, Status> {
    let page = caller
        .run(settle, move || {
            Ok(ListEvents::After {
                position: after,
                limit: PAGE,
            })
        })
        .await?;
    Ok(convert::events(&page).data)
}

struct Feeder {
    settle: Settle,
    caller: Caller,
    tx: mpsc::Sender<Item>,
    end: Arc<EndFlag>,
    grace: Duration,
    closing: Closing,
}

impl Feeder {
    /// Hands on `page` and every page after it until the client leaves,
    /// reads too slowly, or a read is refused.
    async fn feed(self, page: Vec<pb::Event>, after: i64, commits: &mut settle_core::commits::Subscription) {
        let mut closing = self.closing.clone();
        tokio::select! {
            () = self.pass_on(page, after, commits) => {}
            () = closing.wait() => self.end.set(End::ShuttingDown),
        }
    }

    async fn pass_on(
        &self,
        mut page: Vec<pb::Event>,
        mut after: i64,
        commits: &mut settle_core::commits::Subscription,
    ) {
        loop {
            let full = page.len() >= PAGE as usize;
            for event in page {
                after = event.position.unwrap_or(after);
                match self.tx.send_timeout(Ok(event), self.grace).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        self.end.set(End::SlowClient);
                        tracing::info!(
                            request_id = self.caller.request_id(),
                            "a slow WatchEvents client was cut"
                        );
                        return;
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                }
            }
            if !full {
                tokio::select! {
                    _ = commits.wait() => {}
                    () = self.tx.closed() => return,
                }
            }
            page = match read(&self.settle, &self.caller.renewed(), after).await {
                Ok(page) => page,
                Err(refused) => {
                    let _ = self.tx.send(Err(refused)).await;
                    return;
                }
            };
        }
    }
}

/// The response stream: events as the task hands them on, or the cut.
pub struct EventStream {
    rx: mpsc::Receiver<Item>,
    end: Arc<EndFlag>,
    /// The position of the last event the client was given.
    last_position: i64,
    finished: bool,
    request_id: String,
}

impl Stream for EventStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let failure = match self.end.get() {
            End::Open => None,
            End::SlowClient => Some(Failure::new(
                429,
                "rate_limit_error",
                "slow_consumer",
                format!(
                    "The client read events too slowly and was cut; watch again with after_position = {}.",
                    self.last_position
                ),
            )),
            End::ShuttingDown => Some(Failure::unavailable(format!(
                "The server is shutting down; watch again with after_position = {}.",
                self.last_position
            ))),
        };
        if let Some(failure) = failure {
            // What is buffered is dropped now, not when the client reads it.
            self.finished = true;
            self.rx.close();
            return Poll::Ready(Some(Err(status(&failure, &self.request_id))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(event))) => {
                if let Some(p) = event.position {
                    self.last_position = p;
                }
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(Some(Err(refused))) => {
                self.finished = true;
                Poll::Ready(Some(Err(refused)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
