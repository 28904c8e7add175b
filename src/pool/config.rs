//! Pool settings: one `Default` with every default, validation that names the
//! offending key, and `ETLPOOL_*` environment variables.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings of a [`crate::Pool`]. Every field has a default (see [`PoolConfig::default`])
/// and an environment variable `ETLPOOL_<FIELD>` in upper case, e.g.
/// `ETLPOOL_IDLE_TIMEOUT=20s`; durations accept `250ms`, `30s`, `10m`, `1h`, or
/// bare seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Most connections open to one origin at once, lent or idle. Defaults to 8.
    pub max_connections_per_host: usize,
    /// Most connections open across all origins; when reached, idle connections of
    /// other origins are closed, least recently used first. Defaults to no limit.
    pub max_connections_total: Option<usize>,
    /// Idle connections the cleaner keeps open per origin once the origin was
    /// used: idle ones beyond it time out, and when fewer are idle it opens
    /// more with a `HEAD warm_path` each. At most `max_connections_per_host`.
    /// Defaults to 0.
    pub min_idle: usize,
    /// The path of the cheap request that opens a connection ahead of use
    /// (`HEAD <origin><warm_path>`, for [`crate::Pool::warm`] and `min_idle`);
    /// any answer will do. Defaults to `/`.
    pub warm_path: String,
    /// How long [`crate::Pool::lease`] waits for a free connection. Defaults to 30 s.
    #[serde(with = "duration_text")]
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed by the cleaner. Keep it below the
    /// server's keep-alive limit (nginx 75 s, AWS ALB 60 s). Defaults to 30 s.
    #[serde(with = "duration_text")]
    pub idle_timeout: Duration,
    /// Connections older than this are closed when they come back or fall idle, so
    /// DNS changes and server-side rebalancing are picked up. `None` keeps them
    /// forever. Defaults to 10 min.
    #[serde(with = "opt_duration_text")]
    pub max_lifetime: Option<Duration>,
    /// Each connection's lifetime is shortened by a random share of up to this
    /// fraction, so connections opened together don't expire together. `0` turns
    /// it off (tests do). Defaults to 0.025, as HikariCP does.
    pub lifetime_jitter: f64,
    /// How often the cleaner thread looks for idle or expired connections.
    /// Defaults to 5 s.
    #[serde(with = "duration_text")]
    pub reap_interval: Duration,
    /// Time to open a TCP connection and finish the TLS handshake. Defaults to 10 s.
    #[serde(with = "duration_text")]
    pub connect_timeout: Duration,
    /// One attempt, from sending the request to the last body byte. Defaults to 60 s.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// A whole call, with its retries and waits. The pool also applies it to each
    /// ureq call as a hard cap. `None` leaves whole calls unbounded (each attempt
    /// still has `request_timeout`). Defaults to 5 min.
    #[serde(with = "opt_duration_text")]
    pub total_timeout: Option<Duration>,
    /// TCP keepalive on pooled sockets, so that a connection a NAT or firewall
    /// dropped silently is found dead instead of hanging a request. Defaults to on.
    pub tcp_keepalive: bool,
    /// Idle time before the first keepalive probe. Defaults to 30 s.
    #[serde(with = "duration_text")]
    pub tcp_keepalive_idle: Duration,
    /// Time between keepalive probes. Defaults to 10 s.
    #[serde(with = "duration_text")]
    pub tcp_keepalive_interval: Duration,
    /// Unanswered probes before the connection counts as dead. Defaults to 3.
    pub tcp_keepalive_count: u32,
    /// How long resolved addresses are cached. `0` resolves on every new
    /// connection. Defaults to 60 s.
    #[serde(with = "duration_text")]
    pub dns_ttl: Duration,
    /// Largest response body the pool's helpers read. Defaults to 64 MiB.
    pub max_body_bytes: u64,
    /// An HTTP CONNECT proxy such as `http://proxy:3128`. Never taken from
    /// `HTTP_PROXY`/`HTTPS_PROXY`: set it here or with `ETLPOOL_PROXY`.
    /// Defaults to none.
    pub proxy: Option<String>,
    /// The `User-Agent` header. Defaults to `etlpool/<version>`.
    pub user_agent: String,
    /// Certificate verification and client authentication.
    pub tls: TlsOptions,
}

