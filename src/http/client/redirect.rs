//! Where a download's redirect leads: the `Location` of a 3xx resolved
//! against the URL that answered (RFC 3986, section 5.2), and what of the
//! request goes on to the next hop.

use ureq::http::{HeaderMap, Uri};

use crate::http::ApiRequest;
use crate::redact;

/// The statuses a download follows: each names another URL for the same
/// resource in `Location`. 303 means "GET it there" and the others keep the
/// method, which for a download is a GET anyway.
const FOLLOWED: [u16; 5] = [301, 302, 303, 307, 308];

/// The `Location` of an answer that sends a download elsewhere; `None` for
/// any other answer (a 3xx without `Location`, a 304, ...), which is then
/// judged like any non-2xx. `Err` when it names more than one place: the
/// field holds one URL (RFC 9110, 10.2.2), and two are a sign of a header
/// injected into the answer, which browsers refuse too.
pub(super) fn location(status: u16, headers: &HeaderMap) -> Option<Result<String, String>> {
    if !FOLLOWED.contains(&status) {
        return None;
    }
    let mut values = headers
        .get_all("location")
        .iter()
        .map(|v| encoded(v.as_bytes().trim_ascii()))
        .filter(|v| !v.is_empty());
    let first = values.next()?;
    if values.any(|v| v != first) {
        return Some(Err("more than one Location, each different".into()));
    }
    Some(Ok(first))
}

/// `value` with the bytes a URL can't hold as they are (not ASCII, a space,
/// a tab) percent-encoded, as curl and browsers do, rather than taken for no
/// `Location` at all.
fn encoded(value: &[u8]) -> String {
    value
        .iter()
        .map(|&b| match b.is_ascii_graphic() {
            true => char::from(b).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}

/// `location` resolved against `base` (an absolute URL): as it is when it
/// has a scheme, else relative to `base`'s scheme, authority and path.
/// The fragment is dropped (it is never sent). `Err` says why it can't be
/// read.
pub(super) fn resolve(base: &str, location: &str) -> Result<String, String> {
    let location = location.split_once('#').map_or(location, |(l, _)| l);
    if has_scheme(location) {
        return checked(location.to_string());
    }
    let base: Uri = base
        .parse()
        .map_err(|_| "the URL it came from".to_string())?;
    let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) else {
        return Err("the URL it came from is not absolute".into());
    };
    if location.starts_with("//") {
        return checked(format!("{scheme}:{location}"));
    }
    let (path, query) = location
        .split_once('?')
        .map_or((location, None), |(p, q)| (p, Some(q)));
    let path = if path.is_empty() {
        base.path().to_string()
    } else if path.starts_with('/') {
        remove_dot_segments(path)
    } else {
        let dir = base.path().rfind('/').map_or("/", |i| &base.path()[..=i]);
        remove_dot_segments(&format!("{dir}{path}"))
    };
    let query = match query {
        Some(q) => format!("?{q}"),
        // A reference without a path (`?x` or empty) keeps the query only
        // when it names one; one with a path never inherits it.
        None => String::new(),
    };
    checked(format!("{scheme}://{authority}{path}{query}"))
}

/// `url` if it is a URL a request can be made to.
fn checked(url: String) -> Result<String, String> {
    match url.parse::<Uri>() {
        Ok(uri) if uri.host().is_some() => Ok(url),
        _ => Err("not a valid absolute URL".into()),
    }
}

/// Whether `reference` starts with a scheme (`name:`), RFC 3986's grammar.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// RFC 3986's `remove_dot_segments`: `.` and `..` taken out of a path
/// (a `..` above the root stays at the root, as browsers and curl do).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                if last {
                    // `/a/..` is the directory `/`, not the file `/a`.
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// The request for the next hop, at `url`: a GET with the original
/// request's headers, all of them while the chain stays on the request's
/// origin (`trusted`), else only those known to carry no credential (see
/// [`redact::header_value`]) but `Host`, as reqwest and curl drop `Authorization` and
/// cookies when a redirect leaves the host.
pub(super) fn next_request(original: &ApiRequest, url: &str, trusted: bool) -> ApiRequest {
    let mut next = ApiRequest::get(url);
    next.headers = original
        .headers
        .iter()
        // `Host` names the request's origin: sent elsewhere it would ask the
        // next host for another site (and tell it the API's name).
        .filter(|(name, _)| {
            trusted || (redact::is_harmless_header(name) && !name.eq_ignore_ascii_case("host"))
        })
        .cloned()
        .collect();
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_written_otherwise_is_the_same_origin() {
        // What decides whether a hop keeps the credentials.
        use crate::pool::Origin;
        let same = |a: &str, b: &str| Origin::parse(a).unwrap() == Origin::parse(b).unwrap();
        assert!(same("https://h.example/x", "HTTPS://H.Example:443/y"));
        assert!(same("http://[::1]/", "http://[::1]:80/f"));
        assert!(!same("https://h.example/", "http://h.example:443/"));
        assert!(!same("https://h.example/", "https://h.example:8443/"));
        assert!(!same("https://h.example/", "https://h.example.evil/"));
    }

    #[test]
    fn a_location_names_one_place_as_text() {
        let mut headers = HeaderMap::new();
        headers.append("location", "/a".parse().unwrap());
        headers.append("location", "/a".parse().unwrap());
        assert_eq!(location(302, &headers), Some(Ok("/a".into())));
        headers.append("location", "/b".parse().unwrap());
        assert!(matches!(location(302, &headers), Some(Err(_))));
        assert_eq!(location(304, &headers), None);
        assert_eq!(encoded(b"/f\xff x"), "/f%FF%20x");
    }

    #[test]
    fn references_resolve_as_rfc_3986_says() {
        let base = "http://a/b/c/d;p?q";
        for (reference, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("g#s", "http://a/b/c/g"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            (
                "https://cdn.example/f?X-Amz-Signature=abc",
                "https://cdn.example/f?X-Amz-Signature=abc",
            ),
        ] {
            assert_eq!(resolve(base, reference).as_deref(), Ok(want), "{reference}");
        }
        assert_eq!(
            resolve("http://[::1]:8080/a/b", "c?x=1").as_deref(),
            Ok("http://[::1]:8080/a/c?x=1")
        );
        assert!(resolve(base, "http://").is_err());
        assert!(resolve(base, "http://a b/").is_err());
    }
}
