//! Failover: one service behind several base URLs, the primary first.
//!
//! Each origin keeps its own share of the pool, its policies (the breaker
//! every client of that origin shares) and its metrics; failover only chooses
//! whose call runs and what to do with its outcome:
//!
//! * an origin whose circuit breaker is open, or that was found unreachable
//!   less than `recheck` ago, is passed over;
//! * a call on an origin that ends without anything sent (connect, DNS or TLS
//!   failure, no connection free, the breaker refusing it) goes on to the
//!   next origin, whatever its method;
//! * a read (GET, HEAD, PUT, DELETE, OPTIONS, or a request marked
//!   [`idempotent`](super::ApiRequest::idempotent)) also goes on after a
//!   transport error or a 502/503/504 answer; a write that was sent never
//!   does (its outcome is unknown: sending it to another origin could
//!   duplicate it), `Idempotency-Key` or not, since another origin need not
//!   share the key store;
//! * an origin passed over comes back when a probe succeeds: once its breaker
//!   lets a probe through, or `recheck` after it was found unreachable, the
//!   next call first sends `GET <base URL><probe path>` there (one attempt,
//!   through the origin's breaker, so only one probe is out at a time: a
//!   call that finds one out goes on to the next origin without waiting for
//!   it); any answer below 500 brings the origin back; a probe that could
//!   not go out (no credentials, no time left) says nothing of the origin,
//!   which stays passed over until a later call's probe.

use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::client::{ApiClient, ApiClientBuilder};
use super::layers::{Answer, LayerSettings};
use super::request::ApiRequest;
use super::retry::Safety;
use crate::error::{Error, FailoverError, Result, error_chain};
use crate::policy::BreakerState;
use crate::pool::Origin;

impl ApiClientBuilder {
    /// Another base URL of the same service, tried when the ones before it
    /// can't serve a call (see [`failover`](crate::http#failover)). Call it
    /// once per base URL, in order of preference; the URL given to
    /// [`ApiClient::builder`] is the primary. A call's path is appended to
    /// each base URL unchanged, so the base URLs must serve the same API (the
    /// base paths may differ: `https://a/v2` and `https://b/zephyr/v2`). Each
    /// must be on an origin of its own. The client's credentials
    /// ([`auth`](ApiClientBuilder::auth)) go to every base URL, probes
    /// included: add only origins that may see them. Defaults to none.
    pub fn failover(mut self, base_url: &str) -> Self {
        self.layers.failover.push(base_url.trim().to_string());
        self
    }

    /// How long an origin that could not be reached (nothing could be sent)
    /// is passed over before a probe may bring it back. Defaults to 30 s.
    pub fn failover_recheck(mut self, d: Duration) -> Self {
        self.layers.recheck = d;
        self
    }

    /// The path, under each base URL, of the `GET` that probes an origin
    /// passed over; any answer below 500 brings it back. Defaults to the base
    /// URL itself (`""`).
    pub fn failover_probe(mut self, path: &str) -> Self {
        self.layers.probe = path.to_string();
        self
    }
}

/// The origins of one client, primary first.
pub(super) struct Failover {
    members: Vec<Member>,
    recheck: Duration,
    probe: ApiRequest,
}

/// One origin of a failover client.
struct Member {
    /// The origin's own client: its calls, policies and metrics.
    client: ApiClient,
    /// The same with a single attempt, for probes.
    prober: ApiClient,
    /// What failover saw of the origin; guards only this state.
    reach: Mutex<Reach>,
}

/// Failover's own memory of an origin, beside its breaker: a breaker may need
/// many failures to open, an origin that refuses connections needs one.
#[derive(Clone)]
enum Reach {
    Up,
    /// Could not be reached; passed over until `until`, then probed (by one
    /// call at a time: `probing`).
    Down {
        until: Instant,
        probing: bool,
        why: String,
    },
}

/// What to do with an origin before a call.
enum Gate {
    /// Send the call.
    Go,
    /// Probe first; `claimed` if this call took the `Reach::Down` probe.
    Probe { claimed: bool },
    /// Pass it over, for this reason.
    Pass(String),
}

