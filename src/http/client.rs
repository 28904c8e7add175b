//! `ApiClient`: a base URL, credentials and policies, turning calls into typed
//! JSON over pooled connections.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::http::{Method, Request, Uri};

mod stream;

pub use self::stream::Streamed;

use super::layers::{LayerSettings, Layers};
use super::request::{ApiRequest, Auth};
use super::retry::{self, RetryPolicy, Safety};
use crate::cancel::CancelToken;
use crate::error::{CallWait, DecodeError, Error, RequestContext, Result, StatusError};
use crate::metrics::{BreakerTransition, FailureKind, OriginMetrics, RetryReason};
use crate::policy::{
    Admission, BreakerPolicy, BreakerState, BudgetPolicy, Denied, OriginPolicies, Outcome,
    RateFeedback, RateLimit, sleep,
};
use crate::pool::{Origin, OriginPool, Pool, Reply, is_socket_claim_timeout};
use crate::redact;

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
struct Inner {
    origin: OriginPool,
    metrics: Arc<OriginMetrics>,
    /// The base URL without a trailing slash.
    base: String,
    /// The base URL's path (`/api/v3`), for messages.
    base_path: String,
    auth: Auth,
    retry: RetryPolicy,
    policies: OriginPolicies,
    request_timeout: Duration,
    /// The agents' own per-call limit; attempts shorter than this set their own.
    pool_request_timeout: Duration,
    total_timeout: Option<Duration>,
    slow: Duration,
    cancel: Option<CancelToken>,
}

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
        let (reply, attempts, by) = self.exchange(&request)?;
        by.check_status(&request, reply, attempts).map(drop)
    }

    /// Sends `request` and decodes a 2xx JSON answer.
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
        let (reply, attempts, by) = self.exchange_by(request, deadline)?;
        let reply = by.check_status(request, reply, attempts)?;
        let acted = !Safety::of(request.method, request.resend_safe()).idempotent;
        decode(by.context(request, attempts), &reply, acted)
            .inspect_err(|_| by.inner.metrics.failure(FailureKind::Decode))
    }

    /// Sends `request` with every policy applied and returns the answer whatever
    /// its status (after retries of 429/5xx where they are safe).
    pub fn send(&self, request: &ApiRequest) -> Result<Reply> {
        self.exchange(request).map(|(reply, ..)| reply)
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
            Some(layers) => layers.exchange(self, request, deadline),
            None => self
                .call(request, deadline)
                .map(|(reply, attempts)| (reply, attempts, self)),
        }
    }

    /// One call to this client's own origin, ending by `deadline` at the latest.
    pub(super) fn call(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
    ) -> Result<(Reply, u32)> {
        let (method, uri) = self.target(request)?;
        Call::new(self, request, method, uri, deadline).run()
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
    fn path_of(&self, request: &ApiRequest) -> String {
        let url = request.url(&self.inner.base_path);
        // A `next` link is a whole URL: keep its path.
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => &url,
        };
        redact::url(path)
    }

    pub(super) fn check_status(
        &self,
        request: &ApiRequest,
        reply: Reply,
        attempts: u32,
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
            body: redact::body_excerpt(reply.body(), 300),
            outcome_unknown: !safety.idempotent && status >= 500,
        })))
    }
}

/// One call: its attempts, waits and retries.
struct Call<'a> {
    client: &'a Inner,
    owner: &'a ApiClient,
    request: &'a ApiRequest,
    method: Method,
    uri: Uri,
    safety: Safety,
    start: Instant,
    deadline: Option<Instant>,
    attempt: u32,
    retries: u32,
    stale_used: bool,
    auth_renewed: bool,
}

impl<'a> Call<'a> {
    fn new(
        owner: &'a ApiClient,
        request: &'a ApiRequest,
        method: Method,
        uri: Uri,
        cap: Option<Instant>,
    ) -> Self {
        let client = &*owner.inner;
        let start = Instant::now();
        let own = client.total_timeout.and_then(|t| start.checked_add(t));
        Call {
            client,
            owner,
            request,
            method,
            uri,
            safety: Safety::of(request.method, request.resend_safe()),
            start,
            deadline: match (own, cap) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            attempt: 0,
            retries: 0,
            stale_used: false,
            auth_renewed: false,
        }
    }

