//! What `verify` found: counts of what it checked and every difference, as
//! data (serde) and as a human summary ([`fmt::Display`]).

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::migrate::record::RecordKind;

/// How many differences the [`fmt::Display`] summary lists before it only counts.
pub const DEFAULT_LISTED: usize = 20;

/// What is wrong with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffKind {
    /// Expected on qTest, not found there.
    Missing,
    /// Found on qTest more than once.
    Duplicate,
    /// On qTest, marked as this project's, but with no Zephyr record to match.
    Extra,
    /// Found, but one field differs; [`Difference::field`] names it.
    Mismatch,
    /// The Zephyr record can't be mapped (the transform refuses it), so no
    /// migration can have created it.
    Unmappable,
}

impl DiffKind {
    /// The name used in the summary and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Duplicate => "duplicate",
            DiffKind::Extra => "extra",
            DiffKind::Mismatch => "mismatch",
            DiffKind::Unmappable => "unmappable",
        }
    }
}

impl fmt::Display for DiffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between Zephyr and qTest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Difference {
    /// The kind of record.
    #[serde(with = "record_kind")]
    pub record: RecordKind,
    /// What is wrong.
    pub kind: DiffKind,
    /// The record's key, named as the journal and the report name it (case
    /// key, folder, cycle or execution id, [`run_key`](crate::migrate::run_key)),
    /// or a qTest id for records found only on qTest.
    pub key: String,
    /// For a [`DiffKind::Mismatch`], the field that differs (`name`,
    /// `description`, `step 2 expected`, a qTest field label, `status`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What Zephyr says qTest should hold, shortened.
    pub expected: String,
    /// What qTest holds, shortened.
    pub actual: String,
}

impl Difference {
    pub(super) fn new(
        record: RecordKind,
        kind: DiffKind,
        key: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Difference {
            record,
            kind,
            key: key.into(),
            field: None,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    pub(super) fn mismatch(
        record: RecordKind,
        key: impl Into<String>,
        field: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Difference {
            field: Some(field.into()),
            ..Difference::new(record, DiffKind::Mismatch, key, expected, actual)
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.record, self.key)?;
        match (&self.field, self.kind) {
            (Some(field), DiffKind::Mismatch) => write!(f, "{field}")?,
            (Some(field), kind) => write!(f, "{kind} {field}")?,
            (None, kind) => write!(f, "{kind}")?,
        }
        write!(f, ": expected {}; actual {}", self.expected, self.actual)
    }
}

/// A number per record kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counts {
    /// `TEST_CASE` folders / modules.
    pub modules: u64,
    /// `TEST_CYCLE` folders / parent test cycles.
    pub cycle_folders: u64,
    /// Test cases.
    pub cases: u64,
    /// Test cycles.
    pub cycles: u64,
    /// Test runs, one per (cycle, case) pair.
    pub runs: u64,
    /// Test logs, one per executed execution.
    pub logs: u64,
    /// Attachments (left out of the JSON while zero: `verify` compares
    /// files only when given the journal).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attachments: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    fn slot(&mut self, kind: RecordKind) -> Option<&mut u64> {
        Some(match kind {
            RecordKind::Module => &mut self.modules,
            RecordKind::CycleFolder => &mut self.cycle_folders,
            RecordKind::Case => &mut self.cases,
            RecordKind::Cycle => &mut self.cycles,
            RecordKind::Run => &mut self.runs,
            RecordKind::Log => &mut self.logs,
            RecordKind::Attachment => &mut self.attachments,
            // Sync state is not a record: never checked, never counted.
            RecordKind::Digest | RecordKind::Mark => return None,
        })
    }

    /// The count of one kind.
    pub fn get(&self, kind: RecordKind) -> u64 {
        let mut copy = *self;
        copy.slot(kind).map_or(0, |n| *n)
    }

    pub(super) fn add(&mut self, kind: RecordKind, n: u64) {
        if let Some(slot) = self.slot(kind) {
            *slot += n;
        }
    }

    /// The sum over every kind.
    pub fn total(&self) -> u64 {
        RecordKind::ALL.iter().map(|k| self.get(*k)).sum()
    }
}

/// Every kind, as `3 modules, 0 cycle folders, ...`; with `{:#}`, only the
/// kinds that aren't zero.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            "modules",
            "cycle folders",
            "cases",
            "cycles",
            "runs",
            "logs",
            "attachments",
        ];
        let parts: Vec<String> = RecordKind::ALL
            .iter()
            .zip(names)
            // Attachments show only when counted: only with a journal.
            .filter(|(kind, _)| {
                let optional = f.alternate() || **kind == RecordKind::Attachment;
                !optional || self.get(**kind) > 0
            })
            .map(|(kind, name)| format!("{} {name}", self.get(*kind)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// qTest holds exactly what Zephyr says it should.
    Clean,
    /// At least one difference (the binary exits with 1).
    Differences,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Clean => "clean",
            Verdict::Differences => "differences found",
        })
    }
}

/// What a verification checked and found. Serializes with its
/// [`verdict`](VerifyReport::verdict) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The Zephyr project key.
    pub zephyr_project: String,
    /// The qTest project id.
    pub qtest_project: u64,
    /// Records compared (expected ones, found or not).
    pub checked: Counts,
    /// Records not compared because their parent (module, cycle, case or
    /// run) is missing; the parent's difference covers them.
    pub not_checked: Counts,
    /// Records this build can't compare: the files of test steps and step
    /// results (their qTest step ids are not journaled).
    pub not_comparable: Counts,
    /// The differences, in the order found, up to the configured maximum.
    pub differences: Vec<Difference>,
    /// Differences found beyond that maximum, counted only.
    pub omitted: u64,
}

