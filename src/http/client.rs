//! `ApiClient`: a base URL, credentials and policies, turning calls into typed
//! JSON over pooled connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::http::{Method, Uri};

mod redirect;
mod stream;

pub use self::stream::Streamed;

use super::call::Call;
use super::layers::{LayerSettings, Layers};
use super::request::{ApiRequest, Auth};
use super::retry::{RetryPolicy, Safety};
use crate::cancel::CancelToken;
use crate::error::{DecodeError, Error, RequestContext, Result, StatusError};
use crate::metrics::{FailureKind, OriginMetrics};
use crate::policy::{BreakerPolicy, BreakerState, BudgetPolicy, OriginPolicies, RateLimit};
use crate::pool::{Origin, OriginPool, Pool, Reply};
use crate::redact::{self, Known};

/// The one way the API clients talk HTTP: requests relative to a base URL, with
/// authentication, timeouts, safe retries, rate limiting and a circuit breaker,
/// over a [`Pool`]. Cheap to clone. The rate limiter, circuit breaker and retry
/// budget belong to the origin, in the pool's registry, so every client of one
/// origin shares them: a pause asked for by the server holds every worker.
///
/// ```no_run
/// use etlpool::http::{ApiClient, Auth};
/// # fn main() -> etlpool::Result<()> {
/// let pool = etlpool::Pool::global()?;
/// let zephyr = ApiClient::new(&pool, "https://api.zephyrscale.smartbear.com/v2", Auth::Bearer("...".into()))?;
/// let page: serde_json::Value = zephyr.get_json("/testcases", &[("projectKey", "PROJ"), ("maxResults", "100")])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
    /// Failover and coalescing around the call, when configured.
    layers: Option<Arc<Layers>>,
}

#[derive(Clone)]
pub(super) struct Inner {
    pub(super) origin: OriginPool,
    pub(super) metrics: Arc<OriginMetrics>,
    /// The base URL without a trailing slash.
    base: String,
    /// The base URL's path (`/api/v3`), for messages.
    base_path: String,
    pub(super) auth: Auth,
    pub(super) retry: RetryPolicy,
    pub(super) policies: OriginPolicies,
    pub(super) request_timeout: Duration,
    /// The agents' own per-call limit; attempts shorter than this set their own.
    pub(super) pool_request_timeout: Duration,
    pub(super) total_timeout: Option<Duration>,
    pub(super) slow: Duration,
    pub(super) cancel: Option<CancelToken>,
    /// Whether an attempt waits for another call's half-open probe to
    /// decide; failover's prober doesn't: with a probe out, the origin is
    /// passed over.
    pub(super) waits_for_probe: bool,
    /// How many redirects a streamed download follows.
    pub(super) max_redirects: u32,
}

/// How many redirects a streamed download follows unless set otherwise
/// ([`ApiClientBuilder::max_redirects`]), as curl's and reqwest's limits
/// bound a chain (theirs are higher; a file API's is one or two hops).
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// Builds an [`ApiClient`]; every setter documents its default.
#[must_use]
pub struct ApiClientBuilder {
    pool: Pool,
    base_url: String,
    auth: Auth,
    retry: RetryPolicy,
    breaker: Option<BreakerPolicy>,
    rate_limit: Option<RateLimit>,
    budget: Option<BudgetPolicy>,
    request_timeout: Option<Duration>,
    total_timeout: Option<Option<Duration>>,
    slow: Duration,
    cancel: Option<CancelToken>,
    max_redirects: u32,
    /// Failover origins and coalescing (`failover.rs`, `coalesce.rs`).
    pub(super) layers: LayerSettings,
}

impl ApiClientBuilder {
    /// Credentials. Defaults to none.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Retry rules. Defaults to [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The origin's circuit breaker settings. Every client of an origin shares
    /// one breaker: the first client (or [`Pool::set_policies`]) sets it, and a
    /// later client asking for other settings fails to build. Defaults to the
    /// pool's [`default_policies`](crate::PoolBuilder::default_policies).
    pub fn breaker(mut self, policy: BreakerPolicy) -> Self {
        self.breaker = Some(policy);
        self
    }

    /// The origin's client-side rate limit, shared like [`breaker`](Self::breaker).
    /// Defaults to none (the server's pauses still apply).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// The origin's retry budget, shared like [`breaker`](Self::breaker).
    /// Defaults to [`BudgetPolicy::default`].
    pub fn retry_budget(mut self, policy: BudgetPolicy) -> Self {
        self.budget = Some(policy);
        self
    }

