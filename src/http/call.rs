//! One call of an [`ApiClient`]: its attempts, the policies each attempt
//! asks, the waits between them and the retries.

use std::time::{Duration, Instant, SystemTime};

use ureq::http::{Method, Request, Uri};

use super::client::{ApiClient, Inner};
use super::request::{ApiRequest, Auth};
use super::retry::{self, Safety};
use crate::error::{CallWait, Error, Result, TransportKind};
use crate::metrics::{BreakerTransition, FailureKind, RetryReason};
use crate::policy::{Admission, Denied, Outcome, RateFeedback, sleep};
use crate::pool::{Lease, Reply, is_socket_claim_timeout};
use crate::redact::Known;

/// The wait before retrying a 429 when the origin's limiter is not the
/// built-in one (which holds the origin itself) and the answer named none.
const THROTTLED_FLOOR: Duration = Duration::from_secs(1);

/// One call: its attempts, waits and retries.
pub(super) struct Call<'a> {
    client: &'a Inner,
    owner: &'a ApiClient,
    request: &'a ApiRequest,
    method: Method,
    uri: Uri,
    safety: Safety,
    start: Instant,
    deadline: Option<Instant>,
    attempt: u32,
    /// Retries made (the free resend on a fresh connection is none).
    retries: u32,
    stale_used: bool,
    auth_renewed: bool,
    /// What this call sent that must not come back in what it returns or logs.
    known: Known,
}

