//! The CSV report of a run (one row per record and what happened to it) and
//! the plan of a dry run (one row per record and what would be sent).
//!
//! Both are written by many workers at once. Each row is encoded outside any
//! lock and written with one `write` under a mutex, so rows never interleave
//! and a crash loses at most the row being written. Unlike the journal, they
//! are not synced row by row: they are outputs, not the resume state.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

use super::error::{MigrateError, TransformError};
use super::record::RecordKind;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Created on qTest by this run.
    Created,
    /// Already on qTest (in the journal, or found by lookup).
    Found,
    /// Deliberately not migrated (e.g. a Not Executed execution gets no log).
    Skipped,
    /// Could not be migrated; the error column says why.
    Failed,
    /// Would be created (dry run).
    Planned,
    /// Not done in this run because of something outside the record: its
    /// parent (or an earlier log of its run) is not migrated yet. The error
    /// column names what it waits for; the next run does it.
    Waiting,
    /// Changed in Zephyr since its migration and updated on qTest (a sync).
    Updated,
    /// Changed in Zephyr and also changed on qTest by people since its
    /// migration: left alone (a sync without `--overwrite`).
    Conflict,
}

impl Action {
    /// How many actions there are (counters are arrays indexed by action).
    pub(crate) const COUNT: usize = 8;
}

/// Rows written per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct ActionCounts {
    /// Created.
    pub created: u64,
    /// Found.
    pub found: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
    /// Planned.
    pub planned: u64,
    /// Waiting for a parent (or an earlier log of their run).
    pub waiting: u64,
    /// Updated (a sync).
    pub updated: u64,
    /// Conflicting (a sync): changed on both sides, left alone.
    pub conflict: u64,
}

impl ActionCounts {
    /// Counts read per action from `get`.
    pub(crate) fn from_fn(get: impl Fn(Action) -> u64) -> ActionCounts {
        ActionCounts {
            created: get(Action::Created),
            found: get(Action::Found),
            skipped: get(Action::Skipped),
            failed: get(Action::Failed),
            planned: get(Action::Planned),
            waiting: get(Action::Waiting),
            updated: get(Action::Updated),
            conflict: get(Action::Conflict),
        }
    }
}

/// A CSV file written row by row from many threads.
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    /// Guards the file; held only for the write of one row.
    file: Mutex<File>,
    counts: [AtomicU64; Action::COUNT],
}

impl Sink {
    fn create(path: &Path, header: &str) -> Result<Sink, MigrateError> {
        let file = File::create(path)
            .map_err(|e| MigrateError::io(format!("writing {}", path.display()), e))?;
        Sink::start(path.to_owned(), file, header)
    }

    /// Creates the first per-run name ([`per_run_path`]) that no file has, in one
    /// step (`create_new`), so two runs never get the same name, however
    /// close together they start.
    fn claim(base: &Path, at: SystemTime, header: &str) -> Result<Sink, MigrateError> {
        let named = per_run_names(base, at);
        for n in 1.. {
            let path = named(n);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Sink::start(path, file, header),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(MigrateError::io(format!("writing {}", path.display()), e));
                }
            }
        }
        Err(MigrateError::io(
            format!("writing {}", base.display()),
            std::io::Error::other("every per-run name is taken"),
        ))
    }

    fn start(path: PathBuf, mut file: File, header: &str) -> Result<Sink, MigrateError> {
        file.write_all(format!("{header}\n").as_bytes())
            .map_err(|e| MigrateError::io(format!("writing {}", path.display()), e))?;
        Ok(Sink {
            path,
            file: Mutex::new(file),
            counts: Default::default(),
        })
    }

    fn write<R: Serialize>(&self, action: Action, row: &R) -> Result<(), MigrateError> {
        let line = encode_row(row).map_err(|e| {
            MigrateError::io(format!("encoding a row of {}", self.path.display()), e)
        })?;
        self.file
            .lock()
            .write_all(&line)
            .map_err(|e| MigrateError::io(format!("writing {}", self.path.display()), e))?;
        self.counts[action as usize].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn counts(&self) -> ActionCounts {
        ActionCounts::from_fn(|a| self.counts[a as usize].load(Ordering::Relaxed))
    }

    fn finish(self) -> Result<ActionCounts, MigrateError> {
        let counts = self.counts();
        let file = self.file.into_inner();
        file.sync_all()
            .map_err(|e| MigrateError::io(format!("syncing {}", self.path.display()), e))?;
        Ok(counts)
    }
}

