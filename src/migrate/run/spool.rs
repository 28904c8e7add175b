//! The executions of the one listing pass, spooled to a file and read back
//! grouped by (cycle, case), so a project's executions are never all in
//! memory: each costs 16 bytes of index while the pass runs, and one group
//! is read back at a time.
//!
//! The file sits next to the journal (whose lock keeps two runs apart) and
//! is removed when the spool is dropped; on Unix it is unlinked as soon as
//! it is open, so even a killed run leaves nothing behind.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::zephyr::TestExecution;

/// Bits of a span that hold the length of one spooled execution.
const LEN_BITS: u32 = 24;
/// Longest spooled execution in bytes of JSON.
const MAX_LEN: u64 = (1 << LEN_BITS) - 1;
/// Largest offset a span can hold (1 TiB).
const MAX_OFFSET: u64 = (1 << (64 - LEN_BITS)) - 1;
/// The cycle ordinal of executions outside any cycle: they come last.
const NO_CYCLE: u32 = u32::MAX;

/// One spooled execution: its group (cycle ordinal in the high half, a hash
/// of the case key in the low half) and where its JSON is (offset and length
/// packed). Sorting by both keeps a group's executions in spool order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    group: u64,
    span: u64,
}

impl Entry {
    fn cycle(self) -> u32 {
        // The high half of a u64 always fits.
        u32::try_from(self.group >> 32).unwrap_or(NO_CYCLE)
    }

    fn offset_len(self) -> (u64, usize) {
        let len = usize::try_from(self.span & MAX_LEN).unwrap_or(usize::MAX);
        (self.span >> LEN_BITS, len)
    }
}

/// The path of the spool of a run whose journal is `journal`.
pub(crate) fn path_for(journal: &Path) -> PathBuf {
    let mut name = journal.file_name().unwrap_or_default().to_os_string();
    name.push(".executions.spool");
    journal.with_file_name(name)
}

/// Writes executions while the listing pass runs.
pub(crate) struct SpoolWriter {
    file: Removed,
    out: BufWriter<File>,
    len: u64,
    entries: Vec<Entry>,
    /// Ordinal of each cycle id, in first-seen order.
    cycles: HashMap<u64, u32>,
    cycle_ids: Vec<u64>,
}

impl SpoolWriter {
    /// Creates (or truncates) the spool at `path`.
    pub(crate) fn create(path: PathBuf) -> io::Result<SpoolWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let removed = Removed::new(path);
        Ok(SpoolWriter {
            out: BufWriter::new(file),
            file: removed,
            len: 0,
            entries: Vec::new(),
            cycles: HashMap::new(),
            cycle_ids: Vec::new(),
        })
    }

    /// Spools one execution of `cycle` (`None`: outside any) and case `case_key`.
    pub(crate) fn push(
        &mut self,
        cycle: Option<u64>,
        case_key: &str,
        exec: &TestExecution,
    ) -> io::Result<()> {
        let line = serde_json::to_vec(exec)?;
        let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
        if len > MAX_LEN || self.len > MAX_OFFSET {
            return Err(io::Error::other(format!(
                "execution {} can't be spooled: {len} bytes at offset {}",
                exec.id, self.len
            )));
        }
        self.out.write_all(&line)?;
        let ordinal = match cycle {
            None => NO_CYCLE,
            Some(id) => {
                let next = u32::try_from(self.cycle_ids.len()).unwrap_or(NO_CYCLE - 1);
                *self.cycles.entry(id).or_insert_with(|| {
                    self.cycle_ids.push(id);
                    next
                })
            }
        };
        self.entries.push(Entry {
            group: (u64::from(ordinal) << 32) | u64::from(case_hash(case_key)),
            span: (self.len << LEN_BITS) | len,
        });
        self.len += len;
        Ok(())
    }

    /// Executions spooled so far.
    pub(crate) fn count(&self) -> usize {
        self.entries.len()
    }

    /// Ends the pass: the spool, its entries sorted by group.
    pub(crate) fn finish(self) -> io::Result<Spool> {
        let SpoolWriter {
            file,
            out,
            mut entries,
            cycle_ids,
            ..
        } = self;
        let reader = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        entries.sort_unstable();
        Ok(Spool {
            _file: file,
            reader,
            entries,
            cycle_ids,
        })
    }
}

