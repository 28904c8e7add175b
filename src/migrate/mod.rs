//! The migration from Zephyr Scale to qTest: the pure and local-file parts.
//!
//! - [`mapping`]: the configurable name maps (`[mapping]` in the config file).
//! - [`transform`]: pure functions from Zephyr records to qTest create bodies.
//! - [`journal`]: the append-only CSV journal that makes a run resumable.
//! - [`report`]: the CSV report and the dry-run plan.
//! - [`record`]: how records are named in all of them.
//! - [`verify`](mod@verify): compares a Zephyr project with qTest through their APIs.
//!
//! A runner takes the journal's lock first ([`MigrateError::is_locked`] maps
//! to exit code 5; [`LockWait`] to wait for it), checks both services, opens
//! the [`Journal`] (read-only in a dry run, so nothing is created), builds a [`transform::Catalog`] from the lookup lists and the
//! [`MappingConfig`], then for each record asks the journal, transforms with a
//! [`transform::Context`] whose lookup is the journal, creates, records the
//! target in the journal and writes a [`Report`] row. A [`TransformError`]
//! becomes a `failed` row ([`Report::failed`]) and the run goes on.

mod attached;
mod error;
pub mod journal;
mod lock;
pub mod mapping;
mod packed;
mod parallel;
pub mod record;
pub mod report;
mod run;
mod source;
#[cfg(test)]
mod test_util;
pub mod transform;
pub mod verify;

pub use error::{MigrateError, Reason, TransformError};
pub use journal::{FileJournal, Journal, JournalLock, JournalStats, JournalStore};
pub use lock::{LockHolder, LockWait};
pub use mapping::{ExecutionTarget, FieldLabels, MappingConfig};
pub use record::{Lookup, RecordKind, Target, attachment_key, run_key};
pub use report::{Action, ActionCounts, Plan, Report};
pub use run::{
    AttachmentOptions, DEFAULT_MAX_ATTACHMENT_BYTES, DEFAULT_MAX_OUTAGE, Endpoints, MigrateOptions,
    PROGRESS_TARGET, Phases, ProgressSnapshot, QtestAuth, RunHooks, RunProgress, RunSummary,
    SyncOptions, connect, migrate, migrate_with, whole_secs,
};
pub use source::{ZephyrScript, check_projects, load_lookups, read_script};
pub use transform::{Catalog, Context, Lookups};
pub use verify::{Counts, DiffKind, Difference, Verdict, VerifyOptions, VerifyReport, verify};
