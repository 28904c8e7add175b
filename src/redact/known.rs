//! Values a call knows it sent, masked wherever a server echoes them back.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;

use super::{body_excerpt, encode_component};
use crate::error::Error;

/// The mask put in place of a secret.
const MASK: &str = "***";
/// Shorter credentials are not masked: they would mask every such word.
const MIN_SECRET: usize = 3;
/// Shorter values of ordinary query and form fields are not masked.
const MIN_VALUE: usize = 8;

/// Values one call knows it sent, to be masked wherever they show up in what
/// it returns or logs: the credentials (the `Authorization` value and its
/// token, other header values that are not on the printable list), the login
/// form's password, and query and form values.
///
/// * A **credential** (a header value, or a field whose name says it is one:
///   `token`, `password`, `apiKey`, `secret`, `auth`, `signature`, `session`,
///   `key`, `code`, ...) is masked wherever it appears, at 3 characters or more.
/// * **Another field's value** is masked as a whole word, when it is 8
///   characters or more and not a plain number or a plain word (ids, page
///   sizes, project keys and enum names stay readable: they carry the
///   diagnosis and are no credentials; anything token-like is masked).
///
/// Each is masked as sent, percent-encoded, form-encoded and JSON-escaped.
///
/// ```
/// use etlpool::redact::Known;
/// let mut known = Known::default();
/// known.credential("Bearer tok-123");
/// known.pair("apiKey", "k3y-s3cret");
/// known.pair("startAt", "0");
/// let echo = r#"{"message":"bad apiKey k3y-s3cret for tok-123","startAt":0}"#;
/// assert_eq!(
///     known.scrub(echo),
///     r#"{"message":"bad apiKey *** for ***","startAt":0}"#
/// );
/// ```
#[derive(Clone, Default)]
pub struct Known {
    /// Longest first, so a value containing another is masked whole.
    patterns: Vec<Pattern>,
}

#[derive(Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    /// Masked only where it stands as a whole word.
    whole_word: bool,
}

impl Known {
    /// Masks `value` wherever it appears.
    pub fn secret(&mut self, value: &str) {
        if value.chars().count() >= MIN_SECRET {
            self.add(value, false);
        }
    }

    /// An `Authorization`-style value: the whole of it, and its credentials
    /// after the scheme (`Bearer abc` masks `abc` too).
    pub fn credential(&mut self, value: &str) {
        let value = value.trim();
        self.secret(value);
        if let Some((_, token)) = value.split_once(' ') {
            self.secret(token.trim());
        }
    }

    /// A query or form field: masked as a credential if its name says it is
    /// one, else as an ordinary value (see [`Known`]).
    pub fn pair(&mut self, key: &str, value: &str) {
        if names_a_credential(key) {
            self.secret(value);
        } else if could_be_a_credential(value) {
            self.add(value, true);
        }
    }

    /// A header sent: its value is a credential unless the header is on the
    /// printable list.
    pub fn header(&mut self, name: &str, value: &str) {
        if super::header_value(name, value) != value {
            self.credential(value);
        }
    }

    /// Every field of the query of `url` (and every bare query part).
    pub fn url_query(&mut self, url: &str) {
        let without_fragment = url.split('#').next().unwrap_or(url);
        if let Some((_, query)) = without_fragment.split_once('?') {
            self.encoded_pairs(query);
        }
    }

    /// Every field of an `application/x-www-form-urlencoded` body.
    pub fn form(&mut self, body: &[u8]) {
        if let Ok(text) = std::str::from_utf8(body) {
            self.encoded_pairs(text);
        }
    }

