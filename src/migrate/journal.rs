//! The journal: an append-only CSV file of what each record became on qTest,
//! the source of truth when a run resumes.
//!
//! ```text
//! kind,source_key,target_id,version_id
//! module,100006,2107619,
//! case,PROJ-T1,55001,88001
//! case,PROJ-T1,,
//! ```
//!
//! A line without a target id is a tombstone: the record was found missing
//! on qTest (a repair) and is forgotten, so a later run makes it again even
//! when this one stops before it does; a later line of the record supersedes
//! the tombstone, as any later line supersedes an earlier one.
//!
//! Each line is written with one `write` as soon as its record exists, so a
//! crash loses at most the line being written; the file is `sync_data`ed by a
//! background thread at least every [`SYNC_INTERVAL`] and again on close. A
//! crash can leave the last line torn (no final newline): opening ignores it,
//! cuts it off so the next append starts on a fresh line, and counts it, and
//! its record is re-resolved by lookup on qTest. A malformed line anywhere
//! else means the file was damaged or edited and is a hard error naming the
//! line. A lock file keeps two runs from sharing one journal.
//!
//! Where the records are kept is behind a small interface: a [`Journal`]
//! holds the index of records, the first failure and the lock, and hands
//! each record to its backend (the file here; with the `redis` feature a
//! hash in Redis, so a project resumed on another machine finds its
//! records). A [`JournalStore`] says where a run's journal lives and how it
//! is locked; [`FileJournal`] is the file next to its `.lock`. Every backend
//! keeps the same rules: a record is stored before it is reported, the first
//! failed write puts the journal out of service and stops the run.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};

use super::error::MigrateError;
use super::lock::{LockFile, LockWait};
use super::record::{Lookup, RecordKind, Target};
use super::report::encode_row;
use crate::cancel::CancelToken;

/// The first line of every journal.
pub const HEADER: &str = "kind,source_key,target_id,version_id";

/// Longest time an appended line waits for `sync_data`; half the promised
/// second, so a slow sync still keeps the promise.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// A record's kind and source key.
pub(crate) type Key = (RecordKind, String);

/// An open, locked journal. Share it between workers by reference or `Arc`;
/// every method takes `&self`.
///
/// The first write or sync that fails puts the journal out of service: every
/// later [`Journal::record`] fails without writing, [`Journal::failure`] says
/// why, and the token given to [`Journal::stop_on_failure`] is cancelled, so
/// the run stops instead of creating records it could not journal.
#[derive(Debug)]
pub struct Journal {
    /// The file, or for a journal kept elsewhere the local path its run names
    /// its scratch files after (see [`Journal::path`]).
    path: PathBuf,
    /// Where the records go; `None` for a read-only journal.
    backend: Option<Box<dyn JournalBackend>>,
    /// Guards the index of loaded and appended records; never held during I/O.
    entries: RwLock<HashMap<Key, Target>>,
    shared: Arc<Shared>,
    torn_lines: u64,
    lock: Option<JournalLock>,
}

/// Where an open journal's records are written: the durable half of a
/// [`Journal`], which keeps the index, the first failure and the lock.
pub(crate) trait JournalBackend: fmt::Debug + Send + Sync {
    /// Stores one record before returning, as durably as the backend
    /// promises (the file: written, synced within [`SYNC_INTERVAL`]).
    fn append(&self, kind: RecordKind, key: &str, target: Target) -> std::io::Result<()>;
    /// Stores that a record is forgotten (a tombstone), as durably as
    /// [`JournalBackend::append`] stores a record.
    fn forget(&self, kind: RecordKind, key: &str) -> std::io::Result<()>;
    /// Makes what was appended durable now.
    fn sync(&self) -> std::io::Result<()>;
    /// Stops background work; [`JournalBackend::sync`] follows.
    fn stop(&mut self) {}
}

/// A held journal lock (the file's `flock`, or a Redis key with an expiry
/// kept fresh while it is held); released when dropped.
pub struct JournalLock(Box<dyn fmt::Debug + Send + Sync>);

impl JournalLock {
    pub(crate) fn new(held: impl fmt::Debug + Send + Sync + 'static) -> JournalLock {
        JournalLock(Box::new(held))
    }
}