    /// The final answer and the attempt that got it.
    fn run(mut self) -> Result<(Reply, u32)> {
        self.client.policies.budget().record_request(self.start);
        loop {
            self.attempt += 1;
            // Credentials before the breaker's admission: a login is a call
            // to an origin, maybe this one, and must not find the one probe
            // of a half-open breaker taken by the call it serves.
            let auth = self.credentials()?;
            let permit = self.admit()?;
            self.wait_for_turn()?;
            let result = self.attempt_once(auth.as_deref())?;
            match result {
                Ok(reply) => {
                    permit.report(if reply.status() >= 500 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                    if self.renew_auth(&reply, auth.as_deref()) {
                        continue;
                    }
                    match self.after_reply(&reply)? {
                        true => continue,
                        false => return Ok((reply, self.attempt)),
                    }
                }
                Err(e) => {
                    if matches!(e, Error::Request(_)) {
                        permit.report(Outcome::Failure);
                    }
                    if !self.after_error(&e)? {
                        return Err(self.finish_error(e));
                    }
                }
            }
        }
    }

    /// Asks the origin's breaker to let an attempt out.
    fn admit(&self) -> Result<Permit<'a>> {
        match self.client.policies.breaker().allow() {
            Ok(admission) => {
                if admission.half_opened() {
                    self.client.breaker_changed(BreakerTransition::HalfOpened);
                }
                Ok(Permit {
                    client: self.client,
                    admission: Some(admission),
                })
            }
            Err(open) => {
                self.client.metrics.failure(FailureKind::BreakerOpen);
                Err(Error::CircuitOpen {
                    origin: self.client.metrics.origin.clone(),
                    retry_in: open.retry_in,
                })
            }
        }
    }

    fn wait_for_turn(&self) -> Result<()> {
        match self
            .client
            .policies
            .limiter()
            .acquire(self.deadline, self.client.cancel.as_ref())
        {
            Ok(wait) => {
                if !wait.is_zero() {
                    self.client.metrics.rate_limited(wait);
                }
                Ok(())
            }
            Err(Denied::Cancelled) => Err(Error::Cancelled),
            Err(Denied::PastDeadline { .. }) => Err(self.total_timeout(Some(CallWait::RateLimit))),
        }
    }

    fn total_timeout(&self, waiting_for: Option<CallWait>) -> Error {
        Error::TotalTimeout {
            at: self.owner.context(self.request, self.attempt),
            elapsed: self.start.elapsed(),
            waiting_for,
        }
    }

    /// The credentials of this attempt, fetched by the call's deadline.
    fn credentials(&self) -> Result<Option<String>> {
        let auth = self
            .client
            .auth
            .value_until(self.deadline)
            .map_err(|e| self.past_deadline(CallWait::Login, e))?;
        let provided = matches!(self.client.auth, Auth::Provider(_));
        if provided && self.deadline.is_some_and(|d| Instant::now() >= d) {
            // A provider that ignores the deadline answered too late.
            return Err(self.total_timeout(Some(CallWait::Login)));
        }
        Ok(auth)
    }

