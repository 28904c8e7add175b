//! What sits around an [`ApiClient`] call without changing it: coalescing of
//! identical GETs in front, failover between origins behind it. A call's
//! attempts, retries, waits and policies stay in the client's `Call`, one
//! origin at a time; these layers only choose which origin's call runs, and
//! who shares its answer.

use std::fmt;
use std::time::{Duration, Instant};

use super::client::ApiClient;
use super::coalesce::{self, Coalescer};
use super::failover::Failover;
use super::request::ApiRequest;
use crate::error::Result;
use crate::pool::{Origin, Reply};
use crate::redact::Known;

/// The builder's settings for the layers; see
/// [`ApiClientBuilder::failover`](super::ApiClientBuilder::failover) and
/// [`ApiClientBuilder::coalesce_gets`](super::ApiClientBuilder::coalesce_gets).
pub(super) struct LayerSettings {
    /// Base URLs after the primary, in the order calls try them.
    pub(super) failover: Vec<String>,
    /// How long an unreachable origin is passed over before a probe.
    pub(super) recheck: Duration,
    /// The probe's path under each base URL.
    pub(super) probe: String,
    /// Whether identical concurrent GETs share one request.
    pub(super) coalesce: bool,
}

impl Default for LayerSettings {
    fn default() -> Self {
        LayerSettings {
            failover: Vec::new(),
            recheck: Duration::from_secs(30),
            probe: String::new(),
            coalesce: false,
        }
    }
}

/// A call's answer, its attempts, the index of the origin that gave it (0:
/// the primary), and what the call that got it knew it sent (its
/// credentials included), to mask in whatever is made of the answer.
pub(super) type Answer = (Reply, u32, usize, Known);

/// The layers of one client, shared by its clones.
pub(super) struct Layers {
    failover: Option<Failover>,
    coalesce: Option<Coalescer>,
}

impl Layers {
    /// `primary` with the layers `settings` ask for; `make` builds the client
    /// of another base URL with the same settings.
    pub(super) fn around(
        primary: ApiClient,
        settings: &LayerSettings,
        make: impl Fn(&str) -> Result<ApiClient>,
    ) -> Result<ApiClient> {
        let failover = match settings.failover.is_empty() {
            true => None,
            false => Some(Failover::new(&primary, settings, make)?),
        };
        let coalesce = settings.coalesce.then(Coalescer::default);
        if failover.is_none() && coalesce.is_none() {
            return Ok(primary);
        }
        Ok(primary.layered(Layers { failover, coalesce }))
    }

    /// Sends `request` through the layers: the answer, its attempts, the
    /// client of the origin that gave it and what the call that got it sent.
    pub(super) fn exchange<'c>(
        &'c self,
        owner: &'c ApiClient,
        request: &ApiRequest,
        cap: Option<Instant>,
    ) -> Result<(Reply, u32, &'c ApiClient, Known)> {
        // One deadline for the whole call, whichever origins it visits and
        // however long it waits for a shared answer.
        let deadline = owner.deadline(cap);
        let route = || match &self.failover {
            Some(failover) => failover.exchange(request, deadline),
            None => owner
                .call(request, deadline)
                .map(|(reply, attempts, known)| (reply, attempts, 0, known)),
        };
        let (reply, attempts, by, known) = match &self.coalesce {
            Some(coalescer) if coalesce::eligible(request) => {
                coalescer.run(owner, request, deadline, route)?
            }
            _ => route()?,
        };
        let client = match &self.failover {
            Some(failover) => failover.client(by),
            None => None,
        };
        Ok((reply, attempts, client.unwrap_or(owner), known))
    }

    /// Every origin, in the order calls try them.
    pub(super) fn origins(&self, owner: &ApiClient) -> Vec<Origin> {
        match &self.failover {
            Some(failover) => failover.origins(),
            None => vec![owner.origin().clone()],
        }
    }

    /// Whether `test` holds for the client of every origin.
    pub(super) fn all_members(&self, owner: &ApiClient, test: impl Fn(&ApiClient) -> bool) -> bool {
        match &self.failover {
            Some(failover) => failover.all(test),
            None => test(owner),
        }
    }
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layers")
            .field("failover", &self.failover)
            .field("coalesce_gets", &self.coalesce.is_some())
            .finish()
    }
}
