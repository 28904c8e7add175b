//! An exclusive lock on a journal, so two runs can't interleave their records.
//!
//! The lock is the kernel's (`flock` through [`std::fs::File::try_lock`]) on a
//! file `JOURNAL.lock`: it is released when its holder exits, however it
//! exits (`kill -9`, a crash, a container's PID 1 restarted), so a lock can't
//! outlive its run and nothing ever has to be deleted by hand. The file holds
//! the holder's pid, host and start time for the message of a run that finds
//! it locked.
//!
//! The holder removes the file before it lets go. A run that opened the file
//! just before that removal would then lock a file that is no longer there,
//! so after locking it checks that the path still names the file it locked,
//! and starts over if not.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::error::MigrateError;
use crate::cancel::CancelToken;

/// How often a run waiting for a lock (`--wait`) tries again.
const POLL: Duration = Duration::from_millis(200);

/// How long to wait for a journal's lock when another run holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockWait {
    /// Fail at once ([`MigrateError::Locked`]). The default.
    #[default]
    No,
    /// Wait up to this long, then fail.
    For(Duration),
    /// Wait until the holder is done, however long that takes.
    Forever,
}

/// Who holds a lock, as its lock file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockHolder {
    /// The holder's process id (in its own PID namespace: 1 in a container).
    pub pid: Option<u32>,
    /// The host (or container, or pod) name it runs on.
    pub host: Option<String>,
    /// When it took the lock (RFC 3339, UTC).
    pub since: Option<String>,
}

impl LockHolder {
    pub(crate) fn me() -> LockHolder {
        LockHolder {
            pid: Some(std::process::id()),
            host: Some(host_name()),
            since: Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
        }
    }

    pub(crate) fn encode(&self) -> String {
        let mut line = String::new();
        if let Some(pid) = self.pid {
            line.push_str(&format!("pid={pid} "));
        }
        if let Some(host) = &self.host {
            line.push_str(&format!("host={host} "));
        }
        if let Some(since) = &self.since {
            line.push_str(&format!("since={since}"));
        }
        line.trim_end().to_string() + "\n"
    }

    /// Reads `pid=… host=… since=…`; a bare pid (the format of older
    /// versions) is read too.
    pub(crate) fn decode(text: &str) -> LockHolder {
        let mut holder = LockHolder::default();
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("pid", v)) => holder.pid = v.parse().ok(),
                Some(("host", v)) => holder.host = Some(v.to_string()),
                Some(("since", v)) => holder.since = Some(v.to_string()),
                None => holder.pid = holder.pid.or(word.parse().ok()),
                _ => {}
            }
        }
        holder
    }
}

/// A held lock; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    /// The locked file; closing it releases the kernel lock.
    file: Option<File>,
}

impl LockFile {
    /// Takes the lock of the journal at `journal`, waiting as `wait` says;
    /// `cancel` ends a wait early ([`crate::Error::Cancelled`]).
    pub(crate) fn acquire(
        journal: &Path,
        wait: LockWait,
        cancel: Option<&CancelToken>,
    ) -> Result<LockFile, MigrateError> {
        let path = lock_path(journal);
        let start = Instant::now();
        let deadline = match wait {
            LockWait::No => Some(start),
            LockWait::For(d) => start.checked_add(d),
            LockWait::Forever => None,
        };
        let mut logged = false;
        loop {
            if let Some(file) = try_lock(&path)
                .map_err(|e| MigrateError::io(format!("locking {}", path.display()), e))?
            {
                return LockFile::hold(path, file);
            }
            let holder = read_holder(&path);
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                let waited = (wait != LockWait::No).then(|| now.duration_since(start));
                return Err(MigrateError::Locked {
                    path,
                    holder,
                    waited,
                });
            }
            if !logged {
                log::info!(
                    "journal lock {} is held by {}; waiting (--wait)",
                    path.display(),
                    describe(&holder)
                );
                logged = true;
            }
            let pause = deadline.map_or(POLL, |d| POLL.min(d.saturating_duration_since(now)));
            pause_for(pause, cancel)?;
        }
    }

    fn hold(path: PathBuf, mut file: File) -> Result<LockFile, MigrateError> {
        let me = LockHolder::me().encode();
        let written = file.set_len(0).and_then(|()| file.write_all(me.as_bytes()));
        // The lock is held either way; only the message of a waiting run
        // would miss the details.
        if let Err(e) = written {
            log::warn!("could not write the holder into {}: {e}", path.display());
        }
        Ok(LockFile {
            path,
            file: Some(file),
        })
    }

    /// The lock file's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Removed while still locked, so nobody can lock the old file and
        // think it holds the journal (see the module docs).
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            log::warn!("could not remove lock {}: {e}", self.path.display());
        }
        drop(self.file.take());
    }
}

/// `JOURNAL.lock`.
pub(crate) fn lock_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The locked lock file, or `None` when another process holds it.
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        if names_same_file(path, &file)? {
            return Ok(Some(file));
        }
        // The previous holder removed it between our open and our lock.
    }
}

