//! What an outside attack run found, each proven closed through the real
//! listener on both databases: NUL characters, explicit nulls, repeated
//! headers, balance overflow (`input`); key and role management that could
//! reach a stronger key, IPv6 forms of private addresses (`access`);
//! connections that never time out and bodies that stall (`listener`).

mod access;
mod input;
mod listener;

use crate::support::Resp;

fn assert_400(r: &Resp, code: &str, param: &str) {
    r.assert_error(400, "invalid_request_error", code);
    assert_eq!(r.body["error"]["param"], param, "body: {}", r.body);
}
