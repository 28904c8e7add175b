//! How far a run is: the phase, its total and position, and the records per
//! kind and action so far.
//!
//! The runner only counts ([`RunProgress`] is a few atomics); whoever watches
//! reads [`RunProgress::snapshot`] from its own thread and at its own pace: a
//! progress bar on a terminal, a log line per interval, `/metrics`. So
//! drawing never slows a worker, and the library needs no terminal code.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::migrate::record::RecordKind;
use crate::migrate::report::{Action, ActionCounts};

/// The log target of progress lines, so a logger can show them alone.
pub const PROGRESS_TARGET: &str = "etlpool::progress";

/// Live progress of a run, shared by the runner (which counts) and its
/// watchers (which read [`snapshot`](Self::snapshot)s). Cheap to clone.
#[derive(Clone, Default)]
pub struct RunProgress {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Guards the current phase; held only to copy or replace it.
    phase: Mutex<Option<Phase>>,
    /// Records counted for the current phase.
    done: AtomicU64,
    /// Every row so far, per kind and action.
    counts: [[AtomicU64; Action::COUNT]; RecordKind::ALL.len()],
    /// Count runs, not logs, in the executions phase (`--only runs`).
    runs_only: AtomicBool,
    finished: AtomicBool,
    /// Guards when the run started.
    started: Mutex<Option<(Instant, SystemTime)>>,
}

#[derive(Clone)]
struct Phase {
    name: String,
    total: Option<u64>,
    /// The kind whose rows move this phase's position.
    counts: RecordKind,
    started: Instant,
}

/// A [`RunProgress`] at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct ProgressSnapshot {
    /// The current phase (`modules`, `cases`, `cycle folders`, `cycles`,
    /// `executions`); `None` before the first.
    pub phase: Option<String>,
    /// Records done in the phase: folders, cases, cycles, or executions (each
    /// execution is one log, created, found, skipped or failed).
    pub done: u64,
    /// Records in the phase, when the source said.
    pub total: Option<u64>,
    /// Records per second in the phase so far, whole.
    pub rate_per_sec: u64,
    /// Time left in the phase at that rate, when the total is known.
    pub eta: Option<Duration>,
    /// Time since the phase started.
    pub phase_elapsed: Duration,
    /// Time since the run started.
    pub elapsed: Duration,
    /// When the run started.
    pub started_at: Option<SystemTime>,
    /// Rows so far per record kind (`case`, `log`, ...) and action.
    pub records: BTreeMap<String, ActionCounts>,
    /// The run is over.
    pub finished: bool,
}

impl RunProgress {
    /// A new, empty progress.
    pub fn new() -> RunProgress {
        RunProgress::default()
    }

    /// Marks the start of the run.
    pub(crate) fn start(&self, runs_only: bool) {
        self.inner.runs_only.store(runs_only, Ordering::Relaxed);
        *self.inner.started.lock() = Some((Instant::now(), SystemTime::now()));
    }

    /// Starts a phase of `total` records (unknown: `None`).
    pub(crate) fn phase(&self, name: &str, total: Option<u64>) {
        let counts = match name {
            "modules" => RecordKind::Module,
            "cycle folders" => RecordKind::CycleFolder,
            "cases" => RecordKind::Case,
            "cycles" => RecordKind::Cycle,
            _ if self.inner.runs_only.load(Ordering::Relaxed) => RecordKind::Run,
            _ => RecordKind::Log,
        };
        // Executions counted as runs: one run stands for several executions.
        let total = total.filter(|_| !(name == "executions" && counts == RecordKind::Run));
        *self.inner.phase.lock() = Some(Phase {
            name: name.to_string(),
            total,
            counts,
            started: Instant::now(),
        });
        self.inner.done.store(0, Ordering::Relaxed);
        log::info!(
            "phase {name}: {} records",
            total.map_or("?".into(), |n| n.to_string())
        );
    }

