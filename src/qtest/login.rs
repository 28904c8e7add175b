//! qTest's password login (`POST /oauth/token` at the site root) as an
//! [`AuthProvider`]: the token is renewed before it expires and once when the
//! server rejects it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::models::OAuthToken;
use crate::error::{Error, Result};
use crate::http::{ApiClient, ApiRequest, Auth, AuthProvider};
use crate::pool::Pool;

/// Renew this long before the token's stated expiry, so a request never
/// leaves with a token that dies in flight.
const EARLY: Duration = Duration::from_secs(60);

/// Logs in with a user name and password and keeps the bearer token fresh.
pub struct QtestLogin {
    pool: Pool,
    /// The site root, e.g. `https://SITE.qtestnet.com`.
    site_url: String,
    /// The client of the site root, made at the first login: by then the
    /// origin's policies are set (by the API client this login serves), and
    /// the login shares them.
    site: OnceLock<ApiClient>,
    username: String,
    password: String,
    /// Guards the current token; held during a login so concurrent workers wait
    /// for one login instead of each making their own.
    token: Mutex<Option<Current>>,
}

struct Current {
    header: String,
    renew_at: Option<Instant>,
}

impl QtestLogin {
    /// A login against the site of `api_url` (`https://SITE.qtestnet.com/api/v3`
    /// logs in at `https://SITE.qtestnet.com/oauth/token`).
    pub fn new(pool: &Pool, api_url: &str, username: &str, password: &str) -> Result<QtestLogin> {
        let origin = crate::pool::Origin::parse(api_url)?;
        Ok(QtestLogin {
            pool: pool.clone(),
            site_url: origin.to_string(),
            site: OnceLock::new(),
            username: username.to_string(),
            password: password.to_string(),
            token: Mutex::new(None),
        })
    }

    /// Logs in; the request ends by `deadline` at the latest.
    fn login(&self, deadline: Option<Instant>) -> Result<Current> {
        let request = ApiRequest::post("/oauth/token").form(&[
            ("grant_type", "password"),
            ("username", &self.username),
            ("password", &self.password),
        ]);
        let site = match self.site.get() {
            Some(site) => site,
            None => {
                let site = ApiClient::new(&self.pool, &self.site_url, Auth::None)?;
                self.site.get_or_init(|| site)
            }
        };
        let token: OAuthToken = site.json_by(&request, deadline)?;
        if token.access_token.is_empty() {
            return Err(Error::config(
                "QTEST_USERNAME",
                "qTest login returned an empty token",
            ));
        }
        let now = Instant::now();
        let renew_at = token.expires_in.map(|secs| {
            let life = Duration::from_secs(secs);
            // Short-lived tokens renew at half their life rather than never.
            now + life.saturating_sub(EARLY.min(life / 2))
        });
        log::info!("logged in to qTest as {}", self.username);
        Ok(Current {
            header: format!("Bearer {}", token.access_token),
            renew_at,
        })
    }

    /// The deadline came while another caller's login held the token.
    fn lock_timeout(&self, start: Instant) -> Error {
        Error::TotalTimeout {
            at: crate::error::RequestContext {
                origin: self.site_url.clone(),
                method: "POST".into(),
                path: "/oauth/token".into(),
                attempt: 1,
            },
            elapsed: start.elapsed(),
            waiting_for: Some(crate::error::CallWait::Login),
        }
    }
}

impl AuthProvider for QtestLogin {
    fn authorization(&self) -> Result<String> {
        self.authorization_until(None)
    }

    fn authorization_until(&self, deadline: Option<Instant>) -> Result<String> {
        let start = Instant::now();
        let mut token = match deadline {
            Some(d) => self
                .token
                .try_lock_until(d)
                .ok_or_else(|| self.lock_timeout(start))?,
            None => self.token.lock(),
        };
        let fresh = token
            .as_ref()
            .is_some_and(|t| t.renew_at.is_none_or(|at| Instant::now() < at));
        if !fresh {
            *token = Some(self.login(deadline)?);
        }
        // The branch above just filled it when it was empty or stale.
        Ok(token.as_ref().map(|t| t.header.clone()).unwrap_or_default())
    }

    fn rejected(&self, rejected: &str) -> bool {
        let mut token = self.token.lock();
        if token.as_ref().is_some_and(|t| t.header == rejected) {
            *token = None;
        }
        true
    }
}

impl std::fmt::Debug for QtestLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QtestLogin")
            .field("username", &self.username)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}