/// TLS settings. Verification against the bundled webpki roots is on by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of extra CA certificates to trust, added to the webpki roots
    /// (`ETLPOOL_CA_FILE`). Defaults to none.
    pub ca_file: Option<PathBuf>,
    /// PEM text of extra CA certificates, as `ca_file` but in memory. Defaults to none.
    pub ca_pem: Option<String>,
    /// A PEM file with the client certificate chain for mutual TLS
    /// (`ETLPOOL_CLIENT_CERT`). Needs `client_key`. Defaults to none.
    pub client_cert: Option<PathBuf>,
    /// A PEM file with the client's private key (`ETLPOOL_CLIENT_KEY`). Defaults to none.
    pub client_key: Option<PathBuf>,
    /// Verify with the operating system's verifier instead of the webpki roots
    /// (`ETLPOOL_PLATFORM_VERIFIER`; needs the `platform-verifier` feature).
    /// Defaults to false.
    pub platform_verifier: bool,
    /// Accept any server certificate. Dangerous: anyone on the path can read and
    /// change the traffic, tokens included. Logged at WARN when the pool is built
    /// (`ETLPOOL_DANGER_ACCEPT_INVALID_CERTS`). Defaults to false.
    pub danger_accept_invalid_certs: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections_per_host: 8,
            max_connections_total: None,
            min_idle: 0,
            warm_path: "/".to_string(),
            acquire_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_lifetime: Some(Duration::from_secs(600)),
            lifetime_jitter: 0.025,
            reap_interval: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            total_timeout: Some(Duration::from_secs(300)),
            tcp_keepalive: true,
            tcp_keepalive_idle: Duration::from_secs(30),
            tcp_keepalive_interval: Duration::from_secs(10),
            tcp_keepalive_count: 3,
            dns_ttl: Duration::from_secs(60),
            max_body_bytes: 64 * 1024 * 1024,
            proxy: None,
            user_agent: concat!("etlpool/", env!("CARGO_PKG_VERSION")).to_string(),
            tls: TlsOptions::default(),
        }
    }
}

type Setter = fn(&mut PoolConfig, &str) -> std::result::Result<(), String>;

/// Every `ETLPOOL_*` variable the pool reads, and how.
const ENV: &[(&str, Setter)] = &[
    ("MAX_CONNECTIONS_PER_HOST", |c, v| {
        parse_num(v).map(|n| c.max_connections_per_host = n)
    }),
    ("MAX_CONNECTIONS_TOTAL", |c, v| {
        parse_opt(v, parse_num).map(|n| c.max_connections_total = n)
    }),
    ("MIN_IDLE", |c, v| parse_num(v).map(|n| c.min_idle = n)),
    ("WARM_PATH", |c, v| {
        c.warm_path = v.to_string();
        Ok(())
    }),
    ("TCP_KEEPALIVE", |c, v| {
        parse_bool(v).map(|b| c.tcp_keepalive = b)
    }),
    ("TCP_KEEPALIVE_IDLE", |c, v| {
        parse_duration(v).map(|d| c.tcp_keepalive_idle = d)
    }),
    ("TCP_KEEPALIVE_INTERVAL", |c, v| {
        parse_duration(v).map(|d| c.tcp_keepalive_interval = d)
    }),
    ("TCP_KEEPALIVE_COUNT", |c, v| {
        parse_num(v).map(|n| c.tcp_keepalive_count = n)
    }),
    ("ACQUIRE_TIMEOUT", |c, v| {
        parse_duration(v).map(|d| c.acquire_timeout = d)
    }),
    ("IDLE_TIMEOUT", |c, v| {
        parse_duration(v).map(|d| c.idle_timeout = d)
    }),
    ("MAX_LIFETIME", |c, v| {
        parse_opt(v, parse_duration).map(|d| c.max_lifetime = d)
    }),
    ("LIFETIME_JITTER", |c, v| {
        v.trim()
            .parse::<f64>()
            .map(|f| c.lifetime_jitter = f)
            .map_err(|_| format!("{v:?} is not a number"))
    }),
    ("REAP_INTERVAL", |c, v| {
        parse_duration(v).map(|d| c.reap_interval = d)
    }),
    ("CONNECT_TIMEOUT", |c, v| {
        parse_duration(v).map(|d| c.connect_timeout = d)
    }),
    ("REQUEST_TIMEOUT", |c, v| {
        parse_duration(v).map(|d| c.request_timeout = d)
    }),
    ("TOTAL_TIMEOUT", |c, v| {
        parse_opt(v, parse_duration).map(|d| c.total_timeout = d)
    }),
    ("DNS_TTL", |c, v| parse_duration(v).map(|d| c.dns_ttl = d)),
    ("MAX_BODY_BYTES", |c, v| {
        parse_num(v).map(|n| c.max_body_bytes = n)
    }),
    ("PROXY", |c, v| {
        c.proxy = Some(v.to_string());
        Ok(())
    }),
    ("USER_AGENT", |c, v| {
        c.user_agent = v.to_string();
        Ok(())
    }),
    ("CA_FILE", |c, v| {
        c.tls.ca_file = Some(PathBuf::from(v));
        Ok(())
    }),
    ("CLIENT_CERT", |c, v| {
        c.tls.client_cert = Some(PathBuf::from(v));
        Ok(())
    }),
    ("CLIENT_KEY", |c, v| {
        c.tls.client_key = Some(PathBuf::from(v));
        Ok(())
    }),
    ("PLATFORM_VERIFIER", |c, v| {
        parse_bool(v).map(|b| c.tls.platform_verifier = b)
    }),
    ("DANGER_ACCEPT_INVALID_CERTS", |c, v| {
        parse_bool(v).map(|b| c.tls.danger_accept_invalid_certs = b)
    }),
];

