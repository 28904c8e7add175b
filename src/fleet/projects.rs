//! A list of projects to migrate (`etlpool migrate --projects projects.csv`)
//! and its shards (`--shard I/N`).
//!
//! ```text
//! # one project per line; the header names the columns
//! zephyr_project,qtest_project_id,config,journal,report
//! PROJ,12345,,,
//! WEB,12346,web.toml,web/journal.csv,web/report.csv
//! ```
//!
//! `zephyr_project` and `qtest_project_id` are required; `config` (a config
//! file used for this project instead of `--config`: its own mapping, its
//! own services or tokens), `journal` and `report` are optional, in any
//! order, and an empty value means the default. Lines starting with `#` and
//! blank lines are skipped. Relative paths are taken from the directory the
//! project runs in, like every path option of `etlpool`. A project is named
//! once per list, and no two projects share a journal: their records would
//! mix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The column names, in the order `etlpool` writes them.
pub const COLUMNS: [&str; 5] = [
    "zephyr_project",
    "qtest_project_id",
    "config",
    "journal",
    "report",
];

/// One project of a list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Project {
    /// The Zephyr Scale project key.
    pub zephyr_project: String,
    /// The qTest project id.
    pub qtest_project_id: u64,
    /// A config file for this project instead of the command's `--config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// Its journal file (without Redis); defaults to `<KEY>.journal.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<PathBuf>,
    /// Its report; defaults to `<KEY>.report.csv` (named per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
}

impl Project {
    /// A project with no settings of its own.
    pub fn new(zephyr_project: impl Into<String>, qtest_project_id: u64) -> Project {
        Project {
            zephyr_project: zephyr_project.into(),
            qtest_project_id,
            config: None,
            journal: None,
            report: None,
        }
    }
}

/// A list of projects in the order of its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectList {
    /// The projects; a project's index here is the one `--shard` divides.
    pub projects: Vec<Project>,
}

/// `--shard I/N`: the projects whose index in the list is `I` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `I/N` with `0 <= I < N` (Kubernetes' `JOB_COMPLETION_INDEX`
    /// and the Job's `completions`).
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("expected I/N with 0 <= I < N (e.g. 0/4), got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl ProjectList {
    /// Reads and checks the list at `path`; every problem is a config error
    /// naming the file and line.
    pub fn read(path: &Path) -> Result<ProjectList> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("reading the project list {}", path.display()), e))?;
        let name = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let newlines = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            Error::config(
                "--projects",
                format!(
                    "{name} line {}: not UTF-8 (save the list as UTF-8)",
                    newlines + 1
                ),
            )
        })?;
        ProjectList::parse(&text, &name)
    }

    /// Parses a list's text; `name` says where it came from in errors.
    pub fn parse(text: &str, name: &str) -> Result<ProjectList> {
        let bad = |line: u64, message: String| {
            Error::config("--projects", format!("{name} line {line}: {message}"))
        };
        let line_at =
            |position: Option<&csv::Position>| position.map_or(0, |p| line_of(text, p.byte()));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let columns = columns(&header).map_err(|m| bad(1, m))?;
        let mut list = ProjectList::default();
        let mut keys: HashMap<String, u64> = HashMap::new();
        let mut journals: HashMap<PathBuf, u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| bad(line_at(e.position()), e.to_string()))?;
            let line = line_at(record.position());
            let project = columns.project(&record).map_err(|m| bad(line, m))?;
            if let Some(first) = keys.insert(project.zephyr_project.clone(), line) {
                return Err(bad(
                    line,
                    format!(
                        "project {} is already on line {first}",
                        project.zephyr_project
                    ),
                ));
            }
            if let Some(journal) = &project.journal
                && let Some(first) = journals.insert(journal.clone(), line)
            {
                return Err(bad(
                    line,
                    format!(
                        "journal {} is already the journal of line {first}",
                        journal.display()
                    ),
                ));
            }
            list.projects.push(project);
        }
        Ok(list)
    }

    /// The projects of `shard` (all of them for `None`), in list order.
    pub fn shard(&self, shard: Option<Shard>) -> Vec<&Project> {
        self.projects
            .iter()
            .enumerate()
            .filter(|(i, _)| shard.is_none_or(|s| i % s.count == s.index))
            .map(|(_, p)| p)
            .collect()
    }
}

