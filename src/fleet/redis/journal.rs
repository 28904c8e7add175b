//! A project's journal in Redis: the hash `PREFIX:journal:KEY`, one field per
//! record (`kind,source_key` -> `target_id,version_id`), so a project resumed
//! on any machine finds what was made and makes no lookups for it.
//!
//! The rules of the file journal hold: a record is stored (Redis answered
//! the write) before it is reported; the first failed write puts the journal
//! out of service and stops the run; and writes are fenced by the project's
//! lock: each `HSET` runs in a script that first checks that the lock key
//! still holds this run's token, so a worker whose lease ran out (and whose
//! project another worker took over) can't write into the journal any more.
//! How durable an answered write is depends on the server: with
//! `appendonly yes` and `appendfsync everysec` Redis, like the file journal,
//! loses at most the last second in a crash of its machine; a record lost
//! that way is found again by lookup, as a torn line is.
//!
//! [`export`] and [`import`] move a journal between a file and Redis.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;

use super::Redis;
use super::lock::RedisLock;
use crate::cancel::CancelToken;
use crate::migrate::journal::{HEADER, JournalBackend, Key, Shared, line, parse_record};
use crate::migrate::{
    FileJournal, Journal, JournalLock, JournalStore, LockWait, MigrateError, RecordKind, Target,
};

/// Stores a record if the lock is still this run's; 1 if stored, 0 if not.
const FENCED_HSET: &str = "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end \
     redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) return 1";

/// Forgets a record if the lock is still this run's; 1 if done, 0 if not.
/// The hash keeps only the latest state of each record, so a forgotten one
/// is simply removed.
const FENCED_HDEL: &str = "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end \
     redis.call('HDEL', KEYS[1], ARGV[2]) return 1";

/// The journal of one project in Redis, locked by its Redis lock.
pub struct RedisJournal {
    redis: Redis,
    project: String,
    /// Local path the run names its scratch files after.
    scratch: PathBuf,
    lease: Duration,
    /// A lock taken before the run (by a worker that claimed the project),
    /// handed over at [`JournalStore::lock`].
    held: Mutex<Option<RedisLock>>,
    /// The token of the lock handed out last, which writes are fenced by.
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for RedisJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJournal")
            .field("redis", &self.redis)
            .field("project", &self.project)
            .finish()
    }
}

impl RedisJournal {
    /// The journal of `project` on `redis`; `scratch` is the local path its
    /// run names its scratch files after (the executions spool), `lease` how
    /// long its lock outlives a holder that stopped refreshing it.
    pub fn new(redis: &Redis, project: &str, scratch: PathBuf, lease: Duration) -> RedisJournal {
        RedisJournal {
            redis: redis.clone(),
            project: project.to_string(),
            scratch,
            lease,
            held: Mutex::new(None),
            token: Mutex::new(None),
        }
    }

    /// Hands the run `lock`, already taken, instead of taking it again.
    pub fn with_lock(self, lock: RedisLock) -> RedisJournal {
        *self.held.lock() = Some(lock);
        self
    }

    /// The hash's key.
    pub fn key(&self) -> String {
        journal_key(&self.redis, &self.project)
    }

    /// The lock's key.
    pub fn lock_key(&self) -> String {
        lock_key(&self.redis, &self.project)
    }

    /// How messages and summaries name it: `redis://host:port/db KEY`.
    pub fn name(&self) -> String {
        format!("{} {}", self.redis.shown(), self.key())
    }

    /// Takes the project's lock (what a worker does before it runs the
    /// project).
    pub fn take_lock(
        &self,
        wait: LockWait,
        cancel: Option<&CancelToken>,
    ) -> Result<RedisLock, MigrateError> {
        RedisLock::acquire(&self.redis, self.lock_key(), self.lease, wait, cancel)
    }

    fn load(&self) -> Result<(redis::Connection, HashMap<Key, Target>), MigrateError> {
        let mut conn = self.redis.connect()?;
        let entries = load(&self.redis, &mut conn, &self.key(), &self.name())?;
        Ok((conn, entries))
    }

    fn journal(
        &self,
        entries: HashMap<Key, Target>,
        backend: Option<Box<dyn JournalBackend>>,
        lock: Option<JournalLock>,
    ) -> Journal {
        let shared = Shared::named(self.name());
        Journal::assemble(self.scratch.clone(), entries, shared, backend, lock)
    }
}

impl JournalStore for RedisJournal {
    fn lock(
        &self,
        wait: LockWait,
        cancel: Option<&CancelToken>,
    ) -> Result<JournalLock, MigrateError> {
        let held = self.held.lock().take();
        let lock = match held {
            Some(lock) => lock,
            None => self.take_lock(wait, cancel)?,
        };
        *self.token.lock() = Some(lock.token().to_string());
        Ok(JournalLock::new(lock))
    }