/// The longest timeout the pool takes: a year, far from where a deadline
/// would overflow.
const MAX_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

impl PoolConfig {
    /// The defaults overridden by the process's `ETLPOOL_*` variables, validated.
    pub fn from_env() -> Result<PoolConfig> {
        let mut config = PoolConfig::default();
        config.apply_env(std::env::vars())?;
        config.validate()?;
        Ok(config)
    }

    /// Overrides fields from `ETLPOOL_*` pairs (other names are ignored, as the CLI
    /// has variables of its own). Used by [`PoolConfig::from_env`]; tests pass pairs
    /// directly instead of changing the process environment.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (key, value) in vars {
            let Some(name) = key.as_ref().strip_prefix("ETLPOOL_") else {
                continue;
            };
            if let Some((_, set)) = ENV.iter().find(|(n, _)| *n == name) {
                set(self, value.as_ref()).map_err(|m| Error::config(key.as_ref(), m))?;
            }
        }
        Ok(())
    }

    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("acquire_timeout", self.acquire_timeout, Duration::ZERO),
            ("idle_timeout", self.idle_timeout, Duration::ZERO),
            ("reap_interval", self.reap_interval, Duration::ZERO),
            ("connect_timeout", self.connect_timeout, Duration::ZERO),
            ("request_timeout", self.request_timeout, Duration::ZERO),
            (
                "total_timeout",
                self.total_timeout.unwrap_or(Duration::MAX),
                Duration::ZERO,
            ),
        ];
        for (key, value, min) in positive {
            // acquire_timeout may be zero: "fail at once when all are busy".
            if key != "acquire_timeout" && value <= min {
                return Err(Error::config(key, "must be greater than zero"));
            }
        }
        // ureq turns these into deadlines (now + timeout), which must fit in
        // an Instant: a longer one would panic at the first request.
        for (key, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
            ("total_timeout", self.total_timeout.unwrap_or_default()),
        ] {
            if value > MAX_DEADLINE {
                return Err(Error::config(
                    key,
                    "must be at most 365 days (or, for total_timeout, off)",
                ));
            }
        }
        if self.max_connections_per_host == 0 {
            return Err(Error::config(
                "max_connections_per_host",
                "must be at least 1",
            ));
        }
        if self.min_idle > self.max_connections_per_host {
            return Err(Error::config(
                "min_idle",
                "must be at most max_connections_per_host",
            ));
        }
        if !self.warm_path.starts_with('/') || http_header_invalid(&self.warm_path) {
            return Err(Error::config("warm_path", "must be a path starting with /"));
        }
        if self.tcp_keepalive {
            for (key, d) in [
                ("tcp_keepalive_idle", self.tcp_keepalive_idle),
                ("tcp_keepalive_interval", self.tcp_keepalive_interval),
            ] {
                // The kernel takes whole seconds.
                if d < Duration::from_secs(1) {
                    return Err(Error::config(key, "must be at least 1s"));
                }
            }
            if self.tcp_keepalive_count == 0 {
                return Err(Error::config("tcp_keepalive_count", "must be at least 1"));
            }
        }
        if self.max_connections_total == Some(0) {
            return Err(Error::config(
                "max_connections_total",
                "must be at least 1 (or unset for no limit)",
            ));
        }
        if self.max_lifetime == Some(Duration::ZERO) {
            return Err(Error::config(
                "max_lifetime",
                "must be greater than zero (or unset to keep connections)",
            ));
        }
        if !(0.0..=0.5).contains(&self.lifetime_jitter) {
            return Err(Error::config(
                "lifetime_jitter",
                "must be between 0 and 0.5",
            ));
        }
        if self.total_timeout.is_some_and(|t| t < self.request_timeout) {
            return Err(Error::config(
                "total_timeout",
                "must be at least request_timeout",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::config("max_body_bytes", "must be at least 1"));
        }
        if http_header_invalid(&self.user_agent) {
            return Err(Error::config("user_agent", "is not a valid header value"));
        }
        self.proxy()?;
        self.tls.validate()
    }

    /// The proxy as ureq takes it; errors name `proxy`.
    pub(crate) fn proxy(&self) -> Result<Option<ureq::Proxy>> {
        let Some(url) = &self.proxy else {
            return Ok(None);
        };
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(Error::config(
                "proxy",
                "only http:// and https:// (CONNECT) proxies are supported",
            ));
        }
        ureq::Proxy::new(url)
            .map(Some)
            .map_err(|e| Error::config("proxy", e.to_string()))
    }

    /// The keepalive pooled sockets get, if any.
    pub(crate) fn keepalive(&self) -> Option<super::tcp::KeepaliveSettings> {
        self.tcp_keepalive.then_some(super::tcp::KeepaliveSettings {
            idle: self.tcp_keepalive_idle,
            interval: self.tcp_keepalive_interval,
            count: self.tcp_keepalive_count,
        })
    }

    /// The ureq idle age: never shorter than the pool's own limits, so the pool,
    /// not ureq, decides when an idle connection dies.
    pub(crate) fn ureq_max_idle_age(&self) -> Duration {
        let longest = self
            .idle_timeout
            .max(self.max_lifetime.unwrap_or(Duration::ZERO));
        longest + self.reap_interval + Duration::from_secs(60)
    }
}

