//! What each operation did, by face: requests by outcome class, a latency
//! histogram, and how many are in flight. Counted by the pipeline, the one
//! place every request of every face passes, so no face can forget one.
//! Labels are the registry's operation names and the three faces: bounded,
//! never an id.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::OperationSpec;
use super::registry::ALL;

/// Which face received a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Face {
    #[default]
    Rest,
    Graphql,
    Grpc,
}

impl Face {
    pub const ALL: [Face; 3] = [Face::Rest, Face::Graphql, Face::Grpc];

    pub fn name(self) -> &'static str {
        match self {
            Face::Rest => "rest",
            Face::Graphql => "graphql",
            Face::Grpc => "grpc",
        }
    }
}

/// How a request ended, coarsely: what an alert compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    /// Done (2xx).
    Ok,
    /// Answered from an earlier request's stored response (Idempotency-Key).
    Replayed,
    /// Refused for what the client sent or may do (4xx).
    ClientError,
    /// Settle or what it depends on failed (5xx).
    ServerError,
    /// Refused on purpose to protect the service: shed under overload
    /// (503 `overloaded`) or over the key's rate limit (429).
    Shed,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 5] = [
        OutcomeClass::Ok,
        OutcomeClass::Replayed,
        OutcomeClass::ClientError,
        OutcomeClass::ServerError,
        OutcomeClass::Shed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OutcomeClass::Ok => "ok",
            OutcomeClass::Replayed => "replayed",
            OutcomeClass::ClientError => "client_error",
            OutcomeClass::ServerError => "server_error",
            OutcomeClass::Shed => "shed",
        }
    }

    /// The class of an answer with HTTP status `status`.
    pub fn of_status(status: u16) -> OutcomeClass {
        match status {
            500.. => OutcomeClass::ServerError,
            400..500 => OutcomeClass::ClientError,
            _ => OutcomeClass::Ok,
        }
    }
}

/// Upper bounds of the latency histogram's buckets, in seconds: a cached
/// read lands in the first ones, a payment on a busy disk in the middle,
/// a request that waited for its deadline in the last.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Cell {
    outcomes: [AtomicU64; 5],
    /// One per bound of [`BUCKETS`], then one for slower requests.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    micros: AtomicU64,
    in_flight: AtomicI64,
}

/// One operation on one face, as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct OperationSnapshot {
    pub operation: &'static str,
    pub face: Face,
    /// Requests by [`OutcomeClass`], in its `ALL` order.
    pub outcomes: [u64; 5],
    /// Requests per bucket of [`BUCKETS`], then slower ones (not
    /// cumulative).
    pub buckets: [u64; BUCKETS.len() + 1],
    pub seconds: f64,
    pub in_flight: u64,
}

impl OperationSnapshot {
    /// Requests timed: the histogram's `+Inf` bucket and its count (taken
    /// from the buckets, so a snapshot between a request's two counts
    /// still shows a consistent histogram).
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// The counts of every operation on every face; one per [`crate::Settle`].
#[derive(Debug)]
pub struct OperationStats {
    cells: Vec<Cell>,
}

impl Default for OperationStats {
    fn default() -> Self {
        Self {
            cells: (0..ALL.len() * Face::ALL.len()).map(|_| Cell::default()).collect(),
        }
    }
}

impl OperationStats {
    fn cell(&self, spec: &'static OperationSpec, face: Face) -> Option<&Cell> {
        let op = ALL.iter().position(|s| std::ptr::eq(*s, spec))?;
        self.cells.get(op * Face::ALL.len() + face as usize)
    }

    /// Counts a request as in flight until the returned guard goes; call
    /// [`Running::finish`] with how it ended.
    pub fn start(&self, spec: &'static OperationSpec, face: Face) -> Running<'_> {
        let cell = self.cell(spec, face);
        if let Some(cell) = cell {
            cell.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Running {
            cell,
            started: std::time::Instant::now(),
        }
    }

    /// Every operation and face that has served a request or has one in
    /// flight (the rest would be rows of zeros).
    pub fn snapshot(&self) -> Vec<OperationSnapshot> {
        let mut out = Vec::new();
        for (i, cell) in self.cells.iter().enumerate() {
            let outcomes = cell.outcomes.each_ref().map(|n| n.load(Ordering::Relaxed));
            let in_flight = cell.in_flight.load(Ordering::Relaxed).max(0) as u64;
            if outcomes.iter().sum::<u64>() == 0 && in_flight == 0 {
                continue;
            }
            out.push(OperationSnapshot {
                operation: ALL[i / Face::ALL.len()].name,
                face: Face::ALL[i % Face::ALL.len()],
                outcomes,
                buckets: cell.buckets.each_ref().map(|n| n.load(Ordering::Relaxed)),
                seconds: cell.micros.load(Ordering::Relaxed) as f64 / 1e6,
                in_flight,
            });
        }
        out
    }
}

/// One request being served.
#[must_use]
pub struct Running<'a> {
    cell: Option<&'a Cell>,
    started: std::time::Instant,
}

impl Running<'_> {
    /// Records how the request ended and how long it took.
    pub fn finish(self, class: OutcomeClass) {
        let Some(cell) = self.cell else { return };
        let took = self.started.elapsed();
        cell.outcomes[class as usize].fetch_add(1, Ordering::Relaxed);
        cell.buckets[bucket(took)].fetch_add(1, Ordering::Relaxed);
        cell.micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell {
            cell.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The bucket `took` falls in; past the last bound, the overflow slot.
fn bucket(took: Duration) -> usize {
    let seconds = took.as_secs_f64();
    BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::registry::{CREATE_PAYMENT, RETRIEVE_PAYMENT};

    #[test]
    fn requests_are_counted_by_operation_face_and_outcome() {
        let stats = OperationStats::default();
        let running = stats.start(&CREATE_PAYMENT, Face::Grpc);
        assert_eq!(stats.snapshot()[0].in_flight, 1);
        running.finish(OutcomeClass::ClientError);
        stats.start(&RETRIEVE_PAYMENT, Face::Rest).finish(OutcomeClass::Ok);
        let snap = stats.snapshot();
        assert_eq!(snap.len(), 2);
        let create = snap.iter().find(|s| s.operation == "create_payment").unwrap();
        assert_eq!(create.face, Face::Grpc);
        assert_eq!(create.outcomes, [0, 0, 1, 0, 0]);
        assert_eq!(create.in_flight, 0);
        assert_eq!(create.buckets.iter().sum::<u64>(), 1);
    }

    #[test]
    fn statuses_fall_in_classes_and_latencies_in_buckets() {
        assert_eq!(OutcomeClass::of_status(200), OutcomeClass::Ok);
        assert_eq!(OutcomeClass::of_status(429), OutcomeClass::ClientError);
        assert_eq!(OutcomeClass::of_status(503), OutcomeClass::ServerError);
        assert_eq!(bucket(Duration::from_micros(100)), 0);
        assert_eq!(bucket(Duration::from_millis(3)), 3);
        assert_eq!(bucket(Duration::from_secs(60)), BUCKETS.len());
    }
}