    /// One attempt's limit. Defaults to the pool's `request_timeout`.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = Some(d);
        self
    }

    /// A whole call's limit, retries and waits included. Defaults to the pool's
    /// `total_timeout`.
    pub fn total_timeout(mut self, d: Option<Duration>) -> Self {
        self.total_timeout = Some(d);
        self
    }

    /// Attempts slower than this are logged at WARN. Defaults to 5 s.
    pub fn slow_request_threshold(mut self, d: Duration) -> Self {
        self.slow = d;
        self
    }

    /// Cuts waits (backoff, `Retry-After`, rate limit) short when cancelled.
    /// Defaults to none.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// How many redirects (301, 302, 303, 307, 308 with a `Location`) a
    /// streamed download ([`ApiClient::open_stream`]) follows; 0 follows
    /// none (the 3xx is an [`Error::Status`]). Each hop goes through the
    /// pool for its own origin, with that origin's policies; credentials go
    /// only as far as the chain stays on the request's origin, and https
    /// never goes on to http. JSON calls and uploads never follow a
    /// redirect (a write must not be sent again elsewhere). Defaults to
    /// [`DEFAULT_MAX_REDIRECTS`] (5).
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }

    /// Validates the policies and makes the client.
    pub fn build(self) -> Result<ApiClient> {
        self.retry.validate()?;
        let primary = self.client_for(&self.base_url)?;
        Layers::around(primary, &self.layers, |url| self.client_for(url))
    }

    /// A client of one base URL with this builder's settings.
    fn client_for(&self, base_url: &str) -> Result<ApiClient> {
        let origin_pool = self.pool.origin(base_url)?;
        let policies = self.origin_policies(&origin_pool)?;
        let metrics = origin_pool.metrics().clone();
        let config = self.pool.config();
        let request_timeout = self.request_timeout.unwrap_or(config.request_timeout);
        if request_timeout.is_zero() {
            return Err(Error::config(
                "request_timeout",
                "must be greater than zero",
            ));
        }
        Ok(ApiClient {
            inner: Arc::new(Inner {
                policies,
                base: base_url.trim_end_matches('/').to_string(),
                base_path: base_path(base_url),
                origin: origin_pool,
                metrics,
                auth: self.auth.clone(),
                retry: self.retry.clone(),
                request_timeout,
                pool_request_timeout: config.request_timeout,
                total_timeout: self.total_timeout.unwrap_or(config.total_timeout),
                slow: self.slow,
                cancel: self.cancel.clone(),
                waits_for_probe: true,
                max_redirects: self.max_redirects,
            }),
            layers: None,
        })
    }
}

impl ApiClientBuilder {
    /// The origin's policies: the ones it has, or made from the settings asked
    /// for here. Settings that differ from the origin's are an error rather
    /// than silently ignored.
    fn origin_policies(&self, origin: &OriginPool) -> Result<OriginPolicies> {
        let asked = (self.rate_limit, self.breaker, self.budget);
        if asked == (None, None, None) {
            return Ok(origin.policies().clone());
        }
        let mut settings = origin.default_policy_settings();
        settings.rate_limit = self.rate_limit.unwrap_or(settings.rate_limit);
        settings.breaker = self.breaker.unwrap_or(settings.breaker);
        settings.budget = self.budget.unwrap_or(settings.budget);
        settings.validate()?;
        let have = origin.policies_made_from(settings);
        let built_in = have.built_in();
        let differs = |asked: bool, same: bool, built_in: bool| asked && !(same && built_in);
        let conflict = [
            (
                "rate_limit",
                differs(
                    self.rate_limit.is_some(),
                    have.settings().rate_limit == settings.rate_limit,
                    built_in.0,
                ),
            ),
            (
                "breaker",
                differs(
                    self.breaker.is_some(),
                    have.settings().breaker == settings.breaker,
                    built_in.1,
                ),
            ),
            (
                "retry_budget",
                differs(
                    self.budget.is_some(),
                    have.settings().budget == settings.budget,
                    built_in.2,
                ),
            ),
        ];
        match conflict.iter().find(|(_, differs)| *differs) {
            Some((key, _)) => Err(Error::config(
                *key,
                format!(
                    "{} already has a {key} with other settings; every client of an \
                     origin shares one, so set it once (on its first client or with \
                     Pool::set_policies)",
                    origin.origin()
                ),
            )),
            None => Ok(have.clone()),
        }
    }
}