impl TlsOptions {
    fn validate(&self) -> Result<()> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => {
                return Err(Error::config(
                    "tls.client_key",
                    "a client certificate needs its key",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "tls.client_cert",
                    "a client key needs its certificate",
                ));
            }
            _ => {}
        }
        if self.platform_verifier {
            if !cfg!(feature = "platform-verifier") {
                return Err(Error::config(
                    "tls.platform_verifier",
                    "this build lacks the platform-verifier feature",
                ));
            }
            if self.ca_file.is_some() || self.ca_pem.is_some() {
                return Err(Error::config(
                    "tls.platform_verifier",
                    "extra CA certificates can't be combined with the platform verifier; \
                     install them in the operating system's store",
                ));
            }
        }
        Ok(())
    }
}

fn http_header_invalid(v: &str) -> bool {
    v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

fn parse_num<T: std::str::FromStr>(v: &str) -> std::result::Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a non-negative whole number"))
}

fn parse_bool(v: &str) -> std::result::Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{v:?} is not a boolean (true/false)")),
    }
}

fn parse_opt<T>(
    v: &str,
    parse: fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<Option<T>, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "none" | "off" => Ok(None),
        _ => parse(v).map(Some),
    }
}

/// Parses `250ms`, `30s`, `1m 30s` or bare seconds.
pub(crate) fn parse_duration(v: &str) -> std::result::Result<Duration, String> {
    let t = v.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{v:?} is not a duration ({e}); try 30s or 250ms"))
}

