//! What an [`ApiClient`](super::ApiClient) call sends, and how credentials are
//! attached.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::redact::encode_component;

/// A request relative to an [`ApiClient`](super::ApiClient)'s base URL: the raw
/// escape hatch behind `get_json`, `post_json` and friends.
///
/// ```
/// use etlpool::http::ApiRequest;
/// let req = ApiRequest::post("/test-cases")
///     .query("parentId", "42")
///     .json(&serde_json::json!({"name": "Check pump"}))
///     .unwrap()
///     .idempotency_key("case-PROJ-T1");
/// assert_eq!(req.method(), "POST");
/// ```
#[derive(Clone)]
pub struct ApiRequest {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) idempotent: bool,
}

impl ApiRequest {
    fn new(method: &'static str, path: &str) -> Self {
        ApiRequest {
            method,
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            idempotent: false,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// `PUT path`.
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }

    /// `DELETE path`.
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }

    /// The method.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Adds a query parameter (encoded when sent).
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds query parameters.
    pub fn queries<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        for (k, v) in pairs {
            self.query
                .push((k.as_ref().to_string(), v.as_ref().to_string()));
        }
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// An `Idempotency-Key`: the server deduplicates on it, so a POST carrying
    /// one is retried like an idempotent request.
    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("Idempotency-Key", key)
    }

    /// Marks a POST that only reads (a search) as safe to resend, without
    /// sending an `Idempotency-Key`.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// A JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Io {
            context: format!("encoding the JSON body of {} {}", self.method, self.path),
            source: e.into(),
        })?;
        self.body = Some(bytes);
        Ok(self.header("Content-Type", "application/json"))
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.body = Some(encode_pairs(pairs.iter().copied()).into_bytes());
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }

    /// Whether a resend is known to be harmless beyond the method's own rule:
    /// an `Idempotency-Key` or [`ApiRequest::idempotent`].
    pub(crate) fn resend_safe(&self) -> bool {
        self.idempotent
            || self
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"))
    }

    /// Whether the path is a whole URL rather than a path under the base URL.
    pub(crate) fn is_absolute(&self) -> bool {
        let lower = self
            .path
            .get(..8)
            .unwrap_or(&self.path)
            .to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    }

    /// Path plus encoded query, appended to a base URL.
    pub(crate) fn url(&self, base: &str) -> String {
        let mut url = if self.is_absolute() {
            self.path.clone()
        } else {
            format!("{base}/{}", self.path.trim_start_matches('/'))
        };
        if !self.query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encode_pairs(
                self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ));
        }
        url
    }
}

fn encode_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", crate::redact::header_value(k, v)))
            .collect();
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &crate::redact::url(&self.path))
            .field(
                "query_keys",
                &self.query.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("headers", &headers)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// Supplies the `Authorization` header, e.g. an OAuth login that renews its
/// token before it expires.
pub trait AuthProvider: Send + Sync + 'static {
    /// The header value for the next request, e.g. `Bearer abc`.
    fn authorization(&self) -> Result<String>;
    /// [`AuthProvider::authorization`] for a call that must end by `deadline`
    /// (its `total_timeout`): a wait for a login in progress, and a login's own
    /// request, should end there. The default ignores the deadline; the
    /// [`ApiClient`](super::ApiClient) still reports a total timeout for the
    /// login if the value comes too late.
    fn authorization_until(&self, deadline: Option<Instant>) -> Result<String> {
        let _ = deadline;
        self.authorization()
    }
    /// The server answered 401 to `rejected`. Return true if a new value is now
    /// available, so the call is sent once more.
    fn rejected(&self, rejected: &str) -> bool;
}

/// How an [`ApiClient`](super::ApiClient) authenticates. `Debug` never shows the
/// secret.
#[derive(Clone, Default)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// A provider that can renew its credentials.
    Provider(Arc<dyn AuthProvider>),
}

impl Auth {
    pub(crate) fn value_until(&self, deadline: Option<Instant>) -> Result<Option<String>> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(token) => Ok(Some(format!("Bearer {token}"))),
            Auth::Provider(p) => p.authorization_until(deadline).map(Some),
        }
    }

    pub(crate) fn rejected(&self, value: &str) -> bool {
        match self {
            Auth::Provider(p) => p.rejected(value),
            _ => false,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(***)"),
            Auth::Provider(_) => f.write_str("Auth::Provider(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_encode() {
        let r = ApiRequest::get("/testcases")
            .query("projectKey", "PROJ")
            .query("q", "a b&c=d/é");
        assert_eq!(
            r.url("https://h/v2"),
            "https://h/v2/testcases?projectKey=PROJ&q=a%20b%26c%3Dd%2F%C3%A9"
        );
        let next = ApiRequest::get("https://h/v2/testcases?startAt=10").query("x", "1");
        assert_eq!(
            next.url("https://h/v2"),
            "https://h/v2/testcases?startAt=10&x=1"
        );
        assert_eq!(
            ApiRequest::get("projects").url("http://h/api/v3"),
            "http://h/api/v3/projects"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let r = ApiRequest::get("/x?token=abc").header("Authorization", "Bearer s3cret");
        let text = format!("{r:?} {:?}", Auth::Bearer("s3cret".into()));
        assert!(!text.contains("s3cret") && !text.contains("abc"), "{text}");
    }

    #[test]
    fn form_bodies_are_encoded() {
        let r = ApiRequest::post("/oauth/token")
            .form(&[("grant_type", "password"), ("username", "a@b.c")]);
        assert_eq!(
            r.body.as_deref(),
            Some(&b"grant_type=password&username=a%40b.c"[..])
        );
    }
}