impl fmt::Debug for JournalLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a run's journal lives and how it is locked: what a runner asks for
/// a journal (`RunHooks::journal_store`). Defaults to [`FileJournal`] at
/// the run's `--journal`.
pub trait JournalStore: fmt::Debug + Send + Sync {
    /// Takes the journal's lock, waiting as `wait` says; `cancel` ends a
    /// wait early. [`MigrateError::Locked`] when another run holds it.
    fn lock(
        &self,
        wait: LockWait,
        cancel: Option<&CancelToken>,
    ) -> Result<JournalLock, MigrateError>;
    /// Opens the journal under `lock`, loading its records.
    fn open(&self, lock: JournalLock) -> Result<Journal, MigrateError>;
    /// Reads the journal without locking or changing anything (a dry run).
    fn read_only(&self) -> Result<Journal, MigrateError>;
}

/// The journal file at a path, locked by `PATH.lock` (the default store).
#[derive(Debug, Clone)]
pub struct FileJournal {
    path: PathBuf,
}

impl FileJournal {
    /// The journal at `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileJournal {
        FileJournal { path: path.into() }
    }
}

impl JournalStore for FileJournal {
    fn lock(
        &self,
        wait: LockWait,
        cancel: Option<&CancelToken>,
    ) -> Result<JournalLock, MigrateError> {
        LockFile::acquire(&self.path, wait, cancel).map(JournalLock::new)
    }

    fn open(&self, lock: JournalLock) -> Result<Journal, MigrateError> {
        Journal::open_locked(&self.path, lock)
    }

    fn read_only(&self) -> Result<Journal, MigrateError> {
        Journal::read_only(&self.path)
    }
}

/// The file backend: the append and sync handles and the flusher.
#[derive(Debug)]
struct FileBackend {
    path: PathBuf,
    /// Guards the append handle and the length of what it has written; held
    /// only for the write of one line.
    writer: Mutex<Writer>,
    /// A second handle on the file, so syncing never waits for the writer.
    sync_file: File,
    shared: Arc<Shared>,
    flusher: Option<(Sender<()>, JoinHandle<()>)>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    len: u64,
}

impl JournalBackend for FileBackend {
    fn append(&self, kind: RecordKind, key: &str, target: Target) -> std::io::Result<()> {
        self.write_line(&line(kind, key, target)?)
    }

    fn forget(&self, kind: RecordKind, key: &str) -> std::io::Result<()> {
        self.write_line(&tombstone(kind, key)?)
    }

    fn sync(&self) -> std::io::Result<()> {
        sync(&self.sync_file, &self.shared)
    }

    fn stop(&mut self) {
        if let Some((stop, handle)) = self.flusher.take() {
            drop(stop);
            if handle.join().is_err() {
                log::error!("journal flusher of {} panicked", self.path.display());
            }
        }
    }
}

impl FileBackend {
    /// Appends one whole line with one write, or nothing.
    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut writer = self.writer.lock();
        let start = writer.len;
        match writer.file.write_all(line) {
            Ok(()) => {
                writer.len = start + len_u64(line.len());
                self.shared.dirty.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                // A partial line would glue the next record onto it: cut it off.
                let _ = writer.file.set_len(start);
                Err(e)
            }
        }
    }
}

/// State shared with the backend (the file's flusher thread).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// How messages name the journal: its path, or where else it lives.
    name: String,
    dirty: AtomicBool,
    appended: AtomicU64,
    syncs: AtomicU64,
    /// The first failed write or sync, with its OS error.
    failure: OnceLock<String>,
    /// Cancelled on the first failure.
    on_failure: OnceLock<CancelToken>,
}

impl Shared {
    pub(crate) fn named(name: String) -> Arc<Shared> {
        Arc::new(Shared {
            name,
            ..Shared::default()
        })
    }

    /// Records the first failure, logs it and stops the run; later ones are
    /// consequences of it and are not logged again.
    pub(crate) fn fail(&self, what: &str, e: &std::io::Error) {
        let text = format!("{what} journal {}: {e}", self.name);
        if self.failure.set(text.clone()).is_ok() {
            log::error!(
                "{text}; stopping the run (a record made now could not be journaled; \
                 a re-run finds what this one made)"
            );
            if let Some(token) = self.on_failure.get() {
                token.cancel();
            }
        }
    }
}

/// Counters of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JournalStats {
    /// Records known (loaded, and appended with [`Journal::record`]), one per
    /// kind and key.
    pub entries: usize,
    /// Lines appended by this process.
    pub appended: u64,
    /// Torn last lines cut off on open (0 or 1).
    pub torn_lines: u64,
    /// Completed `sync_data` calls.
    pub syncs: u64,
}

