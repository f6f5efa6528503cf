//! "The same parameters" for idempotency: a fingerprint of the operation
//! and its typed input, so key order, whitespace, defaults spelled out or
//! left out, and the face the request came through do not make two
//! requests differ. Versioned: the first byte says how it was computed.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Failure;

/// The first byte of a version 2 fingerprint. Version 1 (method, path and
/// raw body, before operations were typed) was a bare 32-byte digest.
const VERSION: u8 = 2;

/// JSON with object keys sorted at every depth.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Version 2: the operation's name and its canonical typed input.
pub fn fingerprint<T: Serialize>(operation: &str, input: &T) -> Result<Vec<u8>, Failure> {
    let value = serde_json::to_value(input).map_err(|e| {
        tracing::error!(error = %e, operation, "an operation's input does not serialize");
        Failure::internal()
    })?;
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    h.update(b"\n");
    h.update(canonical_json(&value).as_bytes());
    let mut out = Vec::with_capacity(33);
    out.push(VERSION);
    out.extend_from_slice(&h.finalize());
    Ok(out)
}

/// 1 to 255 printable ASCII characters (Stripe's rule).
pub fn parse_idempotency_key(text: &str) -> Result<String, Failure> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(Failure::invalid(
            "parameter_invalid",
            "Idempotency-Key",
            "`Idempotency-Key` must be 1 to 255 printable ASCII characters.",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Input {
        b: u8,
        a: Option<u8>,
    }

    #[test]
    fn same_input_same_fingerprint_whatever_the_order() {
        let one = fingerprint("create_x", &Input { b: 1, a: None }).unwrap();
        let two = fingerprint("create_x", &serde_json::json!({"a": null, "b": 1})).unwrap();
        assert_eq!(one, two);
        assert_eq!(one[0], VERSION);
        assert_eq!(one.len(), 33, "a version 1 digest was 32 bytes: never equal");
        assert_ne!(one, fingerprint("create_y", &Input { b: 1, a: None }).unwrap());
        assert_ne!(one, fingerprint("create_x", &Input { b: 2, a: None }).unwrap());
    }

    #[test]
    fn key_rules() {
        assert!(parse_idempotency_key("abc-123").is_ok());
        assert!(parse_idempotency_key("").is_err());
        assert!(parse_idempotency_key(&"k".repeat(256)).is_err());
        assert!(parse_idempotency_key(&"k".repeat(255)).is_ok());
        assert!(parse_idempotency_key("tab\there").is_err());
    }
}
