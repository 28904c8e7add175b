//! Zephyr's paged lists and the paging decision.

use serde::{Deserialize, Serialize};

use crate::de::null_default;

/// One page of a paged list: `{"next","startAt","maxResults","total","isLast","values"}`.
///
/// Only `startAt` and `maxResults` are required; the server may return a
/// smaller `maxResults` than asked for, so paging must use the returned value
/// (see [`Page::next_request`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct Page<T> {
    /// URL of the next page, when the server sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Index of the first item of this page.
    pub start_at: u64,
    /// Page size the server actually used.
    pub max_results: u64,
    /// Total number of items, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether this is the last page, when the server says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_last: Option<bool>,
    /// The items.
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<T>,
}

/// The paging query of one request: `startAt` and `maxResults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Index of the first item wanted.
    pub start_at: u64,
    /// Page size wanted; the server may lower it.
    pub max_results: u64,
}

impl PageRequest {
    /// The first page with the given size (`startAt=0`). A size of 0 is raised
    /// to 1, the API's minimum.
    pub fn first(max_results: u64) -> Self {
        Self {
            start_at: 0,
            max_results: max_results.max(1),
        }
    }

    /// The query parameters, ready to append to a request.
    pub fn query(&self) -> [(&'static str, String); 2] {
        [
            ("startAt", self.start_at.to_string()),
            ("maxResults", self.max_results.to_string()),
        ]
    }
}

impl<T> Page<T> {
    /// Whether another page follows this one.
    ///
    /// Stops on `isLast: true`, on an empty page, and on a page shorter than
    /// the returned `maxResults`. `total` is not trusted to stop early: it can
    /// be stale while items are added, and a full page without `isLast` costs
    /// at most one extra empty request.
    pub fn has_more(&self) -> bool {
        if self.is_last == Some(true) || self.values.is_empty() {
            return false;
        }
        let len = u64::try_from(self.values.len()).unwrap_or(u64::MAX);
        len >= self.max_results
    }

    /// The request for the next page, or `None` after the last one.
    ///
    /// The next `startAt` is this page's `startAt` plus the *returned*
    /// `maxResults` (which the server may have lowered), and the next request
    /// asks for that same size so `startAt` stays a multiple of it. A server
    /// that sends more items than its `maxResults` is advanced past all of them
    /// so nothing is read twice; an offset that would overflow ends paging.
    pub fn next_request(&self) -> Option<PageRequest> {
        if !self.has_more() {
            return None;
        }
        let len = u64::try_from(self.values.len()).unwrap_or(u64::MAX);
        let step = self.max_results.max(len);
        Some(PageRequest {
            start_at: self.start_at.checked_add(step)?,
            max_results: self.max_results.max(1),
        })
    }
}
