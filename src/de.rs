//! Lenient serde helpers shared by the client-side models of both services.
//!
//! Real services send `null` where a spec says "array" or "object", and numbers
//! where it says "string"; these helpers accept both so one odd field does not
//! fail a whole page. They live here (client side) and must never be shared
//! with `crate::mock`, so the mocks and the clients can't agree on a wrong
//! contract by sharing code.

use serde::{Deserialize, Deserializer};

/// Reads `null` as `T::default()`; pair with `#[serde(default)]` so a missing
/// field is accepted too.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads a string, a number or a boolean as a string; `null` as `None`.
pub(crate) fn lenient_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(D::Error::custom(format!(
            "expected a string or a number, found {other}"
        ))),
    }
}

/// Like [`lenient_string`] for a field that must be present and not `null`.
pub(crate) fn required_lenient_string<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    use serde::de::Error;
    lenient_string(deserializer)?.ok_or_else(|| D::Error::custom("expected a value, found null"))
}