impl Failover {
    pub(super) fn new(
        primary: &ApiClient,
        settings: &LayerSettings,
        make: impl Fn(&str) -> Result<ApiClient>,
    ) -> Result<Failover> {
        let mut members = vec![Member::new(primary.bare())];
        for url in &settings.failover {
            let client = make(url)?;
            if let Some(earlier) = members.iter().find(|m| m.origin() == client.origin()) {
                return Err(Error::config(
                    "failover",
                    format!(
                        "{} is on the origin of {}; failover needs another origin \
                         (one origin has one pool share and one breaker)",
                        crate::redact::url(url),
                        crate::redact::url(earlier.client.base_url())
                    ),
                ));
            }
            members.push(Member::new(client));
        }
        Ok(Failover {
            members,
            recheck: settings.recheck,
            probe: ApiRequest::get(&settings.probe),
        })
    }

    /// The client of origin `i`.
    pub(super) fn client(&self, i: usize) -> Option<&ApiClient> {
        self.members.get(i).map(|m| &m.client)
    }

    pub(super) fn origins(&self) -> Vec<Origin> {
        self.members.iter().map(|m| m.origin().clone()).collect()
    }

    pub(super) fn all(&self, test: impl Fn(&ApiClient) -> bool) -> bool {
        self.members.iter().all(|m| test(&m.client))
    }

    /// Runs the call on the first origin that can serve it.
    pub(super) fn exchange(
        &self,
        request: &ApiRequest,
        deadline: Option<Instant>,
    ) -> Result<Answer> {
        let (request, pinned) = self.localize(request);
        if let Some(i) = pinned {
            let (reply, attempts, known) = self.members[i].client.call(&request, deadline)?;
            return Ok((reply, attempts, i, known));
        }
        let movable = Safety::of(request.method, request.idempotent).idempotent;
        let last = self.members.len() - 1;
        let mut passed: Vec<(String, String)> = Vec::new();
        // When an origin used up the call's time, no origin after it could be
        // sent anything: the call ends there, saying where the time went.
        let start = Instant::now();
        let out_of_time = || deadline.is_some_and(|d| Instant::now() >= d);
        for (i, m) in self.members.iter().enumerate().take(last) {
            if let Err(reason) = self.admit(m, deadline) {
                if out_of_time() {
                    log::debug!(
                        "{}: its probe used up the call's time ({reason})",
                        m.origin()
                    );
                    return Err(Error::TotalTimeout {
                        at: m.client.context(&request, 1),
                        elapsed: start.elapsed(),
                        waiting_for: None,
                    });
                }
                m.client.metrics().failed_over();
                passed.push((m.origin().to_string(), format!("passed over: {reason}")));
                continue;
            }
            let e = match m.client.call(&request, deadline) {
                Ok((reply, attempts, known)) if movable && matches!(reply.status(), 502..=504) => {
                    match m
                        .client
                        .check_status_known(&request, reply, attempts, &known)
                    {
                        Err(e) => e,
                        Ok(reply) => return Ok((reply, attempts, i, known)),
                    }
                }
                Ok((reply, attempts, known)) => {
                    return Ok(m.served((reply, attempts, i, known), &passed));
                }
                Err(e) if moves_on(&e, movable) => e,
                Err(e) => return Err(e),
            };
            if unreachable(&e) {
                m.mark_down(self.recheck, &e);
            }
            if out_of_time() {
                return Err(e);
            }
            log::debug!(
                "{} {}: {} could not serve it ({e}); trying the next origin",
                request.method,
                crate::redact::url(&request.path),
                m.origin()
            );
            m.client.metrics().failed_over();
            passed.push((m.origin().to_string(), error_chain(&e)));
        }
        let m = &self.members[last];
        match m.client.call(&request, deadline) {
            Ok((reply, attempts, known)) => Ok(m.served((reply, attempts, last, known), &passed)),
            Err(e) if moves_on(&e, movable) => {
                passed.push((m.origin().to_string(), error_chain(&e)));
                Err(Error::AllOriginsFailed(Box::new(FailoverError {
                    origins: passed,
                    last: e,
                })))
            }
            Err(e) => Err(e),
        }
    }