impl Journal {
    /// Opens the journal at `path`, creating it if needed, after taking its
    /// lock ([`MigrateError::Locked`] if another run holds it). Existing
    /// records are loaded; a torn last line is cut off and counted.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, MigrateError> {
        let path = path.as_ref();
        let lock = LockFile::acquire(path, LockWait::No, None)?;
        Journal::open_locked(path, JournalLock::new(lock))
    }

    /// Reads the journal at `path` without locking, creating or changing
    /// anything (a dry run's view): a missing file is an empty journal, a
    /// torn last line is ignored but left in place, and
    /// [`Journal::record`] fails.
    pub fn read_only(path: impl AsRef<Path>) -> Result<Journal, MigrateError> {
        let path = path.as_ref().to_owned();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(MigrateError::io(
                    format!("reading journal {}", path.display()),
                    e,
                ));
            }
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let entries = parse(&path, &bytes[..complete])?;
        let shared = Shared::named(path.display().to_string());
        let torn_lines = u64::from(complete < bytes.len());
        Ok(Journal::assemble(path, entries, shared, None, None).torn(torn_lines))
    }

    /// A journal of `entries` writing to `backend` (`None`: read-only) under
    /// `lock`; `shared` names it in messages and is the backend's too.
    pub(crate) fn assemble(
        path: PathBuf,
        entries: HashMap<Key, Target>,
        shared: Arc<Shared>,
        backend: Option<Box<dyn JournalBackend>>,
        lock: Option<JournalLock>,
    ) -> Journal {
        Journal {
            path,
            backend,
            entries: RwLock::new(entries),
            shared,
            torn_lines: 0,
            lock,
        }
    }

    fn torn(mut self, torn_lines: u64) -> Journal {
        self.torn_lines = torn_lines;
        self
    }

    /// [`Journal::open`] with the lock already taken (by a run that locks
    /// before it checks the services, and creates the file only after).
    pub(crate) fn open_locked(path: &Path, lock: JournalLock) -> Result<Journal, MigrateError> {
        let path = path.to_owned();
        let io_err = |what: &str| {
            let context = format!("{what} journal {}", path.display());
            move |e| MigrateError::io(context, e)
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err("opening"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err("reading"))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let torn_lines = u64::from(complete < bytes.len());
        let entries = parse(&path, &bytes[..complete])?;
        let mut len = len_u64(complete);
        if torn_lines > 0 {
            log::warn!(
                "journal {}: ignoring a torn last line; its record will be looked up again",
                path.display()
            );
            file.set_len(len).map_err(io_err("truncating"))?;
        }
        if len == 0 {
            let header = format!("{HEADER}\n");
            file.write_all(header.as_bytes())
                .map_err(io_err("writing"))?;
            len = len_u64(header.len());
        }
        file.sync_data().map_err(io_err("syncing"))?;
        let shared = Shared::named(path.display().to_string());
        let sync_file = file.try_clone().map_err(io_err("cloning"))?;
        let flusher_file = file.try_clone().map_err(io_err("cloning"))?;
        let flusher = spawn_flusher(flusher_file, Arc::clone(&shared))?;
        let backend = FileBackend {
            path: path.clone(),
            writer: Mutex::new(Writer { file, len }),
            sync_file,
            shared: Arc::clone(&shared),
            flusher: Some(flusher),
        };
        Ok(
            Journal::assemble(path, entries, shared, Some(Box::new(backend)), Some(lock))
                .torn(torn_lines),
        )
    }

    /// Cancels `token` on the first failed write or sync (at once if one
    /// already failed), so a run stops creating records it can't journal.
    pub fn stop_on_failure(&self, token: CancelToken) {
        if self.shared.on_failure.set(token.clone()).is_ok() && self.failure().is_some() {
            token.cancel();
        }
    }

    /// The first write or sync that failed, with its OS error; `None` while
    /// every write succeeded.
    pub fn failure(&self) -> Option<&str> {
        self.shared.failure.get().map(String::as_str)
    }

    /// The journal's file; for a journal kept elsewhere (Redis), the local
    /// path its run names its scratch files after (the executions spool is
    /// `PATH.executions.spool`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `kind`/`key` became, if it is recorded.
    pub fn get(&self, kind: RecordKind, key: &str) -> Option<Target> {
        self.entries.read().get(&(kind, key.to_owned())).copied()
    }

    /// Appends a record and makes it visible to [`Journal::get`]. The line is
    /// in the file (not yet synced) when this returns.
    pub fn record(&self, kind: RecordKind, key: &str, target: Target) -> Result<(), MigrateError> {
        self.append_only(kind, key, target)?;
        self.entries.write().insert((kind, key.to_owned()), target);
        Ok(())
    }

    /// Appends a record without keeping it in memory: [`Journal::get`] sees it
    /// once the journal is opened again. For records this process never looks
    /// up again, such as a migration's test runs and logs (each made by the one
    /// job that checked the journal before making it), which are most of a big
    /// project's records. The line is in the file when this returns.
    pub fn append_only(
        &self,
        kind: RecordKind,
        key: &str,
        target: Target,
    ) -> Result<(), MigrateError> {
        self.write(key, |backend| backend.append(kind, key, target))
    }

    /// One write to the backend, unless the journal is out of service; the
    /// first failure puts it out of service.
    fn write(
        &self,
        key: &str,
        op: impl FnOnce(&dyn JournalBackend) -> std::io::Result<()>,
    ) -> Result<(), MigrateError> {
        if key.contains(['\n', '\r']) {
            return Err(MigrateError::InvalidKey { key: key.into() });
        }
        let out_of_service = |why: &str| {
            MigrateError::io(
                format!("journal {} takes no records", self.shared.name),
                std::io::Error::other(why.to_string()),
            )
        };
        let Some(backend) = &self.backend else {
            return Err(out_of_service("it was opened read-only"));
        };
        if let Some(first) = self.failure() {
            return Err(out_of_service(first));
        }
        if let Err(e) = op(backend.as_ref()) {
            self.shared.fail("appending to", &e);
            return Err(MigrateError::io(
                format!("appending to journal {}", self.shared.name),
                e,
            ));
        }
        self.shared.appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs what has been appended to disk now.
    pub fn sync(&self) -> Result<(), MigrateError> {
        let Some(backend) = &self.backend else {
            return Ok(());
        };
        backend.sync().map_err(|e| {
            self.shared.fail("syncing", &e);
            MigrateError::io(format!("syncing journal {}", self.shared.name), e)
        })
    }

    /// The fingerprint of what was last sent for case `key` (see
    /// [`RecordKind::Digest`]); `None` for a case migrated before digests
    /// were kept, or never migrated.
    pub fn digest(&self, key: &str) -> Option<u64> {
        self.get(RecordKind::Digest, key).map(|t| t.id)
    }

    /// Records the fingerprint of what was just sent for case `key`.
    pub fn set_digest(&self, key: &str, digest: u64) -> Result<(), MigrateError> {
        self.record(RecordKind::Digest, key, Target::id(digest))
    }

    /// The high-water mark of listing `name` (unix seconds), if a run
    /// recorded one (see [`RecordKind::Mark`]).
    pub fn mark(&self, name: &str) -> Option<u64> {
        self.get(RecordKind::Mark, name).map(|t| t.id)
    }

    /// Records the high-water mark of listing `name`; a mark never moves
    /// back, so a run that saw less than an earlier one keeps the earlier.
    pub fn set_mark(&self, name: &str, secs: u64) -> Result<(), MigrateError> {
        match self.mark(name) {
            Some(old) if old >= secs => Ok(()),
            _ => self.record(RecordKind::Mark, name, Target::id(secs)),
        }
    }

    /// Forgets a record found missing on qTest (a repair), so it is made
    /// again: a tombstone is stored before it is forgotten in memory, so a
    /// run that stops before making it again leaves it forgotten for the
    /// next one. A read-only journal (a dry run) forgets in memory only.
    /// Returns what it was, if this process knew it.
    pub fn forget(&self, kind: RecordKind, key: &str) -> Result<Option<Target>, MigrateError> {
        if self.backend.is_some() {
            self.write(key, |backend| backend.forget(kind, key))?;
        }
        Ok(self.entries.write().remove(&(kind, key.to_owned())))
    }

    /// All records of one kind, in no particular order.
    pub fn entries_of(&self, kind: RecordKind) -> Vec<(String, Target)> {
        self.entries
            .read()
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, key), target)| (key.clone(), *target))
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            entries: self.entries.read().len(),
            appended: self.shared.appended.load(Ordering::Relaxed),
            torn_lines: self.torn_lines,
            syncs: self.shared.syncs.load(Ordering::Relaxed),
        }
    }

    /// Stops the flusher, syncs and releases the lock, reporting a failed
    /// final sync (dropping does the same but can only log it).
    pub fn close(mut self) -> Result<(), MigrateError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), MigrateError> {
        if let Some(backend) = &mut self.backend {
            backend.stop();
        }
        let result = self.sync();
        // The lock goes last, so another run can't start before the sync.
        self.lock.take();
        result
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("{e}");
        }
    }
}