/// The file a run started at `at` writes its report (or plan) to, so no run
/// overwrites an earlier one's: `PROJ.report.csv` becomes
/// `PROJ.report.20250101T021500Z.csv` (UTC). A name already taken (two runs
/// in one second) gets `-2`, `-3`, ... before the extension.
pub fn per_run_path(base: &Path, at: SystemTime) -> PathBuf {
    let named = per_run_names(base, at);
    (1..)
        .map(&named)
        .find(|p| !p.exists())
        .unwrap_or_else(|| named(1))
}

/// The `n`-th name [`per_run_path`] picks from: no suffix for 1, then `-2`,
/// `-3`, ...
fn per_run_names(base: &Path, at: SystemTime) -> impl Fn(u32) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(at)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let (stem, ext) = match (base.file_stem(), base.extension()) {
        (Some(stem), Some(ext)) => (
            stem.to_string_lossy().into_owned(),
            format!(".{}", ext.to_string_lossy()),
        ),
        _ => (
            base.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "report".into()),
            String::new(),
        ),
    };
    let base = base.to_owned();
    move |n: u32| {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        base.with_file_name(format!("{stem}.{stamp}{suffix}{ext}"))
    }
}

/// Encodes one CSV line (quoted as needed, newline-terminated).
pub(crate) fn encode_row<R: Serialize>(row: &R) -> std::io::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.serialize(row).map_err(std::io::Error::other)?;
    writer.into_inner().map_err(|e| e.into_error())
}

/// The header of the report.
pub const REPORT_HEADER: &str = "kind,source_key,target_id,action,error";

#[derive(Serialize)]
struct ReportRow<'a> {
    kind: &'static str,
    source_key: &'a str,
    target_id: Option<u64>,
    action: Action,
    error: &'a str,
}

/// The CSV report: `kind,source_key,target_id,action,error`. Share it between
/// workers by reference or `Arc`.
#[derive(Debug)]
pub struct Report(Sink);

impl Report {
    /// Creates (or truncates) the report at `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Report, MigrateError> {
        Sink::create(path.as_ref(), REPORT_HEADER).map(Report)
    }

    /// Creates the report of a run started at `at` under a name of its own
    /// ([`per_run_path`] of `base`), taken in one step: a run queued behind
    /// another one that started in the same second gets `-2`, never the
    /// other's file.
    pub fn create_per_run(base: impl AsRef<Path>, at: SystemTime) -> Result<Report, MigrateError> {
        Sink::claim(base.as_ref(), at, REPORT_HEADER).map(Report)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Writes one row.
    pub fn row(
        &self,
        kind: RecordKind,
        source_key: &str,
        target_id: Option<u64>,
        action: Action,
        error: &str,
    ) -> Result<(), MigrateError> {
        let row = ReportRow {
            kind: kind.as_str(),
            source_key,
            target_id,
            action,
            error,
        };
        self.0.write(action, &row)
    }

    /// Writes a `failed` row for a record that can't be mapped.
    pub fn failed(&self, error: &TransformError) -> Result<(), MigrateError> {
        let reason = error.reason.to_string();
        self.row(error.kind, &error.key, None, Action::Failed, &reason)
    }

    /// Writes a `waiting` row: the record waits for `on` (e.g. `case
    /// PROJ-T1`), which is not migrated yet.
    pub fn waiting(
        &self,
        kind: RecordKind,
        source_key: &str,
        on: &str,
    ) -> Result<(), MigrateError> {
        self.row(kind, source_key, None, Action::Waiting, &waiting_for(on))
    }

    /// Rows written so far, per action.
    pub fn counts(&self) -> ActionCounts {
        self.0.counts()
    }

    /// Syncs the file and returns the final counts.
    pub fn finish(self) -> Result<ActionCounts, MigrateError> {
        self.0.finish()
    }
}

