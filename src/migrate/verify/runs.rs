//! Pass 4: test runs and logs. Zephyr's executions are streamed once into
//! expected logs per (cycle, case) pair; then each cycle's runs are listed,
//! matched to cases, and each run's logs compared.

use std::collections::{BTreeMap, HashSet};

use super::cases::CaseIndex;
use super::logs::{self, ExpectedLog, LogDiff};
use super::text::{instant, show_instant};
use super::{DiffKind, Difference, MISSING, Verifier, duplicate, parallel};
use crate::migrate::error::{MigrateError, Reason, TransformError};
use crate::migrate::record::{RecordKind, run_key};
use crate::migrate::transform::{DEFAULT_KEY, LogPlan, StepLayout, executed_case, log_plan};
use crate::qtest::{TestLog, TestRun};
use crate::zephyr::TestExecution;

/// Expected logs by case key, of one cycle.
type Pairs = BTreeMap<String, Vec<ExpectedLog>>;

/// A run found for a pair, with the logs it should hold.
struct Compared<'a> {
    key: String,
    expected: &'a [ExpectedLog],
    run: u64,
}

impl Verifier<'_> {
    /// Compares every (cycle, case) pair's run and logs.
    pub(super) fn executions(&mut self, cases: &CaseIndex) -> Result<(), MigrateError> {
        for (cycle, pairs) in self.expected_runs()? {
            self.cycle_runs(cycle, &pairs, cases)?;
        }
        Ok(())
    }

    /// Every execution once, as the log it should have made (none for Not
    /// Executed), grouped by cycle (`None`: no cycle) and case.
    fn expected_runs(&mut self) -> crate::Result<BTreeMap<Option<u64>, Pairs>> {
        let mut runs: BTreeMap<Option<u64>, Pairs> = BTreeMap::new();
        let mut seen = HashSet::new();
        let zephyr = self.zephyr;
        zephyr.executions(None, |page| {
            for record in page {
                match record {
                    Ok(exec) if seen.insert(exec.id) => self.expect(&exec, &mut runs),
                    Ok(_) => {}
                    Err(bad) => self.unreadable(RecordKind::Log, &bad),
                }
            }
            Ok(())
        })?;
        Ok(runs)
    }

    fn expect(&mut self, exec: &TestExecution, runs: &mut BTreeMap<Option<u64>, Pairs>) {
        let case = match executed_case(exec) {
            Ok(case) => case,
            Err(e) => return self.refuse_log(&e),
        };
        let cycle = exec.test_cycle.as_ref().map(|c| c.id);
        let logs = runs.entry(cycle).or_default().entry(case.key).or_default();
        let body = match log_plan(exec, &[], &StepLayout::default(), &self.context()) {
            Ok(LogPlan::Create(body)) => body,
            Ok(LogPlan::NoLog { .. }) => return,
            Err(e) => return self.refuse_log(&e),
        };
        match instant(&body.exe_end_date) {
            Some(end) => logs.push(ExpectedLog {
                execution: exec.id,
                status: body.status.id,
                end,
            }),
            // log_plan formats the date itself, so it always reads back.
            None => self.refuse_log(&TransformError::new(
                RecordKind::Log,
                exec.id.to_string(),
                Reason::BadDate {
                    field: "actualEndDate",
                    value: body.exe_end_date,
                },
            )),
        }
    }

    fn refuse_log(&mut self, error: &TransformError) {
        self.check(RecordKind::Log, 1);
        self.unmappable(error);
    }

    /// The runs of one cycle: each pair's run found once, its logs compared;
    /// runs of migrated cases no execution accounts for are extras.
    fn cycle_runs(
        &mut self,
        cycle: Option<u64>,
        pairs: &Pairs,
        cases: &CaseIndex,
    ) -> crate::Result<()> {
        let Some(target) = self.cycle_target(cycle, pairs) else {
            return Ok(());
        };
        let listed = self.qtest.runs(target)?;
        let mut runs: BTreeMap<&str, Vec<&TestRun>> = BTreeMap::new();
        for run in &listed {
            // Runs of cases not migrated from this project are not ours to judge.
            if let Some(key) = run.test_case.and_then(|c| cases.key_of(c.id)) {
                runs.entry(key).or_default().push(run);
            }
        }
        let found = self.match_runs(cycle, pairs, &mut runs, cases);
        for (case, extra) in runs {
            for run in extra {
                let (key, actual) = (run_key(cycle, case), format!("run {}", run.id));
                let d = Difference::new(
                    RecordKind::Run,
                    DiffKind::Extra,
                    key,
                    "no executions",
                    actual,
                );
                self.differ(d);
            }
        }
        let qtest = self.qtest;
        let actual = parallel::try_map(&found, self.options.workers, |f| qtest.logs(f.run))?;
        for (f, actual) in found.iter().zip(&actual) {
            self.check(RecordKind::Log, f.expected.len() as u64);
            for diff in logs::compare(f.expected, actual) {
                let d = self.log_difference(&f.key, diff);
                self.differ(d);
            }
        }
        Ok(())
    }

    /// The qTest cycle of a Zephyr cycle (`None`: the default cycle); `None`
    /// when there is none to look in, the reason already reported.
    fn cycle_target(&mut self, cycle: Option<u64>, pairs: &Pairs) -> Option<u64> {
        let target = match cycle {
            Some(id) if !self.zephyr_cycles.contains(&id) => {
                self.foreign_cycle(id, pairs);
                return None;
            }
            Some(id) => self.located(RecordKind::Cycle, &id.to_string()),
            None => {
                self.missing_default(RecordKind::Cycle);
                self.located(RecordKind::Cycle, DEFAULT_KEY)
            }
        };
        if target.is_none() {
            self.skip(RecordKind::Run, pairs.len() as u64);
            let logs: usize = pairs.values().map(Vec::len).sum();
            self.skip(RecordKind::Log, logs as u64);
        }
        target
    }

    /// Takes each pair's runs out of `runs`; reports missing and duplicated
    /// runs and returns the runs whose logs are to be compared.
    fn match_runs<'p>(
        &mut self,
        cycle: Option<u64>,
        pairs: &'p Pairs,
        runs: &mut BTreeMap<&str, Vec<&TestRun>>,
        cases: &CaseIndex,
    ) -> Vec<Compared<'p>> {
        let mut found = Vec::new();
        for (case, expected) in pairs {
            let key = run_key(cycle, case);
            if !cases.has(case) {
                self.case_not_found(&key, case, expected);
                continue;
            }
            self.check(RecordKind::Run, 1);
            let Some(mut matching) = runs.remove(case.as_str()) else {
                let wanted = format!("a run of {case} with {} logs", expected.len());
                let d = Difference::new(
                    RecordKind::Run,
                    DiffKind::Missing,
                    &key,
                    wanted,
                    "not found",
                );
                self.differ(d);
                self.skip(RecordKind::Log, expected.len() as u64);
                continue;
            };
            matching.sort_by_key(|r| r.id);
            if matching.len() > 1 {
                self.differ(duplicate(
                    RecordKind::Run,
                    &key,
                    matching.iter().map(|r| r.id),
                ));
            }
            found.push(Compared {
                key,
                expected,
                run: matching[0].id,
            });
        }
        found
    }

    /// A found record's qTest id; `None` when it is missing.
    fn located(&self, kind: RecordKind, key: &str) -> Option<u64> {
        self.found
            .get(kind, key)
            .map(|t| t.id)
            .filter(|&id| id != MISSING)
    }

    /// Executions of a cycle the project's cycle list doesn't have: no run
    /// can be made for them.
    fn foreign_cycle(&mut self, cycle: u64, pairs: &Pairs) {
        for case in pairs.keys() {
            self.check(RecordKind::Run, 1);
            self.unmappable(&TransformError::new(
                RecordKind::Run,
                run_key(Some(cycle), case),
                Reason::ParentNotMigrated {
                    kind: RecordKind::Cycle,
                    key: cycle.to_string(),
                },
            ));
        }
    }

    /// A pair whose case is not on qTest: not checked when the case is a
    /// Zephyr case (its own difference covers it), unmappable otherwise.
    fn case_not_found(&mut self, key: &str, case: &str, expected: &[ExpectedLog]) {
        if self.zephyr_cases.contains(case) {
            self.skip(RecordKind::Run, 1);
            self.skip(RecordKind::Log, expected.len() as u64);
            return;
        }
        self.check(RecordKind::Run, 1);
        self.unmappable(&TransformError::new(
            RecordKind::Run,
            key,
            Reason::ParentNotMigrated {
                kind: RecordKind::Case,
                key: case.to_owned(),
            },
        ));
    }

    fn log_difference(&self, run: &str, diff: LogDiff<'_>) -> Difference {
        let at =
            |e: &ExpectedLog| format!("{} at {}", self.names.status(e.status), show_instant(e.end));
        let actual = |l: &TestLog| {
            let end = l.exe_end_date.as_deref().unwrap_or("no end date");
            format!("{} at {end} (log {})", self.names.status(l.status.id), l.id)
        };
        match diff {
            LogDiff::Missing(e) => Difference::new(
                RecordKind::Log,
                DiffKind::Missing,
                e.execution.to_string(),
                format!("{} in run {run}", at(e)),
                "not found",
            ),
            LogDiff::WrongStatus(e, l) => Difference::mismatch(
                RecordKind::Log,
                e.execution.to_string(),
                "status",
                at(e),
                actual(l),
            ),
            LogDiff::Extra(l) => Difference::new(
                RecordKind::Log,
                DiffKind::Extra,
                run,
                "no such execution",
                actual(l),
            ),
        }
    }
}