    fn encoded_pairs(&mut self, encoded: &str) {
        let decode = |s: &str| {
            let plus = s.replace('+', " ");
            percent_decode_str(&plus).decode_utf8_lossy().into_owned()
        };
        for part in encoded.split('&').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) => self.pair(&decode(k), &decode(v)),
                None => self.pair("", &decode(part)),
            }
        }
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn add(&mut self, value: &str, whole_word: bool) {
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json.trim_matches('"');
        let encoded = encode_component(value);
        let form = encoded.replace("%20", "+");
        // A server that percent-encodes what it got echoes an encoded value
        // encoded again.
        let twice = encode_component(&form);
        // JSON encoders that escape more than they must: PHP writes `/` as
        // `\/`; Python (non-ASCII) and Go (`<`, `>`, `&`) write `\uXXXX`.
        let slashed = json.replace('/', "\\/");
        let ascii = json_ascii(json, false);
        let ascii_slashed = ascii.replace('/', "\\/");
        let ascii_upper = json_ascii(json, true);
        for text in [
            value,
            json,
            encoded.as_str(),
            form.as_str(),
            twice.as_str(),
            slashed.as_str(),
            ascii.as_str(),
            ascii_slashed.as_str(),
            ascii_upper.as_str(),
        ] {
            let pattern = Pattern {
                text: text.to_string(),
                whole_word,
            };
            if !text.is_empty() && !self.patterns.contains(&pattern) {
                self.patterns.push(pattern);
            }
        }
        self.patterns
            .sort_by_key(|p| std::cmp::Reverse(p.text.len()));
    }

    /// `text` with every known value masked.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for p in &self.patterns {
            if out.contains(&p.text) {
                out = Cow::Owned(mask(&out, p));
            }
        }
        out
    }

    /// A short, printable excerpt of a body with every known value and
    /// everything that looks like a secret masked (masked before it is cut,
    /// so no secret shows in part).
    pub fn excerpt(&self, body: &[u8], max: usize) -> String {
        let text = String::from_utf8_lossy(body);
        body_excerpt(self.scrub(&text).as_bytes(), max)
    }

    /// `e` with every known value masked in its message and its causes' (a
    /// cause that quoted one is replaced by its masked text).
    pub fn scrub_error(&self, e: Error) -> Error {
        if self.is_empty() {
            return e;
        }
        let s = |text: &mut String| {
            if let Cow::Owned(masked) = self.scrub(text) {
                *text = masked;
            }
        };
        match e {
            Error::Config { key, mut message } => {
                s(&mut message);
                Error::Config { key, message }
            }
            Error::InvalidUrl {
                mut url,
                mut reason,
            } => {
                s(&mut url);
                s(&mut reason);
                Error::InvalidUrl { url, reason }
            }
            Error::Io {
                mut context,
                source,
            } => {
                s(&mut context);
                let source = match self.scrub(&source.to_string()) {
                    Cow::Owned(masked) => std::io::Error::new(source.kind(), masked),
                    Cow::Borrowed(_) => source,
                };
                Error::Io { context, source }
            }
            Error::Request(mut r) => {
                s(&mut r.at.path);
                if let Cow::Owned(masked) = self.scrub(&r.source.to_string()) {
                    r.source = ureq::Error::Other(Box::new(Masked(masked)));
                }
                Error::Request(r)
            }
            Error::BodyTooLarge {
                mut at,
                limit,
                outcome_unknown,
            } => {
                s(&mut at.path);
                Error::BodyTooLarge {
                    at,
                    limit,
                    outcome_unknown,
                }
            }
            Error::Status(mut st) => {
                s(&mut st.at.path);
                s(&mut st.body);
                Error::Status(st)
            }
            Error::Decode(mut d) => {
                s(&mut d.at.path);
                s(&mut d.body);
                if let Some(ct) = &mut d.content_type {
                    s(ct);
                }
                d.source = d.source.map(|e| self.scrub_json_error(e));
                Error::Decode(d)
            }
            Error::TotalTimeout {
                mut at,
                elapsed,
                waiting_for,
            } => {
                s(&mut at.path);
                Error::TotalTimeout {
                    at,
                    elapsed,
                    waiting_for,
                }
            }
            Error::AllOriginsFailed(mut f) => {
                for (_, why) in &mut f.origins {
                    s(why);
                }
                let last = std::mem::replace(&mut f.last, Error::Cancelled);
                f.last = self.scrub_error(last);
                Error::AllOriginsFailed(f)
            }
            other => other,
        }
    }

    /// A serde error whose message quotes a known value, rebuilt from its
    /// masked message (line and column stay in the text).
    pub(crate) fn scrub_json_error(&self, e: serde_json::Error) -> serde_json::Error {
        match self.scrub(&e.to_string()) {
            Cow::Owned(masked) => <serde_json::Error as serde::de::Error>::custom(masked),
            Cow::Borrowed(_) => e,
        }
    }
}

