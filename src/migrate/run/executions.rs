//! Executions: one test run per (cycle, case) pair and one test log per
//! execution. One job per run creates its logs in `actualEndDate` order,
//! because qTest takes a run's status from its latest log.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::Phases;
use super::case_info::{executed_case_info, step_layout_of};
use super::folders::default_cycle;
use super::shared::{Fresh, PlanInfo, Shared};
use super::spool::{self, Spool, SpoolWriter};
use crate::error::{Error, Result};
use crate::migrate::error::MigrateError;
use crate::migrate::record::{RecordKind, Target, run_key};
use crate::migrate::transform::{
    LogPlan, StepLayout, executed_case, log_plan, run_plan, same_instant, sort_for_logs,
};
use crate::qtest::{NewTestLog, TestLog};
use crate::zephyr::TestExecution;

/// The executions of one (cycle, case) pair: one job.
pub(crate) struct RunJob {
    cycle: Arc<CycleRuns>,
    case_key: String,
    executions: Vec<TestExecution>,
}

/// A qTest cycle's existing runs, read once for all of its jobs.
struct CycleRuns {
    /// The Zephyr cycle id; `None` for executions in no cycle.
    zephyr_id: Option<u64>,
    snapshot: OnceLock<std::result::Result<HashMap<u64, u64>, String>>,
}

/// Reads every execution in one pass through the NextGen listing, spooling
/// them to disk, then hands each (cycle, case) pair to `submit`, cycle by
/// cycle (executions outside any cycle last, in the default cycle).
pub(crate) fn produce(
    s: &Shared,
    submit: &mut dyn FnMut(RunJob) -> Result<()>,
) -> std::result::Result<(), MigrateError> {
    let filter = super::sync::execution_filter(s);
    // The offset list can't filter by `updatedAfter`: no size when filtered.
    let total = match filter.updated_after {
        Some(_) => None,
        None => {
            let counted = [("onlyLastExecutions", "false")];
            s.patiently(|| s.zephyr.count("/testexecutions", &counted))?
        }
    };
    s.progress.phase("executions", total);
    let mut spool = spool_executions(s, &filter)?;
    let spool_error = |e| MigrateError::io("reading spooled executions", e);
    for (cycle, range) in spool.cycles() {
        if cycle.is_none() {
            // Made (or planned, in a dry run) before its runs need it.
            default_cycle(s);
        }
        let runs = Arc::new(CycleRuns {
            zephyr_id: cycle,
            snapshot: OnceLock::new(),
        });
        for group in spool.groups(range) {
            if s.cancel.is_cancelled() {
                return Err(Error::Cancelled.into());
            }
            for (case_key, executions) in by_case(spool.read(group).map_err(spool_error)?) {
                submit(RunJob {
                    cycle: runs.clone(),
                    case_key,
                    executions,
                })?;
            }
        }
    }
    Ok(())
}

/// The one pass over `GET /testexecutions/nextgen`: readable executions go to
/// the spool; one that can't be read, or whose case can't be told, fails alone.
fn spool_executions(
    s: &Shared,
    filter: &crate::zephyr::ExecutionFilter,
) -> std::result::Result<Spool, MigrateError> {
    let path = spool::path_for(s.journal.path());
    let context = format!("spooling executions to {}", path.display());
    let mut writer = SpoolWriter::create(path).map_err(|e| MigrateError::io(context.clone(), e))?;
    let list = |visit: &mut dyn FnMut(_) -> Result<()>| s.zephyr.executions_where(filter, visit);
    s.resumably(list, |record| {
        if s.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let exec = match record {
            Ok(exec) => exec,
            Err(bad) => {
                s.unreadable(RecordKind::Log, &bad);
                return Ok(());
            }
        };
        match executed_case(&exec) {
            Ok(case) => {
                let cycle = exec.test_cycle.as_ref().map(|c| c.id);
                writer
                    .push(cycle, &case.key, &exec)
                    .map_err(|e| Error::io(context.clone(), e))?;
            }
            Err(e) => s.transform_failed(&e),
        }
        Ok(())
    })?;
    log::debug!("{} executions spooled", writer.count());
    writer.finish().map_err(|e| MigrateError::io(context, e))
}

/// A group's executions by case key (a group may hold two keys whose hashes
/// agree), each execution once.
fn by_case(executions: Vec<TestExecution>) -> BTreeMap<String, Vec<TestExecution>> {
    let mut out: BTreeMap<String, Vec<TestExecution>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for exec in executions {
        if !seen.insert(exec.id) {
            continue;
        }
        // Spooled executions were checked to name their case.
        if let Some(case) = exec.case_version() {
            out.entry(case.key).or_default().push(exec);
        }
    }
    out
}

