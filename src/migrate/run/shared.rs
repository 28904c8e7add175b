//! What every phase and worker shares, and the one way a record is migrated:
//! journal first, then a lookup on qTest, then a create; a create whose outcome
//! is unknown is resolved by looking again before creating again
//! ([`patience`](super::patience)). How each record ends is one report row:
//! created, found, skipped, failed, or waiting for its parent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::Serialize;

use super::case_cache::CaseCache;
use super::case_info::Approving;
use super::outage::Outages;
use super::progress::RunProgress;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::http::RetryPolicy;
use crate::migrate::error::{MigrateError, Reason, TransformError};
use crate::migrate::journal::Journal;
use crate::migrate::record::{Lookup, RecordKind, Target};
use crate::migrate::report::{Action, Plan, Report};
use crate::migrate::transform::{Catalog, Context};
use crate::qtest::QtestClient;
use crate::zephyr::ZephyrClient;

/// Where rows go: the report of a real run, or the plan of a dry run.
pub(crate) enum Output {
    Report(Report),
    Plan(Plan),
}

impl Output {
    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            Output::Report(r) => r.path(),
            Output::Plan(p) => p.path(),
        }
    }
}

/// Per kind and action, for the summary.
#[derive(Default)]
pub(crate) struct Tally {
    counts: [[AtomicU64; Action::COUNT]; RecordKind::ALL.len()],
}

impl Tally {
    fn add(&self, kind: RecordKind, action: Action) {
        self.counts[kind as usize][action as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, kind: RecordKind, action: Action) -> u64 {
        self.counts[kind as usize][action as usize].load(Ordering::Relaxed)
    }
}

/// The shared state of a run.
pub(crate) struct Shared {
    pub(crate) zephyr: ZephyrClient,
    pub(crate) qtest: QtestClient,
    pub(crate) catalog: Catalog,
    pub(crate) journal: Journal,
    pub(crate) out: Output,
    /// Targets given to planned records in a dry run, so their children can
    /// be transformed too.
    pub(crate) planned: RwLock<HashMap<(RecordKind, String), Target>>,
    pub(crate) tally: Tally,
    pub(crate) cancel: CancelToken,
    pub(crate) progress: RunProgress,
    /// Report rows that could not be written; the run fails at the end.
    pub(crate) output_errors: AtomicU64,
    /// The default module and cycle, made (or found) the first time a record
    /// needs them; `None` inside when that failed (and was reported).
    pub(crate) defaults: Defaults,
    /// The name, approval and steps of cases this run created or read, so
    /// their runs and logs read them at most once (about 90 bytes per case).
    pub(crate) cases: CaseCache,
    /// Cases being approved before their runs.
    pub(crate) approving: Approving,
    /// Whether and up to what size files are migrated.
    pub(crate) attachment_options: super::attachments::AttachmentOptions,
    /// The services' outages, waited out by the workers that need them.
    pub(crate) outages: Outages,
    /// How many rounds, and what backoff, a record's work gets.
    pub(crate) retry: RetryPolicy,
    /// Sync settings, and the latest execution listed.
    pub(crate) sync: super::sync::SyncState,
}

/// See [`Shared::defaults`].
#[derive(Default)]
pub(crate) struct Defaults {
    pub(crate) module: std::sync::OnceLock<Option<Target>>,
    pub(crate) cycle: std::sync::OnceLock<Option<Target>>,
}

/// What a planned row shows of a record in a dry run.
pub(crate) struct PlanInfo<'a, B: Serialize> {
    pub(crate) parent: String,
    pub(crate) name: &'a str,
    pub(crate) body: &'a B,
}

impl Lookup for Shared {
    fn target(&self, kind: RecordKind, key: &str) -> Option<Target> {
        self.journal
            .get(kind, key)
            .or_else(|| self.planned.read().get(&(kind, key.to_owned())).copied())
    }
}

impl Shared {
    /// What `kind`/`key` became, in the journal or (dry run) the plan.
    pub(crate) fn target_of(&self, kind: RecordKind, key: &str) -> Option<Target> {
        self.target(kind, key)
    }

