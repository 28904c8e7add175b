//! Outages: while a service's circuit breaker is open, the workers that need
//! it wait instead of failing their records, behind one probe, for up to the
//! run's outage budget; past it the run stops (exit 3) with one line naming
//! the service and how long it was down.
//!
//! The first worker to meet the open breaker starts an episode (one WARN) and
//! becomes its prober: it sleeps until the breaker would let a probe through,
//! sends one cheap read, and repeats until the service answers. Every other
//! worker of that service waits on the episode, without calling anything, so
//! a half-open breaker sees one probe, not one per worker. When the probe
//! succeeds the episode ends (one WARN) and they all go on.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use parking_lot::Mutex;

use super::progress::whole_secs;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::http::ApiClient;
use crate::policy::{Breaker, BreakerState};
use crate::qtest::QtestClient;
use crate::zephyr::ZephyrClient;

/// The default outage budget (`--max-outage`).
pub const DEFAULT_MAX_OUTAGE: Duration = Duration::from_secs(600);

/// How long failures may have to go on before a breaker opens for them: the
/// built-in breaker's window (its run of failures usually opens it sooner).
const RECOGNITION: Duration = Duration::from_secs(10);

/// The shortest pause between two probes, so a breaker that stays closed
/// while the service keeps failing, or a probe already out, is not spun on.
const PROBE_GAP: Duration = Duration::from_secs(1);

/// The services of a run and their outages.
pub(crate) struct Outages {
    budget: Duration,
    /// The run's stop: cancelled when an outage outlasts the budget.
    stop: CancelToken,
    services: [Service; 2],
    /// Why the run stopped, when an outage outlasted the budget.
    stopped: OnceLock<String>,
}

/// One watched service.
struct Service {
    name: &'static str,
    origin: String,
    breaker: Arc<dyn Breaker>,
    /// One cheap read; `Ok` when the service answered.
    probe: Box<dyn Fn() -> Result<()> + Send + Sync>,
    /// The outage going on, if any.
    episode: Mutex<Option<Episode>>,
}

/// One outage of one service.
struct Episode {
    since: Instant,
    /// Cancelled when the service is back: wakes every waiter at once.
    back: CancelToken,
    /// A worker probes for all of them.
    probing: bool,
}

impl Outages {
    /// Watches both services of a run; `stop` is the run's own stop token.
    pub(crate) fn new(
        budget: Duration,
        stop: CancelToken,
        zephyr: &ZephyrClient,
        qtest: &QtestClient,
    ) -> Outages {
        let (z, q) = (zephyr.clone(), qtest.clone());
        Outages {
            budget,
            stop,
            services: [
                Service::new("Zephyr Scale", zephyr.api(), move || z.project().map(drop)),
                Service::new("qTest", qtest.api(), move || q.project_exists().map(drop)),
            ],
            stopped: OnceLock::new(),
        }
    }

    /// If `e` comes from a watched service that is down (its breaker is
    /// open), waits until a probe finds it back and returns `Ok(true)`: try
    /// again. `Ok(false)`: `e` is not an outage. An outage longer than the
    /// budget stops the run, and so does the run's own stop:
    /// [`Error::Cancelled`].
    pub(crate) fn wait_out(&self, e: &Error) -> Result<bool> {
        let Some(service) = self.services.iter().find(|s| s.is_down(e)) else {
            return Ok(false);
        };
        service.wait(self)?;
        Ok(true)
    }

    /// How long a record keeps trying through failures that may pass
    /// before it fails: long enough for a breaker to open for an outage
    /// ([`RECOGNITION`]), but no longer than the outage budget.
    pub(crate) fn recognition(&self) -> Duration {
        RECOGNITION.min(self.budget)
    }

    /// Why the run stopped, when an outage outlasted the budget.
    pub(crate) fn stopped(&self) -> Option<&str> {
        self.stopped.get().map(String::as_str)
    }

    /// Stops the run: `service` has been down for longer than the budget.
    fn give_up(&self, service: &Service, since: Instant) -> Error {
        self.stopped.get_or_init(|| {
            format!(
                "{} ({}) has been down for {}, longer than --max-outage ({}): \
                 stopping; run again once it is back",
                service.name,
                service.origin,
                humantime::format_duration(whole_secs(since.elapsed())),
                humantime::format_duration(self.budget)
            )
        });
        self.stop.cancel();
        Error::Cancelled
    }

    /// The budget left of an outage that started at `since`.
    fn left(&self, since: Instant) -> Duration {
        self.budget.saturating_sub(since.elapsed())
    }
}

