//! Metadata: a small string-to-string map users attach to objects. Bounded so
//! that one object can never grow without limit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DomainError;

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_CHARS: usize = 40;
pub const MAX_VALUE_CHARS: usize = 500;

/// A validated metadata map; only [`Metadata::parse`] and [`Metadata::merge`]
/// make one, so an oversized map cannot exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, DomainError> {
        Self::check(&map)?;
        Ok(Self(map))
    }

    fn check(map: &BTreeMap<String, String>) -> Result<(), DomainError> {
        if map.len() > MAX_KEYS {
            return Err(DomainError::invalid(
                "metadata",
                format!("metadata has at most {MAX_KEYS} keys"),
            ));
        }
        for (k, v) in map {
            if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
                return Err(DomainError::invalid(
                    "metadata",
                    format!("metadata keys are 1 to {MAX_KEY_CHARS} characters"),
                ));
            }
            if v.chars().count() > MAX_VALUE_CHARS {
                return Err(DomainError::invalid(
                    "metadata",
                    format!("metadata values are at most {MAX_VALUE_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }

    /// Applies a patch the way Stripe does: a key set to an empty string or
    /// null is removed, others are set; the result is checked again.
    pub fn merge(&self, patch: &BTreeMap<String, Option<String>>) -> Result<Self, DomainError> {
        let mut map = self.0.clone();
        for (k, v) in patch {
            match v.as_deref() {
                None | Some("") => {
                    map.remove(k);
                }
                Some(value) => {
                    map.insert(k.clone(), value.to_owned());
                }
            }
        }
        Self::parse(map)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Reads what [`Metadata::to_json`] stored; storage only holds checked maps.
    pub fn from_json(text: &str) -> Result<Self, DomainError> {
        let map: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| DomainError::invalid("metadata", format!("stored metadata is unreadable: {e}")))?;
        Ok(Self(map))
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Metadata::parse(map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let many: BTreeMap<_, _> = (0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(Metadata::parse(many).is_err());
        let long_key = BTreeMap::from([("k".repeat(41), "v".to_owned())]);
        assert!(Metadata::parse(long_key).is_err());
        let long_value = BTreeMap::from([("k".to_owned(), "v".repeat(501))]);
        assert!(Metadata::parse(long_value).is_err());
        let ok = BTreeMap::from([("k".repeat(40), "v".repeat(500))]);
        assert!(Metadata::parse(ok).is_ok());
    }

    #[test]
    fn merge_removes_and_sets() {
        let m = Metadata::parse(BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])).unwrap();
        let patch = BTreeMap::from([
            ("a".into(), None),
            ("b".into(), Some(String::new())),
            ("c".into(), Some("3".into())),
        ]);
        let merged = m.merge(&patch).unwrap();
        assert_eq!(merged.to_json(), r#"{"c":"3"}"#);
    }
}