    pub(crate) fn dry_run(&self) -> bool {
        matches!(self.out, Output::Plan(_))
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            catalog: &self.catalog,
            lookup: self,
        }
    }

    pub(crate) fn row(
        &self,
        kind: RecordKind,
        key: &str,
        target: Option<u64>,
        action: Action,
        error: &str,
    ) {
        self.tally.add(kind, action);
        self.progress.record(kind, action);
        let written = match &self.out {
            Output::Report(r) => r.row(kind, key, target, action, error),
            Output::Plan(p) => p.skipped(kind, key, error),
        };
        self.check(written);
    }

    fn check(&self, written: std::result::Result<(), MigrateError>) {
        if let Err(e) = written {
            self.output_errors.fetch_add(1, Ordering::Relaxed);
            log::error!("{}", crate::error::error_chain(&e));
        }
    }

    /// If the journal has the record, reports it as already migrated and
    /// returns its target.
    pub(crate) fn journaled(&self, kind: RecordKind, key: &str) -> Option<Target> {
        let target = self.journal.get(kind, key)?;
        self.row(
            kind,
            key,
            Some(target.id),
            Action::Skipped,
            "already migrated",
        );
        Some(target)
    }

    /// Whether the journal has the record (reported as already migrated).
    pub(crate) fn already(&self, kind: RecordKind, key: &str) -> bool {
        self.journaled(kind, key).is_some()
    }

    /// Reports a record that can't be mapped, or that waits for a parent
    /// that is not migrated (yet).
    pub(crate) fn transform_failed(&self, e: &TransformError) {
        if let Some(parent) = waits_for(&e.reason) {
            return self.waiting(e.kind, &e.key, &parent);
        }
        self.tally.add(e.kind, Action::Failed);
        self.progress.record(e.kind, Action::Failed);
        let written = match &self.out {
            Output::Report(r) => r.failed(e),
            Output::Plan(p) => p.failed(e),
        };
        self.check(written);
    }

    /// Reports a listed record that can't be read; its listing goes on.
    pub(crate) fn unreadable(&self, kind: RecordKind, bad: &crate::zephyr::BadRecord) {
        log::warn!("{kind}: {bad}");
        self.transform_failed(&TransformError::unreadable(kind, bad));
    }

    /// Reports a record whose calls failed. One cut short by the run's stop
    /// (a signal, an outage past its budget, a journal that can't be
    /// written) gets no row, like the jobs that never started: the next run
    /// does it.
    pub(crate) fn failed(&self, kind: RecordKind, key: &str, e: &Error) {
        if matches!(e, Error::Cancelled) {
            log::debug!("{kind} {key}: stopped before it was done");
            return;
        }
        log::warn!("{kind} {key}: {e}");
        self.row(
            kind,
            key,
            None,
            Action::Failed,
            &crate::error::error_chain(e),
        );
    }

    /// Reports a record that waits for `parent` (e.g. `run 10010/PROJ-T1`),
    /// not migrated yet; the next run does it.
    pub(crate) fn waiting(&self, kind: RecordKind, key: &str, parent: &str) {
        log::debug!("{kind} {key}: waiting for {parent}");
        self.tally.add(kind, Action::Waiting);
        self.progress.record(kind, Action::Waiting);
        let written = match &self.out {
            Output::Report(r) => r.waiting(kind, key, parent),
            Output::Plan(p) => p.waiting(kind, key, parent),
        };
        self.check(written);
    }

    /// Reports a record that is deliberately not migrated (e.g. a Not
    /// Executed execution).
    pub(crate) fn skipped(&self, kind: RecordKind, key: &str, why: &str) {
        self.row(kind, key, None, Action::Skipped, why);
    }

    /// Migrates one record: the journal's target if it has one; else what
    /// `find` sees on qTest; else what `create` makes. A create whose outcome
    /// is unknown (a timeout, a reset, a 5xx after sending) is followed by
    /// rounds of a fresh `find` in the parent's listing and, only if that finds
    /// nothing, another create ([`Shared::resolve`]). Failures are reported;
    /// `None` means the record has no target.
    pub(crate) fn ensure<B: Serialize>(
        &self,
        kind: RecordKind,
        key: &str,
        plan: PlanInfo<'_, B>,
        find: &dyn Fn(Fresh) -> Result<Option<Target>>,
        create: &dyn Fn() -> Result<Target>,
    ) -> Option<Target> {
        if let Some(target) = self.journaled(kind, key) {
            return Some(target);
        }
        if let Output::Plan(p) = &self.out {
            self.tally.add(kind, Action::Planned);
            self.progress.record(kind, Action::Planned);
            self.check(p.planned(kind, key, &plan.parent, plan.name, plan.body));
            let target = Target {
                id: 0,
                version_id: Some(0),
            };
            if !once_only(kind) {
                self.planned.write().insert((kind, key.to_owned()), target);
            }
            return Some(target);
        }
        match self.resolve(find, create) {
            Ok((target, action)) => {
                let journaled = match once_only(kind) {
                    true => self.journal.append_only(kind, key, target),
                    false => self.journal.record(kind, key, target),
                };
                if let Err(e) = journaled {
                    // Not journaled: a re-run finds it by lookup instead.
                    log::error!("{}", crate::error::error_chain(&e));
                    self.output_errors.fetch_add(1, Ordering::Relaxed);
                }
                self.row(kind, key, Some(target.id), action, "");
                Some(target)
            }
            Err(e) => {
                self.failed(kind, key, &e);
                None
            }
        }
    }
}

/// What a record that can't be mapped waits for, when the reason is a record
/// that is not migrated (yet) rather than the record itself.
fn waits_for(reason: &Reason) -> Option<String> {
    match reason {
        Reason::ParentNotMigrated { kind, key } => Some(format!("{kind} {key}")),
        Reason::AncestorFailed { ancestor_id } => Some(format!("folder {ancestor_id}")),
        Reason::NoDefault { setting } => Some(format!("the default container (`{setting}`)")),
        _ => None,
    }
}

/// Whether records of `kind` are looked up only by the one job that makes
/// them, and only before it makes them: test runs and logs (one job per
/// (cycle, case) pair, each execution once). They are journaled without
/// being kept in memory, where millions of them would not fit a small budget;
/// cases, cycles and folders stay, as parents of what comes later.
fn once_only(kind: RecordKind) -> bool {
    matches!(kind, RecordKind::Run | RecordKind::Log)
}

/// Whether a lookup may use a snapshot taken at the start of its phase, or
/// must ask qTest now (after a create whose outcome is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fresh {
    Snapshot,
    Live,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}