impl VerifyReport {
    /// Clean or not.
    pub fn verdict(&self) -> Verdict {
        if self.is_clean() {
            Verdict::Clean
        } else {
            Verdict::Differences
        }
    }

    /// Whether no difference was found.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.omitted == 0
    }

    /// Every difference found, listed or omitted.
    pub fn difference_count(&self) -> u64 {
        self.differences.len() as u64 + self.omitted
    }

    /// The listed differences of one record kind and difference kind.
    pub fn find(&self, record: RecordKind, kind: DiffKind) -> Vec<&Difference> {
        self.differences
            .iter()
            .filter(|d| d.record == record && d.kind == kind)
            .collect()
    }

    /// A summary listing at most `listed` differences.
    pub fn summary(&self, listed: usize) -> Summary<'_> {
        Summary {
            report: self,
            listed,
        }
    }
}

impl Serialize for VerifyReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("VerifyReport", 8)?;
        s.serialize_field("verdict", &self.verdict())?;
        s.serialize_field("zephyr_project", &self.zephyr_project)?;
        s.serialize_field("qtest_project", &self.qtest_project)?;
        s.serialize_field("checked", &self.checked)?;
        s.serialize_field("not_checked", &self.not_checked)?;
        s.serialize_field("not_comparable", &self.not_comparable)?;
        s.serialize_field("differences", &self.differences)?;
        s.serialize_field("omitted", &self.omitted)?;
        s.end()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.summary(DEFAULT_LISTED).fmt(f)
    }
}

/// The human summary of a [`VerifyReport`]; see [`VerifyReport::summary`].
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    report: &'a VerifyReport,
    listed: usize,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        write!(
            f,
            "verify Zephyr {} -> qTest project {}: ",
            r.zephyr_project, r.qtest_project
        )?;
        match r.difference_count() {
            0 => writeln!(f, "no differences")?,
            1 => writeln!(f, "1 difference")?,
            n => writeln!(f, "{n} differences")?,
        }
        writeln!(f, "checked: {}", r.checked)?;
        if r.not_checked.total() > 0 {
            writeln!(f, "not checked (parent missing): {:#}", r.not_checked)?;
        }
        if r.not_comparable.total() > 0 {
            writeln!(
                f,
                "not compared (files of steps: their qTest step ids are not journaled): {:#}",
                r.not_comparable
            )?;
        }
        for d in r.differences.iter().take(self.listed) {
            writeln!(f, "  {d}")?;
        }
        let rest = r.difference_count() - r.differences.len().min(self.listed) as u64;
        if rest > 0 {
            writeln!(f, "  ... and {rest} more")?;
        }
        write!(f, "verdict: {}", r.verdict())
    }
}

/// [`RecordKind`] as its journal name in JSON.
mod record_kind {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::migrate::record::RecordKind;

    pub(super) fn serialize<S: Serializer>(kind: &RecordKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RecordKind, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(differences: usize) -> VerifyReport {
        let mut report = VerifyReport {
            zephyr_project: "PROJ".into(),
            qtest_project: 7,
            ..VerifyReport::default()
        };
        report.checked.add(RecordKind::Case, 3);
        for n in 0..differences {
            report.differences.push(Difference::new(
                RecordKind::Case,
                DiffKind::Missing,
                format!("PROJ-T{n}"),
                "\"Check pump\"",
                "not found",
            ));
        }
        report
    }

    #[test]
    fn clean_summary_and_json() {
        let clean = report(0);
        assert!(clean.is_clean());
        assert_eq!(
            clean.to_string(),
            "verify Zephyr PROJ -> qTest project 7: no differences\n\
             checked: 0 modules, 0 cycle folders, 3 cases, 0 cycles, 0 runs, 0 logs\n\
             verdict: clean"
        );
        let json = serde_json::to_value(&clean).unwrap();
        assert_eq!(json["verdict"], "clean");
        assert_eq!(json["checked"]["cases"], 3);
    }

    #[test]
    fn summary_caps_the_list_and_counts_the_rest() {
        let mut r = report(3);
        r.omitted = 2;
        r.not_checked.add(RecordKind::Run, 1);
        r.not_comparable.add(RecordKind::Attachment, 2);
        let text = r.summary(2).to_string();
        assert!(text.starts_with("verify Zephyr PROJ -> qTest project 7: 5 differences\n"));
        assert!(text.contains("not checked (parent missing): 1 runs\n"));
        assert!(text.contains("not journaled): 2 attachments\n"), "{text}");
        assert!(
            text.contains("  case PROJ-T0: missing: expected \"Check pump\"; actual not found\n")
        );
        assert!(!text.contains("PROJ-T2"));
        assert!(text.ends_with("  ... and 3 more\nverdict: differences found"));
        assert_eq!(r.verdict(), Verdict::Differences);
        assert_eq!(r.find(RecordKind::Case, DiffKind::Missing).len(), 3);
    }

    #[test]
    fn differences_round_trip_through_json() {
        let d = Difference::mismatch(RecordKind::Log, "30012", "status", "Passed", "Failed");
        assert_eq!(
            d.to_string(),
            "log 30012: status: expected Passed; actual Failed"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["record"], "log");
        assert_eq!(json["kind"], "mismatch");
        assert_eq!(serde_json::from_value::<Difference>(json).unwrap(), d);
    }
}
