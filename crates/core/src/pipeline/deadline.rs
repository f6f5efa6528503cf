//! Every operation has a deadline: the configured budget, or a shorter one
//! the client asks for, counted from when the face received the request.
//! An operation whose deadline passed before it started is not started.

use std::time::{Duration, Instant};

use super::{Call, Failure};

/// The longest budget a client may name: a day. Longer is not a deadline.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// When an operation stops waiting, and whose budget that is.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    /// The client's own shorter budget set it (not the server's).
    pub asked_by_client: bool,
}

impl Deadline {
    pub(super) fn of(call: &Call, budget: Duration) -> Self {
        match call.timeout {
            Some(asked) if asked < budget => Deadline {
                at: call.received + asked,
                asked_by_client: true,
            },
            _ => Deadline {
                at: call.received + budget,
                asked_by_client: false,
            },
        }
    }

    pub(super) fn ensure_not_passed(&self) -> Result<(), Failure> {
        if Instant::now() >= self.at {
            return Err(self.passed("before the operation started; nothing was done"));
        }
        Ok(())
    }

    /// The refusal for this deadline having passed `when`. A budget the
    /// client chose is the client's to lengthen: 408, a 4xx that says so
    /// and does not count as a server failure. The server's own budget
    /// running out is the server's: 504.
    pub(super) fn passed(&self, when: &str) -> Failure {
        if self.asked_by_client {
            Failure::new(
                408,
                "invalid_request_error",
                "deadline_exceeded",
                format!(
                    "The deadline this request set with its timeout passed {when}; send it again with a longer one."
                ),
            )
        } else {
            Failure::deadline_exceeded(format!("The request's deadline passed {when}."))
        }
    }

    /// A failure of the store or the clock saying the deadline passed,
    /// told as this deadline's refusal; any other failure as it is.
    pub(super) fn explain(&self, failure: Failure) -> Failure {
        if failure.code == "deadline_exceeded" && self.asked_by_client {
            self.passed("before the operation could finish; nothing was written")
        } else {
            failure
        }
    }
}

/// A client's budget in milliseconds (`Settle-Timeout-Ms`, gRPC's
/// `grpc-timeout` converted): a whole number from 1 to a day. A budget
/// above the configured one is allowed and means the configured one: a
/// client may only shorten it.
pub fn parse_timeout_ms(text: &str, param: &str) -> Result<Duration, Failure> {
    match text.trim().parse::<u64>() {
        Ok(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(Failure::invalid(
            "parameter_invalid",
            param,
            format!("`{param}` must be a whole number of milliseconds, from 1 to {MAX_TIMEOUT_MS}."),
        )),
    }
}