impl<'a> Call<'a> {
    pub(super) fn new(
        owner: &'a ApiClient,
        request: &'a ApiRequest,
        method: Method,
        uri: Uri,
        cap: Option<Instant>,
    ) -> Self {
        let client = owner.inner();
        let start = Instant::now();
        let own = client.total_timeout.and_then(|t| start.checked_add(t));
        Call {
            client,
            owner,
            request,
            method,
            known: known_of(request, &uri.to_string(), &client.auth),
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

    /// Runs the call and hands its final answer to `finish` (with what the
    /// call knows it sent, and the attempt that got it). A 2xx answer that
    /// `finish` can't decode is retried like a transport error when the
    /// request is idempotent. Every error comes back with the known values
    /// masked.
    pub(super) fn run<T>(mut self, finish: impl Fn(Reply, &Known, u32) -> Result<T>) -> Result<T> {
        self.client.policies.budget().record_request(self.start);
        // The admission of an attempt lost to a stale keep-alive connection,
        // kept for its free resend: the breaker is asked once per attempt.
        let mut kept: Option<Permit<'a>> = None;
        loop {
            self.attempt += 1;
            // Credentials before the breaker's admission: a login is a call
            // to an origin, maybe this one, and must not find the one probe
            // of a half-open breaker taken by the call it serves.
            let auth = self.credentials().map_err(|e| self.known.scrub_error(e))?;
            let permit = match kept.take() {
                Some(permit) => permit,
                None => self.admit()?,
            };
            self.wait_for_turn()?;
            let result = self.attempt_once(auth.as_deref()).map_err(|e| {
                self.client.policies.limiter().unanswered();
                self.known.scrub_error(e)
            })?;
            let Some(result) = result else {
                // Paused while it waited for a connection: nothing was sent;
                // it takes a new turn, under the same admission.
                self.client.policies.limiter().unanswered();
                self.attempt -= 1;
                kept = Some(permit);
                continue;
            };
            match result {
                Ok(reply) => {
                    let outcome = self.judged(answered(&reply), &permit);
                    permit.report(outcome);
                    let retry = self.after_reply(&reply, auth.as_deref())?;
                    if retry {
                        continue;
                    }
                    let attempt = self.attempt;
                    match finish(reply, &self.known, attempt) {
                        Err(e) if self.retry_bad_body(&e)? => continue,
                        done => return done.map_err(|e| self.finish_error(e)),
                    }
                }
                Err(e) => {
                    self.client.policies.limiter().unanswered();
                    let decision = retry::after_error(self.safety, &e, self.stale_used);
                    if let Some(d) = decision.filter(|d| d.reason == RetryReason::StaleConnection) {
                        self.resend_stale(d);
                        kept = Some(permit);
                        continue;
                    }
                    let outcome = self.judged(self.unanswered(&e), &permit);
                    permit.report(outcome);
                    let retried = match decision {
                        Some(d) => self.retry_after_wait(d, self.backoff(), None)?,
                        None => false,
                    };
                    if !retried {
                        return Err(self.finish_error(e));
                    }
                }
            }
        }
    }

    /// One attempt and no retry, for a body that streams (see
    /// `client::stream`): it can't be sent twice, or it is read after the
    /// call returns. The attempt gets what any first attempt gets: the
    /// credentials, the breaker's admission, the limiter's turn, a lease
    /// outside any pause, each by the call's deadline. `send` makes it on
    /// the lease with the credentials and returns the answer's head (its
    /// body may be left out) with what it keeps of the answer; the head
    /// reaches the limiter (a 429 pauses the origin for every caller) and
    /// the breaker, then `finish` judges the answer. Errors come back
    /// masked, and marked when the request may have been acted on, as from
    /// [`Call::run`].
    pub(super) fn once<S, T>(
        mut self,
        send: impl FnOnce(Lease, Option<&str>) -> Result<(Reply, S)>,
        finish: impl FnOnce(Reply, S) -> Result<T>,
    ) -> Result<T> {
        self.client.policies.budget().record_request(self.start);
        self.attempt = 1;
        let auth = self.credentials().map_err(|e| self.known.scrub_error(e))?;
        let permit = self.admit()?;
        let lease = loop {
            self.wait_for_turn()?;
            let lease = match self.deadline {
                Some(d) => self.client.origin.lease_until(d),
                None => self.client.origin.lease(),
            }
            .map_err(|e| {
                self.client.policies.limiter().unanswered();
                self.past_deadline(CallWait::Lease, e)
            })?;
            if self.client.policies.limiter().pause_remaining().is_zero() {
                break lease;
            }
            // Paused while it waited for its connection: nothing is sent
            // during a pause; it takes a new turn.
            self.client.policies.limiter().unanswered();
        };
        let sent_at = Instant::now();
        let sent = send(lease, auth.as_deref()).map_err(|e| self.known.scrub_error(e));
        self.log_attempt(sent_at.elapsed(), sent.as_ref().map(|(head, _)| head));
        match sent {
            Ok((head, kept)) => {
                self.tell_limiter(&head, self.retry_after(&head));
                permit.report(answered(&head));
                finish(head, kept).map_err(|e| self.finish_error(e))
            }
            Err(e) => {
                self.client.policies.limiter().unanswered();
                permit.report(self.unanswered(&e));
                Err(self.finish_error(e))
            }
        }
    }

    /// What the breaker hears of an attempt that got no answer: a failure,
    /// unless its connection was a stale one, it never got a socket, or the
    /// call's own deadline cut it short (none says anything of the server).
    fn unanswered(&self, e: &Error) -> Outcome {
        let real = matches!(e, Error::Request(r) if !r.is_stale_connection())
            && !is_socket_claim_timeout(e)
            && !self.cut_short(e);
        if real {
            Outcome::Failure
        } else {
            Outcome::Neutral
        }
    }

    /// What the breaker hears of an attempt: only a call's first attempt
    /// (and a probe) says something about the service; a retry's outcome
    /// would count one bad call several times.
    fn judged(&self, outcome: Outcome, permit: &Permit<'_>) -> Outcome {
        if self.retries == 0 || permit.is_probe() {
            outcome
        } else {
            Outcome::Neutral
        }
    }

    /// Whether `e` is a timeout of an attempt that the call's own deadline
    /// cut short (its limit is what was left of the call): the caller ran
    /// out of time, which says nothing about the server.
    fn cut_short(&self, e: &Error) -> bool {
        matches!(e, Error::Request(r) if r.kind == TransportKind::Timeout)
            && self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Asks the origin's breaker to let an attempt out, waiting while
    /// another caller's probe decides (unless the client doesn't wait).
    fn admit(&self) -> Result<Permit<'a>> {
        let breaker = self.client.policies.breaker();
        let allowed = match self.client.waits_for_probe {
            true => breaker.allow_until(self.deadline, self.client.cancel.as_ref()),
            false => breaker.allow(),
        };
        match allowed {
            Ok(admission) => {
                if admission.half_opened() {
                    self.client
                        .breaker_changed(BreakerTransition::HalfOpened, false);
                }
                Ok(Permit {
                    client: self.client,
                    admission: Some(admission),
                })
            }
            Err(_)
                if self
                    .client
                    .cancel
                    .as_ref()
                    .is_some_and(|c| c.is_cancelled()) =>
            {
                Err(Error::Cancelled)
            }
            Err(open) => {
                self.client.metrics.failure(FailureKind::BreakerOpen);
                if open.retry_in.is_zero() && self.deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(self.total_timeout(Some(CallWait::BreakerProbe)));
                }
                Err(Error::CircuitOpen {
                    origin: self.client.metrics.origin.clone(),
                    retry_in: open.retry_in,
                })
            }
        }
    }

    fn wait_for_turn(&self) -> Result<()> {
        let limiter = self.client.policies.limiter();
        match limiter.acquire(self.deadline, self.client.cancel.as_ref()) {
            Ok(wait) => {
                if !wait.is_zero() {
                    self.client.metrics.rate_limited(wait);
                }
                Ok(())
            }
            Err(Denied::Cancelled) => Err(Error::Cancelled),
            Err(Denied::Exhausted { remaining, floor }) => {
                self.client.metrics.failure(FailureKind::BudgetExhausted);
                Err(Error::BudgetExhausted {
                    origin: self.client.metrics.origin.clone(),
                    remaining,
                    floor,
                })
            }
            Err(_) => Err(self.total_timeout(Some(CallWait::RateLimit))),
        }
    }

    fn total_timeout(&self, waiting_for: Option<CallWait>) -> Error {
        Error::TotalTimeout {
            at: self.owner.context(self.request, self.attempt),
            elapsed: self.start.elapsed(),
            waiting_for,
        }
    }

    /// The credentials of this attempt, fetched by the call's deadline. A
    /// login that failed is this call's failure, but this call sent nothing:
    /// its outcome is never unknown, whatever the login's was.
    fn credentials(&mut self) -> Result<Option<String>> {
        let auth = self
            .client
            .auth
            .value_until(self.deadline)
            .map_err(|e| self.past_deadline(CallWait::Login, e.not_sent()))?;
        let provided = matches!(self.client.auth, Auth::Provider(_));
        if provided && self.deadline.is_some_and(|d| Instant::now() >= d) {
            // A provider that ignores the deadline answered too late.
            return Err(self.total_timeout(Some(CallWait::Login)));
        }
        if let Some(value) = &auth {
            self.known.credential(value);
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
    /// for failures before anything could be sent (no connection free);
    /// `None` if the origin was paused while this attempt waited for its
    /// connection (a 429 read on another one): nothing is sent during a
    /// pause. Every wait ends at the call's deadline.
    fn attempt_once(&self, auth: Option<&str>) -> Result<Option<Result<Reply>>> {
        let lease = match self.deadline {
            Some(d) => self.client.origin.lease_until(d),
            None => self.client.origin.lease(),
        }
        .map_err(|e| self.past_deadline(CallWait::Lease, e))?;
        if !self.client.policies.limiter().pause_remaining().is_zero() {
            return Ok(None);
        }
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
        // Masked before it is logged: a cause may quote what was sent.
        let result = result.map_err(|e| self.known.scrub_error(e));
        self.log_attempt(sent_at.elapsed(), result.as_ref());
        if let Ok(reply) = &result {
            // While the lease still holds the connection: a caller waiting
            // for it must find a pause this answer starts already set.
            self.tell_limiter(reply, self.retry_after(reply));
        }
        Ok(Some(result))
    }

    fn log_attempt(&self, took: Duration, result: Result<&Reply, &Error>) {
        let path = self.owner.path_of(self.request);
        let (method, origin) = (self.request.method, self.owner.origin());
        if took >= self.client.slow {
            log::warn!(
                "slow request: {method} {origin}{path} took {took:.1?} (attempt {})",
                self.attempt
            );
        }
        let latency_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        match result {
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

    /// Decides whether to send again (the limiter has heard the answer
    /// already): a 401 with renewable credentials, a 429 (for as long as the
    /// call's deadline allows), a retryable 5xx.
    fn after_reply(&mut self, reply: &Reply, auth: Option<&str>) -> Result<bool> {
        let retry_after = self.retry_after(reply);
        if self.renew_auth(reply, auth) {
            return Ok(true);
        }
        let Some(decision) = retry::after_status(self.safety, reply.status()) else {
            return Ok(false);
        };
        let wait = if reply.status() != 429 {
            retry_after.unwrap_or_else(|| self.backoff())
        } else if self.client.policies.built_in().0 {
            // The built-in limiter holds the whole origin for it.
            Duration::ZERO
        } else {
            retry_after
                .filter(|d| !d.is_zero())
                .unwrap_or(THROTTLED_FLOOR)
        };
        self.retry_after_wait(decision, wait, retry_after)
    }

    /// The answer's `Retry-After`, parsed and capped.
    fn retry_after(&self, reply: &Reply) -> Option<Duration> {
        reply
            .header("retry-after")
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()))
            .map(|d| d.min(self.client.retry.retry_after_cap))
    }

    /// Gives the limiter the answer's rate-limit news; logs a pause it
    /// starts once (the 429s of requests already out extend it quietly).
    fn tell_limiter(&self, reply: &Reply, retry_after: Option<Duration>) {
        let limiter = self.client.policies.limiter();
        let mut feedback =
            RateFeedback::from_headers(|name| reply.header(name)).unwrap_or_default();
        let throttled = reply.status() == 429;
        let before = limiter.pause_remaining();
        if throttled {
            feedback = feedback.throttled(retry_after);
        }
        // Observed before the pause is set: a 429 that comes while the
        // origin is not yet held is a new strike (and cuts the pace of a
        // server that announces no budget), `Retry-After` or not.
        limiter.observe(&feedback);
        if let Some(until) = retry_after
            .filter(|d| throttled && !d.is_zero())
            .and_then(|d| Instant::now().checked_add(d))
        {
            limiter.pause_until(until);
        }
        let pause = limiter.pause_remaining();
        if pause.is_zero() {
            return;
        }
        let origin = self.owner.origin();
        let why = if throttled {
            "answered 429"
        } else {
            "says its rate budget is spent"
        };
        if before.is_zero() {
            log::info!("{origin} {why}; pausing its requests for {pause:.1?}");
        } else {
            log::debug!("{origin} {why}; its requests stay paused for {pause:.1?}");
        }
    }

    /// The free resend of an idempotent request whose reused connection was
    /// closed before any answer.
    fn resend_stale(&mut self, decision: retry::Retry) {
        self.stale_used = true;
        self.client.metrics.retry(decision.reason);
        log::debug!(
            reason:% = decision.reason;
            "retrying {} {}{} at once: the reused connection was closed before any answer",
            self.request.method,
            self.owner.origin(),
            self.owner.path_of(self.request)
        );
    }

    /// Whether a 2xx answer that `finish` could not decode is sent again
    /// (after waiting): idempotent requests only, as after a transport error.
    fn retry_bad_body(&mut self, e: &Error) -> Result<bool> {
        if !resendable_bad_body(e, self.safety) {
            return Ok(false);
        }
        let decision = retry::Retry {
            reason: RetryReason::BadBody,
            uses_budget: true,
        };
        self.retry_after_wait(decision, self.backoff(), None)
    }

    fn backoff(&self) -> Duration {
        self.client.retry.backoff.delay(self.retries + 1)
    }

    /// Waits `wait` and returns true to retry, unless the retries, the
    /// call's deadline or the origin's retry budget say no. A 429 is retried
    /// for as long as the deadline allows, not a fixed count (without a
    /// deadline, `max_retries` bounds it too; `max_retries: 0` retries
    /// nothing, as a caller that asked for no retries expects).
    fn retry_after_wait(
        &mut self,
        decision: retry::Retry,
        wait: Duration,
        advised: Option<Duration>,
    ) -> Result<bool> {
        let unbounded = decision.reason == RetryReason::TooManyRequests
            && self.deadline.is_some()
            && self.client.retry.max_retries > 0;
        if self.retries >= self.client.retry.max_retries && !unbounded {
            return Ok(false);
        }
        let after_wait = Instant::now().checked_add(wait.max(advised.unwrap_or_default()));
        if let (Some(deadline), Some(t)) = (self.deadline, after_wait)
            && t >= deadline
        {
            return Ok(false);
        }
        if decision.uses_budget {
            let (given, changed) = self.client.policies.try_retry(Instant::now());
            if given && changed {
                log::info!("retry budget for {} has retries again", self.owner.origin());
            } else if !given {
                let level = if changed {
                    log::Level::Warn
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "retry budget for {} is spent; not retrying {} {} (said once until it has retries again)",
                    self.owner.origin(),
                    self.request.method,
                    self.owner.path_of(self.request)
                );
                return Ok(false);
            }
        }
        self.retries += 1;
        self.client.metrics.retry(decision.reason);
        log::debug!(
            reason:% = decision.reason, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            retry = self.retries;
            "retrying {} {}{} in {wait:.1?} ({}; retry {})",
            self.request.method,
            self.owner.origin(),
            self.owner.path_of(self.request),
            decision.reason,
            self.retries,
        );
        sleep(wait, self.client.cancel.as_ref())?;
        Ok(true)
    }

    /// The final error, masked, and marked when the request may have been
    /// acted on: a non-idempotent request sent, whose answer never came
    /// whole (a transport error after sending, a body over the limit).
    fn finish_error(&self, mut e: Error) -> Error {
        let acted = !self.safety.idempotent;
        match &mut e {
            Error::Request(r) => r.outcome_unknown = acted && r.exchange.sent,
            Error::BodyTooLarge {
                outcome_unknown, ..
            } => *outcome_unknown = acted,
            _ => {}
        }
        self.known.scrub_error(e)
    }
}

/// What the breaker hears of an answer: a 5xx is the server failing.
fn answered(reply: &Reply) -> Outcome {
    if reply.status() >= 500 {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

/// What a call knows it sends: the query values, the form body, header
/// values that are not printable, and a static token.
fn known_of(request: &ApiRequest, url: &str, auth: &Auth) -> Known {
    let mut known = Known::default();
    known.url_query(url);
    for (name, value) in &request.headers {
        known.header(name, value);
    }
    let form = request.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded")
    });
    if let (true, Some(body)) = (form, &request.body) {
        known.form(body);
    }
    if let Auth::Bearer(token) = auth {
        known.secret(token);
    }
    known
}

/// Whether `e` is a 2xx answer whose body could not be decoded, to a request
/// that may be sent again.
fn resendable_bad_body(e: &Error, safety: Safety) -> bool {
    safety.idempotent && matches!(e, Error::Decode(d) if (200..300).contains(&d.status))
}

impl ApiClient {
    /// Through the layers: whether a 2xx answer whose body could not be
    /// decoded is asked for again (`round` such rounds so far), after the
    /// backoff, within the retry count, the deadline and the origin's retry
    /// budget; idempotent requests only.
    pub(super) fn again_after_bad_body(
        &self,
        request: &ApiRequest,
        e: &Error,
        deadline: Option<Instant>,
        round: u32,
    ) -> Result<bool> {
        let client = self.inner();
        let safety = Safety::of(request.method, request.resend_safe());
        if !resendable_bad_body(e, safety) || round >= client.retry.max_retries {
            return Ok(false);
        }
        let wait = client.retry.backoff.delay(round + 1);
        let past = |d: Instant| Instant::now().checked_add(wait).is_none_or(|t| t >= d);
        if deadline.is_some_and(past) || !client.policies.budget().try_retry(Instant::now()) {
            return Ok(false);
        }
        client.metrics.retry(RetryReason::BadBody);
        sleep(wait, client.cancel.as_ref())?;
        Ok(true)
    }
}

/// An attempt the breaker admitted. It reports its outcome once; dropped
/// unreported (no connection free, a panic), it reports [`Outcome::Neutral`].
struct Permit<'a> {
    client: &'a Inner,
    admission: Option<Admission>,
}

impl Permit<'_> {
    fn is_probe(&self) -> bool {
        self.admission.is_some_and(|a| a.is_probe())
    }

    fn report(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Outcome) {
        if let Some(admission) = self.admission.take() {
            let breaker = self.client.policies.breaker();
            if let Some(transition) = breaker.record(admission, outcome) {
                self.client
                    .breaker_changed(transition, admission.is_probe());
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
    /// Logs and counts a change of the breaker's state; `after_probe`: the
    /// change is a probe's verdict. A failed probe reopening the breaker is
    /// no news (the WARN came when it first opened): one line per cooldown
    /// of a long outage would drown the log.
    pub(super) fn breaker_changed(&self, transition: BreakerTransition, after_probe: bool) {
        let origin = &self.metrics.origin;
        match transition {
            BreakerTransition::Opened if after_probe => {
                log::debug!("circuit breaker for {origin} stays open: the probe failed")
            }
            BreakerTransition::Opened => log::warn!(
                "circuit breaker for {origin} opened; failing fast until a probe succeeds"
            ),
            BreakerTransition::Closed => log::info!("circuit breaker for {origin} closed"),
            _ => log::debug!("circuit breaker for {origin} half-open: probing"),
        }
        self.metrics.breaker(transition);
    }
}
