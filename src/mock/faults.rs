//! Fault injection switches: seeded, changeable at run time, exact at rates 0 and 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::server::HttpServer;

/// Longest latency or jitter accepted: beyond it a client would just look hung.
const MAX_LATENCY: Duration = Duration::from_secs(600);

/// When an injected 5xx hits a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailPoint {
    /// The write is not applied (a clean failure).
    #[default]
    Before,
    /// The write is applied, then answered with a 5xx: the client can't know it happened.
    After,
}

/// One server's faults. Every rate is a probability in `0.0..=1.0`; 0 never and 1 always fires.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Added to every answer. Defaults to 0.
    pub latency: Duration,
    /// Up to this much more, uniformly drawn per request. Defaults to 0.
    pub latency_jitter: Duration,
    /// Share of requests answered with [`fail_status`](Self::fail_status). Defaults to 0.
    pub fail_rate: f64,
    /// Status of injected failures. Defaults to 503.
    pub fail_status: u16,
    /// Whether a failing write is applied first. Defaults to [`FailPoint::Before`].
    pub fail_point: FailPoint,
    /// Answer 429 with `Retry-After` above this many requests per second; also turns on the
    /// rate-limit headers. Defaults to none.
    pub rate_limit: Option<u32>,
    /// Close keep-alive connections idle longer than this. Defaults to never.
    pub idle_close: Option<Duration>,
    /// Share of responses sent with `Connection: close`. Defaults to 0.
    pub close_rate: f64,
    /// Share of responses cut off mid-body by a reset. Defaults to 0.
    pub reset_rate: f64,
    /// Share of applied writes answered by a reset instead of a response. Defaults to 0.
    pub reset_after_write_rate: f64,
    /// Share of responses whose JSON body is cut in half. Defaults to 0.
    pub malformed_rate: f64,
    /// Crash (reset, stop listening) after this many more applied writes. Defaults to never.
    pub crash_after_writes: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            fail_rate: 0.0,
            fail_status: 503,
            fail_point: FailPoint::Before,
            rate_limit: None,
            idle_close: None,
            close_rate: 0.0,
            reset_rate: 0.0,
            reset_after_write_rate: 0.0,
            malformed_rate: 0.0,
            crash_after_writes: None,
        }
    }
}

impl FaultConfig {
    /// Checks rates and statuses; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("fail_rate", self.fail_rate),
            ("close_rate", self.close_rate),
            ("reset_rate", self.reset_rate),
            ("reset_after_write_rate", self.reset_after_write_rate),
            ("malformed_rate", self.malformed_rate),
        ];
        if let Some((name, v)) = rates.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(format!("{name} must be within 0..=1, got {v}"));
        }
        if !(500..=599).contains(&self.fail_status) {
            return Err(format!(
                "fail_status must be a 5xx, got {}",
                self.fail_status
            ));
        }
        if self.latency > MAX_LATENCY || self.latency_jitter > MAX_LATENCY {
            return Err(format!(
                "latency and latency_jitter must be at most {MAX_LATENCY:?}"
            ));
        }
        if self.rate_limit == Some(0) {
            return Err("rate_limit must be at least 1 request per second".to_string());
        }
        Ok(())
    }
}

/// What the dice decided for one request.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Plan {
    pub latency: Duration,
    pub fail: Option<(u16, FailPoint)>,
    pub rate_limit: Option<u32>,
    pub close: bool,
    pub reset: bool,
    pub reset_after_write: bool,
    pub malformed: bool,
}

/// The run-time switches of one mock server; cheap to clone, shared with its request handler.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

