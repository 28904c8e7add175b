//! Keeping secrets out of logs and error messages.
//!
//! Tokens travel in the `Authorization` header and, with some services, in query
//! strings or URL user-info. Everything that prints a URL or a header goes through
//! these helpers, so a secret can't leak through a `Debug` or an error message.
//!
//! Two layers. What *looks* like a secret is masked wherever a body excerpt is
//! printed ([`body_excerpt`]). What the client *knows* it sent ([`Known`]: the
//! credentials, the login form, query values, unprintable header values) is
//! masked in everything an [`ApiClient`](crate::http::ApiClient) call returns
//! or logs, whatever shape a server echoes it in: as sent, percent-encoded,
//! form-encoded or JSON-escaped, inside a JSON message, an `apiKey` field, an
//! echoed header or a serde error quoting it.

mod known;

pub use known::Known;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is escaped in query parts.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` percent-encoded as a query or form part.
pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

/// Headers whose values may be printed. Everything else is shown as `***`, as ureq
/// does: a list of the harmless is safer than a list of the dangerous.
const PRINTABLE_HEADERS: &[&str] = &[
    "accept",
    "content-length",
    "content-type",
    "connection",
    "date",
    "host",
    "idempotency-key",
    "retry-after",
    "user-agent",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// Returns the header value to print: the value itself for harmless headers,
/// `***` for anything that might carry a credential.
///
/// ```
/// assert_eq!(etlpool::redact::header_value("Authorization", "Bearer abc"), "***");
/// assert_eq!(etlpool::redact::header_value("Content-Type", "application/json"), "application/json");
/// ```
pub fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_harmless_header(name) {
        value
    } else {
        "***"
    }
}

/// Whether a header named `name` is known to carry no credential (its value
/// may be printed, and may follow a redirect to another origin).
pub(crate) fn is_harmless_header(name: &str) -> bool {
    PRINTABLE_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Returns `url` without user-info and with every query value (and every
/// bare query part) replaced by `***`, so it can go into a log line or an error.
///
/// ```
/// assert_eq!(
///     etlpool::redact::url("https://user:pw@api.example.com/v2/x?token=abc&startAt=0&s3cret"),
///     "https://api.example.com/v2/x?token=***&startAt=***&***"
/// );
/// ```
pub fn url(url: &str) -> String {
    let (before_fragment, _) = url.split_once('#').unwrap_or((url, ""));
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = strip_userinfo(base);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                // A bare part (`?abc123`) may be the secret itself.
                None => "***".to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn strip_userinfo(base: &str) -> String {
    // A scheme-relative reference (`//user:pw@host/`, a `Location`) has an
    // authority too.
    let (prefix, rest) = match base.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => match base.strip_prefix("//") {
            Some(rest) => ("//".to_string(), rest),
            None => return base.to_string(),
        },
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{prefix}{host}{path}")
}

/// A short, printable excerpt of a response body for error messages: at most
/// `max` characters, control characters replaced, and anything that looks like a
/// token (`"token": "..."`, `access_token`, `Bearer ...`) masked.
///
/// ```
/// let e = etlpool::redact::body_excerpt(br#"{"access_token":"s3cret","x":1}"#, 80);
/// assert!(!e.contains("s3cret"));
/// ```
pub fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let masked = mask_tokens(&text);
    let mut out: String = masked
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if masked.chars().count() > max {
        out.push('…');
    }
    out
}

/// The values in `text` that look like secrets (see [`body_excerpt`]).
pub(crate) fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(pos) = find_secret_key(rest) {
        let (_, tail) = rest.split_at(pos.value_start);
        found.push(tail[..pos.value_len].to_string());
        rest = &tail[pos.value_len..];
    }
    found
}

fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_secret_key(rest) {
        let (head, tail) = rest.split_at(pos.value_start);
        out.push_str(head);
        out.push_str("***");
        rest = &tail[pos.value_len..];
    }
    out.push_str(rest);
    out
}

struct SecretPos {
    value_start: usize,
    value_len: usize,
}

/// Finds the next secret: the value under any JSON key ending in "token",
/// "secret", "password" or "apikey" (every occurrence, whatever came before
/// and whatever the value's type), the same names as form or query fields
/// (`password=...`), or the word after "Bearer ".
fn find_secret_key(text: &str) -> Option<SecretPos> {
    let lower = text.to_ascii_lowercase();
    let found = |keys: &'static [&'static str]| {
        let lower = &lower;
        keys.iter()
            .flat_map(move |key| lower.match_indices(key).map(|(k, _)| k + key.len()))
    };
    let json = found(&[
        "token\"",
        "secret\"",
        "password\"",
        "apikey\"",
        "api_key\"",
        "api-key\"",
    ])
    .filter_map(|at| json_value(text, at));
    let form = found(&[
        "token=",
        "secret=",
        "password=",
        "apikey=",
        "api_key=",
        "api-key=",
    ])
    .map(|start| SecretPos {
        value_start: start,
        value_len: text[start..]
            .find(['&', '"', ',', ';'])
            .or_else(|| text[start..].find(char::is_whitespace))
            .unwrap_or(text.len() - start),
    });
    let bearer = found(&["bearer "]).map(|start| SecretPos {
        value_start: start,
        value_len: text[start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .unwrap_or(text.len() - start),
    });
    json.chain(form)
        .chain(bearer)
        .filter(|p| p.value_len > 0)
        .min_by_key(|p| p.value_start)
}

/// The JSON value after a key that ends at `after_key` (`"…token"`): a
/// string's contents, or a number, `true` or `null` as it is written.
fn json_value(text: &str, after_key: usize) -> Option<SecretPos> {
    let value = text[after_key..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let start = text.len() - value.len();
    Some(match value.strip_prefix('"') {
        Some(inner) => SecretPos {
            value_start: start + 1,
            value_len: inner.find('"').unwrap_or(inner.len()),
        },
        None => SecretPos {
            value_start: start,
            value_len: value
                .find(|c: char| matches!(c, ',' | '}' | ']') || c.is_whitespace())
                .unwrap_or(value.len()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_without_query_is_unchanged() {
        assert_eq!(url("https://h.example/v2/x"), "https://h.example/v2/x");
    }

    #[test]
    fn excerpt_masks_bearer_and_nested_tokens() {
        let e = body_excerpt(
            br#"{"message":"bad Bearer abc.def","refresh_token": "r1","password":"p"}"#,
            200,
        );
        assert!(!e.contains("abc.def"), "{e}");
        assert!(!e.contains("r1"), "{e}");
        assert!(!e.contains("\"p\""), "{e}");
        assert!(e.contains("message"));
    }

    #[test]
    fn excerpt_is_bounded() {
        let e = body_excerpt(&[b'a'; 500], 10);
        assert_eq!(e.chars().count(), 11);
    }
}