    /// `e`, or a total timeout naming `wait` if the call's deadline has passed.
    fn past_deadline(&self, wait: CallWait, e: Error) -> Error {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.total_timeout(Some(wait))
        } else {
            e
        }
    }

    /// One attempt on a leased connection, with the credentials `auth` (got
    /// before the lease: a login may need a connection to this origin, and
    /// must not wait for one this attempt already holds). The outer error is
    /// for failures before anything could be sent (no connection free). Every
    /// wait ends at the call's deadline.
    fn attempt_once(&self, auth: Option<&str>) -> Result<Result<Reply>> {
        let lease = match self.deadline {
            Some(d) => self.client.origin.lease_until(d),
            None => self.client.origin.lease(),
        }
        .map_err(|e| self.past_deadline(CallWait::Lease, e))?;
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        for (k, v) in &self.request.headers {
            builder = builder.header(k, v);
        }
        if let Some(value) = auth {
            builder = builder.header("Authorization", value);
        }
        if !self
            .request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            builder = builder.header("Accept", "application/json");
        }
        let body = self.request.body.clone().unwrap_or_default();
        let request = builder
            .body(body)
            .map_err(|e| Error::config("header", e.to_string()))?;
        let request = self.limit_attempt(&lease, request)?;
        let sent_at = Instant::now();
        let result = lease.send(request).map_err(|e| self.with_attempt(e));
        if let Err(e) = &result
            && is_socket_claim_timeout(e)
            && self.deadline.is_some_and(|d| Instant::now() >= d)
        {
            // Nothing was sent: the wait for the socket used up the call.
            return Err(self.total_timeout(Some(CallWait::SocketClaim)));
        }
        let took = sent_at.elapsed();
        let path = self.owner.path_of(self.request);
        let (method, origin) = (self.request.method, self.owner.origin());
        if took >= self.client.slow {
            log::warn!(
                "slow request: {method} {origin}{path} took {took:.1?} (attempt {})",
                self.attempt
            );
        }
        let latency_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(reply) => log::debug!(
                method = method, path = path.as_str(), status = reply.status(),
                latency_ms = latency_ms, attempt = self.attempt;
                "{method} {origin}{path} -> {} in {latency_ms} ms (attempt {})",
                reply.status(), self.attempt
            ),
            Err(e) => log::debug!(
                method = method, path = path.as_str(), latency_ms = latency_ms,
                attempt = self.attempt;
                "{method} {origin}{path} failed after {latency_ms} ms (attempt {}): {e}",
                self.attempt
            ),
        }
        Ok(result)
    }

    /// Caps this attempt by the client's `request_timeout` and what is left of
    /// the call's total. The agent already enforces the pool's limit, so the
    /// common case adds nothing per request.
    fn limit_attempt(
        &self,
        lease: &crate::Lease,
        request: Request<Vec<u8>>,
    ) -> Result<Request<Vec<u8>>> {
        let mut limit = self.client.request_timeout;
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.total_timeout(None));
            }
            limit = limit.min(left);
        }
        if limit >= self.client.pool_request_timeout {
            return Ok(request);
        }
        Ok(lease
            .configure_request(request)
            .timeout_per_call(Some(limit))
            .timeout_global(Some(limit))
            .build())
    }

    fn with_attempt(&self, mut e: Error) -> Error {
        if let Error::Request(r) = &mut e {
            r.at.attempt = self.attempt;
        }
        e
    }

    /// A 401 with renewable credentials: renew once and resend (a 401 means the
    /// server refused the request unprocessed, so even a POST is safe).
    fn renew_auth(&mut self, reply: &Reply, auth: Option<&str>) -> bool {
        if reply.status() != 401 || self.auth_renewed {
            return false;
        }
        let renewed = auth.is_some_and(|a| self.client.auth.rejected(a));
        self.auth_renewed = renewed;
        renewed
    }

    /// Applies the server's rate-limit advice; returns whether to retry.
    fn after_reply(&mut self, reply: &Reply) -> Result<bool> {
        let limiter = self.client.policies.limiter();
        if let Some(feedback) = RateFeedback::from_headers(|name| reply.header(name)) {
            if feedback.remaining == Some(0) {
                log::info!(
                    "{} says its rate budget is spent; pausing for {:?}",
                    self.owner.origin(),
                    feedback.reset_in.unwrap_or(Duration::from_secs(1))
                );
            }
            limiter.observe(&feedback);
        }
        let retry_after = reply
            .header("retry-after")
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()))
            .map(|d| d.min(self.client.retry.retry_after_cap));
        if reply.status() == 429 {
            let pause = retry_after.unwrap_or(Duration::from_secs(1));
            log::info!(
                "{} answered 429; pausing its requests for {pause:?}",
                self.owner.origin()
            );
            if let Some(until) = Instant::now().checked_add(pause) {
                limiter.pause_until(until);
            }
        }
        let Some(decision) = retry::after_status(self.safety, reply.status()) else {
            return Ok(false);
        };
        // A 429's pause is already in the limiter; the next turn waits for it.
        let wait = if reply.status() == 429 {
            Duration::ZERO
        } else {
            retry_after.unwrap_or_else(|| self.backoff())
        };
        self.retry_after_wait(decision, wait, retry_after)
    }

    /// Returns whether a transport failure is retried (after waiting).
    fn after_error(&mut self, e: &Error) -> Result<bool> {
        let Some(decision) = retry::after_error(self.safety, e, self.stale_used) else {
            return Ok(false);
        };
        if decision.reason == RetryReason::StaleConnection {
            self.stale_used = true;
            self.client.metrics.retry(decision.reason);
            log::debug!(
                reason:% = decision.reason;
                "retrying {} {}{} at once: the reused connection was closed before any answer",
                self.request.method,
                self.owner.origin(),
                self.owner.path_of(self.request)
            );
            return Ok(true);
        }
        let wait = self.backoff();
        self.retry_after_wait(decision, wait, None)
    }

    fn backoff(&self) -> Duration {
        self.client.retry.backoff.delay(self.retries + 1)
    }

    fn retry_after_wait(
        &mut self,
        decision: retry::Retry,
        wait: Duration,
        advised: Option<Duration>,
    ) -> Result<bool> {
        if self.retries >= self.client.retry.max_retries {
            return Ok(false);
        }
        let after_wait = Instant::now().checked_add(wait.max(advised.unwrap_or_default()));
        if let (Some(deadline), Some(t)) = (self.deadline, after_wait)
            && t >= deadline
        {
            return Ok(false);
        }
        if decision.uses_budget && !self.client.policies.budget().try_retry(Instant::now()) {
            log::warn!(
                "retry budget for {} is spent; not retrying {} {}",
                self.owner.origin(),
                self.request.method,
                self.owner.path_of(self.request)
            );
            return Ok(false);
        }
        self.retries += 1;
        self.client.metrics.retry(decision.reason);
        log::debug!(
            reason:% = decision.reason, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            retry = self.retries;
            "retrying {} {}{} in {wait:.1?} ({}; retry {} of {})",
            self.request.method,
            self.owner.origin(),
            self.owner.path_of(self.request),
            decision.reason,
            self.retries,
            self.client.retry.max_retries
        );
        sleep(wait, self.client.cancel.as_ref())?;
        Ok(true)
    }

    /// Marks a final transport error whose request may have been acted on.
    fn finish_error(&self, mut e: Error) -> Error {
        if let Error::Request(r) = &mut e {
            r.outcome_unknown = !self.safety.idempotent && r.exchange.sent;
        }
        e
    }
}

