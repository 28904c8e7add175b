//! Zephyr's paged lists and the paging decisions: offset pages
//! (`startAt`/`maxResults`) and NextGen cursor pages (`startAtId`/`limit`).

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
    /// `isLast`, when sent, decides: `false` goes on even after a short page
    /// (the spec lets the server return fewer items than `maxResults` without
    /// being done), unless the page is empty and has no `next` link, which
    /// would otherwise never end. Without `isLast`, an empty page or one
    /// shorter than the returned `maxResults` is the last. `total` is not
    /// trusted to stop early: it can be stale while items are added, and a
    /// full page without `isLast` costs at most one extra empty request.
    pub fn has_more(&self) -> bool {
        match self.is_last {
            Some(true) => false,
            Some(false) => !self.values.is_empty() || self.next.is_some(),
            None if self.values.is_empty() => false,
            None => {
                let len = u64::try_from(self.values.len()).unwrap_or(u64::MAX);
                len >= self.max_results
            }
        }
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

/// One page of a NextGen (cursor-paged) list:
/// `{"next","nextStartAtId","limit","values"}`.
///
/// `nextStartAtId` is required and `null` after the last page; the next page
/// is asked for with `startAtId` set to it. There is no `total`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct CursorPage<T> {
    /// URL of the next page, when the server sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Where the next page starts; `None` after the last page. Required: a
    /// page without it can't say whether the listing is complete.
    #[serde(deserialize_with = "Option::deserialize")]
    pub next_start_at_id: Option<u64>,
    /// Page size the server actually used.
    pub limit: u64,
    /// The items.
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<T>,
}

/// The cursor of the page after one that started at `start_at_id`.
///
/// `next_start_at_id` is followed as the server sent it (whether the server
/// reads it as "from this id" or "after this id" is its business). A server
/// whose cursor fails to move forward would loop for ever: then the page's
/// highest id plus one is used instead, and an empty page ends the listing.
pub fn next_cursor(
    start_at_id: u64,
    next_start_at_id: Option<u64>,
    max_id: Option<u64>,
) -> Option<u64> {
    let next = next_start_at_id?;
    if next > start_at_id {
        return Some(next);
    }
    let fallback = max_id?.checked_add(1)?;
    (fallback > start_at_id).then_some(fallback)
}
