//! Per-origin resilience policies: a rate [`Limiter`], a circuit [`Breaker`] and a
//! [`RetryBudget`], kept in the pool's origin registry so every
//! [`ApiClient`](crate::http::ApiClient) of one origin (the qTest login's
//! included) shares them: a 429 seen by one client pauses them all, and an open
//! breaker stops them all.
//!
//! Each is a public trait with a built-in implementation ([`TokenBucket`],
//! [`CircuitBreaker`], [`WindowBudget`]). To use your own, for example a budget
//! shared by several processes (with feature `redis`, `fleet::redis::budget`
//! has one, kept in Redis), build an [`OriginPolicies`] and give it to
//! [`Pool::set_policies`](crate::Pool::set_policies) before the first client of
//! that origin is built:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::time::{Duration, Instant};
//! use etlpool::CancelToken;
//! use etlpool::policy::{Denied, Limiter, OriginPolicies, RateFeedback};
//!
//! /// Counts turns and never waits.
//! #[derive(Default)]
//! struct Counting(AtomicU64);
//!
//! impl Limiter for Counting {
//!     fn acquire(&self, _: Option<Instant>, _: Option<&CancelToken>) -> Result<Duration, Denied> {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!         Ok(Duration::ZERO)
//!     }
//!     fn pause_until(&self, _until: Instant) {}
//!     fn observe(&self, _feedback: &RateFeedback) {}
//! }
//!
//! # fn main() -> etlpool::Result<()> {
//! let pool = etlpool::Pool::builder().build()?;
//! let limiter = Arc::new(Counting::default());
//! let policies = OriginPolicies::builder().limiter(limiter.clone()).build();
//! pool.set_policies("https://api.example.com", policies)?;
//! # Ok(()) }
//! ```

mod breaker;
mod budget;
mod feedback;
mod limiter;
mod pace;
mod window;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use self::breaker::{
    Admission, Breaker, BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker, Outcome,
};
pub use self::budget::{BudgetPolicy, RetryBudget, WindowBudget};
pub use self::feedback::RateFeedback;
pub use self::limiter::{Denied, Limiter, RateLimit, TokenBucket};

pub(crate) use self::limiter::sleep;

/// The settings the built-in policies are made from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicySettings {
    /// The rate limiter's settings.
    pub rate_limit: RateLimit,
    /// The circuit breaker's settings.
    pub breaker: BreakerPolicy,
    /// The retry budget's settings.
    pub budget: BudgetPolicy,
}

impl PolicySettings {
    /// Checks every setting; the error names the key.
    pub fn validate(&self) -> crate::Result<()> {
        self.rate_limit.validate()?;
        self.breaker.validate()?;
        self.budget.validate()
    }
}

/// One origin's policies. Cheap to clone: clones share the same limiter, breaker
/// and budget.
#[derive(Clone)]
pub struct OriginPolicies {
    limiter: Arc<dyn Limiter>,
    breaker: Arc<dyn Breaker>,
    budget: Arc<dyn RetryBudget>,
    /// What the built-in parts were made from, to tell a client asking for other
    /// settings that the origin already has its own.
    settings: PolicySettings,
    /// Which parts keep to `settings`, so a client asking for those gets
    /// them: the built-in ones, and ones given with `*_keeping_settings`.
    /// (limiter, breaker, budget).
    built_in: (bool, bool, bool),
    /// Whether the retry budget was last found spent: its WARN is said once
    /// when it runs out, not once per call refused a retry.
    budget_spent: Arc<AtomicBool>,
}

impl OriginPolicies {
    /// The built-in policies made from `settings`.
    pub fn from_settings(settings: PolicySettings) -> OriginPolicies {
        OriginPolicies {
            limiter: Arc::new(TokenBucket::new(settings.rate_limit)),
            breaker: Arc::new(CircuitBreaker::new(settings.breaker)),
            budget: Arc::new(WindowBudget::new(settings.budget)),
            settings,
            built_in: (true, true, true),
            budget_spent: Arc::default(),
        }
    }