    fn open(&self, lock: JournalLock) -> Result<Journal, MigrateError> {
        let Some(token) = self.token.lock().clone() else {
            return Err(MigrateError::io(
                format!("opening journal {}", self.name()),
                std::io::Error::other("its lock was not taken through this store"),
            ));
        };
        let (conn, entries) = self.load()?;
        let backend = RedisBackend {
            redis: self.redis.clone(),
            conn: Mutex::new(Some(conn)),
            keys: [self.key(), self.lock_key()],
            token,
            script: redis::Script::new(FENCED_HSET),
            forget: redis::Script::new(FENCED_HDEL),
        };
        Ok(self.journal(entries, Some(Box::new(backend)), Some(lock)))
    }

    fn read_only(&self) -> Result<Journal, MigrateError> {
        let (_, entries) = self.load()?;
        Ok(self.journal(entries, None, None))
    }
}

/// Writes records into the hash, fenced by the lock.
struct RedisBackend {
    redis: Redis,
    /// Guards the connection (one write at a time); `None` after it broke.
    conn: Mutex<Option<redis::Connection>>,
    /// The hash, the lock.
    keys: [String; 2],
    token: String,
    script: redis::Script,
    forget: redis::Script,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("key", &self.keys[0])
            .finish()
    }
}

impl JournalBackend for RedisBackend {
    fn append(&self, kind: RecordKind, key: &str, target: Target) -> std::io::Result<()> {
        let (field, value) = encode(kind, key, target);
        self.fenced(&self.script, &field, Some(&value))
    }

    fn forget(&self, kind: RecordKind, key: &str) -> std::io::Result<()> {
        let (field, _) = encode(kind, key, Target::id(0));
        self.fenced(&self.forget, &field, None)
    }

