//! The paging rules of both contracts.

use serde_json::{Value, json};

use super::server::Request;

/// A Zephyr page request after the server's cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ZephyrPage {
    pub start_at: usize,
    pub max_results: usize,
}

/// The largest `startAt` Zephyr's offset paging accepts (the spec's bound).
pub(crate) const ZEPHYR_MAX_START_AT: usize = 1_000_000;

/// The largest `limit` Zephyr's NextGen listings accept (the spec's bound).
pub(crate) const ZEPHYR_MAX_LIMIT: usize = 1000;

/// Reads `startAt` (default 0, at most 1,000,000) and `maxResults` (default 10, lowered
/// silently to `cap`).
pub(crate) fn zephyr_page(req: &Request, cap: usize) -> Result<ZephyrPage, String> {
    let start_at = int_param(req, "startAt", 0, 0)?;
    if start_at > ZEPHYR_MAX_START_AT {
        return Err(format!(
            "startAt must be between 0 and {ZEPHYR_MAX_START_AT}"
        ));
    }
    let max_results = int_param(req, "maxResults", 10, 1)?.min(cap);
    Ok(ZephyrPage {
        start_at,
        max_results,
    })
}

/// The Zephyr envelope over the already filtered `items`, rendering only the
/// page's share (rendering all of a big list per page made paging quadratic);
/// `origin` is `http://host:port`.
pub(crate) fn zephyr_envelope<T>(
    req: &Request,
    origin: &str,
    page: ZephyrPage,
    items: Vec<T>,
    render: impl FnMut(T) -> Value,
) -> Value {
    let total = items.len();
    let end = page.start_at.saturating_add(page.max_results).min(total);
    let values: Vec<Value> = items
        .into_iter()
        .skip(page.start_at)
        .take(end.saturating_sub(page.start_at))
        .map(render)
        .collect();
    let is_last = end >= total;
    let mut out = json!({
        "startAt": page.start_at, "maxResults": page.max_results, "total": total,
        "isLast": is_last, "values": values,
    });
    if !is_last {
        let next = ZephyrPage {
            start_at: page.start_at + page.max_results,
            ..page
        };
        out["next"] = Value::String(format!("{origin}{}", with_page(req, next)));
    }
    out
}

/// The request's target with `startAt` and `maxResults` replaced, other parameters untouched.
fn with_page(req: &Request, page: ZephyrPage) -> String {
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("startAt=") && !p.starts_with("maxResults="))
        .map(str::to_string)
        .collect();
    parts.push(format!("startAt={}", page.start_at));
    parts.push(format!("maxResults={}", page.max_results));
    format!("{}?{}", req.path, parts.join("&"))
}

/// A Zephyr NextGen (cursor) page request after the server's cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CursorPage {
    pub start_at_id: u64,
    pub limit: usize,
}

/// Reads `startAtId` (default 0) and `limit` (default 10, 1..=1000 or 400, then lowered
/// silently to `cap`).
pub(crate) fn cursor_page(req: &Request, cap: usize) -> Result<CursorPage, String> {
    let start_at_id = int_param(req, "startAtId", 0, 0)?;
    let limit = int_param(req, "limit", 10, 1)?;
    if limit > ZEPHYR_MAX_LIMIT {
        return Err(format!("limit must be between 1 and {ZEPHYR_MAX_LIMIT}"));
    }
    Ok(CursorPage {
        start_at_id: start_at_id as u64,
        limit: limit.min(cap),
    })
}

/// The NextGen envelope `{"next","nextStartAtId","limit","values"}` over `sorted`
/// (ascending by `id`), keeping the items `keep` accepts: the page holds the first
/// `limit` of them whose id is at least `startAtId`; `nextStartAtId` is the id of
/// the first item after the page, `null` after the last page.
pub(crate) fn cursor_envelope<T>(
    req: &Request,
    origin: &str,
    page: CursorPage,
    sorted: &[T],
    id: impl Fn(&T) -> u64,
    keep: impl Fn(&T) -> bool,
    render: impl FnMut(&T) -> Value,
) -> Value {
    let start = sorted.partition_point(|x| id(x) < page.start_at_id);
    let mut matching = sorted[start..].iter().filter(|x| keep(x));
    let values: Vec<Value> = matching.by_ref().take(page.limit).map(render).collect();
    let next_id = matching.next().map(id);
    let next = next_id.map(|n| {
        let mut url = format!("{origin}{}", with_params(req, &["startAtId", "limit"]));
        url.push_str(&format!("startAtId={n}&limit={}", page.limit));
        url
    });
    json!({ "next": next, "nextStartAtId": next_id, "limit": page.limit, "values": values })
}

/// The request's target without the parameters `drop`, ending in `?` or `&`.
fn with_params(req: &Request, drop: &[&str]) -> String {
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(n, _)| n);
            !p.is_empty() && !drop.contains(&name)
        })
        .collect();
    match kept.is_empty() {
        true => format!("{}?", req.path),
        false => format!("{}?{}&", req.path, kept.join("&")),
    }
}

/// qTest's bare-array paging of `test-cases`: `page` from 1 (default 1), `size` 1..=999 (default 20).
pub(crate) fn qtest_bare<T: Clone>(req: &Request, items: &[T]) -> Result<Vec<T>, String> {
    let page = int_param(req, "page", 1, 1)?;
    let size = int_param(req, "size", 20, 1)?;
    if size > 999 {
        return Err("size must be between 1 and 999".to_string());
    }
    let start = (page - 1).saturating_mul(size);
    Ok(items.iter().skip(start).take(size).cloned().collect())
}

/// qTest's envelope paging: `page` from 1 (default 1), `pageSize` (default 100, lowered to 999).
/// Only the page's items are rendered.
pub(crate) fn qtest_envelope<T>(
    req: &Request,
    items: Vec<T>,
    render: impl FnMut(T) -> Value,
) -> Result<Value, String> {
    let page = int_param(req, "page", 1, 1)?;
    let size = int_param(req, "pageSize", 100, 1)?.min(999);
    let total = items.len();
    let start = (page - 1).saturating_mul(size);
    let items: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(size)
        .map(render)
        .collect();
    Ok(json!({ "links": [], "page": page, "page_size": size, "total": total, "items": items }))
}

/// An integer query parameter at least `min`, or `default` when absent.
pub(crate) fn int_param(
    req: &Request,
    name: &str,
    default: usize,
    min: usize,
) -> Result<usize, String> {
    match req.query_param(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!(
                "{name} must be an integer greater than or equal to {min}"
            )),
        },
    }
}
