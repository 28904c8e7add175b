//! An exclusive lock on a journal, so two runs can't interleave their records.
//!
//! The lock is a file `JOURNAL.lock` holding the owner's pid. It is created
//! complete (written under a private name, then hard-linked into place, which
//! fails if it exists), so nobody ever reads a half-written lock. A lock whose
//! pid no longer runs (checked through `/proc` on Linux) is stale and taken
//! over; where liveness can't be checked, a lock is assumed held.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::MigrateError;

/// How often a stale lock is taken over before giving up: each round can only
/// be lost to another run that is starting at the same instant.
const ATTEMPTS: usize = 3;

/// A held lock; dropping it removes the lock file.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
}

impl LockFile {
    /// Takes the lock of the journal at `journal`.
    pub(crate) fn acquire(journal: &Path) -> Result<LockFile, MigrateError> {
        let path = with_suffix(journal, ".lock");
        let me = std::process::id();
        let mine = with_suffix(journal, &format!(".lock.{me}.tmp"));
        write_pid(&mine, me)
            .map_err(|e| MigrateError::io(format!("writing {}", mine.display()), e))?;
        let result = Self::link(&mine, &path);
        // The private file was only the source of the link.
        let _ = fs::remove_file(&mine);
        result.map(|()| LockFile { path })
    }

    fn link(mine: &Path, path: &Path) -> Result<(), MigrateError> {
        for _ in 0..ATTEMPTS {
            match fs::hard_link(mine, path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(MigrateError::io(
                        format!("creating lock file {}", path.display()),
                        e,
                    ));
                }
            }
            let holder = read_pid(path);
            match holder {
                Some(pid) if !is_alive(pid) => {
                    log::warn!("taking over stale lock {} of pid {pid}", path.display());
                    remove_stale(path, pid)?;
                }
                _ => {
                    return Err(MigrateError::Locked {
                        path: path.to_owned(),
                        pid: holder,
                    });
                }
            }
        }
        Err(MigrateError::Locked {
            path: path.to_owned(),
            pid: read_pid(path),
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
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("could not remove lock {}: {e}", self.path.display());
            }
        }
    }
}

/// Moves a stale lock aside, then checks it really was the dead owner's: if
/// another run took the lock over in between, its lock is put back.
fn remove_stale(path: &Path, dead: u32) -> Result<(), MigrateError> {
    let aside = with_suffix(path, &format!(".stale.{}", std::process::id()));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(MigrateError::io(
                format!("removing stale lock {}", path.display()),
                e,
            ));
        }
    }
    if read_pid(&aside) != Some(dead) {
        // Best effort: if a third run locked meanwhile, its lock stays.
        let _ = fs::hard_link(&aside, path);
    }
    let _ = fs::remove_file(&aside);
    Ok(())
}

fn write_pid(path: &Path, pid: u32) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    writeln!(file, "{pid}")?;
    file.sync_data()
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether process `pid` runs. Without `/proc` there is no way to tell, so
/// the answer is yes: a wrongly kept lock costs a manual removal, a wrongly
/// broken one costs a corrupt journal.
pub(crate) fn is_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !cfg!(target_os = "linux") || !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::test_util::{TempDir, dead_pid};

    #[test]
    fn a_held_lock_is_refused_and_released_on_drop() {
        let dir = TempDir::new("lock-held");
        let journal = dir.join("j.csv");
        let lock = LockFile::acquire(&journal).unwrap();
        assert_eq!(read_pid(lock.path()), Some(std::process::id()));
        let err = LockFile::acquire(&journal).unwrap_err();
        match err {
            MigrateError::Locked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(lock);
        assert!(!dir.join("j.csv.lock").exists());
        drop(LockFile::acquire(&journal).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no leftovers");
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let dir = TempDir::new("lock-stale");
        let journal = dir.join("j.csv");
        let dead = dead_pid();
        assert!(!is_alive(dead));
        assert!(is_alive(std::process::id()));
        fs::write(dir.join("j.csv.lock"), format!("{dead}\n")).unwrap();
        let lock = LockFile::acquire(&journal).unwrap();
        assert_eq!(read_pid(lock.path()), Some(std::process::id()));
        drop(lock);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no leftovers");
    }

    #[test]
    fn an_unreadable_lock_counts_as_held() {
        let dir = TempDir::new("lock-garbage");
        let journal = dir.join("j.csv");
        fs::write(dir.join("j.csv.lock"), "not a pid").unwrap();
        let err = LockFile::acquire(&journal).unwrap_err();
        assert!(
            matches!(err, MigrateError::Locked { pid: None, .. }),
            "{err:?}"
        );
        assert!(
            dir.join("j.csv.lock").exists(),
            "someone else's lock is left alone"
        );
    }
}