/// Migrates one run and its logs. Logs are made in `actualEndDate` order and
/// never after one that is missing: from the first log that can't be made,
/// the rest of the run's logs wait for the next run, as do all of them when
/// the run itself is not migrated.
pub(crate) fn migrate_run(s: &Shared, phases: Phases, job: RunJob) {
    let RunJob {
        cycle,
        case_key,
        mut executions,
    } = job;
    sort_for_logs(&mut executions);
    let Some(first) = executions.first() else {
        return;
    };
    let key = run_key(cycle.zephyr_id, &case_key);
    let logs_wanted = phases.logs
        && executions
            .iter()
            .any(|e| s.target_of(RecordKind::Log, &e.id.to_string()).is_none());
    let run_wanted = phases.runs && s.target_of(RecordKind::Run, &key).is_none();
    let qcase = s.patiently(|| executed_case_info(s, &case_key, run_wanted, logs_wanted));
    let created = std::cell::Cell::new(false);
    let run = match (&qcase, phases.runs) {
        (_, false) => s.target_of(RecordKind::Run, &key),
        (Ok(info), true) => ensure_run(
            s,
            &cycle,
            first,
            info.as_ref().map(|c| c.name.as_str()),
            &created,
        ),
        (Err(_), true) if !run_wanted => s.journaled(RecordKind::Run, &key),
        (Err(e), true) => {
            s.failed(RecordKind::Run, &key, e);
            None
        }
    };
    if !phases.logs || s.cancel.is_cancelled() {
        return;
    }
    let Some(run) = run else {
        let parent = format!("run {key}");
        for exec in &executions {
            let id = exec.id.to_string();
            if !s.already(RecordKind::Log, &id) {
                s.waiting(RecordKind::Log, &id, &parent);
            }
        }
        return;
    };
    // What the logs need of the case: its steps on both sides. Had the run
    // no use for the case, its failure to read is the first log's.
    let layout = qcase.and_then(|info| {
        s.patiently(|| step_layout_of(s, info.is_some() && logs_wanted, &case_key))
    });
    let logs = Logs::new(s, run, &executions, created.get());
    let mut missing: Option<String> = None;
    for exec in &executions {
        if s.cancel.is_cancelled() {
            // The rest wait for the next run; nothing is half-done.
            return;
        }
        let id = exec.id.to_string();
        if let Some(target) = s.journaled(RecordKind::Log, &id) {
            // Its files may be what an earlier run didn't get to.
            super::attachments::of_execution(s, exec.id, target);
            super::step_files::of_execution_steps(s, exec.id, run.id, target, None);
            continue;
        }
        let made = match (&missing, &layout) {
            (Some(earlier), _) => {
                s.waiting(RecordKind::Log, &id, earlier);
                continue;
            }
            (None, Err(e)) => {
                s.failed(RecordKind::Log, &id, e);
                false
            }
            (None, Ok(layout)) => migrate_log(s, &logs, exec, layout),
        };
        if !made {
            missing = Some(format!("log {id}, an earlier log of run {key}"));
        }
    }
}

/// Finds or creates the run; `created` says whether this call made it (then it
/// has no logs yet, and they need not be read).
fn ensure_run(
    s: &Shared,
    cycle: &CycleRuns,
    first: &TestExecution,
    name: Option<&str>,
    created: &std::cell::Cell<bool>,
) -> Option<Target> {
    let plan = match run_plan(first, name, &s.context()) {
        Ok(plan) => plan,
        Err(e) => {
            s.transform_failed(&e);
            return None;
        }
    };
    let cycle_id = match plan.parent {
        crate::qtest::CycleParent::TestCycle(id) => id,
        _ => 0,
    };
    let case_id = plan.body.test_case.id;
    let live = || -> Result<Option<Target>> {
        let runs = s.qtest.runs(cycle_id)?;
        Ok(runs_by_case(&runs).get(&case_id).map(|&id| Target::id(id)))
    };
    let find = |fresh: Fresh| match fresh {
        Fresh::Live => live(),
        Fresh::Snapshot => {
            let snap = cycle.snapshot.get_or_init(|| {
                s.qtest
                    .runs(cycle_id)
                    .map(|runs| runs_by_case(&runs))
                    .map_err(|e| e.to_string())
            });
            match snap {
                Ok(map) => Ok(map.get(&case_id).map(|&id| Target::id(id))),
                Err(_) => live(),
            }
        }
    };
    let create = || {
        let run = s.qtest.create_run(cycle_id, &plan.body)?;
        created.set(true);
        Ok(Target::id(run.id))
    };
    let info = PlanInfo {
        parent: cycle_id.to_string(),
        name: &plan.body.name,
        body: &plan.body,
    };
    s.ensure(RecordKind::Run, &plan.key, info, &find, &create)
}