    /// A request whose path is a whole URL (a `next` link) under one of the
    /// base URLs becomes that path under every base URL; one elsewhere on an
    /// origin of the client stays on that origin (`Some` index).
    fn localize<'r>(
        &self,
        request: &'r ApiRequest,
    ) -> (std::borrow::Cow<'r, ApiRequest>, Option<usize>) {
        use std::borrow::Cow;
        if !request.is_absolute() {
            return (Cow::Borrowed(request), None);
        }
        let Ok(origin) = Origin::parse(&request.path) else {
            return (Cow::Borrowed(request), None);
        };
        let Some(i) = self.members.iter().position(|m| *m.origin() == origin) else {
            return (Cow::Borrowed(request), None);
        };
        match under_base(&request.path, self.members[i].client.base_path()) {
            Some(rest) => {
                let mut local = request.clone();
                local.path = rest.to_string();
                (Cow::Owned(local), None)
            }
            None => (Cow::Borrowed(request), Some(i)),
        }
    }

    /// Whether origin `m` may take the call now (after a probe if one is
    /// due); the reason to pass it over otherwise.
    fn admit(&self, m: &Member, deadline: Option<Instant>) -> std::result::Result<(), String> {
        let claimed = match m.gate() {
            Gate::Go => return Ok(()),
            Gate::Pass(reason) => return Err(reason),
            Gate::Probe { claimed } => claimed,
        };
        let _unwinding = ProbeClaim { member: m, claimed };
        let probed = m.prober.call(&self.probe, deadline);
        if let Some(e) = probed.as_ref().err().filter(|e| !went_out(e)) {
            // Nothing reached the origin (another call's probe is out, which
            // the prober doesn't wait for; no credentials, no connection,
            // no time left): it says nothing of the origin, and the next
            // call may probe.
            m.release(claimed);
            return Err(format!("its probe could not go out: {}", error_chain(e)));
        }
        m.client.metrics().failover_probe();
        let failed = match probed {
            Ok((reply, ..)) if reply.status() < 500 => {
                m.recovered();
                return Ok(());
            }
            Ok((reply, ..)) => format!("its probe was answered {}", reply.status()),
            Err(e) if unreachable(&e) => {
                m.mark_down(self.recheck, &e);
                return Err(format!("its probe failed: {}", error_chain(&e)));
            }
            Err(e) => format!("its probe failed: {}", error_chain(&e)),
        };
        // It answered, or took the request: reachable, failing. Its breaker
        // (which counted the probe) judges it from here.
        m.reachable(claimed);
        Err(failed)
    }
}

/// The probe a call claimed, given back if the call unwinds before the probe's
/// outcome is known (a credentials provider that panics): the origin would
/// otherwise stay passed over for good, "a probe is out".
struct ProbeClaim<'m> {
    member: &'m Member,
    claimed: bool,
}

impl Drop for ProbeClaim<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.member.release(self.claimed);
        }
    }
}

impl Member {
    fn new(client: ApiClient) -> Member {
        Member {
            prober: client.single_attempt(),
            client,
            reach: Mutex::new(Reach::Up),
        }
    }

    fn origin(&self) -> &Origin {
        self.client.origin()
    }

    fn gate(&self) -> Gate {
        {
            let mut reach = self.reach.lock();
            if let Reach::Down {
                until,
                probing,
                why,
            } = &mut *reach
            {
                let now = Instant::now();
                if *probing {
                    return Gate::Pass(format!("unreachable ({why}); a probe is out"));
                }
                if now < *until {
                    return Gate::Pass(format!(
                        "unreachable ({why}); next probe in {:?}",
                        *until - now
                    ));
                }
                *probing = true;
                return Gate::Probe { claimed: true };
            }
        }
        match self.client.policies().breaker().state() {
            BreakerState::Closed => Gate::Go,
            BreakerState::Open { retry_in } if !retry_in.is_zero() => {
                Gate::Pass(format!("circuit breaker open; next probe in {retry_in:?}"))
            }
            // Due for its half-open probe (or a state a custom breaker adds).
            _ => Gate::Probe { claimed: false },
        }
    }

