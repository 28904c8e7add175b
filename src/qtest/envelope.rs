//! qTest's paged envelope, search, OAuth token and error bodies.

use serde::{Deserialize, Serialize};

use super::models::Link;
use crate::de::null_default;

/// The paged envelope `{"links","page","page_size","total","items"}` of
/// test runs, test logs and search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct Paged<T> {
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
    /// Page number, from 1.
    #[serde(default = "first_page")]
    pub page: u64,
    /// Page size the server used.
    #[serde(default)]
    pub page_size: u64,
    /// Total number of items, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The items.
    #[serde(default, deserialize_with = "null_default")]
    pub items: Vec<T>,
}

fn first_page() -> u64 {
    1
}

impl<T> Paged<T> {
    /// The next page number, or `None` after the last page: an empty page,
    /// a page shorter than its `page_size`, or one that reaches `total` ends it.
    pub fn next_page(&self) -> Option<u64> {
        let len = u64::try_from(self.items.len()).unwrap_or(u64::MAX);
        if len == 0 || len < self.page_size {
            return None;
        }
        let seen = self.page.saturating_sub(1).saturating_mul(self.page_size) + len;
        if self.total.is_some_and(|total| seen >= total) {
            return None;
        }
        self.page.checked_add(1)
    }
}

/// Whether a bare-array page (`GET /test-cases`) was the last one: qTest sends
/// no envelope there, so a page shorter than the requested size ends paging.
pub fn is_last_bare_page(items: usize, requested_size: u64) -> bool {
    u64::try_from(items).unwrap_or(u64::MAX) < requested_size.max(1)
}

/// Body of `POST /search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// `test-cases`, `test-runs`, `test-cycles`, `test-logs`, `requirements`, `defects`, ...
    pub object_type: String,
    /// Fields to return; `["*"]` for all.
    pub fields: Vec<String>,
    /// The query, e.g. `'Zephyr Key' = 'PROJ-T1'`.
    pub query: String,
}

impl SearchRequest {
    /// A search for `object_type` items whose field `label` equals `value`,
    /// returning all fields. `None` when either contains a single quote: the
    /// query syntax has no documented escape, and a guessed one could match
    /// the wrong records.
    pub fn field_equals(object_type: &str, label: &str, value: &str) -> Option<Self> {
        if label.contains('\'') || value.contains('\'') {
            return None;
        }
        Some(Self {
            object_type: object_type.to_owned(),
            fields: vec!["*".to_owned()],
            query: format!("'{label}' = '{value}'"),
        })
    }
}

/// Response of `POST /search`.
pub type SearchResponse<T> = Paged<T>;

/// Response of `POST /oauth/token`. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The bearer token.
    pub access_token: String,
    /// `bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A token to renew with (`grant_type=refresh_token`); unused, since a password login is
    /// simply repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthToken")
            .field("access_token", &"***")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An error body: `{"message"}`, or OAuth-style `{"error","error_description"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// OAuth error code, e.g. `invalid_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// OAuth error description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl ErrorBody {
    /// The most informative text the body carries.
    pub fn text(&self) -> Option<&str> {
        self.message
            .as_deref()
            .or(self.error_description.as_deref())
            .or(self.error.as_deref())
    }
}