    /// Redis answered each write; how soon it reaches its disk is the
    /// server's `appendfsync`.
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

impl RedisBackend {
    /// Runs `script` on `field` (and `value`), fenced by the lock.
    fn fenced(
        &self,
        script: &redis::Script,
        field: &str,
        value: Option<&str>,
    ) -> std::io::Result<()> {
        let mut conn = self.conn.lock();
        // A broken connection is made again once: the write is idempotent
        // (the same field, the same value or none), so repeating it is safe.
        let mut last = None;
        for _ in 0..2 {
            let mut c = match conn.take() {
                Some(c) => c,
                None => self.redis.connect().map_err(std::io::Error::other)?,
            };
            let mut call = script.key(&self.keys[0]);
            call.key(&self.keys[1]).arg(&self.token).arg(field);
            if let Some(value) = value {
                call.arg(value);
            }
            let stored: redis::RedisResult<i64> = call.invoke(&mut c);
            match stored {
                Ok(1) => {
                    *conn = Some(c);
                    return Ok(());
                }
                Ok(_) => {
                    return Err(std::io::Error::other(format!(
                        "the project's lock {} is no longer this run's (its lease ran out; \
                         another worker may have taken the project over)",
                        self.keys[1]
                    )));
                }
                Err(e) if e.is_io_error() || e.is_connection_dropped() => last = Some(e),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        Err(std::io::Error::other(last.map_or_else(
            || "no connection".to_string(),
            |e| e.to_string(),
        )))
    }
}

/// The key of `project`'s journal: `PREFIX:journal:KEY`.
pub fn journal_key(redis: &Redis, project: &str) -> String {
    redis.key(&["journal", project])
}

/// The key of `project`'s lock: `PREFIX:lock:KEY`.
pub fn lock_key(redis: &Redis, project: &str) -> String {
    redis.key(&["lock", project])
}

/// A record as a hash field and value.
fn encode(kind: RecordKind, key: &str, target: Target) -> (String, String) {
    let version = target.version_id.map(|v| v.to_string()).unwrap_or_default();
    (
        format!("{},{key}", kind.as_str()),
        format!("{},{version}", target.id),
    )
}

/// Every record of the hash at `key`, read in pages (`HSCAN`); a field that
/// can't be read is [`MigrateError::CorruptJournal`] naming it.
fn load(
    redis: &Redis,
    conn: &mut redis::Connection,
    key: &str,
    name: &str,
) -> Result<HashMap<Key, Target>, MigrateError> {
    let mut entries = HashMap::new();
    let pairs: Vec<(String, String)> = redis::cmd("HSCAN")
        .arg(key)
        .cursor_arg(0)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(conn)
        .and_then(|iter| iter.collect::<redis::RedisResult<Vec<_>>>())
        .map_err(|e| MigrateError::from(redis.error("reading a journal from", e)))?;
    for (field, value) in pairs {
        let corrupt = |reason: String| MigrateError::CorruptJournal {
            path: name.into(),
            line: 0,
            reason: format!("field {field:?}: {reason}"),
        };
        let (kind, source) = field
            .split_once(',')
            .ok_or_else(|| corrupt("expected kind,source_key".into()))?;
        let (id, version) = value
            .split_once(',')
            .ok_or_else(|| corrupt(format!("value {value:?}: expected target_id,version_id")))?;
        let record = csv::StringRecord::from(vec![kind, source, id, version]);
        // The hash holds no tombstones (a forgotten record is deleted).
        if let (key, Some(target)) = parse_record(&record).map_err(corrupt)? {
            entries.insert(key, target);
        }
    }
    Ok(entries)
}

/// Writes the Redis journal of `project` to the file `out` (the file
/// journal's format, records in a stable order), replacing it atomically;
/// returns how many records were written. An existing `out` is refused
/// unless `replace`: a journal file is the source of truth of its project.
pub fn export(
    redis: &Redis,
    project: &str,
    out: &Path,
    replace: bool,
) -> Result<usize, MigrateError> {
    if !replace && out.exists() {
        return Err(MigrateError::config(
            "journal export",
            format!(
                "{} exists; pass --force to replace it (it is the journal of a project: \
                 keep a copy)",
                out.display()
            ),
        ));
    }
    let mut conn = redis.connect()?;
    let key = journal_key(redis, project);
    let name = format!("{} {key}", redis.shown());
    // A typo in the project would otherwise write an empty journal (over
    // a real one, with --force).
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query(&mut conn)
        .map_err(|e| MigrateError::from(redis.error("reading a journal from", e)))?;
    if !exists {
        return Err(MigrateError::config(
            "journal export",
            format!("{name}: there is no journal of project {project}; nothing was written"),
        ));
    }
    let entries = load(redis, &mut conn, &key, &name)?;
    let mut records: Vec<_> = entries.into_iter().collect();
    records.sort_by(|a, b| (a.0.0 as usize, &a.0.1).cmp(&(b.0.0 as usize, &b.0.1)));
    let io = |what: &str, e| MigrateError::io(format!("{what} {}", out.display()), e);
    let mut tmp_name = out.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(file, "{HEADER}")?;
        for ((kind, key), target) in &records {
            file.write_all(&line(*kind, key, *target)?)?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("writing", e));
    }
    // Records; the sync state (fingerprints, marks) is written uncounted.
    Ok(records
        .iter()
        .filter(|((kind, _), _)| kind.is_record())
        .count())
}

/// Copies the journal file `file` into the Redis journal of `project`,
/// holding both locks (so no run of the project is under way on either
/// side); returns how many records were written. A record Redis already
/// has with another target is refused before anything is written (two
/// journals that disagree need a person); the same record is skipped.
pub fn import(
    redis: &Redis,
    project: &str,
    file: &Path,
    lease: Duration,
) -> Result<usize, MigrateError> {
    // A typo in the path would otherwise import nothing and succeed.
    match std::fs::metadata(file) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MigrateError::config(
                "journal import",
                format!("there is no journal file {}", file.display()),
            ));
        }
        Err(e) => return Err(MigrateError::io(format!("reading {}", file.display()), e)),
    }
    let file_store = FileJournal::new(file);
    let file_lock = file_store.lock(LockWait::No, None)?;
    let source = Journal::read_only(file)?;
    let store = RedisJournal::new(redis, project, file.to_owned(), lease);
    let lock = store.lock(LockWait::No, None)?;
    let target = store.open(lock)?;
    let mut new = Vec::new();
    // Sync state (fingerprints, marks) comes along; where both sides have
    // it, the file's is taken, as it is not a record that can disagree.
    for kind in RecordKind::ALL.into_iter().chain(RecordKind::SYNC_STATE) {
        for (key, t) in source.entries_of(kind) {
            match target.get(kind, &key) {
                Some(there) if there.id != t.id && kind.is_record() => {
                    return Err(MigrateError::config(
                        "journal import",
                        format!(
                            "{kind} {key} is {} in {} but {} in {}: the journals disagree; \
                             nothing was imported",
                            t.id,
                            file.display(),
                            there.id,
                            store.name()
                        ),
                    ));
                }
                Some(there) if there == t => {}
                _ => new.push((kind, key, t)),
            }
        }
    }
    for (kind, key, t) in &new {
        target.append_only(*kind, key, *t)?;
    }
    target.close()?;
    drop(file_lock);
    // Records, as the message says; the sync state came along uncounted.
    Ok(new.iter().filter(|(kind, ..)| kind.is_record()).count())
}