impl Service {
    fn new(
        name: &'static str,
        api: &ApiClient,
        probe: impl Fn() -> Result<()> + Send + Sync + 'static,
    ) -> Service {
        Service {
            name,
            origin: api.origin().to_string(),
            breaker: api.policies().breaker().clone(),
            probe: Box::new(probe),
            episode: Mutex::new(None),
        }
    }

    /// Whether `e` says this service is down: its breaker refused the call,
    /// or the call failed in a way a later one may not while the breaker is
    /// open.
    fn is_down(&self, e: &Error) -> bool {
        if origin_of(e) != Some(self.origin.as_str()) {
            return false;
        }
        matches!(e, Error::CircuitOpen { .. })
            || (e.is_transient() && self.breaker.state() != BreakerState::Closed)
    }

    /// Waits until the service is back (or the run stops).
    fn wait(&self, outages: &Outages) -> Result<()> {
        let (since, back, probe) = {
            let mut episode = self.episode.lock();
            if episode.is_none() && self.breaker.state() == BreakerState::Closed {
                // Closed since the failure was seen: it is back already.
                return Ok(());
            }
            let episode = episode.get_or_insert_with(|| {
                log::warn!(
                    "{} ({}) is down (circuit breaker open): pausing its work until a probe \
                     succeeds, for up to {}",
                    self.name,
                    self.origin,
                    humantime::format_duration(outages.budget)
                );
                Episode {
                    since: Instant::now(),
                    back: CancelToken::new(),
                    probing: false,
                }
            });
            let probe = !std::mem::replace(&mut episode.probing, true);
            (episode.since, episode.back.clone(), probe)
        };
        match probe {
            true => self.probe_until_back(outages, since),
            false => self.wait_until_back(outages, since, &back),
        }
    }

    fn wait_until_back(&self, outages: &Outages, since: Instant, back: &CancelToken) -> Result<()> {
        loop {
            let left = outages.left(since);
            if left.is_zero() {
                return Err(outages.give_up(self, since));
            }
            select! {
                recv(back.receiver()) -> _ => return Ok(()),
                recv(outages.stop.receiver()) -> _ => return Err(Error::Cancelled),
                default(left) => {}
            }
        }
    }

    /// Probes whenever the breaker lets a probe through until one finds the
    /// service answering, then ends the episode.
    fn probe_until_back(&self, outages: &Outages, since: Instant) -> Result<()> {
        loop {
            let left = outages.left(since);
            if left.is_zero() {
                return Err(outages.give_up(self, since));
            }
            let wait = match self.breaker.state() {
                BreakerState::Open { retry_in } => retry_in,
                BreakerState::Closed => Duration::ZERO,
                _ => PROBE_GAP,
            };
            if !wait.is_zero() {
                if outages.stop.wait_timeout(wait.min(left)) {
                    return Err(Error::Cancelled);
                }
                continue;
            }
            let answered = match (self.probe)() {
                Ok(()) => true,
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => {
                    log::debug!("{} is still down: {e}", self.name);
                    !e.is_transient()
                }
            };
            if answered && self.breaker.state() == BreakerState::Closed {
                self.back(since);
                return Ok(());
            }
            if outages
                .stop
                .wait_timeout(PROBE_GAP.min(outages.left(since)))
            {
                return Err(Error::Cancelled);
            }
        }
    }

    /// Ends the episode and wakes its waiters.
    fn back(&self, since: Instant) {
        if let Some(episode) = self.episode.lock().take() {
            episode.back.cancel();
        }
        log::warn!(
            "{} ({}) is back after {}: resuming its work",
            self.name,
            self.origin,
            humantime::format_duration(whole_secs(since.elapsed()))
        );
    }
}

/// The origin an error names, if any.
fn origin_of(e: &Error) -> Option<&str> {
    match e {
        Error::Request(r) => Some(&r.at.origin),
        Error::Status(s) => Some(&s.at.origin),
        Error::Decode(d) => Some(&d.at.origin),
        Error::BodyTooLarge { at, .. } | Error::TotalTimeout { at, .. } => Some(&at.origin),
        Error::CircuitOpen { origin, .. } => Some(origin),
        Error::PoolTimeout(p) => Some(&p.origin),
        _ => None,
    }
}

impl std::fmt::Debug for Outages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outages")
            .field("budget", &self.budget)
            .field("stopped", &self.stopped.get())
            .finish_non_exhaustive()
    }
}