impl Lookup for Journal {
    fn target(&self, kind: RecordKind, key: &str) -> Option<Target> {
        self.get(kind, key)
    }
}

fn spawn_flusher(
    file: File,
    shared: Arc<Shared>,
) -> Result<(Sender<()>, JoinHandle<()>), MigrateError> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let handle = std::thread::Builder::new()
        .name("etlpool-journal".into())
        .spawn(move || {
            loop {
                let last = !matches!(
                    stopped.recv_timeout(SYNC_INTERVAL),
                    Err(RecvTimeoutError::Timeout)
                );
                if shared.dirty.load(Ordering::Acquire)
                    && let Err(e) = sync(&file, &shared)
                {
                    shared.fail("syncing", &e);
                }
                if last {
                    break;
                }
            }
        })
        .map_err(|e| MigrateError::io("starting the journal flusher", e))?;
    Ok((stop, handle))
}

/// Clears `dirty` before syncing, so a line appended during the sync is
/// synced by the next round; on failure it stays dirty.
fn sync(file: &File, shared: &Shared) -> std::io::Result<()> {
    shared.dirty.store(false, Ordering::Release);
    match file.sync_data() {
        Ok(()) => {
            shared.syncs.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            shared.dirty.store(true, Ordering::Release);
            Err(e)
        }
    }
}

