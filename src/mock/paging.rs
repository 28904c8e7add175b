//! The paging rules of both contracts.

use serde_json::{Value, json};

use super::server::Request;

/// A Zephyr page request after the server's cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ZephyrPage {
    pub start_at: usize,
    pub max_results: usize,
}

/// Reads `startAt` (default 0) and `maxResults` (default 10, lowered silently to `cap`).
pub(crate) fn zephyr_page(req: &Request, cap: usize) -> Result<ZephyrPage, String> {
    let start_at = int_param(req, "startAt", 0, 0)?;
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
