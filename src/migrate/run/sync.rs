//! Incremental sync: what a run on an already migrated project does beyond
//! creating what is new. A journaled case whose Zephyr content changed since
//! it was sent (its fingerprint, [`RecordKind::Digest`], differs) is updated
//! on qTest, unless people changed it there since (a conflict, left alone
//! without `--overwrite`); executions are read only from the journal's
//! mark ([`RecordKind::Mark`], when the last complete run listed them) minus an overlap window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::case_info::CaseInfo;
use super::shared::Shared;
use crate::error::Result;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::report::Action;
use crate::migrate::transform::{CasePlan, ScriptShape};
use crate::migrate::verify::{held_fingerprint, sent_fingerprint};
use crate::zephyr::ExecutionFilter;

/// The journal's mark of the executions listing: when the last complete run
/// started listing them (this machine's clock, like [`CASES_MARK`]). Not
/// their latest `actualEndDate`: Zephyr takes that date from whoever
/// writes the execution, so one imported late may have ended long before.
pub(crate) const EXECUTIONS_MARK: &str = "executions";

/// The journal's mark of the cases listing: when the last complete run
/// started listing them (this machine's clock; the overlap covers a skew).
pub(crate) const CASES_MARK: &str = "cases";

/// How a run treats a project migrated before. Defaults: no overwrite, no
/// repair, a one-hour overlap, the mark used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Update cases changed in Zephyr even when people changed them on
    /// qTest since (`--overwrite`). Defaults to `false`: reported as
    /// conflicts and left alone.
    pub overwrite: bool,
    /// Check every journaled record still exists on qTest and re-create
    /// what is missing (`--repair`). Defaults to `false`.
    pub repair: bool,
    /// Read every execution, ignoring the journal's mark
    /// (`--full`). Defaults to `false`.
    pub full: bool,
    /// How far before the journal's mark executions are read again, for
    /// a clock skew with Zephyr (`sync.overlap`). Defaults to 1 hour.
    pub overlap: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            overwrite: false,
            repair: false,
            full: false,
            overlap: Duration::from_secs(3600),
        }
    }
}

impl SyncOptions {
    /// Set [`SyncOptions::overwrite`].
    pub fn overwrite(mut self, on: bool) -> Self {
        self.overwrite = on;
        self
    }

    /// Set [`SyncOptions::repair`].
    pub fn repair(mut self, on: bool) -> Self {
        self.repair = on;
        self
    }

    /// Set [`SyncOptions::full`].
    pub fn full(mut self, on: bool) -> Self {
        self.full = on;
        self
    }

    /// Set [`SyncOptions::overlap`].
    pub fn overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }
}

/// A run's sync settings and what it saw.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    pub(crate) options: SyncOptions,
    /// When this run started listing executions (unix seconds; 0: not yet).
    executions_listed: AtomicU64,
    /// Whether this run repairs (`--repair`, or an earlier repair that
    /// did not finish, see [`super::repair`]).
    pub(crate) repairing: std::sync::atomic::AtomicBool,
}

impl SyncState {
    pub(crate) fn new(options: SyncOptions) -> SyncState {
        SyncState {
            options,
            ..SyncState::default()
        }
    }
}

/// The executions listing this run starts now: those created or changed
/// since the mark minus the overlap (`updatedAfter`), or all of them (no
/// mark yet, `--full`, `--repair`).
pub(crate) fn execution_filter(s: &Shared) -> ExecutionFilter {
    s.sync
        .executions_listed
        .store(now_secs(), Ordering::Relaxed);
    ExecutionFilter {
        updated_after: since(s, EXECUTIONS_MARK),
        ..ExecutionFilter::default()
    }
}

/// Where listing `mark` starts this run: its mark minus the overlap, as
/// `yyyy-MM-dd'T'HH:mm:ss'Z'`; `None` (list everything) without a mark,
/// with `--full` or in a repair.
pub(crate) fn since(s: &Shared, mark: &str) -> Option<String> {
    let options = &s.sync.options;
    if options.full || s.sync.repairing.load(Ordering::Relaxed) {
        return None;
    }
    let since = s
        .journal
        .mark(mark)?
        .saturating_sub(options.overlap.as_secs());
    let since = time::OffsetDateTime::from_unix_timestamp(i64::try_from(since).ok()?).ok()?;
    let since = crate::migrate::transform::dates::format(since);
    log::info!(
        "listing {mark} since {since} (the last complete run's mark minus {})",
        humantime::format_duration(options.overlap)
    );
    Some(since)
}

/// Now, in unix seconds.
pub(crate) fn now_secs() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_secs())
}

/// Moves the executions mark to when this run started listing them.
pub(crate) fn advance_executions(s: &Shared, complete: bool) {
    let started = s.sync.executions_listed.load(Ordering::Relaxed);
    advance(
        s,
        EXECUTIONS_MARK,
        started,
        // A failed file of an execution is listed again with its execution.
        &[RecordKind::Run, RecordKind::Log, RecordKind::Attachment],
        complete,
    );
}