impl ApiClient {
    /// A client for `base_url` (path included, e.g. `https://SITE.qtestnet.com/api/v3`;
    /// a trailing slash is ignored) with default policies.
    pub fn new(pool: &Pool, base_url: &str, auth: Auth) -> Result<ApiClient> {
        ApiClient::builder(pool, base_url).auth(auth).build()
    }

    /// A builder with default policies.
    pub fn builder(pool: &Pool, base_url: &str) -> ApiClientBuilder {
        ApiClientBuilder {
            pool: pool.clone(),
            base_url: base_url.trim().to_string(),
            auth: Auth::None,
            retry: RetryPolicy::default(),
            breaker: None,
            rate_limit: None,
            budget: None,
            request_timeout: None,
            total_timeout: None,
            slow: Duration::from_secs(5),
            cancel: None,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            layers: LayerSettings::default(),
        }
    }

    /// The base URL, without a trailing slash; with failover origins, the
    /// primary's (the one the client was built for), whichever origin serves
    /// calls now.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The origin requests go to; with failover origins, the primary's.
    pub fn origin(&self) -> &Origin {
        self.inner.origin.origin()
    }

    /// Every origin of the client in the order calls try them: the primary,
    /// then its [failover](ApiClientBuilder::failover) origins.
    pub fn origins(&self) -> Vec<Origin> {
        match self.layers.as_deref() {
            Some(layers) => layers.origins(self),
            None => vec![self.origin().clone()],
        }
    }

    /// The retry rules of this client's calls.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Whether the origin's circuit breaker is open (or half-open) now; with
    /// failover origins, whether every origin's is, so no origin would take
    /// a call without a probe.
    pub fn breaker_open(&self) -> bool {
        let open = |c: &ApiClient| c.inner.policies.breaker().state() != BreakerState::Closed;
        match self.layers.as_deref() {
            Some(layers) => layers.all_members(self, open),
            None => open(self),
        }
    }

    /// The origin's policies, shared with every client of the origin (with
    /// failover origins, the primary's).
    pub fn policies(&self) -> &OriginPolicies {
        &self.inner.policies
    }