/// A 32-bit hash of a case key. Two keys of one cycle may share it: a group
/// is split by key when it is read back.
fn case_hash(key: &str) -> u32 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    // Folding the halves keeps every bit of the hash in play.
    let h = hasher.finish();
    (h ^ (h >> 32)) as u32
}

/// The spooled executions, sorted by group.
pub(crate) struct Spool {
    _file: Removed,
    reader: File,
    entries: Vec<Entry>,
    cycle_ids: Vec<u64>,
}

impl Spool {
    /// Each cycle (`None`: outside any, last) with the range of its entries.
    pub(crate) fn cycles(&self) -> Vec<(Option<u64>, Range<usize>)> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.entries.len() {
            let ordinal = self.entries[start].cycle();
            let end = start + self.entries[start..].partition_point(|e| e.cycle() == ordinal);
            let id = usize::try_from(ordinal)
                .ok()
                .and_then(|i| self.cycle_ids.get(i))
                .copied();
            out.push((id, start..end));
            start = end;
        }
        out
    }

    /// The groups within `range` (one cycle's entries), largest first, so a
    /// phase doesn't end waiting on one long run.
    pub(crate) fn groups(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let entries = &self.entries[range.clone()];
        let mut out = Vec::new();
        let mut start = 0;
        while start < entries.len() {
            let group = entries[start].group;
            let end = start + entries[start..].partition_point(|e| e.group == group);
            out.push(range.start + start..range.start + end);
            start = end;
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.len()));
        out
    }

    /// The executions of one group, in spool order.
    pub(crate) fn read(&mut self, range: Range<usize>) -> io::Result<Vec<TestExecution>> {
        let mut out = Vec::with_capacity(range.len());
        let mut buf = Vec::new();
        for entry in &self.entries[range] {
            let (offset, len) = entry.offset_len();
            buf.resize(len, 0);
            self.reader.seek(SeekFrom::Start(offset))?;
            self.reader.read_exact(&mut buf)?;
            out.push(serde_json::from_slice(&buf)?);
        }
        Ok(out)
    }
}

/// Removes the spool file: at once where an open file can be unlinked
/// (Unix), else when dropped.
struct Removed {
    path: Option<PathBuf>,
}

impl Removed {
    fn new(path: PathBuf) -> Removed {
        match std::fs::remove_file(&path) {
            Ok(()) => Removed { path: None },
            Err(_) => Removed { path: Some(path) },
        }
    }
}

impl Drop for Removed {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zephyr::examples::EXECUTION;

    fn exec(id: u64) -> TestExecution {
        let mut e: TestExecution = serde_json::from_str(EXECUTION).unwrap();
        e.id = id;
        e
    }

    #[test]
    fn groups_come_back_by_cycle_then_largest_first_in_spool_order() {
        let dir = std::env::temp_dir().join(format!("etlpool-spool-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_for(&dir.join("j.csv"));
        let mut w = SpoolWriter::create(path.clone()).unwrap();
        let pushes = [
            (Some(7), "P-T1", 1),
            (None, "P-T1", 2),
            (Some(5), "P-T2", 3),
            (Some(7), "P-T2", 4),
            (Some(7), "P-T1", 5),
            (Some(5), "P-T2", 6),
        ];
        for (cycle, key, id) in pushes {
            w.push(cycle, key, &exec(id)).unwrap();
        }
        assert_eq!(w.count(), 6);
        let mut spool = w.finish().unwrap();
        let cycles = spool.cycles();
        let ids: Vec<Option<u64>> = cycles.iter().map(|(c, _)| *c).collect();
        assert_eq!(ids, [Some(7), Some(5), None]);
        let mut read = Vec::new();
        for (_, range) in cycles {
            for group in spool.groups(range) {
                let execs = spool.read(group).unwrap();
                read.push(execs.iter().map(|e| e.id).collect::<Vec<_>>());
            }
        }
        assert_eq!(read, [vec![1, 5], vec![4], vec![3, 6], vec![2]]);
        assert!(!path.exists() || cfg!(not(unix)));
        drop(spool);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
