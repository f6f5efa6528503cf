//! The embedded queue's vocabulary: jobs that consumers claim under a lease,
//! finish, reschedule or bury, and the summary operators watch.

/// The consumer that takes every event and fans it out (to webhook
/// deliveries); its effect lives in this database.
pub const FANOUT_CONSUMER: &str = "fanout";

/// A consumer's subscription: it gets one job per committed event of
/// `event_type` (`*` for every type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub consumer: &'static str,
    pub event_type: &'static str,
}

/// A request to lease up to `max` ready jobs of one consumer.
#[derive(Debug, Clone)]
pub struct JobClaim {
    pub consumer: String,
    pub max: u32,
    /// Keys whose jobs must stay where they are (a receiver at its
    /// in-flight cap, an open breaker): one stuck key never blocks the rest.
    pub skip_keys: Vec<String>,
    pub now_ms: u64,
    pub lease_ms: u64,
    /// Fences the lease: only its holder can finish or reschedule the job.
    pub token: i64,
}

/// Deliveries the fan-out may lease to this process's delivery worker as
/// it creates them, so they go out without waiting for a claim: the jobs
/// are written already leased (`until_ms`, `token`), exactly as a claim
/// would leave them, and a crash before they are sent brings them back
/// after the lease like any claimed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutLease {
    pub token: i64,
    pub until_ms: u64,
    /// Leases at most this many; the rest wait in the queue for a claim.
    pub most: u32,
}

/// What one fan-out transaction did.
#[derive(Debug, Default)]
pub struct FanoutDrained {
    /// Events consumed.
    pub events: u64,
    /// Delivery jobs leased to the caller (see [`FanoutLease`]).
    pub leased: Vec<LeasedJob>,
}

/// A job leased to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedJob {
    pub consumer: String,
    /// The message (for event jobs, the event's id bytes).
    pub message_id: Vec<u8>,
    pub key: Option<String>,
    /// How many times it has been handed out, this time included.
    pub deliveries: u32,
    pub token: i64,
    /// When the job was enqueued (Unix ms).
    pub created_ms: i64,
}

/// One consumer's backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerBacklog {
    pub consumer: String,
    /// Jobs waiting or leased.
    pub pending: u64,
    /// When the oldest pending job was enqueued (Unix ms), if any.
    pub oldest_created_ms: Option<i64>,
    /// Jobs that used up their deliveries.
    pub dead: u64,
}

/// The consumer and message an effect answers, recorded with the effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedBy {
    pub consumer: String,
    pub message_id: Vec<u8>,
}

/// The external processor's final answer about a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorOutcome {
    /// The charge went through: the payment settles.
    Succeeded,
    /// The charge was refused: the payment fails and no money moves.
    Declined,
}