/// The oldest run of each case.
fn runs_by_case(runs: &[crate::qtest::TestRun]) -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    for run in runs {
        if let Some(case) = &run.test_case {
            out.entry(case.id)
                .and_modify(|id: &mut u64| *id = (*id).min(run.id))
                .or_insert(run.id);
        }
    }
    out
}

/// A run's logs on qTest, matched to executions by end time and status. Each
/// qTest log matches at most one execution: those already in the journal are
/// claimed up front, and each match claims one more.
struct Logs<'a> {
    s: &'a Shared,
    run: Target,
    snapshot: OnceLock<std::result::Result<Vec<TestLog>, String>>,
    claimed: RefCell<HashSet<u64>>,
}

impl<'a> Logs<'a> {
    fn new(s: &'a Shared, run: Target, executions: &[TestExecution], fresh_run: bool) -> Self {
        let claimed = executions
            .iter()
            .filter_map(|e| s.journal.get(RecordKind::Log, &e.id.to_string()))
            .map(|t| t.id)
            .collect();
        let snapshot = OnceLock::new();
        if fresh_run {
            // Just created: it has no logs to find.
            let _ = snapshot.set(Ok(Vec::new()));
        }
        Logs {
            s,
            run,
            snapshot,
            claimed: RefCell::new(claimed),
        }
    }

    fn find(&self, fresh: Fresh, body: &NewTestLog) -> Result<Option<Target>> {
        let live;
        let logs = match fresh {
            Fresh::Live => {
                live = self.s.qtest.logs(self.run.id)?;
                &live
            }
            Fresh::Snapshot => {
                let snap = self
                    .snapshot
                    .get_or_init(|| self.s.qtest.logs(self.run.id).map_err(|e| e.to_string()));
                match snap {
                    Ok(logs) => logs,
                    Err(_) => {
                        live = self.s.qtest.logs(self.run.id)?;
                        &live
                    }
                }
            }
        };
        let mut claimed = self.claimed.borrow_mut();
        let hit = logs.iter().find(|l| {
            !claimed.contains(&l.id)
                && l.status.id == body.status.id
                && l.exe_end_date
                    .as_deref()
                    .is_some_and(|end| same_instant(end, &body.exe_end_date))
        });
        Ok(hit.map(|l| {
            claimed.insert(l.id);
            Target::id(l.id)
        }))
    }
}

/// Makes one log; whether it was made (or needs none).
fn migrate_log(s: &Shared, logs: &Logs<'_>, exec: &TestExecution, layout: &StepLayout) -> bool {
    let key = exec.id.to_string();
    let results = if layout.is_empty() || s.dry_run() {
        Vec::new()
    } else {
        match s.patiently(|| s.zephyr.execution_steps(&key)) {
            Ok(r) => r,
            Err(e) => {
                s.failed(RecordKind::Log, &key, &e);
                return false;
            }
        }
    };
    let body = match log_plan(exec, &results, layout, &s.context()) {
        Ok(LogPlan::Create(body)) => body,
        Ok(LogPlan::NoLog { status }) => {
            s.skipped(
                RecordKind::Log,
                &key,
                &format!("status `{status}` gets no log"),
            );
            return true;
        }
        Err(e) => {
            s.transform_failed(&e);
            return false;
        }
    };
    let find = |fresh: Fresh| logs.find(fresh, &body);
    let create = || {
        let log = s.qtest.create_log(logs.run.id, &body)?;
        logs.claimed.borrow_mut().insert(log.id);
        Ok(Target::id(log.id))
    };
    let info = PlanInfo {
        parent: logs.run.id.to_string(),
        name: &body.exe_end_date,
        body: &body,
    };
    match s.ensure(RecordKind::Log, &key, info, &find, &create) {
        Some(target) => {
            let mut texts = vec![exec.comment.as_deref()];
            for inline in results.iter().filter_map(|r| r.inline.as_ref()) {
                texts.extend(
                    [
                        &inline.description,
                        &inline.test_data,
                        &inline.expected_result,
                        &inline.actual_result,
                    ]
                    .map(|t| t.as_deref()),
                );
            }
            super::attachments::inline_images(s, &format!("log/{key}"), &texts);
            super::attachments::of_execution(s, exec.id, target);
            let read = (!results.is_empty()).then_some(results.as_slice());
            super::step_files::of_execution_steps(s, exec.id, logs.run.id, target, read);
            true
        }
        None => false,
    }
}