/// The file's line of a record csv places at byte `at`: csv places a record
/// at the comment or blank lines before it, and counts no comment lines.
fn line_of(text: &str, at: u64) -> u64 {
    let mut at = usize::try_from(at).unwrap_or(usize::MAX).min(text.len());
    while let Some(rest) = text.get(at..) {
        let skipped = rest.starts_with('#') || rest.starts_with(['\n', '\r']);
        match rest.find('\n') {
            Some(end) if skipped => at += end + 1,
            _ => break,
        }
    }
    let newlines = text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    1 + u64::try_from(newlines).unwrap_or(u64::MAX)
}

/// Where each known column is in the header.
struct Columns([Option<usize>; 5]);

fn columns(header: &csv::StringRecord) -> std::result::Result<Columns, String> {
    let mut at = [None; 5];
    for (i, name) in header.iter().enumerate() {
        let Some(known) = COLUMNS.iter().position(|c| *c == name) else {
            return Err(format!(
                "unknown column {name:?} (the columns are {})",
                COLUMNS.join(", ")
            ));
        };
        if at[known].replace(i).is_some() {
            return Err(format!("column {name} appears twice"));
        }
    }
    for required in [0, 1] {
        if at[required].is_none() {
            return Err(format!(
                "the header names no {} column (the first line names the columns: {})",
                COLUMNS[required],
                COLUMNS.join(",")
            ));
        }
    }
    Ok(Columns(at))
}

impl Columns {
    fn get<'r>(&self, record: &'r csv::StringRecord, column: usize) -> Option<&'r str> {
        self.0[column]
            .and_then(|i| record.get(i))
            .filter(|v| !v.is_empty())
    }

    fn project(&self, record: &csv::StringRecord) -> std::result::Result<Project, String> {
        let key = self.get(record, 0).ok_or("no zephyr_project".to_string())?;
        if key.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!("project key {key:?} contains a space"));
        }
        let id = self
            .get(record, 1)
            .ok_or("no qtest_project_id".to_string())?;
        let id: u64 = id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("qtest_project_id {id:?} is not a positive number"))?;
        let path = |column| self.get(record, column).map(PathBuf::from);
        Ok(Project {
            zephyr_project: key.to_string(),
            qtest_project_id: id,
            config: path(2),
            journal: path(3),
            report: path(4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProjectList> {
        ProjectList::parse(text, "p.csv")
    }

    #[test]
    fn columns_in_any_order_with_comments_and_blank_values() {
        let list = parse(
            "# the list\nqtest_project_id, zephyr_project ,report\n\
             12345,PROJ,\n\n# later\n7,WEB,web.csv\n",
        )
        .unwrap();
        let mut web = Project::new("WEB", 7);
        web.report = Some("web.csv".into());
        assert_eq!(list.projects, vec![Project::new("PROJ", 12345), web]);
    }

    #[test]
    fn every_mistake_names_its_line() {
        for (text, wanted) in [
            (
                "zephyr_project\nP,1\n",
                "line 1: the header names no qtest_project_id",
            ),
            (
                "zephyr_project,qtest_project_id,color\n",
                "unknown column \"color\"",
            ),
            (
                "zephyr_project,qtest_project_id\nP,x\n",
                "line 2: qtest_project_id \"x\"",
            ),
            (
                "zephyr_project,qtest_project_id\nP,0\n",
                "not a positive number",
            ),
            (
                "zephyr_project,qtest_project_id\n,3\n",
                "line 2: no zephyr_project",
            ),
            (
                "zephyr_project,qtest_project_id\nP,1\n#\nP,2\n",
                "line 4: project P is already on line 2",
            ),
            (
                "zephyr_project,qtest_project_id,journal\nP,1,j.csv\nQ,2,j.csv\n",
                "line 3: journal j.csv is already the journal of line 2",
            ),
            ("zephyr_project,qtest_project_id\nP,1,extra\n", "line 2"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text:?}: {err}");
            assert!(err.contains("p.csv"), "{err}");
        }
    }

    #[test]
    fn shards_split_the_list_with_no_overlap_and_no_gap() {
        let text: String = std::iter::once("zephyr_project,qtest_project_id\n".to_string())
            .chain((0..10).map(|i| format!("P{i},{}\n", i + 1)))
            .collect();
        let list = parse(&text).unwrap();
        let mut seen = Vec::new();
        for index in 0..3 {
            let shard = Shard { index, count: 3 };
            for p in list.shard(Some(shard)) {
                let at = list.projects.iter().position(|q| q == p).unwrap();
                assert_eq!(at % 3, index);
                seen.push(at);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(list.shard(None).len(), 10);
    }

    #[test]
    fn shards_parse_as_index_of_count() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