#[cfg(unix)]
fn names_same_file(path: &Path, file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn names_same_file(_: &Path, _: &File) -> io::Result<bool> {
    Ok(true)
}

fn read_holder(path: &Path) -> LockHolder {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    LockHolder::decode(&text)
}

/// `pid 12 on host-a since …`, leaving out what the file doesn't say.
pub(crate) fn describe(holder: &LockHolder) -> String {
    let mut parts = vec![match holder.pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process".to_string(),
    }];
    if let Some(host) = &holder.host {
        parts.push(format!("on {host}"));
    }
    if let Some(since) = &holder.since {
        parts.push(format!("since {since}"));
    }
    parts.join(" ")
}

/// The message of [`MigrateError::Locked`]: who holds it and how to get past it.
pub(crate) fn explain(
    f: &mut std::fmt::Formatter<'_>,
    path: &Path,
    holder: &LockHolder,
    waited: Option<Duration>,
) -> std::fmt::Result {
    write!(
        f,
        "the journal is in use by another run: {} holds {}",
        describe(holder),
        path.display()
    )?;
    if let Some(waited) = waited {
        write!(
            f,
            " (still, after waiting {})",
            humantime::format_duration(round_secs(waited))
        )?;
    }
    f.write_str(". Wait for it to finish, or pass --wait[=DURATION] to queue behind it. ")?;
    // A lock file, or (with --redis) a Redis key that expires by itself.
    f.write_str(match path.extension().is_some_and(|e| e == "lock") {
        true => {
            "The lock is the kernel's and ends with that process, so there is nothing to delete"
        }
        false => {
            "The lock is a Redis key that its holder keeps fresh and that expires a lease \
             after the holder's last heartbeat, so there is nothing to delete"
        }
    })?;
    match (holder.pid, &holder.host) {
        (Some(pid), Some(host)) => {
            write!(f, "; if that run is stuck, stop it (kill {pid} on {host})")
        }
        (Some(pid), None) => write!(f, "; if that run is stuck, stop it (kill {pid})"),
        _ => Ok(()),
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

fn pause_for(pause: Duration, cancel: Option<&CancelToken>) -> Result<(), MigrateError> {
    match cancel {
        Some(token) => {
            if token.wait_timeout(pause) {
                return Err(crate::Error::Cancelled.into());
            }
        }
        None => std::thread::sleep(pause),
    }
    Ok(())
}

/// The host name, for the lock file; containers set it to the pod's name.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown-host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::test_util::TempDir;

    fn acquire(journal: &Path) -> Result<LockFile, MigrateError> {
        LockFile::acquire(journal, LockWait::No, None)
    }

    #[test]
    fn a_held_lock_is_refused_with_its_holder_and_released_on_drop() {
        let dir = TempDir::new("lock-held");
        let journal = dir.join("j.csv");
        let lock = acquire(&journal).unwrap();
        let holder = read_holder(lock.path());
        assert_eq!(holder.pid, Some(std::process::id()));
        assert!(
            holder.host.is_some() && holder.since.is_some(),
            "{holder:?}"
        );
        match acquire(&journal).unwrap_err() {
            MigrateError::Locked { holder: h, .. } => assert_eq!(h, holder),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(lock);
        assert!(!dir.join("j.csv.lock").exists());
        drop(acquire(&journal).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no leftovers");
    }

    #[test]
    fn a_lock_file_nobody_holds_is_taken_whatever_it_says() {
        let dir = TempDir::new("lock-stale");
        let journal = dir.join("j.csv");
        // What a killed run of an older version left: its pid, which may be
        // ours now (PID 1 in a container).
        fs::write(dir.join("j.csv.lock"), format!("{}\n", std::process::id())).unwrap();
        let lock = acquire(&journal).unwrap();
        assert_eq!(read_holder(lock.path()).pid, Some(std::process::id()));
        drop(lock);
        fs::write(dir.join("j.csv.lock"), "not a pid").unwrap();
        drop(acquire(&journal).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no leftovers");
    }

    #[test]
    fn a_waiting_run_gets_the_lock_when_the_holder_lets_go() {
        let dir = TempDir::new("lock-wait");
        let journal = dir.join("j.csv");
        let held = acquire(&journal).unwrap();
        let err = LockFile::acquire(&journal, LockWait::For(Duration::from_millis(50)), None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                MigrateError::Locked {
                    waited: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        let (tx, rx) = crossbeam_channel::bounded(0);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                tx.send(()).unwrap();
                LockFile::acquire(&journal, LockWait::Forever, None)
            });
            rx.recv().unwrap();
            drop(held);
            let lock = waiter.join().unwrap().unwrap();
            assert_eq!(read_holder(lock.path()).pid, Some(std::process::id()));
        });
    }

    #[test]
    fn a_wait_ends_when_cancelled() {
        let dir = TempDir::new("lock-cancel");
        let journal = dir.join("j.csv");
        let _held = acquire(&journal).unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = LockFile::acquire(&journal, LockWait::Forever, Some(&cancel)).unwrap_err();
        assert!(
            matches!(err, MigrateError::Http(crate::Error::Cancelled)),
            "{err:?}"
        );
    }

    #[test]
    fn holders_round_trip_and_old_files_are_read() {
        let me = LockHolder::me();
        assert_eq!(LockHolder::decode(&me.encode()), me);
        assert_eq!(LockHolder::decode("42\n").pid, Some(42));
        assert_eq!(describe(&LockHolder::default()), "another process");
    }
}