    /// A call that could send nothing here: pass the origin over for `recheck`.
    fn mark_down(&self, recheck: Duration, e: &Error) {
        self.down(recheck, &error_chain(e));
    }

    fn down(&self, recheck: Duration, why: &str) {
        let until = Instant::now()
            .checked_add(recheck)
            .unwrap_or_else(Instant::now);
        let was_up = matches!(
            std::mem::replace(
                &mut *self.reach.lock(),
                Reach::Down {
                    until,
                    probing: false,
                    why: why.to_string(),
                }
            ),
            Reach::Up
        );
        if was_up {
            log::warn!(
                "{} can't be reached ({why}); calls go to the next origin until a \
                 probe in {recheck:?} finds it back",
                self.origin()
            );
        }
    }

    /// Gives back a probe this call claimed but could not send.
    fn release(&self, claimed: bool) {
        if let (true, Reach::Down { probing, .. }) = (claimed, &mut *self.reach.lock()) {
            *probing = false;
        }
    }

    /// A probe this call claimed reached the origin, which failed it:
    /// no longer unreachable.
    fn reachable(&self, claimed: bool) {
        if claimed {
            *self.reach.lock() = Reach::Up;
        }
    }

    /// A probe succeeded: calls come back.
    fn recovered(&self) {
        *self.reach.lock() = Reach::Up;
        self.client.metrics().failover_recovered();
        log::info!("{} answered its probe; calls go to it again", self.origin());
    }

    /// The call's answer, counted as a failover if earlier origins couldn't
    /// serve it.
    fn served(&self, answer: Answer, passed: &[(String, String)]) -> Answer {
        if !passed.is_empty() {
            self.client.metrics().failover_served();
        }
        answer
    }
}

/// Whether a call that failed with `e` may go on to the next origin:
/// whenever nothing was sent, and after a transport error for a request
/// that can be sent twice (`movable`).
fn moves_on(e: &Error, movable: bool) -> bool {
    match e {
        Error::Request(r) => !r.exchange.sent || movable,
        Error::CircuitOpen { .. } | Error::PoolTimeout(_) => true,
        _ => false,
    }
}

/// Whether a probe that failed with `e` tried the origin: a connection was
/// attempted (refused, reset, timed out) or the request was sent.
fn went_out(e: &Error) -> bool {
    matches!(e, Error::Request(_) | Error::BodyTooLarge { .. })
}

/// Whether `e` says the origin can't be reached: nothing could be sent.
fn unreachable(e: &Error) -> bool {
    matches!(e, Error::Request(r) if !r.exchange.sent)
}

/// The part of `url` after the base path `base_path`, if `url`'s path starts
/// with it (at a segment boundary).
fn under_base<'u>(url: &'u str, base_path: &str) -> Option<&'u str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &rest[rest.find(['/', '?'])?..];
    let tail = path.strip_prefix(base_path)?;
    (tail.is_empty() || tail.starts_with(['/', '?'])).then_some(tail)
}

impl fmt::Debug for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins: Vec<String> = self
            .members
            .iter()
            .map(|m| m.origin().to_string())
            .collect();
        f.debug_struct("Failover")
            .field("origins", &origins)
            .field("recheck", &self.recheck)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_under_the_base_path_become_relative() {
        assert_eq!(
            under_base("http://h:1/v2/testcases?startAt=10", "/v2"),
            Some("/testcases?startAt=10")
        );
        assert_eq!(under_base("http://h:1/v2", "/v2"), Some(""));
        assert_eq!(under_base("http://h:1/v2?x=1", "/v2"), Some("?x=1"));
        assert_eq!(under_base("http://h:1/v20/x", "/v2"), None);
        assert_eq!(under_base("http://h:1/other", "/v2"), None);
        assert_eq!(under_base("http://h:1/x", ""), Some("/x"));
        assert_eq!(under_base("http://h:1", "/v2"), None);
    }
}
