//! Coalescing: identical GETs in flight at once share one request.
//!
//! Opt-in ([`ApiClientBuilder::coalesce_gets`]). Two calls are identical when
//! they are GETs without a body to the same URL (origin, path and query),
//! with the same headers and the same `Authorization` value: an answer is
//! never shared across credentials. The first call (the leader) sends the
//! request, through failover and retries like any call; the ones that arrive
//! while it is in flight (followers) wait for its answer and each get a copy,
//! or a copy of its error. Nothing is cached: a call that comes after the
//! answer sends its own request.
//!
//! A follower waits at most until its own deadline (its `total_timeout`),
//! then fails with [`Error::TotalTimeout`] naming
//! [`CallWait::SharedRequest`]; the leader goes on. If the leader panics,
//! every follower gets an [`Error::Request`] saying so (the panic itself stays
//! in the leader's thread), and the next call starts afresh.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::client::{ApiClient, ApiClientBuilder};
use super::layers::Answer;
use super::request::ApiRequest;
use crate::error::{CallWait, Error, Exchange, FailoverError, RequestError, Result, TransportKind};

impl ApiClientBuilder {
    /// Identical GETs in flight at the same time (same URL, headers and
    /// credentials) share one request and its answer (see
    /// [`coalescing`](crate::http#coalescing)); other methods never do.
    /// Shared by the client's clones. Defaults to off.
    pub fn coalesce_gets(mut self, on: bool) -> Self {
        self.layers.coalesce = on;
        self
    }
}

/// Whether `request` may share another's answer: a GET without a body.
pub(super) fn eligible(request: &ApiRequest) -> bool {
    request.method == "GET" && request.body.is_none()
}

/// The calls in flight, by what makes them identical.
#[derive(Default)]
pub(super) struct Coalescer {
    /// Guards the map only; never held while a request is sent or awaited.
    flights: Mutex<HashMap<Key, Arc<Flight>>>,
}

/// What makes two GETs identical. Holds the credential value, so it is never
/// printed.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    url: String,
    authorization: Option<String>,
    headers: Vec<(String, String)>,
}

/// One request in flight and, once it lands, its outcome.
#[derive(Default)]
struct Flight {
    landed: Mutex<Option<Landed>>,
    ready: Condvar,
}

enum Landed {
    Answer(Answer),
    /// A copy of the leader's error.
    Failed(Error),
    Panicked,
}

impl Coalescer {
    /// Runs `send` for `request`, or waits for an identical call's answer.
    pub(super) fn run(
        &self,
        owner: &ApiClient,
        request: &ApiRequest,
        deadline: Option<Instant>,
        send: impl FnOnce() -> Result<Answer>,
    ) -> Result<Answer> {
        let start = Instant::now();
        // Credentials that can't be had now are the call's own error to
        // report, with its deadline's wording: let it fail alone.
        let Ok(authorization) = owner.authorization(deadline) else {
            return send();
        };
        let key = Key {
            url: request.url(owner.base_url()),
            authorization,
            headers: request.headers.clone(),
        };
        let joined = match self.flights.lock().entry(key.clone()) {
            Entry::Occupied(flight) => Some(flight.get().clone()),
            Entry::Vacant(slot) => {
                slot.insert(Arc::default());
                None
            }
        };
        if let Some(flight) = joined {
            owner.metrics().coalesced();
            return flight.wait(owner, request, deadline, start);
        }
        let landing = Landing {
            coalescer: self,
            key,
            landed: false,
        };
        let result = send();
        landing.land(|| match &result {
            Ok(answer) => Landed::Answer(answer.clone()),
            Err(e) => Landed::Failed(copy_error(e)),
        });
        result
    }
}

/// The leader's duty to land its flight, a panic included.
struct Landing<'a> {
    coalescer: &'a Coalescer,
    key: Key,
    landed: bool,
}