/// An attempt the breaker admitted. It reports its outcome once; dropped
/// unreported (no connection free, a panic), it reports [`Outcome::Neutral`].
struct Permit<'a> {
    client: &'a Inner,
    admission: Option<Admission>,
}

impl Permit<'_> {
    fn report(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Outcome) {
        if let Some(admission) = self.admission.take() {
            let breaker = self.client.policies.breaker();
            if let Some(transition) = breaker.record(admission, outcome) {
                self.client.breaker_changed(transition);
            }
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.record(Outcome::Neutral);
    }
}

impl Inner {
    /// Counts a breaker state change and logs it once.
    fn breaker_changed(&self, transition: BreakerTransition) {
        let origin = &self.metrics.origin;
        match transition {
            BreakerTransition::Opened => log::warn!(
                "circuit breaker for {origin} opened; failing fast until a probe succeeds"
            ),
            BreakerTransition::Closed => log::info!("circuit breaker for {origin} closed"),
            _ => log::debug!("circuit breaker for {origin} half-open: probing"),
        }
        self.metrics.breaker(transition);
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

    /// This origin's client with no retries: one attempt, for a probe.
    pub(super) fn single_attempt(&self) -> ApiClient {
        let mut inner = (*self.inner).clone();
        inner.retry = RetryPolicy::none();
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
/// read leaves the outcome unknown.
fn decode<T: DeserializeOwned>(at: RequestContext, reply: &Reply, acted: bool) -> Result<T> {
    let content_type = reply.header("content-type").map(str::to_string);
    let json_type = content_type
        .as_deref()
        .is_none_or(|ct| ct.to_ascii_lowercase().contains("json"));
    let error = |source| {
        Error::Decode(Box::new(DecodeError {
            at: at.clone(),
            status: reply.status(),
            content_type: content_type.clone(),
            body: redact::body_excerpt(reply.body(), 200),
            source,
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
