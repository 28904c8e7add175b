//! The write journal on disk: one JSON line per applied write, replayed at start.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

use serde_json::Value;

use super::config::QtestConfig;
use super::state::{JournalEntry, QtestState};
use super::write::{self, Write};
use crate::mock::server::parse_query;

/// Rebuilds the state from the journal at `path` (missing file: `initial`), then opens the file
/// for appending. A torn last line (a crash mid-write) is cut off the file.
pub(crate) fn load(
    path: &Path,
    cfg: &QtestConfig,
    initial: QtestState,
) -> io::Result<(QtestState, File)> {
    let mut state = initial;
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let (entries, valid_len) = read_entries(&text)?;
    for entry in entries {
        replay(&mut state, cfg, entry)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    if valid_len < text.len() {
        log::warn!("mock state: dropping a torn last journal line");
        file.set_len(valid_len as u64)?;
    }
    Ok((state, file))
}

/// The entries, and the length of the text they fill (shorter than the text after a torn line).
fn read_entries(text: &str) -> io::Result<(Vec<JournalEntry>, usize)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.trim().is_empty() {
            // A last line without its newline was cut short by a crash, even if it parses.
            if !line.ends_with('\n') {
                return Ok((out, offset));
            }
            let entry = serde_json::from_str(line.trim()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("journal line {}: {e}", i + 1),
                )
            })?;
            out.push(entry);
        }
        offset += line.len();
    }
    Ok((out, offset))
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
