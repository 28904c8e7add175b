//! Pure functions from Zephyr records to qTest create bodies, following the
//! mapping table of the API contract (section 3).
//!
//! Nothing here does I/O. What a transform needs to know about the world comes
//! in through a [`Context`]: the [`Catalog`] (lookup lists resolved by name,
//! and the configured mapping) and a [`Lookup`] of what is already migrated
//! (the journal, or a map in a dry run). A record that can't be mapped gives a
//! [`TransformError`] naming it and the reason; nothing panics and nothing is
//! skipped silently. Zephyr values without a qTest field are appended to the
//! description (or a log's note) under "Zephyr fields:".
//!
//! The runner's order: [`folder_order`] then [`module_plan`] /
//! [`cycle_folder_plan`] per folder, [`case_plan`] per case, [`cycle_plan`]
//! per cycle, then per (cycle, case) pair [`run_plan`] and, for its executions
//! sorted by [`sort_for_logs`], [`log_plan`] with the case's [`step_layout`].

mod case;
mod catalog;
mod cycle;
pub(crate) mod dates;
mod execution;
mod fields;
mod folders;
mod links;
mod steps;
mod text;

#[cfg(test)]
mod fixtures;

pub use case::{CasePlan, CaseScript, case_plan, test_steps};
pub use catalog::{Catalog, Lookups};
pub use cycle::{CyclePlan, cycle_key, cycle_plan};
pub use execution::{LogPlan, RunPlan, executed_case, log_plan, run_plan, sort_for_logs};
pub use folders::{ModulePlan, cycle_folder_plan, folder_order, module_plan};
pub use links::{JIRA_ISSUES, TEST_PLANS, WEB_LINKS, ZephyrContext};
pub use steps::{CaseSteps, ScriptShape, StepLayout, StepRef, StepSlot, StepSource, step_layout};

use super::error::{Reason, TransformError};
use super::record::{Lookup, RecordKind, Target};

/// Source key under which the runner records the default module (for cases in
/// no folder) and the default cycle (for executions in no cycle). Folder and
/// cycle keys are numeric ids, so it can't collide with them.
pub const DEFAULT_KEY: &str = "default";

/// Whether two timestamps name the same instant (qTest may echo a date in
/// another format than the one sent); unparsable ones compare as text.
pub fn same_instant(a: &str, b: &str) -> bool {
    match (dates::parse(a), dates::parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// What every transform needs: the resolved lookups and what is migrated.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Lookup lists and the mapping.
    pub catalog: &'a Catalog,
    /// What earlier records became.
    pub lookup: &'a dyn Lookup,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("catalog", self.catalog)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// The target of a record this one depends on, or why there is none.
    fn required(&self, kind: RecordKind, key: &str) -> Result<Target, Reason> {
        self.lookup
            .target(kind, key)
            .ok_or_else(|| Reason::ParentNotMigrated {
                kind,
                key: key.to_owned(),
            })
    }

    /// The target of the configured default container of `kind`.
    fn default_target(&self, kind: RecordKind, setting: &'static str) -> Result<Target, Reason> {
        self.lookup
            .target(kind, DEFAULT_KEY)
            .ok_or(Reason::NoDefault { setting })
    }
}

/// Wraps a [`Reason`] with the record it is about.
fn fail(kind: RecordKind, key: &str) -> impl Fn(Reason) -> TransformError + '_ {
    move |reason| TransformError::new(kind, key, reason)
}
