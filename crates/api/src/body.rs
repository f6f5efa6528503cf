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
    fn deadline(&self, started: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate.max(1) as f64);
        started + self.grace + earned
    }
}

/// A body that fails with [`BodyTooSlow`] when its client falls behind its
/// [`BodyPace`]. The clock only matters while someone reads the body.
pub struct PacedBody<B> {
    inner: B,
    pace: BodyPace,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl<B> PacedBody<B> {
    pub fn new(inner: B, pace: BodyPace) -> Self {
        let started = Instant::now();
        Self {
            inner,
            pace,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(pace.deadline(started, 0))),
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
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let next = this.pace.deadline(this.started, this.received);
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                Poll::Pending => Poll::Pending,
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
