//! qTest's password login (`POST /oauth/token` at the site root) as an
//! [`AuthProvider`]: the token is renewed before it expires and once when the
//! server rejects it.
//!
//! qTest refuses a login that doesn't name its site: the request carries
//! `Authorization: Basic base64("<site name>:")`, the site name being the first
//! label of the host (`acme` for `acme.qtestnet.com`) unless set with
//! [`QtestLogin::with_site`] (`QTEST_SITE`, `[qtest] site`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
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
    /// The site name the login names; `None` when the host has none (an IP address).
    site_name: Option<String>,
    /// The host, for the message when it names no site.
    host: String,
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
    /// logs in at `https://SITE.qtestnet.com/oauth/token` as site `SITE`).
    pub fn new(pool: &Pool, api_url: &str, username: &str, password: &str) -> Result<QtestLogin> {
        let origin = crate::pool::Origin::parse(api_url)?;
        Ok(QtestLogin {
            pool: pool.clone(),
            site_url: origin.to_string(),
            site: OnceLock::new(),
            site_name: site_name(origin.host()),
            host: origin.host().to_string(),
            username: username.to_string(),
            password: password.to_string(),
            token: Mutex::new(None),
        })
    }

    /// Names the qTest site instead of the host's first label (an on-premises host, a
    /// custom domain, or an address).
    pub fn with_site(mut self, site: &str) -> QtestLogin {
        self.site_name = Some(site.trim().to_string()).filter(|s| !s.is_empty());
        self
    }

    /// The `Authorization` value of the login request: `Basic base64("<site>:")`.
    fn client_authorization(&self) -> Result<String> {
        let site = self.site_name.as_deref().ok_or_else(|| {
            Error::config(
                "QTEST_SITE",
                format!(
                    "the qTest host {} names no site; set QTEST_SITE or `qtest.site` in the config file",
                    self.host
                ),
            )
        })?;
        Ok(format!("Basic {}", STANDARD.encode(format!("{site}:"))))
    }

    /// Logs in; the request ends by `deadline` at the latest.
    fn login(&self, deadline: Option<Instant>) -> Result<Current> {
        let request = ApiRequest::post("/oauth/token")
            .form(&[
                ("grant_type", "password"),
                ("username", &self.username),
                ("password", &self.password),
            ])
            .header("Authorization", &self.client_authorization()?);
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
        // Short-lived tokens renew at half their life rather than never; a
        // life too long for the clock means never (a 401 still renews).
        let renew_at = token.expires_in.and_then(|secs| {
            let life = Duration::from_secs(secs);
            now.checked_add(life.saturating_sub(EARLY.min(life / 2)))
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

/// The site name in a host: its first label (`acme` in `acme.qtestnet.com`); `None` for an
/// IP address, which names no site.
fn site_name(host: &str) -> Option<String> {
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    host.split('.')
        .next()
        .filter(|label| !label.is_empty())
        .map(str::to_string)
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
            .field("site", &self.site_name)
            .field("username", &self.username)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_is_the_first_label_of_a_host_name() {
        assert_eq!(site_name("acme.qtestnet.com").as_deref(), Some("acme"));
        assert_eq!(site_name("localhost").as_deref(), Some("localhost"));
        assert_eq!(site_name("127.0.0.1"), None);
        assert_eq!(site_name("[::1]"), None);
        let pool = Pool::builder().build().unwrap();
        let login =
            QtestLogin::new(&pool, "https://apitryout.qtestnet.com/api/v3", "u", "p").unwrap();
        // The spec's example: site apitryout.
        assert_eq!(
            login.client_authorization().unwrap(),
            "Basic YXBpdHJ5b3V0Og=="
        );
        let ip = QtestLogin::new(&pool, "http://127.0.0.1:9/api/v3", "u", "p").unwrap();
        let err = ip.client_authorization().unwrap_err().to_string();
        assert!(
            err.contains("QTEST_SITE") && err.contains("127.0.0.1"),
            "{err}"
        );
        let named = ip.with_site(" mysite ");
        assert_eq!(
            named.client_authorization().unwrap(),
            format!("Basic {}", STANDARD.encode("mysite:"))
        );
        assert!(format!("{named:?}").contains("mysite"));
    }
}