impl fmt::Debug for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Known({} patterns)", self.patterns.len())
    }
}

/// The text of a cause that quoted a known value, masked.
#[derive(Debug)]
struct Masked(String);

impl fmt::Display for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Masked {}

/// `text` with `p` masked (where it stands as a whole word, if it must).
fn mask(text: &str, p: &Pattern) -> String {
    let word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&p.text) {
        let end = at + p.text.len();
        let bounded =
            !word_char(rest[..at].chars().next_back()) && !word_char(rest[end..].chars().next());
        out.push_str(&rest[..at]);
        out.push_str(if !p.whole_word || bounded {
            MASK
        } else {
            &p.text
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// JSON-escaped `json` with every non-ASCII character and `<`, `>`, `&` as
/// `\uXXXX` (UTF-16; Python and Go write lowercase hex, Java uppercase).
fn json_ascii(json: &str, upper: bool) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !matches!(c, '<' | '>' | '&') {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&match upper {
                    true => format!("\\u{unit:04X}"),
                    false => format!("\\u{unit:04x}"),
                });
            }
        }
    }
    out
}

/// Whether a field's name says its value is a credential.
fn names_a_credential(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    const PARTS: &[&str] = &[
        "token",
        "secret",
        "passw",
        "pwd",
        "apikey",
        "accesskey",
        "privatekey",
        "signature",
        "credential",
        "session",
        "auth",
    ];
    const WHOLE: &[&str] = &["key", "sig", "code", "pass", "jwt"];
    PARTS.iter().any(|p| key.contains(p)) || WHOLE.contains(&key.as_str())
}

/// Whether an ordinary field's value could be a credential: long enough, and
/// neither a plain number nor a plain word.
fn could_be_a_credential(value: &str) -> bool {
    value.chars().count() >= MIN_VALUE
        && !value.chars().all(|c| c.is_ascii_digit())
        && !value.chars().all(|c| c.is_alphabetic() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_of_an_echo_is_masked() {
        let mut k = Known::default();
        k.pair("token", "a b/c+d=é");
        for echo in [
            "a b/c+d=é",
            "a%20b%2Fc%2Bd%3D%C3%A9",
            "a+b%2Fc%2Bd%3D%C3%A9",
            "x=a b/c+d=é&y",
        ] {
            assert!(!k.scrub(echo).contains("b/c"), "{echo}");
            assert!(!k.scrub(echo).contains("%2F"), "{echo}");
        }
        let mut k = Known::default();
        k.pair("q", "quote\"d-value1");
        assert_eq!(k.scrub(r#"{"m":"quote\"d-value1"}"#), r#"{"m":"***"}"#);
    }

    #[test]
    fn ordinary_values_are_masked_only_as_whole_words_and_when_token_like() {
        let mut k = Known::default();
        for (key, value) in [
            ("startAt", "0"),
            ("projectKey", "PROJ"),
            ("statusType", "TEST_EXECUTION"),
            ("expand", "descendants"),
            ("parentId", "2107600"),
            ("id", "ab12cd34ef"),
        ] {
            k.pair(key, value);
        }
        let text = "PROJ TEST_EXECUTION descendants 2107600 0 xab12cd34ef ab12cd34ef";
        assert_eq!(
            k.scrub(text),
            "PROJ TEST_EXECUTION descendants 2107600 0 xab12cd34ef ***"
        );
    }

    #[test]
    fn credentials_and_bare_query_parts() {
        let mut k = Known::default();
        k.credential("Basic dXNlcjpw");
        k.url_query("https://h/x?s3cr3t-bare-part&apiKey=k3y%2Bv");
        k.header("X-Api-Key", "hdr-secret");
        k.header("Content-Type", "application/json");
        let text = "Basic dXNlcjpw s3cr3t-bare-part k3y+v hdr-secret application/json";
        assert_eq!(k.scrub(text), "*** *** *** *** application/json");
        assert!(format!("{k:?}").starts_with("Known("));
    }
}
