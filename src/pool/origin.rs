//! The registry key: scheme, lower-cased host and port of a base URL.

use std::fmt;
use std::net::Ipv6Addr;

use ureq::http::Uri;

use crate::error::{Error, Result};
use crate::redact;

/// `http` or `https`; nothing else reaches the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where connections go: scheme, host and port, with defaults filled in.
///
/// Two base URLs that differ only in path, in the case of the host, or in an
/// explicit default port share an origin, and so share connections.
///
/// ```
/// use etlpool::Origin;
/// let a = Origin::parse("https://API.example.com/v2").unwrap();
/// let b = Origin::parse("https://api.example.com:443/other?x=1").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "https://api.example.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses the origin out of a URL. Only `http` and `https` are accepted; a URL
    /// with user-info is rejected, because credentials belong in a header that the
    /// pool can keep out of logs.
    pub fn parse(url: &str) -> Result<Origin> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact::url(url),
            reason: reason.to_string(),
        };
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host"))?;
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?} (use http or https)"
            )));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; pass a token instead",
            ));
        }
        let (host, port) = split_host_port(authority).map_err(invalid)?;
        let port = match port {
            Some(p) => p,
            None => scheme.default_port(),
        };
        Ok(Origin { scheme, host, port })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The lower-cased host; IPv6 addresses keep their brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, default filled in.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether `uri` points at this origin. Cheap enough for every request: no
    /// allocation, the host compared case-insensitively.
    pub(crate) fn matches(&self, uri: &Uri) -> bool {
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            _ => return false,
        };
        scheme == self.scheme
            && uri.port_u16().unwrap_or(scheme.default_port()) == self.port
            && uri
                .host()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
    }

    /// The origin `uri` points at, for messages; the URI as written if it has none.
    pub(crate) fn describe(uri: &Uri) -> String {
        match Origin::parse(&uri.to_string()) {
            Ok(o) => o.to_string(),
            Err(_) => redact::url(&uri.to_string()),
        }
    }
}

fn split_host_port(authority: &str) -> std::result::Result<(String, Option<u16>), &'static str> {
    if authority.is_empty() {
        return Err("missing host");
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest.find(']').ok_or("unterminated IPv6 address")?;
        let ip = &rest[..close];
        ip.parse::<Ipv6Addr>().map_err(|_| "invalid IPv6 address")?;
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected characters after IPv6 address"),
        };
        (format!("[{}]", ip.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("missing host");
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err("host contains invalid characters");
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("port must be a number from 1 to 65535"),
            Ok(p) => Some(p),
        },
    };
    Ok((host, port))
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match Origin::parse(url) {
            Err(Error::InvalidUrl { reason, .. }) => reason,
            other => panic!("expected InvalidUrl for {url}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_case() {
        let o = Origin::parse("HTTP://Example.COM").unwrap();
        assert_eq!(
            (o.scheme(), o.host(), o.port()),
            (Scheme::Http, "example.com", 80)
        );
        let o = Origin::parse("https://[::1]:8443/api/v3/").unwrap();
        assert_eq!((o.host(), o.port()), ("[::1]", 8443));
        assert_eq!(o.to_string(), "https://[::1]:8443");
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(reason("ftp://x").contains("unsupported scheme"));
        assert!(reason("example.com/v2").contains("scheme://host"));
        assert!(reason("https://").contains("missing host"));
        assert!(reason("https://h:0").contains("port"));
        assert!(reason("https://h:99999").contains("port"));
        assert!(reason("https://h:abc").contains("port"));
        assert!(reason("https://a b").contains("invalid characters"));
        assert!(reason("https://[zz]").contains("IPv6"));
        assert!(reason("https://u:p@h").contains("credentials"));
    }

    #[test]
    fn matches_uris_of_the_same_origin_only() {
        let o = Origin::parse("https://API.example.com/v2").unwrap();
        let yes = [
            "https://api.example.com/x",
            "HTTPS://Api.Example.com:443/y?z=1",
        ];
        let no = [
            "http://api.example.com/x",
            "https://api.example.com:8443/x",
            "https://example.com/x",
            "https://api.example.com.evil.test/x",
        ];
        for u in yes {
            assert!(o.matches(&u.parse().unwrap()), "{u}");
        }
        for u in no {
            assert!(!o.matches(&u.parse().unwrap()), "{u}");
        }
        let v6 = Origin::parse("http://[::1]:8080").unwrap();
        assert!(v6.matches(&"http://[::1]:8080/a".parse().unwrap()));
    }

    #[test]
    fn rejected_url_is_redacted() {
        let err = Origin::parse("https://user:secret@h/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
