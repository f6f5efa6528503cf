//! Every operation has a deadline: the configured budget, or a shorter one
//! the client asks for, counted from when the face received the request.
//! An operation whose deadline passed before it started is not started.

use std::time::{Duration, Instant};

use super::{Call, Failure};

/// The instant `call` stops waiting.
pub(super) fn of(call: &Call, budget: Duration) -> Instant {
    let budget = call.timeout.map_or(budget, |asked| asked.min(budget));
    call.received + budget
}

pub(super) fn ensure_not_passed(deadline: Instant) -> Result<(), Failure> {
    if Instant::now() >= deadline {
        return Err(Failure::deadline_exceeded(
            "The request's deadline passed before the operation started; nothing was done.",
        ));
    }
    Ok(())
}

pub(super) fn passed_while_reading() -> Failure {
    Failure::deadline_exceeded("The request's deadline passed while reading; nothing was changed.")
}

/// A client's budget in milliseconds (`Settle-Timeout-Ms`, gRPC's
/// `grpc-timeout` converted): a whole number from 1 up. A budget above the
/// configured one is allowed and means the configured one: a client may
/// only shorten it.
pub fn parse_timeout_ms(text: &str, param: &str) -> Result<Duration, Failure> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms >= 1 => Ok(Duration::from_millis(ms)),
        _ => Err(Failure::invalid(
            "parameter_invalid",
            param,
            format!("`{param}` must be a whole number of milliseconds, at least 1."),
        )),
    }
}
