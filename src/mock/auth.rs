//! Bearer tokens: one static token per server, plus tokens issued by qTest's `/oauth/token`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::server::{Request, Response, parse_query};

/// The tokens one server accepts.
pub(crate) struct Tokens {
    static_token: String,
    login: (String, String),
    expiry: Duration,
    // Guards the issued tokens and their expiry instants.
    issued: Mutex<HashMap<String, Option<Instant>>>,
    /// Tokens handed out by `/oauth/token` since start.
    issued_total: std::sync::atomic::AtomicU64,
    rng: Mutex<fastrand::Rng>,
    /// qTest's site name, which a login must name in `Authorization: Basic`.
    site: Option<String>,
}

impl Tokens {
    pub(crate) fn new(
        static_token: String,
        login: (String, String),
        expiry: Duration,
        seed: u64,
    ) -> Self {
        Tokens {
            static_token,
            login,
            expiry,
            issued: Mutex::default(),
            issued_total: Default::default(),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            site: None,
        }
    }

    /// Logins must name this qTest site (see [`crate::mock::qtest::login`]).
    pub(crate) fn with_site(mut self, site: String) -> Self {
        self.site = Some(site);
        self
    }

    /// Tokens handed out by `/oauth/token` since start.
    pub(crate) fn issued_total(&self) -> u64 {
        self.issued_total.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the request carries a valid `Authorization: Bearer` token.
    pub(crate) fn accepts(&self, req: &Request) -> bool {
        let Some(token) = req.header("authorization").and_then(bearer) else {
            return false;
        };
        if token == self.static_token {
            return true;
        }
        let mut issued = self.issued.lock();
        match issued.get(token) {
            Some(&until) if until.is_none_or(|u| Instant::now() < u) => true,
            Some(_) => {
                issued.remove(token);
                false
            }
            None => false,
        }
    }

    /// Answers `POST /oauth/token` (form `grant_type=password&username&password`).
    pub(crate) fn issue(&self, req: &Request) -> Response {
        if let Some(site) = &self.site
            && let Err(refused) = crate::mock::qtest::login::check_site(req, site)
        {
            return refused;
        }
        let form = parse_query(&String::from_utf8_lossy(&req.body));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("grant_type") != Some("password") {
            return oauth_error(400, "unsupported_grant_type", "grant_type must be password");
        }
        if (get("username"), get("password")) != (Some(&self.login.0), Some(&self.login.1)) {
            return oauth_error(401, "invalid_grant", "Bad credentials");
        }
        let token = format!("{:032x}", self.rng.lock().u128(..));
        // An expiry too far out to represent never expires.
        let until = Instant::now().checked_add(self.expiry);
        self.issued.lock().insert(token.clone(), until);
        self.issued_total
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = serde_json::json!({
            "access_token": token, "token_type": "bearer",
            "expires_in": self.expiry.as_secs(), "scope": "read write create delete",
        });
        Response::json(200, &body)
    }
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}