/// Moves `mark` to `secs` once every record of `kinds` this run listed was
/// done: a failed, waiting or conflicting record keeps the old mark, so the
/// next run lists it again (and reports a conflict until it is resolved).
pub(crate) fn advance(s: &Shared, mark: &str, secs: u64, kinds: &[RecordKind], complete: bool) {
    let open = kinds.iter().any(|&k| {
        [Action::Failed, Action::Waiting, Action::Conflict]
            .iter()
            .any(|&a| s.tally.get(k, a) > 0)
    });
    if !complete || open || secs == 0 || s.dry_run() || s.cancel.is_cancelled() {
        return;
    }
    if let Err(e) = s.journal.set_mark(mark, secs) {
        log::error!("{}", crate::error::error_chain(&e));
    }
}

/// A journaled case: unchanged, updated, or a conflict. The row says which;
/// whether it was updated (its texts sent again) is returned.
pub(crate) fn sync_case(
    s: &Shared,
    key: &str,
    target: Target,
    plan: &CasePlan,
    shape: ScriptShape,
) -> bool {
    let sent = sent_fingerprint(&plan.body);
    let kept = s.journal.digest(key);
    if kept == Some(sent) {
        s.row(
            RecordKind::Case,
            key,
            Some(target.id),
            Action::Skipped,
            "unchanged",
        );
        return false;
    }
    let held = match s.qtest.test_case(target.id) {
        Ok(Some(case)) => held_fingerprint(&case, &plan.body),
        Ok(None) => {
            let why =
                "missing on qTest (deleted since its migration); run `etlpool migrate --repair`";
            s.row(RecordKind::Case, key, Some(target.id), Action::Failed, why);
            return false;
        }
        Err(e) => {
            s.failed(RecordKind::Case, key, &e);
            return false;
        }
    };
    let untouched = match kept {
        // Holding what this run sends: an earlier run's `PUT` was applied
        // but its answer (and so the new fingerprint) lost to a crash or
        // reset. Nobody edited it; sending it again also approves it.
        Some(kept) => held == kept || held == sent,
        // Migrated before fingerprints were kept: adopt the case if it
        // already matches; otherwise nobody can tell which side changed.
        None if held == sent => {
            record_digest(s, key, sent);
            s.row(
                RecordKind::Case,
                key,
                Some(target.id),
                Action::Skipped,
                "unchanged",
            );
            return false;
        }
        None => false,
    };
    if !untouched && !s.sync.options.overwrite {
        let why = match kept {
            Some(_) => {
                "changed in Zephyr and on qTest since its migration; left alone (--overwrite replaces it)"
            }
            None => {
                "differs from Zephyr and no fingerprint of what was sent is journaled; left alone (--overwrite replaces it)"
            }
        };
        log::warn!("case {key}: {why}");
        s.row(
            RecordKind::Case,
            key,
            Some(target.id),
            Action::Conflict,
            why,
        );
        return false;
    }
    match update(s, key, target, plan, shape) {
        Ok(updated) => {
            record_digest(s, key, sent);
            s.row(RecordKind::Case, key, Some(updated.id), Action::Updated, "");
            true
        }
        Err(e) => {
            s.failed(RecordKind::Case, key, &e);
            false
        }
    }
}

/// `PUT`s the case with its steps, approves it again where cases are
/// approved, and journals its new version.
fn update(
    s: &Shared,
    key: &str,
    target: Target,
    plan: &CasePlan,
    shape: ScriptShape,
) -> Result<Target> {
    let mut updated = s.qtest.update_case(target.id, &plan.body)?;
    if plan.approve {
        s.qtest.approve_case(target.id)?;
        // The approved version has new step ids: read it back.
        if let Some(approved) = s.qtest.test_case(target.id)? {
            updated = approved;
        }
    }
    s.cases.insert(key, &CaseInfo::of(&updated, Some(shape)));
    let new = Target {
        id: target.id,
        version_id: updated.test_case_version_id.or(target.version_id),
    };
    // The `PUT` sent the steps: qTest replaced them.
    super::step_files::new_version(s, key, target.id, new.version_id, false);
    if let Err(e) = s.journal.record(RecordKind::Case, key, new) {
        log::error!("{}", crate::error::error_chain(&e));
    }
    Ok(new)
}

/// Keeps the fingerprint of what was sent for `key`, unless it is already kept.
pub(crate) fn record_digest(s: &Shared, key: &str, digest: u64) {
    if s.dry_run() || s.journal.digest(key) == Some(digest) {
        return;
    }
    if let Err(e) = s.journal.set_digest(key, digest) {
        log::error!("{}", crate::error::error_chain(&e));
    }
}

/// The fingerprint of a case plan's body.
pub(crate) fn fingerprint(plan: &CasePlan) -> u64 {
    sent_fingerprint(&plan.body)
}
