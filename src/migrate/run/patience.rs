//! How a record's work rides out failures a later attempt may not meet,
//! within the run: outages are waited out ([`Outages`](super::outage::Outages)),
//! other transient failures get more rounds with backoff, and a create whose
//! outcome is unknown is resolved by look-up-then-create rounds. Rounds and
//! backoff are the qTest client's [`RetryPolicy`](crate::http::RetryPolicy):
//! a record gets the patience a GET gets, and at least as long as a breaker
//! takes to tell an outage from a blip
//! ([`Outages::recognition`](super::outage::Outages::recognition)), so no
//! record fails for an outage in the moments before its breaker opens.

use std::time::Instant;

use super::shared::{Fresh, Shared};
use crate::error::{Error, Result, TransportKind};
use crate::migrate::record::Target;
use crate::migrate::report::Action;

impl Shared {
    /// Runs `step` (reads, or writes that are safe to repeat) until it
    /// succeeds, with more rounds for transient failures and waits through
    /// outages; never repeats a step whose outcome is unknown.
    pub(crate) fn patiently<T>(&self, mut step: impl FnMut() -> Result<T>) -> Result<T> {
        let mut rounds = 0;
        let first = Instant::now();
        loop {
            let e = match step() {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if e.is_outcome_unknown() {
                return Err(e);
            }
            if self.outages.wait_out(&e)? {
                continue;
            }
            if !may_pass(&e) || self.patience_spent(rounds, first) {
                return Err(e);
            }
            rounds += 1;
            log::debug!(
                "{e}; trying again (round {rounds} of {})",
                self.retry.max_retries
            );
            self.pause(rounds)?;
        }
    }

    /// Reads a listing, `list` (its pages, in a stable order), handing each
    /// record to `each`, [patiently](Self::patiently): a listing cut short
    /// by a failure that may pass (or an outage) is read again from the
    /// start, skipping the records already handed over, so each record is
    /// handled once however often its page is read.
    pub(crate) fn resumably<R>(
        &self,
        list: impl Fn(&mut dyn FnMut(Vec<R>) -> Result<()>) -> Result<()>,
        mut each: impl FnMut(R) -> Result<()>,
    ) -> Result<()> {
        let mut handled = 0usize;
        self.patiently(|| {
            let mut seen = 0usize;
            list(&mut |page| {
                for record in page {
                    seen += 1;
                    if seen > handled {
                        each(record)?;
                        handled += 1;
                    }
                }
                Ok(())
            })
        })
    }

    /// What `find` sees on qTest, else what `create` makes. A create whose
    /// outcome is unknown (a timeout, a reset, a 5xx after sending, an
    /// unreadable 2xx), or that failed in a way the next round may not, is
    /// followed by a look-up in the parent's listing ([`Fresh::Live`]), after
    /// a backoff or the end of an outage, and created again only if that
    /// finds nothing; as many rounds as the retry policy allows.
    pub(super) fn resolve(
        &self,
        find: &dyn Fn(Fresh) -> Result<Option<Target>>,
        create: &dyn Fn() -> Result<Target>,
    ) -> Result<(Target, Action)> {
        if let Some(found) = self.patiently(|| find(Fresh::Snapshot))? {
            return Ok((found, Action::Found));
        }
        let mut rounds = 0;
        let first = Instant::now();
        loop {
            let doubt = match create() {
                Ok(made) => return Ok((made, Action::Created)),
                Err(e) if e.is_outcome_unknown() || may_pass(&e) || is_open(&e) => e,
                Err(e) => return Err(e),
            };
            if !self.outages.wait_out(&doubt)? {
                if self.patience_spent(rounds, first) {
                    return Err(doubt);
                }
                rounds += 1;
                log::info!(
                    "{doubt}; looking the record up before creating it again (round {rounds} of {})",
                    self.retry.max_retries
                );
                self.pause(rounds)?;
            }
            if let Some(found) = self.patiently(|| find(Fresh::Live))? {
                return Ok((found, Action::Found));
            }
        }
    }

    /// Whether a record failing since `first` has had its patience after
    /// `rounds` rounds: the retry policy's rounds, and the time a breaker
    /// needs to recognise an outage.
    fn patience_spent(&self, rounds: u32, first: Instant) -> bool {
        rounds >= self.retry.max_retries && first.elapsed() >= self.outages.recognition()
    }

    /// The backoff before round `round` (from 1); cut short by the run's stop.
    fn pause(&self, round: u32) -> Result<()> {
        crate::policy::sleep(self.retry.backoff.delay(round), Some(&self.cancel))
    }
}

/// Whether another round may pass where the client's own retries did not: a
/// transport failure, a 429 or 5xx answer, or a 2xx answer to a request that
/// changed nothing whose body can't be read (cut off on its way). An open
/// breaker is an outage, waited out instead; anything else (a 4xx, a timeout
/// of the whole call, a TLS failure) would fail the same way again.
fn may_pass(e: &Error) -> bool {
    match e {
        Error::Request(r) => r.kind != TransportKind::Tls,
        Error::Status(s) => s.status == 429 || s.status >= 500,
        Error::Decode(d) => !d.outcome_unknown,
        _ => false,
    }
}

fn is_open(e: &Error) -> bool {
    matches!(e, Error::CircuitOpen { .. })
}