    /// Counts a report (or plan) row.
    pub(crate) fn record(&self, kind: RecordKind, action: Action) {
        self.inner.counts[kind as usize][action as usize].fetch_add(1, Ordering::Relaxed);
        let counted = self.inner.phase.lock().as_ref().map(|p| p.counts);
        if counted == Some(kind) {
            self.inner.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks the end of the run.
    pub(crate) fn finish(&self) {
        self.inner.finished.store(true, Ordering::Relaxed);
    }

    /// Where the run is now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let phase = self.inner.phase.lock().clone();
        let started = *self.inner.started.lock();
        let done = self.inner.done.load(Ordering::Relaxed);
        let phase_elapsed = phase
            .as_ref()
            .map_or(Duration::ZERO, |p| p.started.elapsed());
        let total = phase.as_ref().and_then(|p| p.total);
        let rate = rate(done, phase_elapsed);
        let eta = match total {
            Some(total) if rate > 0.0 => Some(Duration::from_secs_f64(
                total.saturating_sub(done) as f64 / rate,
            )),
            _ => None,
        };
        ProgressSnapshot {
            phase: phase.map(|p| p.name),
            done,
            total,
            rate_per_sec: rate.round() as u64,
            eta,
            phase_elapsed,
            elapsed: started.map_or(Duration::ZERO, |(at, _)| at.elapsed()),
            started_at: started.map(|(_, at)| at),
            records: self.counts(),
            finished: self.inner.finished.load(Ordering::Relaxed),
        }
    }

    fn counts(&self) -> BTreeMap<String, ActionCounts> {
        RecordKind::ALL
            .into_iter()
            .map(|kind| {
                let row = &self.inner.counts[kind as usize];
                let counts = ActionCounts::from_fn(|a| row[a as usize].load(Ordering::Relaxed));
                (kind.as_str().to_string(), counts)
            })
            .collect()
    }
}

impl fmt::Debug for RunProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RunProgress")
            .field(&self.snapshot())
            .finish()
    }
}

/// Records per second; none in a phase's first 200 ms, when a rate says nothing.
fn rate(done: u64, elapsed: Duration) -> f64 {
    if elapsed < Duration::from_millis(200) {
        return 0.0;
    }
    done as f64 / elapsed.as_secs_f64()
}

impl ProgressSnapshot {
    /// Failed rows so far, all kinds.
    pub fn failed(&self) -> u64 {
        self.records.values().map(|c| c.failed).sum()
    }

    /// The phase's share done, 0 to 1, when its total is known.
    pub fn ratio(&self) -> Option<f64> {
        match self.total {
            Some(0) => Some(1.0),
            Some(total) => Some((self.done as f64 / total as f64).min(1.0)),
            None => None,
        }
    }

    /// Logs this snapshot at INFO under [`PROGRESS_TARGET`], with its numbers
    /// as fields for structured logs.
    pub fn log(&self) {
        let phase = self.phase.as_deref().unwrap_or("starting");
        log::info!(
            target: PROGRESS_TARGET,
            phase = phase,
            done = self.done,
            total = self.total.unwrap_or(0),
            rate_per_sec = self.rate_per_sec,
            eta_secs = self.eta.map_or(0, |d| d.as_secs()),
            failed = self.failed();
            "{self}"
        );
    }
}

/// `cases: 120/300 (40%), 35/s, ETA 5s, 2 failed so far`.
impl fmt::Display for ProgressSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(phase) = &self.phase else {
            return f.write_str("starting");
        };
        write!(f, "{phase}: ")?;
        match (self.total, self.ratio()) {
            (Some(total), Some(ratio)) => {
                write!(f, "{}/{total} ({:.0}%)", self.done, ratio * 100.0)?
            }
            _ => write!(f, "{} done", self.done)?,
        }
        write!(f, ", {}/s", self.rate_per_sec)?;
        if let Some(eta) = self.eta {
            write!(f, ", ETA {}", humantime::format_duration(whole_secs(eta)))?;
        }
        match self.failed() {
            0 => Ok(()),
            n => write!(f, ", {n} failed so far"),
        }
    }
}

/// A duration to the second, for people.
pub fn whole_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_count_logs_against_executions_not_runs_plus_logs() {
        let p = RunProgress::new();
        p.start(false);
        p.phase("executions", Some(3));
        p.record(RecordKind::Run, Action::Created);
        for _ in 0..3 {
            p.record(RecordKind::Log, Action::Created);
        }
        let s = p.snapshot();
        assert_eq!((s.done, s.total), (3, Some(3)));
        assert_eq!(s.records["run"].created, 1);
        assert_eq!(s.records["log"].created, 3);
    }

    #[test]
    fn runs_only_counts_runs_with_no_total() {
        let p = RunProgress::new();
        p.start(true);
        p.phase("executions", Some(10));
        p.record(RecordKind::Run, Action::Found);
        let s = p.snapshot();
        assert_eq!((s.done, s.total, s.eta), (1, None, None));
    }

    #[test]
    fn rates_are_whole_and_the_line_has_an_eta() {
        let s = ProgressSnapshot {
            phase: Some("cases".into()),
            done: 120,
            total: Some(300),
            rate_per_sec: 35,
            eta: Some(Duration::from_millis(5_140)),
            phase_elapsed: Duration::from_secs(3),
            elapsed: Duration::from_secs(9),
            started_at: None,
            records: BTreeMap::new(),
            finished: false,
        };
        assert_eq!(s.to_string(), "cases: 120/300 (40%), 35/s, ETA 5s");
        assert_eq!(rate(7, Duration::from_millis(100)), 0.0);
        assert_eq!(rate(7, Duration::from_millis(500)), 14.0);
        assert_eq!(rate(30, Duration::from_secs(4)).round() as u64, 8);
    }
}
