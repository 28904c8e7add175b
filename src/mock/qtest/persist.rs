//! The write journal on disk: one JSON line per applied write, replayed at start.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write as _};
use std::path::Path;

use serde_json::Value;

use super::config::QtestConfig;
use super::state::{JournalEntry, QtestState};
use super::write::{self, Write};
use crate::mock::server::parse_query;

/// Rebuilds the state from the journal at `path` (missing file: `initial`), then opens the file
/// for appending. A torn last line (a crash mid-write) is dropped.
pub(crate) fn load(
    path: &Path,
    cfg: &QtestConfig,
    initial: QtestState,
) -> io::Result<(QtestState, File)> {
    let mut state = initial;
    let entries = match File::open(path) {
        Ok(f) => read_entries(f)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    for entry in entries {
        replay(&mut state, cfg, entry)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // Rewrite nothing, but make sure a torn line does not glue onto the next entry.
    if std::fs::metadata(path)?.len() > 0 && !ends_with_newline(path)? {
        file.write_all(b"\n")?;
    }
    Ok((state, file))
}

fn read_entries(f: File) -> io::Result<Vec<JournalEntry>> {
    let lines: Vec<String> = BufReader::new(f).lines().collect::<io::Result<_>>()?;
    let last = lines.len().saturating_sub(1);
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str(line) {
            Ok(e) => out.push(e),
            Err(_) if i == last => log::warn!("mock state: dropping a torn last journal line"),
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("journal line {}: {e}", i + 1),
                ));
            }
        }
    }
    Ok(out)
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.last() == Some(&b'\n'))
}

fn replay(state: &mut QtestState, cfg: &QtestConfig, entry: JournalEntry) -> io::Result<()> {
    let (path, query) = entry.target.split_once('?').unwrap_or((&entry.target, ""));
    let query = parse_query(query);
    let seg: Vec<&str> = path.split('/').skip(5).collect();
    let w = Write {
        method: &entry.method,
        seg: &seg,
        query: &query,
        body: &entry.body,
        at: entry.at,
    };
    match write::apply(state, cfg, &w) {
        Some(Ok(applied)) if applied.id == entry.id => {
            state.journal.push(entry);
            Ok(())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "journal entry {} does not replay on this seed and configuration",
                entry.seq
            ),
        )),
    }
}

/// Appends one entry and hands it to the OS, so it survives the process.
pub(crate) fn append(file: &mut File, entry: &JournalEntry) -> io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)
}

/// The request body as JSON: empty is `null`.
pub(crate) fn body_json(body: &[u8]) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| format!("Malformed JSON body: {e}"))
}