/// The error column of a `waiting` row.
fn waiting_for(on: &str) -> String {
    format!("waiting for {on}")
}

/// The header of a dry run's plan.
pub const PLAN_HEADER: &str = "kind,source_key,action,parent,name,body,error";

#[derive(Serialize)]
struct PlanRow<'a> {
    kind: &'static str,
    source_key: &'a str,
    action: Action,
    parent: &'a str,
    name: &'a str,
    body: &'a str,
    error: &'a str,
}

impl<'a> PlanRow<'a> {
    fn new(kind: RecordKind, source_key: &'a str, action: Action) -> Self {
        PlanRow {
            kind: kind.as_str(),
            source_key,
            action,
            parent: "",
            name: "",
            body: "",
            error: "",
        }
    }
}

/// A dry run's plan: `kind,source_key,action,parent,name,body,error`, where
/// `body` is the JSON that would be sent and `parent` says where to.
#[derive(Debug)]
pub struct Plan(Sink);

impl Plan {
    /// Creates (or truncates) the plan at `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Plan, MigrateError> {
        Sink::create(path.as_ref(), PLAN_HEADER).map(Plan)
    }

    /// [`Report::create_per_run`] for a plan.
    pub fn create_per_run(base: impl AsRef<Path>, at: SystemTime) -> Result<Plan, MigrateError> {
        Sink::claim(base.as_ref(), at, PLAN_HEADER).map(Plan)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Writes a `planned` row with the body that would be sent.
    pub fn planned<B: Serialize>(
        &self,
        kind: RecordKind,
        source_key: &str,
        parent: &str,
        name: &str,
        body: &B,
    ) -> Result<(), MigrateError> {
        let body = serde_json::to_string(body)
            .map_err(|e| MigrateError::io("encoding a planned body", e.into()))?;
        let row = PlanRow {
            parent,
            name,
            body: &body,
            ..PlanRow::new(kind, source_key, Action::Planned)
        };
        self.0.write(Action::Planned, &row)
    }

    /// Writes a `skipped` row (e.g. an execution that gets no log).
    pub fn skipped(
        &self,
        kind: RecordKind,
        source_key: &str,
        why: &str,
    ) -> Result<(), MigrateError> {
        let row = PlanRow {
            error: why,
            ..PlanRow::new(kind, source_key, Action::Skipped)
        };
        self.0.write(Action::Skipped, &row)
    }

    /// Writes a `failed` row for a record that can't be mapped.
    pub fn failed(&self, error: &TransformError) -> Result<(), MigrateError> {
        let reason = error.reason.to_string();
        let row = PlanRow {
            error: &reason,
            ..PlanRow::new(error.kind, &error.key, Action::Failed)
        };
        self.0.write(Action::Failed, &row)
    }

    /// Writes a `waiting` row (see [`Report::waiting`]).
    pub fn waiting(
        &self,
        kind: RecordKind,
        source_key: &str,
        on: &str,
    ) -> Result<(), MigrateError> {
        let why = waiting_for(on);
        let row = PlanRow {
            error: &why,
            ..PlanRow::new(kind, source_key, Action::Waiting)
        };
        self.0.write(Action::Waiting, &row)
    }

    /// Rows written so far, per action.
    pub fn counts(&self) -> ActionCounts {
        self.0.counts()
    }

    /// Syncs the file and returns the final counts.
    pub fn finish(self) -> Result<ActionCounts, MigrateError> {
        self.0.finish()
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