    /// `GET path?query`, decoded from JSON; a non-2xx answer is [`Error::Status`].
    pub fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        self.json(&ApiRequest::get(path).queries(query))
    }

    /// `POST path?query` with a JSON body, decoded from JSON.
    pub fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<T> {
        self.json(&ApiRequest::post(path).queries(query).json(body)?)
    }

    /// `PUT path?query` with a JSON body, decoded from JSON.
    pub fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<T> {
        self.json(&ApiRequest::put(path).queries(query).json(body)?)
    }

    /// `DELETE path`; any 2xx is success, the body is read and dropped.
    pub fn delete(&self, path: &str) -> Result<()> {
        let request = ApiRequest::delete(path);
        self.finish_call(&request, None, |by, reply, known, attempt| {
            by.check_status_known(&request, reply, attempt, known)
                .map(drop)
        })
    }

    /// Sends `request` and decodes a 2xx JSON answer. A 2xx answer to an
    /// idempotent request whose body is not the expected JSON is retried like
    /// a transport error; to a write, it is an error whose outcome is unknown.
    pub fn json<T: DeserializeOwned>(&self, request: &ApiRequest) -> Result<T> {
        self.json_by(request, None)
    }

    /// [`ApiClient::json`] for a call that must also end by `deadline` (a
    /// login made on behalf of a call with a deadline of its own).
    pub(crate) fn json_by<T: DeserializeOwned>(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
    ) -> Result<T> {
        let acted = !Safety::of(request.method, request.resend_safe()).idempotent;
        self.finish_call(request, deadline, |by, reply, known, attempt| {
            let reply = by.check_status_known(request, reply, attempt, known)?;
            decode(by.context(request, attempt), &reply, acted, known)
        })
    }

    /// Sends `request` with every policy applied and returns the answer whatever
    /// its status (after retries of 429/5xx where they are safe).
    pub fn send(&self, request: &ApiRequest) -> Result<Reply> {
        self.exchange(request).map(|(reply, ..)| reply)
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// [`ApiClient::send`], with the number of attempts it took and the
    /// client of the origin that answered.
    fn exchange(&self, request: &ApiRequest) -> Result<(Reply, u32, &ApiClient)> {
        self.exchange_by(request, None)
    }

    /// [`ApiClient::exchange`], ending by `deadline` at the latest: through
    /// the layers (coalescing, failover) when the client has them.
    fn exchange_by(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
    ) -> Result<(Reply, u32, &ApiClient)> {
        match self.layers.as_deref() {
            Some(layers) => layers
                .exchange(self, request, deadline)
                .map(|(reply, attempts, by, _)| (reply, attempts, by)),
            None => self
                .call(request, deadline)
                .map(|(reply, attempts, _)| (reply, attempts, self)),
        }
    }

    /// Runs `request` and hands its final answer to `finish`, with the client
    /// of the origin that gave it, what the call knows it sent (to mask) and
    /// its attempts. Without layers `finish` runs inside the call, so a 2xx
    /// GET whose body it can't decode is retried; through the layers it runs
    /// on the answer they return.
    fn finish_call<T>(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
        finish: impl Fn(&ApiClient, Reply, &Known, u32) -> Result<T>,
    ) -> Result<T> {
        let (result, by) = match self.layers.as_deref() {
            None => (
                self.call_with(request, deadline, |reply, known, attempt| {
                    finish(self, reply, known, attempt)
                }),
                self,
            ),
            Some(layers) => {
                // One deadline for every round: a 2xx GET whose body can't
                // be decoded goes through the layers again, as it is sent
                // again without them.
                let deadline = self.deadline(deadline);
                let mut round = 0;
                loop {
                    let (reply, attempts, by, known) = layers.exchange(self, request, deadline)?;
                    match finish(by, reply, &known, attempts) {
                        Err(e) if by.again_after_bad_body(request, &e, deadline, round)? => {
                            round += 1;
                        }
                        result => break (result.map_err(|e| known.scrub_error(e)), by),
                    }
                }
            }
        };
        result.inspect_err(|e| {
            if matches!(e, Error::Decode(_)) {
                by.inner.metrics.failure(FailureKind::Decode);
            }
        })
    }

    /// One call to this client's own origin, ending by `deadline` at the
    /// latest: its final answer, whatever the status, its attempts, and what
    /// it knows it sent (to mask in what is made of the answer).
    pub(super) fn call(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
    ) -> Result<(Reply, u32, Known)> {
        self.call_with(request, deadline, |reply, known, attempt| {
            Ok((reply, attempt, known.clone()))
        })
    }

    /// One call to this client's own origin whose final answer goes to
    /// `finish` (see [`Call::run`]).
    fn call_with<T>(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
        finish: impl Fn(Reply, &Known, u32) -> Result<T>,
    ) -> Result<T> {
        let (method, uri) = self.target(request)?;
        Call::new(self, request, method, uri, deadline).run(finish)
    }

    /// The method and URI of `request`, refused when it leaves this origin.
    fn target(&self, request: &ApiRequest) -> Result<(Method, Uri)> {
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|e| Error::config("method", e.to_string()))?;
        let url = request.url(&self.inner.base);
        let uri: Uri = url
            .parse()
            .map_err(|e: ureq::http::uri::InvalidUri| Error::InvalidUrl {
                url: redact::url(&url),
                reason: e.to_string(),
            })?;
        // A relative path stays on the base URL; only a full URL (a `next`
        // link) can point elsewhere.
        if request.is_absolute() && Origin::parse(&url)? != *self.origin() {
            return Err(Error::InvalidUrl {
                url: redact::url(&url),
                reason: format!("not on this client's origin {}", self.origin()),
            });
        }
        Ok((method, uri))
    }

    pub(super) fn context(&self, request: &ApiRequest, attempt: u32) -> RequestContext {
        RequestContext {
            origin: self.origin().to_string(),
            method: request.method.to_string(),
            path: self.path_of(request),
            attempt,
        }
    }

    /// The request's path from the server's root, the base URL's own path
    /// (`/api/v3`) included, redacted: with it, a wrong base URL shows in
    /// every message.
    pub(super) fn path_of(&self, request: &ApiRequest) -> String {
        let url = request.url(&self.inner.base_path);
        // A `next` link is a whole URL: keep its path.
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => &url,
        };
        redact::url(path)
    }

    /// A non-2xx answer as an error, every value in `known` masked.
    pub(super) fn check_status_known(
        &self,
        request: &ApiRequest,
        reply: Reply,
        attempts: u32,
        known: &Known,
    ) -> Result<Reply> {
        let status = reply.status();
        if (200..300).contains(&status) {
            return Ok(reply);
        }
        let safety = Safety::of(request.method, request.resend_safe());
        self.inner.metrics.failure(if status >= 500 {
            FailureKind::Status5xx
        } else {
            FailureKind::Status4xx
        });
        Err(Error::Status(Box::new(StatusError {
            at: self.context(request, attempts),
            status,
            body: known.excerpt(reply.body(), 300),
            outcome_unknown: !safety.idempotent && status >= 500,
        })))
    }
}

