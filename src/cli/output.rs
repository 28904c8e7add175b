//! Output files a scheduler reads (`--summary-json`, `--metrics`): checked
//! before any work, written whole (a temporary file renamed over the old one,
//! so a reader never sees half a file), `-` for stdout.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::ExitCode;
use super::error::CliError;

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OutputPath {
    /// `-`: standard output.
    Stdout,
    /// A file, replaced atomically.
    File(PathBuf),
}

impl OutputPath {
    pub(super) fn new(path: &Path) -> OutputPath {
        if path.as_os_str() == "-" {
            OutputPath::Stdout
        } else {
            OutputPath::File(path.to_owned())
        }
    }

    /// Fails (exit 2) unless the file can be written: its directory exists
    /// and takes a new file. Called before any work, so a typo in a path
    /// costs seconds, not a whole run.
    pub(super) fn check(&self, flag: &str) -> Result<(), CliError> {
        let OutputPath::File(path) = self else {
            return Ok(());
        };
        let fail = |why: String| {
            CliError::Usage(format!(
                "{flag} {}: cannot write there: {why}",
                path.display()
            ))
        };
        if path.is_dir() {
            return Err(fail("it is a directory".into()));
        }
        let probe = sibling(path, "check");
        match OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(file) => {
                drop(file);
                let _ = fs::remove_file(&probe);
                Ok(())
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Writes `bytes` whole.
    pub(super) fn write(&self, bytes: &[u8]) -> Result<(), CliError> {
        match self {
            OutputPath::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| CliError::io("writing to stdout", e))
            }
            OutputPath::File(path) => write_atomically(path, bytes)
                .map_err(|e| CliError::io(format!("writing {}", path.display()), e)),
        }
    }

    /// The file, if it is one.
    pub(super) fn file(&self) -> Option<&Path> {
        match self {
            OutputPath::File(p) => Some(p),
            OutputPath::Stdout => None,
        }
    }
}

/// The outcome of a command whose output files were written after its work:
/// `code`, unless the work went well and an output could not be written,
/// which is then the error. A command that failed keeps its own code (a full
/// disk fails the work and the files alike); the files' errors are logged.
pub(super) fn settle(
    code: ExitCode,
    outputs: impl IntoIterator<Item = Result<(), CliError>>,
) -> Result<ExitCode, CliError> {
    let mut unwritten = outputs.into_iter().filter_map(Result::err);
    let first = match code {
        ExitCode::Ok => unwritten.next(),
        _ => None,
    };
    for e in unwritten {
        log::error!("{}", super::explain::chain(&e));
    }
    first.map_or(Ok(code), Err)
}

/// Writes a temporary file next to `path`, syncs it and renames it over
/// `path`: a crash leaves the old file or the new one, never half of one.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = sibling(path, "tmp");
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // The rename itself is durable once the directory is synced.
    if let Ok(dir) = File::open(parent(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// `.NAME.WHAT.PID` in `path`'s directory: hidden, and the same file system,
/// so the rename is atomic.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.{what}.{}", std::process::id()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_whole_and_bad_places_refused() {
        let dir = std::env::temp_dir().join(format!("etlpool-out-{}", fastrand::u64(..)));
        fs::create_dir_all(&dir).unwrap();
        let out = OutputPath::new(&dir.join("s.json"));
        out.check("--summary-json").unwrap();
        out.write(b"one").unwrap();
        out.write(b"two").unwrap();
        assert_eq!(fs::read(dir.join("s.json")).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary files left"
        );
        let err = OutputPath::new(&dir.join("missing/s.json"))
            .check("--summary-json")
            .unwrap_err();
        assert_eq!(err.exit_code(), super::super::ExitCode::Usage);
        assert!(err.to_string().contains("missing/s.json"), "{err}");
        assert_eq!(OutputPath::new(Path::new("-")), OutputPath::Stdout);
        fs::remove_dir_all(&dir).unwrap();
    }
}
