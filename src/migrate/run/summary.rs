//! What a run did, for people (`Display`) and for schedulers (JSON).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::metrics::Snapshot;
use crate::migrate::record::RecordKind;
use crate::migrate::report::ActionCounts;

/// The outcome of [`migrate`](super::migrate). Serialised as the
/// `--summary-json` file; its shape is pinned by
/// `tests/it/snapshots/summary-shape.json` (inside the binary's
/// `--summary-json` document).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// Nothing was written to qTest: a plan was made instead.
    pub dry_run: bool,
    /// SIGINT or SIGTERM stopped the run; what was done is journaled.
    pub interrupted: bool,
    /// A failure that stopped the run early (e.g. Zephyr stayed unreachable);
    /// a re-run resumes.
    pub aborted: Option<String>,
    /// A circuit breaker was still open at the end.
    pub breaker_open: bool,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// Rows per record kind and action.
    pub records: BTreeMap<String, ActionCounts>,
    /// Failed records in total (each is a `failed` row of the report).
    pub failed: u64,
    /// Records waiting for a parent (or an earlier log of their run) that is
    /// not migrated yet, in total (each is a `waiting` row): the next run
    /// does them.
    pub waiting: u64,
    /// Jobs that were queued but not run because the run was interrupted.
    pub not_run: u64,
    /// Jobs that panicked (a bug: their records have no report row).
    pub panicked: u64,
    /// The journal.
    pub journal: PathBuf,
    /// The report (or, in a dry run, the plan).
    pub report: PathBuf,
    /// HTTP requests sent, connections opened and reused, and the rest of the
    /// pool's counters.
    pub metrics: Snapshot,
}

impl RunSummary {
    /// Whether everything asked for was done: no failure, nothing waiting, no
    /// interruption, no open breaker.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.waiting == 0 && self.ran_through()
    }

    /// Whether the run did all it could: nothing left unrun, no interruption,
    /// no open breaker (records may still have failed or be waiting).
    fn ran_through(&self) -> bool {
        self.not_run == 0
            && self.panicked == 0
            && !self.interrupted
            && self.aborted.is_none()
            && !self.breaker_open
    }

    /// The summary of a run that never started (a failed start): nothing
    /// done, and the pool's metrics (the failed calls) as they are.
    pub fn not_started(
        dry_run: bool,
        journal: PathBuf,
        report: PathBuf,
        metrics: Snapshot,
    ) -> Self {
        let records = RecordKind::ALL
            .into_iter()
            .map(|kind| (kind.as_str().to_string(), ActionCounts::default()))
            .collect();
        RunSummary {
            dry_run,
            interrupted: false,
            aborted: None,
            breaker_open: false,
            elapsed_secs: 0.0,
            records,
            failed: 0,
            waiting: 0,
            not_run: 0,
            panicked: 0,
            journal,
            report,
            metrics,
        }
    }

    /// Rows per kind and action, and the failed rows in total.
    pub(crate) fn counts(tally: &super::shared::Tally) -> (BTreeMap<String, ActionCounts>, u64) {
        let mut records = BTreeMap::new();
        let mut failed = 0;
        for kind in RecordKind::ALL {
            let counts = ActionCounts::from_fn(|a| tally.get(kind, a));
            failed += counts.failed;
            records.insert(kind.as_str().to_string(), counts);
        }
        (records, failed)
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.interrupted {
            "interrupted; re-run to resume"
        } else if self.aborted.is_some() {
            "stopped early; re-run to resume"
        } else if self.failed == 0 && self.waiting > 0 && self.ran_through() {
            "finished with records waiting for others; re-run to do them"
        } else if !self.is_complete() {
            "finished with failures; re-run to retry them"
        } else if self.dry_run {
            "dry run complete"
        } else {
            "complete"
        };
        writeln!(f, "migration {verdict} in {:.1} s", self.elapsed_secs)?;
        if let Some(why) = &self.aborted {
            writeln!(f, "  stopped by: {why}")?;
        }
        writeln!(
            f,
            "  {:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "",
            "created",
            "found",
            "skipped",
            "failed",
            "waiting",
            "planned",
            "updated",
            "conflict"
        )?;
        for (kind, c) in &self.records {
            writeln!(
                f,
                "  {kind:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                c.created,
                c.found,
                c.skipped,
                c.failed,
                c.waiting,
                c.planned,
                c.updated,
                c.conflict
            )?;
        }
        if self.not_run > 0 || self.panicked > 0 {
            writeln!(
                f,
                "  not run: {}, panicked: {}",
                self.not_run, self.panicked
            )?;
        }
        if self.breaker_open {
            writeln!(f, "  a circuit breaker is still open")?;
        }
        let t = &self.metrics.total;
        writeln!(
            f,
            "  http: {} requests, {} connections opened, {} reused, {} retries, {} rate-limit waits",
            t.requests_sent,
            t.connections_created,
            t.connections_reused,
            t.retries.values().sum::<u64>(),
            t.rate_limit_waits
        )?;
        for (origin, o) in &self.metrics.origins {
            let closed: Vec<String> = o
                .connections_closed
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            writeln!(
                f,
                "    {origin}: {} requests on {} connections, closed [{}], latency p50 {:.1} ms p99 {:.1} ms",
                o.requests_sent,
                o.connections_created,
                closed.join(", "),
                o.request_latency.p50_us as f64 / 1e3,
                o.request_latency.p99_us as f64 / 1e3
            )?;
        }
        write!(
            f,
            "  journal {}; report {}",
            self.journal.display(),
            self.report.display()
        )
    }
}