impl Landing<'_> {
    /// Publishes what `landed` makes, made only if a follower waits: a
    /// call nobody joined doesn't copy its body.
    fn land(mut self, landed: impl FnOnce() -> Landed) {
        self.publish(landed);
    }

    fn publish(&mut self, landed: impl FnOnce() -> Landed) {
        self.landed = true;
        // Out of the map first: a call arriving from now on sends its own,
        // so no follower joins after this and the count below is final.
        let flight = self.coalescer.flights.lock().remove(&self.key);
        if let Some(flight) = flight
            && Arc::strong_count(&flight) > 1
        {
            *flight.landed.lock() = Some(landed());
            flight.ready.notify_all();
        }
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.publish(|| Landed::Panicked);
        }
    }
}

impl Flight {
    /// A follower's wait: the leader's answer, or its own deadline.
    fn wait(
        &self,
        owner: &ApiClient,
        request: &ApiRequest,
        deadline: Option<Instant>,
        start: Instant,
    ) -> Result<Answer> {
        let mut landed = self.landed.lock();
        loop {
            match &*landed {
                Some(Landed::Answer(answer)) => return Ok(answer.clone()),
                Some(Landed::Failed(e)) => return Err(copy_error(e)),
                Some(Landed::Panicked) => return Err(leader_panicked(owner, request)),
                None => {}
            }
            match deadline {
                None => self.ready.wait(&mut landed),
                Some(d) => {
                    if self.ready.wait_until(&mut landed, d).timed_out() && landed.is_none() {
                        return Err(Error::TotalTimeout {
                            at: owner.context(request, 1),
                            elapsed: start.elapsed(),
                            waiting_for: Some(CallWait::SharedRequest),
                        });
                    }
                }
            }
        }
    }
}

/// What a follower gets when the leader panicked.
fn leader_panicked(owner: &ApiClient, request: &ApiRequest) -> Error {
    Error::Request(Box::new(RequestError {
        at: owner.context(request, 1),
        kind: TransportKind::Other,
        timeout_phase: None,
        exchange: Exchange::default(),
        outcome_unknown: false,
        source: ureq::Error::Other(Box::new(Cause(
            "the identical GET this call waited for panicked in the thread that sent it".into(),
        ))),
    }))
}