/// One journal line (its key already checked for line breaks).
pub(crate) fn line(kind: RecordKind, key: &str, target: Target) -> std::io::Result<Vec<u8>> {
    encode_row(&(kind.as_str(), key, target.id, target.version_id))
}

/// A tombstone line: the record with no target (see [`Journal::forget`]).
pub(crate) fn tombstone(kind: RecordKind, key: &str) -> std::io::Result<Vec<u8>> {
    encode_row(&(kind.as_str(), key, "", ""))
}

/// Parses complete lines (the torn tail is already cut off).
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<HashMap<Key, Target>, MigrateError> {
    let corrupt = |line: u64, reason: String| MigrateError::CorruptJournal {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut entries = HashMap::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            corrupt(line, e.to_string())
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        if index == 0 {
            if record.iter().eq(HEADER.split(',')) {
                continue;
            }
            return Err(corrupt(line, format!("expected the header `{HEADER}`")));
        }
        let (key, target) = parse_record(&record).map_err(|reason| corrupt(line, reason))?;
        let Some(target) = target else {
            entries.remove(&key);
            continue;
        };
        if let Some(old) = entries.insert(key.clone(), target)
            // A case recorded again with only a new version was approved, and
            // sync state is rewritten as it moves on: both expected.
            && old.id != target.id
            && key.0.is_record()
        {
            log::warn!(
                "journal {} line {line}: {} {} recorded again ({} -> {}); using the later",
                path.display(),
                key.0,
                key.1,
                old.id,
                target.id
            );
        }
    }
    Ok(entries)
}

/// One line's record; `None` for its target: a tombstone (see [`tombstone`]).
pub(crate) fn parse_record(record: &csv::StringRecord) -> Result<(Key, Option<Target>), String> {
    let [Some(kind), Some(key), Some(id), Some(version), None] =
        [0, 1, 2, 3, 4].map(|i| record.get(i))
    else {
        return Err(format!("expected 4 fields, found {}", record.len()));
    };
    let kind: RecordKind = kind.parse()?;
    if key.is_empty() {
        return Err("empty source key".into());
    }
    let key = (kind, key.to_owned());
    if id.is_empty() && version.is_empty() {
        return Ok((key, None));
    }
    let id = id
        .parse()
        .map_err(|_| format!("target id {id:?} is not a number"))?;
    let version_id = match version {
        "" => None,
        v => Some(
            v.parse()
                .map_err(|_| format!("version id {v:?} is not a number"))?,
        ),
    };
    Ok((key, Some(Target { id, version_id })))
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