/// What the layers around a call (`layers.rs`) need of a client.
impl ApiClient {
    /// This client with `layers` around its calls.
    pub(super) fn layered(self, layers: Layers) -> ApiClient {
        ApiClient {
            layers: Some(Arc::new(layers)),
            ..self
        }
    }

    /// The client of this origin alone, without layers.
    pub(super) fn bare(&self) -> ApiClient {
        ApiClient {
            inner: self.inner.clone(),
            layers: None,
        }
    }

    /// This origin's client with no retries, for a probe: one attempt, that
    /// doesn't wait for another call's probe.
    pub(super) fn single_attempt(&self) -> ApiClient {
        let mut inner = (*self.inner).clone();
        inner.retry = RetryPolicy::none();
        inner.waits_for_probe = false;
        ApiClient {
            inner: Arc::new(inner),
            layers: None,
        }
    }

    /// The base URL's path (`/api/v3`), without a trailing slash.
    pub(super) fn base_path(&self) -> &str {
        &self.inner.base_path
    }

    pub(super) fn metrics(&self) -> &OriginMetrics {
        &self.inner.metrics
    }

    /// The deadline of a call starting now: its `total_timeout`, or `cap`
    /// if that comes first.
    pub(super) fn deadline(&self, cap: Option<Instant>) -> Option<Instant> {
        let own = self
            .inner
            .total_timeout
            .and_then(|t| Instant::now().checked_add(t));
        match (own, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The `Authorization` value a call would send now.
    pub(super) fn authorization(&self, deadline: Option<Instant>) -> Result<Option<String>> {
        self.inner.auth.value_until(deadline)
    }
}

/// The path of a base URL, without a trailing slash, query or fragment:
/// `https://h/api/v3/?x=1` gives `/api/v3`.
fn base_path(base: &str) -> String {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    rest.find('/')
        .map_or("", |i| &rest[i..])
        .trim_end_matches('/')
        .to_string()
}

/// Decodes a JSON body, or says clearly why not.
/// `acted`: a 2xx to a request that changes something, so a body that can't be
/// read leaves the outcome unknown. Nothing known to the call, nor anything
/// that looks like a secret in the body, shows in the error (serde's message
/// quotes values).
fn decode<T: DeserializeOwned>(
    at: RequestContext,
    reply: &Reply,
    acted: bool,
    known: &Known,
) -> Result<T> {
    let content_type = reply.header("content-type").map(str::to_string);
    let json_type = content_type
        .as_deref()
        .is_none_or(|ct| ct.to_ascii_lowercase().contains("json"));
    let error = |source: Option<serde_json::Error>| {
        let mut known = known.clone();
        for secret in redact::secrets_in(&String::from_utf8_lossy(reply.body())) {
            known.secret(&secret);
        }
        Error::Decode(Box::new(DecodeError {
            at: at.clone(),
            status: reply.status(),
            content_type: content_type.clone(),
            body: known.excerpt(reply.body(), 200),
            source: source.map(|e| known.scrub_json_error(e)),
            outcome_unknown: acted,
        }))
    };
    if !json_type {
        return Err(error(None));
    }
    let body = if reply.body().is_empty() {
        &b"null"[..]
    } else {
        reply.body()
    };
    serde_json::from_slice(body).map_err(|e| error(Some(e)))
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ApiClient");
        d.field("base_url", &redact::url(&self.inner.base));
        if let Some(layers) = self.layers.as_deref() {
            d.field("layers", layers);
        }
        d.field("auth", &self.inner.auth).finish_non_exhaustive()
    }
}