struct Inner {
    // Guards the configuration and the dice together, so one request's rolls come from one
    // consistent configuration.
    state: Mutex<(FaultConfig, fastrand::Rng)>,
    /// Applied writes since the crash switch was last set.
    writes: AtomicU64,
    crashed: AtomicBool,
    /// The running server, for the idle-close switch; replaced on restart.
    server: Mutex<std::sync::Weak<HttpServer>>,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig, seed: u64) -> Self {
        let inner = Inner {
            state: Mutex::new((config, fastrand::Rng::with_seed(seed))),
            writes: AtomicU64::new(0),
            crashed: AtomicBool::new(false),
            server: Mutex::new(std::sync::Weak::new()),
        };
        Faults {
            inner: Arc::new(inner),
        }
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.inner.state.lock().0.clone()
    }

    /// Replaces the whole configuration; an invalid one is refused and nothing changes.
    pub fn set(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        let idle = config.idle_close;
        self.inner.state.lock().0 = config;
        self.inner.writes.store(0, Ordering::SeqCst);
        if let Some(server) = self.inner.server.lock().upgrade() {
            server.set_idle_close(idle);
        }
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut FaultConfig)) {
        let mut config = self.config();
        f(&mut config);
        if let Err(e) = self.set(config) {
            // Setters clamp their input, so this only logs a programming error.
            log::error!("mock faults: {e}");
        }
    }

    /// Sets the latency: `fixed` plus up to `jitter` more.
    pub fn set_latency(&self, fixed: Duration, jitter: Duration) {
        self.update(|c| (c.latency, c.latency_jitter) = (fixed, jitter));
    }

    /// Answers `rate` of requests with a 5xx, applied `point` for writes.
    pub fn set_fail_rate(&self, rate: f64, point: FailPoint) {
        self.update(|c| (c.fail_rate, c.fail_point) = (clamp(rate), point));
    }

    /// Answers 429 above `per_second` requests per second (`None`: no limit, no headers).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.update(|c| c.rate_limit = per_second.map(|n| n.max(1)));
    }

    /// Closes keep-alive connections idle longer than `idle`.
    pub fn set_idle_close(&self, idle: Option<Duration>) {
        self.update(|c| c.idle_close = idle);
    }

    /// Sends `Connection: close` on `rate` of responses.
    pub fn set_close_rate(&self, rate: f64) {
        self.update(|c| c.close_rate = clamp(rate));
    }

    /// Resets `rate` of responses in the middle of their body.
    pub fn set_reset_rate(&self, rate: f64) {
        self.update(|c| c.reset_rate = clamp(rate));
    }

    /// Resets `rate` of applied writes before answering them.
    pub fn set_reset_after_write_rate(&self, rate: f64) {
        self.update(|c| c.reset_after_write_rate = clamp(rate));
    }

    /// Cuts the JSON body of `rate` of responses in half.
    pub fn set_malformed_rate(&self, rate: f64) {
        self.update(|c| c.malformed_rate = clamp(rate));
    }

    /// Crashes after `writes` more applied writes (`None`: never).
    pub fn set_crash_after_writes(&self, writes: Option<u64>) {
        self.update(|c| c.crash_after_writes = writes);
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.update(|c| *c = FaultConfig::default());
    }

    /// Whether the server crashed and has not been restarted.
    pub fn crashed(&self) -> bool {
        self.inner.crashed.load(Ordering::SeqCst)
    }

    pub(crate) fn attach(&self, server: &Arc<HttpServer>) {
        *self.inner.server.lock() = Arc::downgrade(server);
        self.inner.crashed.store(false, Ordering::SeqCst);
    }

    /// Rolls every die for one request.
    pub(crate) fn plan(&self) -> Plan {
        let mut guard = self.inner.state.lock();
        let (config, rng) = &mut *guard;
        let jitter = match config.latency_jitter.as_nanos() {
            0 => Duration::ZERO,
            n => Duration::from_nanos(rng_u64(rng, n)),
        };
        let mut roll = |rate: f64| rate >= 1.0 || (rate > 0.0 && rng.f64() < rate);
        Plan {
            latency: config.latency + jitter,
            fail: roll(config.fail_rate).then_some((config.fail_status, config.fail_point)),
            rate_limit: config.rate_limit,
            close: roll(config.close_rate),
            reset: roll(config.reset_rate),
            reset_after_write: roll(config.reset_after_write_rate),
            malformed: roll(config.malformed_rate),
        }
    }

    /// Counts an applied write; true when it is the one that crashes the server, which then
    /// stays crashed (and the switch disarmed) until restarted.
    pub(crate) fn count_write(&self) -> bool {
        let writes = self.inner.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let mut guard = self.inner.state.lock();
        match guard.0.crash_after_writes {
            Some(k) if writes >= k => {
                guard.0.crash_after_writes = None;
                self.inner.crashed.store(true, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }
}

fn rng_u64(rng: &mut fastrand::Rng, upper: u128) -> u64 {
    rng.u64(0..=u64::try_from(upper).unwrap_or(u64::MAX))
}

fn clamp(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

impl Faults {
    /// Stops the attached server from another thread: a handler can't join its own server.
    pub(crate) fn crash_server(&self) {
        if let Some(server) = self.inner.server.lock().upgrade() {
            let spawned = std::thread::Builder::new()
                .name("mock-crash".to_string())
                .spawn(move || server.shutdown());
            if let Err(e) = spawned {
                log::error!("mock faults: cannot spawn the crash thread: {e}");
            }
        }
    }
}