mod duration_text {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_duration_text {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_str("none"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        parse_opt(&text, parse_duration).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_error(pairs: &[(&str, &str)]) -> String {
        let mut c = PoolConfig::default();
        match c
            .apply_env(pairs.iter().copied())
            .and_then(|_| c.validate())
        {
            Err(e) => e.to_string(),
            Ok(()) => panic!("expected an error for {pairs:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        PoolConfig::default().validate().unwrap();
    }

    #[test]
    fn env_overrides_fields() {
        let mut c = PoolConfig::default();
        c.apply_env([
            ("ETLPOOL_MAX_CONNECTIONS_PER_HOST", "3"),
            ("ETLPOOL_IDLE_TIMEOUT", "250ms"),
            ("ETLPOOL_MAX_LIFETIME", "off"),
            ("ETLPOOL_CONNECT_TIMEOUT", "2"),
            ("ETLPOOL_PLATFORM_VERIFIER", "false"),
            ("ETLPOOL_MIN_IDLE", "2"),
            ("ETLPOOL_TCP_KEEPALIVE", "off"),
            ("ETLPOOL_UNRELATED", "x"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.max_connections_per_host, 3);
        assert_eq!(c.idle_timeout, Duration::from_millis(250));
        assert_eq!(c.max_lifetime, None);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!((c.min_idle, c.tcp_keepalive), (2, false));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = env_error(&[("ETLPOOL_IDLE_TIMEOUT", "soon")]);
        assert!(
            e.contains("ETLPOOL_IDLE_TIMEOUT") && e.contains("soon"),
            "{e}"
        );
        let e = env_error(&[("ETLPOOL_MAX_CONNECTIONS_PER_HOST", "-1")]);
        assert!(e.contains("ETLPOOL_MAX_CONNECTIONS_PER_HOST"), "{e}");
        let e = env_error(&[("ETLPOOL_MAX_CONNECTIONS_PER_HOST", "0")]);
        assert!(e.contains("max_connections_per_host"), "{e}");
        let e = env_error(&[("ETLPOOL_DANGER_ACCEPT_INVALID_CERTS", "maybe")]);
        assert!(e.contains("boolean"), "{e}");
        let e = env_error(&[("ETLPOOL_PROXY", "socks5://p:1080")]);
        assert!(e.contains("proxy"), "{e}");
        let e = env_error(&[("ETLPOOL_CLIENT_CERT", "/x.pem")]);
        assert!(e.contains("client_key"), "{e}");
        let e = env_error(&[("ETLPOOL_TOTAL_TIMEOUT", "1s")]);
        assert!(e.contains("total_timeout"), "{e}");
        let e = env_error(&[("ETLPOOL_MIN_IDLE", "9")]);
        assert!(e.contains("min_idle"), "{e}");
        let e = env_error(&[("ETLPOOL_WARM_PATH", "health")]);
        assert!(e.contains("warm_path"), "{e}");
        let e = env_error(&[("ETLPOOL_TCP_KEEPALIVE_IDLE", "10ms")]);
        assert!(e.contains("tcp_keepalive_idle"), "{e}");
        let e = env_error(&[("ETLPOOL_TCP_KEEPALIVE_COUNT", "0")]);
        assert!(e.contains("tcp_keepalive_count"), "{e}");
    }

    #[test]
    fn round_trips_through_serde() {
        let c = PoolConfig {
            max_lifetime: None,
            ..PoolConfig::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        let back: PoolConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let err = serde_json::from_str::<PoolConfig>(r#"{"idle_timeot":"1s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}

#[cfg(test)]
mod feature_tests {
    use super::*;

    #[test]
    fn the_platform_verifier_needs_its_feature_or_works() {
        let config = PoolConfig {
            tls: TlsOptions {
                platform_verifier: true,
                ..TlsOptions::default()
            },
            ..PoolConfig::default()
        };
        let built = crate::Pool::new(config);
        if cfg!(feature = "platform-verifier") {
            built.unwrap();
        } else {
            let err = built.unwrap_err().to_string();
            assert!(err.contains("platform-verifier feature"), "{err}");
        }
    }
}
