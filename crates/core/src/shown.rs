//! Reading the fields of an object as every face receives it: its REST
//! JSON (a fresh answer and a replayed one are the same bytes, so faces
//! other than REST translate from that, never from a second model). A
//! field that is absent or of another type reads as empty: the JSON comes
//! from Settle's own serializers, so the fields are there.

use serde_json::Value;

pub fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

pub fn opt_text(v: &Value, k: &str) -> Option<String> {
    v[k].as_str().map(str::to_owned)
}

pub fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or_default()
}

pub fn opt_int(v: &Value, k: &str) -> Option<i64> {
    v[k].as_i64()
}

/// A list of strings (`enabled_events`, `permissions`).
pub fn texts(v: &Value, k: &str) -> Vec<String> {
    v[k].as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}
