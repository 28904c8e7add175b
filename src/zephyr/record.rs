//! Records of a listing decoded one by one, so one that can't be read fails
//! alone instead of failing its page and the phase reading it.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Characters of a record's JSON kept in a [`BadRecord`]'s excerpt.
const EXCERPT_CHARS: usize = 160;

/// One item of a listing: the record, or why it couldn't be read.
pub type Record<T> = std::result::Result<T, BadRecord>;

/// A listed record that could not be read: a field the spec requires is
/// missing, or a value has the wrong type. Names the record by its `key` or
/// `id` when those could be read, else by its position in the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadRecord {
    /// Position in the listing, from 0.
    pub position: u64,
    /// The record's `key`, when it has a readable one.
    pub key: Option<String>,
    /// The record's `id`, when it has a readable one.
    pub id: Option<u64>,
    /// Why it can't be read (serde's message, which names the field).
    pub reason: String,
    /// The start of the record's JSON, with anything that looks like a
    /// token or password masked.
    pub excerpt: String,
}

impl BadRecord {
    /// The record's name for a report keyed by `key` (test cases): its key,
    /// else its id, else `#position`.
    pub fn name_by_key(&self) -> String {
        match (&self.key, self.id) {
            (Some(key), _) => key.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => format!("#{}", self.position),
        }
    }

    /// The record's name for a report keyed by id (cycles, executions,
    /// folders): its id, else `#position`. The key, if any, goes into the
    /// message instead.
    pub fn name_by_id(&self) -> String {
        match self.id {
            Some(id) => id.to_string(),
            None => format!("#{}", self.position),
        }
    }

    fn new(value: &serde_json::Value, reason: String) -> BadRecord {
        let key = value
            .get("key")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let id = value.get("id").and_then(serde_json::Value::as_u64);
        BadRecord {
            position: 0,
            key,
            id,
            reason,
            excerpt: crate::redact::body_excerpt(value.to_string().as_bytes(), EXCERPT_CHARS),
        }
    }
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable record")?;
        match (&self.key, self.id) {
            (Some(key), Some(id)) => write!(f, " {key} (id {id})")?,
            (Some(key), None) => write!(f, " {key}")?,
            (None, Some(id)) => write!(f, " id {id}")?,
            (None, None) => {}
        }
        write!(
            f,
            " at position {}: {}; record: {}",
            self.position, self.reason, self.excerpt
        )
    }
}

impl std::error::Error for BadRecord {}

/// Decodes a list item on its own: any JSON value is accepted, and one that
/// isn't a `T` becomes a [`BadRecord`] instead of an error of the whole page.
pub(crate) struct Lenient<T> {
    /// The item's `id`, when it has a readable one (cursor pages use it).
    pub(crate) id: Option<u64>,
    record: Record<T>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Lenient {
            id: value.get("id").and_then(serde_json::Value::as_u64),
            record: T::deserialize(&value).map_err(|e| BadRecord::new(&value, e.to_string())),
        })
    }
}

impl<T> Lenient<T> {
    /// The record, its failure numbered with its position in the listing.
    pub(crate) fn at(self, position: u64) -> Record<T> {
        self.record.map_err(|bad| BadRecord { position, ..bad })
    }
}

/// Splits records into the readable ones and the failures.
pub fn split<T>(records: Vec<Record<T>>) -> (Vec<T>, Vec<BadRecord>) {
    let mut good = Vec::with_capacity(records.len());
    let mut bad = Vec::new();
    for record in records {
        match record {
            Ok(item) => good.push(item),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        id: u64,
        name: String,
    }

    fn read(value: serde_json::Value) -> Record<Item> {
        serde_json::from_value::<Lenient<Item>>(value)
            .unwrap()
            .at(7)
    }

    #[test]
    fn a_bad_record_is_named_by_key_id_or_position_and_keeps_the_reason() {
        assert_eq!(
            read(json!({"id": 1, "name": "a"})),
            Ok(Item {
                id: 1,
                name: "a".into()
            })
        );
        let keyed = read(json!({"id": 2, "key": "PROJ-T2", "name": null})).unwrap_err();
        assert_eq!(
            (keyed.name_by_key(), keyed.name_by_id()),
            ("PROJ-T2".into(), "2".into())
        );
        assert!(keyed.reason.contains("null"), "{keyed}");
        let nameless = read(json!({"name": 5})).unwrap_err();
        assert_eq!(
            (nameless.name_by_key(), nameless.name_by_id()),
            ("#7".into(), "#7".into())
        );
        assert!(nameless.to_string().contains("at position 7"), "{nameless}");
        let not_an_object = read(json!([1, 2])).unwrap_err();
        assert_eq!(not_an_object.key, None);
    }

    #[test]
    fn the_excerpt_is_short_and_masks_secrets() {
        let long = "x".repeat(1000);
        let bad = read(json!({"id": "1", "name": long, "token": "s3cret"})).unwrap_err();
        assert!(
            bad.excerpt.chars().count() <= EXCERPT_CHARS + 1,
            "{}",
            bad.excerpt
        );
        let secret = read(json!({"apiToken": "s3cret", "id": "x"})).unwrap_err();
        assert!(!secret.excerpt.contains("s3cret"), "{}", secret.excerpt);
        assert!(!secret.to_string().contains("s3cret"));
    }

    #[test]
    fn split_keeps_order() {
        let records = vec![
            read(json!({"id": 1, "name": "a"})),
            read(json!({})),
            read(json!({"id": 3, "name": "c"})),
        ];
        let (good, bad) = split(records);
        assert_eq!(good.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(bad.len(), 1);
    }
}