/// A copy of the leader's error for a follower: the same variant and fields,
/// its causes kept as text (they can't be cloned).
fn copy_error(e: &Error) -> Error {
    let cause = |s: &dyn std::error::Error| -> crate::BoxError { Box::new(Cause(s.to_string())) };
    #[allow(unreachable_patterns)] // a variant added later is copied as text
    match e {
        Error::Config { key, message } => Error::Config {
            key: key.clone(),
            message: message.clone(),
        },
        Error::InvalidUrl { url, reason } => Error::InvalidUrl {
            url: url.clone(),
            reason: reason.clone(),
        },
        Error::PoolTimeout(t) => Error::PoolTimeout(t.clone()),
        Error::PoolShutdown { origin } => Error::PoolShutdown {
            origin: origin.clone(),
        },
        Error::GlobalPoolConflict => Error::GlobalPoolConflict,
        Error::Tls { context, source } => Error::Tls {
            context: context.clone(),
            source: source.as_deref().map(|s| cause(s)),
        },
        Error::Io { context, source } => Error::Io {
            context: context.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::Request(r) => Error::Request(Box::new(RequestError {
            at: r.at.clone(),
            kind: r.kind,
            timeout_phase: r.timeout_phase.clone(),
            exchange: r.exchange,
            outcome_unknown: r.outcome_unknown,
            source: copy_ureq(&r.source),
        })),
        Error::BodyTooLarge {
            at,
            limit,
            outcome_unknown,
        } => Error::BodyTooLarge {
            at: at.clone(),
            limit: *limit,
            outcome_unknown: *outcome_unknown,
        },
        Error::BudgetExhausted {
            origin,
            remaining,
            floor,
        } => Error::BudgetExhausted {
            origin: origin.clone(),
            remaining: *remaining,
            floor: *floor,
        },
        Error::CircuitOpen { origin, retry_in } => Error::CircuitOpen {
            origin: origin.clone(),
            retry_in: *retry_in,
        },
        Error::TotalTimeout {
            at,
            elapsed,
            waiting_for,
        } => Error::TotalTimeout {
            at: at.clone(),
            elapsed: *elapsed,
            waiting_for: *waiting_for,
        },
        Error::Cancelled => Error::Cancelled,
        Error::AllOriginsFailed(f) => Error::AllOriginsFailed(Box::new(FailoverError {
            origins: f.origins.clone(),
            last: copy_error(&f.last),
        })),
        // Status and Decode come after the exchange, never from it.
        other => Error::Io {
            context: other.to_string(),
            source: std::io::Error::other(crate::error_chain(other)),
        },
    }
}

/// A copy of a ureq error: the same variant where it can be rebuilt (the
/// ones the pool's transport produces), its text otherwise.
fn copy_ureq(e: &ureq::Error) -> ureq::Error {
    use ureq::Error as U;
    #[allow(unreachable_patterns)] // variants behind ureq features
    match e {
        U::Io(io) => U::Io(std::io::Error::new(io.kind(), io.to_string())),
        U::Timeout(t) => U::Timeout(*t),
        U::HostNotFound => U::HostNotFound,
        U::ConnectionFailed => U::ConnectionFailed,
        U::StatusCode(s) => U::StatusCode(*s),
        U::BodyExceedsLimit(n) => U::BodyExceedsLimit(*n),
        U::LargeResponseHeader(a, b) => U::LargeResponseHeader(*a, *b),
        U::BodyStalled => U::BodyStalled,
        U::ConnectProxyFailed(s) => U::ConnectProxyFailed(s.clone()),
        U::BadUri(s) => U::BadUri(s.clone()),
        // A copy's cause is kept as it is, so copies of copies read the same.
        U::Other(b) => U::Other(Box::new(Cause(match b.downcast_ref::<Cause>() {
            Some(c) => c.0.clone(),
            None => b.to_string(),
        }))),
        other => U::Other(Box::new(Cause(other.to_string()))),
    }
}

/// A cause known only by its message.
struct Cause(String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestContext;

    fn at() -> RequestContext {
        RequestContext {
            origin: "http://h".into(),
            method: "GET".into(),
            path: "/x".into(),
            attempt: 2,
        }
    }

    fn request(source: ureq::Error) -> Error {
        Error::Request(Box::new(RequestError {
            at: at(),
            kind: TransportKind::Io,
            timeout_phase: None,
            exchange: Exchange::default(),
            outcome_unknown: false,
            source,
        }))
    }

    #[test]
    fn copies_read_like_the_original_and_so_do_copies_of_copies() {
        let originals = [
            request(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            ))),
            request(ureq::Error::Timeout(ureq::Timeout::Global)),
            request(ureq::Error::Other(Box::new(Cause("custom".into())))),
            request(ureq::Error::BadUri("x".into())),
            Error::CircuitOpen {
                origin: "http://h".into(),
                retry_in: std::time::Duration::from_secs(3),
            },
            Error::TotalTimeout {
                at: at(),
                elapsed: std::time::Duration::from_secs(1),
                waiting_for: Some(CallWait::Lease),
            },
            Error::AllOriginsFailed(Box::new(FailoverError {
                origins: vec![("http://h".into(), "down".into())],
                last: Error::Cancelled,
            })),
        ];
        for e in &originals {
            let copy = copy_error(e);
            assert_eq!(copy.to_string(), e.to_string());
            assert_eq!(crate::error_chain(&copy), crate::error_chain(e));
            assert_eq!(copy_error(&copy).to_string(), e.to_string());
            assert_eq!(
                (copy.is_transient(), copy.is_timeout(), copy.exchange()),
                (e.is_transient(), e.is_timeout(), e.exchange())
            );
        }
    }
}
