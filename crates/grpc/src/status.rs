//! A pipeline [`Failure`] as a gRPC status: the code that means the same
//! as SPEC's HTTP status, the message, and `google.rpc.ErrorInfo` with
//! SPEC's error code as its reason, so a client branches on the same codes
//! whichever face it uses.

use std::collections::HashMap;

use settle_core::pipeline::Failure;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every Settle error.
pub const ERROR_DOMAIN: &str = "settle.dev";

/// The gRPC code for SPEC's HTTP status.
pub fn code_of(http_status: u16) -> Code {
    match http_status {
        400 | 413 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 | 410 => Code::NotFound,
        // A client's own deadline passed (the server's is 504).
        408 | 504 => Code::DeadlineExceeded,
        // Version conflicts and an idempotency key still in flight: retry
        // after reading again.
        409 | 412 => Code::Aborted,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        _ if http_status < 500 => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

/// The status of a refusal, as its parts (a replayed refusal has only
/// the stored JSON's strings).
pub fn refusal(
    http_status: u16,
    kind: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
    request_id: &str,
) -> Status {
    let mut metadata = HashMap::from([
        ("type".to_owned(), kind.to_owned()),
        ("http_status".to_owned(), http_status.to_string()),
        ("request_id".to_owned(), request_id.to_owned()),
    ]);
    if let Some(param) = param {
        metadata.insert("param".to_owned(), param.to_owned());
    }
    let details = ErrorDetails::with_error_info(code, ERROR_DOMAIN, metadata);
    let mut status = Status::with_error_details(code_of(http_status), message, details);
    if let Ok(value) = request_id.parse() {
        status.metadata_mut().insert("request-id", value);
    }
    status
}

pub fn status(failure: &Failure, request_id: &str) -> Status {
    refusal(
        failure.status,
        failure.kind,
        failure.code,
        &failure.message,
        failure.param.as_deref(),
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_spec_code_in_error_info() {
        let failure = Failure::invalid("parameter_invalid", "amount", "`amount` must be positive.");
        let status = status(&failure, "req_1");
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "parameter_invalid");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["param"], "amount");
        assert_eq!(info.metadata["http_status"], "400");
        assert_eq!(code_of(403), Code::PermissionDenied);
        assert_eq!(code_of(500), Code::Internal);
    }
}