    /// A builder starting from the built-in policies with default settings.
    pub fn builder() -> OriginPoliciesBuilder {
        OriginPoliciesBuilder {
            settings: PolicySettings::default(),
            limiter: None,
            breaker: None,
            budget: None,
            keeping: (false, false),
        }
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &Arc<dyn Limiter> {
        &self.limiter
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &Arc<dyn Breaker> {
        &self.breaker
    }

    /// The retry budget.
    pub fn budget(&self) -> &Arc<dyn RetryBudget> {
        &self.budget
    }

    /// Takes a retry from the budget; whether it was given, and whether
    /// that changed since the last time asked (to log the change once).
    pub(crate) fn try_retry(&self, now: Instant) -> (bool, bool) {
        let given = self.budget.try_retry(now);
        let was_spent = self.budget_spent.swap(!given, Ordering::Relaxed);
        (given, was_spent == given)
    }

    /// The settings the built-in parts were made from (a part you supplied
    /// yourself keeps the default here).
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// Which parts are the built-in ones: (limiter, breaker, budget).
    pub(crate) fn built_in(&self) -> (bool, bool, bool) {
        self.built_in
    }
}

impl fmt::Debug for OriginPolicies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginPolicies")
            .field("settings", &self.settings)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

/// Builds [`OriginPolicies`]: each part is the built-in one made from its
/// settings unless you give your own.
#[must_use]
pub struct OriginPoliciesBuilder {
    settings: PolicySettings,
    limiter: Option<Arc<dyn Limiter>>,
    breaker: Option<Arc<dyn Breaker>>,
    budget: Option<Arc<dyn RetryBudget>>,
    /// Whether the given limiter and breaker keep to the settings.
    keeping: (bool, bool),
}

impl OriginPoliciesBuilder {
    /// Settings of the built-in limiter. Defaults to [`RateLimit::default`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.settings.rate_limit = limit;
        self
    }

    /// Settings of the built-in breaker. Defaults to [`BreakerPolicy::default`].
    pub fn breaker_policy(mut self, policy: BreakerPolicy) -> Self {
        self.settings.breaker = policy;
        self
    }

    /// Settings of the built-in retry budget. Defaults to [`BudgetPolicy::default`].
    pub fn budget_policy(mut self, policy: BudgetPolicy) -> Self {
        self.settings.budget = policy;
        self
    }

    /// Your own limiter instead of a [`TokenBucket`].
    pub fn limiter(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.limiter = Some(limiter);
        self.keeping.0 = false;
        self
    }

    /// Your own limiter that keeps to the builder's
    /// [`rate_limit`](Self::rate_limit) settings (a budget shared between
    /// processes): a client asking for those settings gets it, where with
    /// [`limiter`](Self::limiter) it gets a conflict error.
    pub fn limiter_keeping_settings(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.limiter = Some(limiter);
        self.keeping.0 = true;
        self
    }

    /// Your own breaker that keeps to the builder's
    /// [`breaker_policy`](Self::breaker_policy); see
    /// [`limiter_keeping_settings`](Self::limiter_keeping_settings).
    pub fn breaker_keeping_settings(mut self, breaker: Arc<dyn Breaker>) -> Self {
        self.breaker = Some(breaker);
        self.keeping.1 = true;
        self
    }

    /// Your own breaker instead of a [`CircuitBreaker`].
    pub fn breaker(mut self, breaker: Arc<dyn Breaker>) -> Self {
        self.breaker = Some(breaker);
        self.keeping.1 = false;
        self
    }

    /// Your own retry budget instead of a [`WindowBudget`].
    pub fn budget(mut self, budget: Arc<dyn RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The policies.
    pub fn build(self) -> OriginPolicies {
        let s = self.settings;
        let built_in = (
            self.limiter.is_none() || self.keeping.0,
            self.breaker.is_none() || self.keeping.1,
            self.budget.is_none(),
        );
        OriginPolicies {
            limiter: self
                .limiter
                .unwrap_or_else(|| Arc::new(TokenBucket::new(s.rate_limit))),
            breaker: self
                .breaker
                .unwrap_or_else(|| Arc::new(CircuitBreaker::new(s.breaker))),
            budget: self
                .budget
                .unwrap_or_else(|| Arc::new(WindowBudget::new(s.budget))),
            settings: s,
            built_in,
            budget_spent: Arc::default(),
        }
    }
}
