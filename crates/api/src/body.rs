//! Request bodies that must keep arriving, and the one mapping from a
//! failed body read to an answer. A client that announces 100 bytes and
//! sends 10 would otherwise hold a worker until the request timeout and
//! get a 503 for its own stall; it gets 408 `request_timeout` instead.

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// Why a body read stopped: the client sent too slowly.
#[derive(Debug, Clone, Copy)]
pub struct BodyTooSlow;

impl fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body arrived too slowly")
    }
}

impl StdError for BodyTooSlow {}

/// The pace a body must keep: after `grace`, at least `min_rate` bytes a
/// second on average since the request started. A deadline that moves with
/// every byte received catches both a silent client and one that trickles
/// a byte every few seconds, which a plain per-read timeout would not.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub grace: Duration,
    pub min_rate: u64,
}

impl BodyPace {
    /// When a body started at `started` with `received` bytes must have
    /// sent more; `None` when that lies beyond what a clock can hold (a
    /// grace period set absurdly high means no deadline, not a panic).
    fn deadline(&self, started: Instant, received: u64) -> Option<Instant> {
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate.max(1) as f64);
        started.checked_add(self.grace)?.checked_add(earned)
    }
}

/// A body that fails with [`BodyTooSlow`] when its client falls behind its
/// [`BodyPace`]. The clock starts at the first read, not when the request
/// arrived: until a handler asks for the body, hyper has not asked the
/// client for it (think `Expect: 100-continue`), so time spent before that
/// (authentication, a pool wait) is not the client's.
pub struct PacedBody<B> {
    inner: B,
    pace: BodyPace,
    /// When the first read happened, and the bytes received since.
    started: Option<Instant>,
    received: u64,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> PacedBody<B> {
    pub fn new(inner: B, pace: BodyPace) -> Self {
        Self {
            inner,
            pace,
            started: None,
            received: 0,
            deadline: None,
        }
    }

    /// Moves the deadline to what the bytes received so far have earned.
    fn rearm(&mut self) {
        let started = *self.started.get_or_insert_with(Instant::now);
        match (self.pace.deadline(started, self.received), self.deadline.as_mut()) {
            (Some(at), Some(sleep)) => sleep.as_mut().reset(at),
            (Some(at), None) => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            (None, _) => self.deadline = None,
        }
    }
}

impl<B> Body for PacedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.started.is_none() {
            this.rearm();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    this.rearm();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                _ => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` or anything it wraps is of type `E`.
fn caused_by<E: StdError + 'static>(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The answer to a body that could not be read, wherever it was read: 408
/// when the client stalled, 413 past the size limit, else 400. The rest of
/// the body is unread in every case, so the connection is closed after it.
pub fn read_error(error: &(dyn StdError + 'static)) -> ApiError {
    if caused_by::<BodyTooSlow>(error) {
        return ApiError {
            close_connection: true,
            ..ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "request_timeout",
                "The request body arrived too slowly and was abandoned; send it again.",
            )
        };
    }
    let too_large = caused_by::<http_body_util::LengthLimitError>(error)
        || error
            .downcast_ref::<axum::extract::rejection::BytesRejection>()
            .is_some_and(|r| r.status() == StatusCode::PAYLOAD_TOO_LARGE);
    if too_large {
        return ApiError::too_large();
    }
    ApiError {
        close_connection: true,
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "malformed_json",
            format!("The request body could not be read: {error}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use http_body_util::channel::Channel;

    use super::*;

    fn pace() -> BodyPace {
        BodyPace {
            grace: Duration::from_millis(200),
            min_rate: 1_000_000,
        }
    }

    #[tokio::test]
    async fn time_before_the_first_read_is_not_the_clients() {
        let (mut tx, body) = Channel::<Bytes>::new(4);
        let paced = PacedBody::new(body, pace());
        // Longer than the grace passes before anyone reads (a slow handler).
        tokio::time::sleep(Duration::from_millis(400)).await;
        tx.send_data(Bytes::from_static(b"{}")).await.unwrap();
        drop(tx);
        let whole = paced.collect().await.expect("the body is read whole");
        assert_eq!(whole.to_bytes(), Bytes::from_static(b"{}"));
    }

    #[tokio::test]
    async fn a_body_that_stalls_fails_as_too_slow() {
        let (mut tx, body) = Channel::<Bytes>::new(4);
        let paced = PacedBody::new(body, pace());
        tx.send_data(Bytes::from_static(b"{")).await.unwrap();
        // The sender stays open and silent.
        let error = paced.collect().await.expect_err("a stalled body fails");
        let error: &(dyn StdError + 'static) = &*error;
        assert!(caused_by::<BodyTooSlow>(error));
        assert_eq!(read_error(error).status, StatusCode::REQUEST_TIMEOUT);
        drop(tx);
    }
}
