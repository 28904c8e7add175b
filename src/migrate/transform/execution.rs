//! Executions: one test run per (cycle, case) pair, one test log per
//! execution. qTest takes a run's status from its latest log, so a run's logs
//! are created in `actualEndDate` order ([`sort_for_logs`]).

use super::catalog::ExecutionOutcome;
use super::fields;
use super::steps::StepLayout;
use super::text::{self, Extras};
use super::{Context, dates, fail};
use crate::migrate::error::{Reason, TransformError};
use crate::migrate::record::{RecordKind, Target, run_key};
use crate::qtest::{CycleParent, IdRef, NewTestLog, NewTestRun, NewTestStepLog};
use crate::zephyr::{CaseVersion, ExecutionStep, ExecutionStepInline, TestExecution};

/// What to create for a (cycle, case) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    /// The run's journal key ([`run_key`]).
    pub key: String,
    /// Where to create it: the cycle, or the default cycle.
    pub parent: CycleParent,
    /// The `POST /test-runs` body.
    pub body: NewTestRun,
}

/// What to create for one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPlan {
    /// A test log with this body.
    Create(NewTestLog),
    /// No log, by configuration (`mapping.no_log_statuses`, e.g. Not Executed).
    NoLog {
        /// The Zephyr status name.
        status: String,
    },
}

/// The executed case's key and version, from `testCase.self`.
pub fn executed_case(exec: &TestExecution) -> Result<CaseVersion, TransformError> {
    exec.case_version().ok_or_else(|| {
        TransformError::new(
            RecordKind::Log,
            exec.id.to_string(),
            Reason::BadCaseLink {
                link: exec.test_case.self_url.clone(),
            },
        )
    })
}

/// The test run of an execution's (cycle, case) pair. `case_name` names the
/// run (the case key when unknown). The run uses the migrated case's version,
/// whatever Zephyr version was executed: only the current one is migrated.
pub fn run_plan(
    exec: &TestExecution,
    case_name: Option<&str>,
    ctx: &Context<'_>,
) -> Result<RunPlan, TransformError> {
    let case = executed_case(exec)?;
    let cycle = exec.test_cycle.as_ref().map(|c| c.id);
    let key = run_key(cycle, &case.key);
    let fail = fail(RecordKind::Run, &key);
    let parent = match cycle {
        Some(id) => ctx.required(RecordKind::Cycle, &id.to_string()),
        None => ctx.default_target(RecordKind::Cycle, "mapping.default_cycle"),
    }
    .map_err(&fail)?;
    let (case_id, version_id) = case_target(&case.key, ctx).map_err(&fail)?;
    let name = case_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&case.key);
    let body = NewTestRun {
        name: name.to_owned(),
        test_case: IdRef { id: case_id },
        test_case_version_id: version_id,
        properties: Vec::new(),
    };
    Ok(RunPlan {
        parent: CycleParent::TestCycle(parent.id),
        body,
        key: key.clone(),
    })
}

fn case_target(key: &str, ctx: &Context<'_>) -> Result<(u64, u64), Reason> {
    let Target { id, version_id } = ctx.required(RecordKind::Case, key)?;
    let version_id = version_id.ok_or(Reason::Missing {
        field: "test_case_version_id",
    })?;
    Ok((id, version_id))
}

/// The test log of one execution: status by name, `exe_end_date` =
/// `actualEndDate`, `exe_start_date` = end - `executionTime`, `note` =
/// comment, and step logs placed by `layout` (the executed case's
/// [`step_layout`](super::step_layout): its own steps, and the steps of the
/// cases it calls with `called_test_case_id` and `parent_test_step_id`).
pub fn log_plan(
    exec: &TestExecution,
    steps: &[ExecutionStep],
    layout: &StepLayout,
    ctx: &Context<'_>,
) -> Result<LogPlan, TransformError> {
    let key = exec.id.to_string();
    let fail = fail(RecordKind::Log, &key);
    let status = match ctx
        .catalog
        .execution_outcome(exec.test_execution_status.id)
        .map_err(&fail)?
    {
        ExecutionOutcome::NoLog(name) => {
            return Ok(LogPlan::NoLog {
                status: name.into(),
            });
        }
        ExecutionOutcome::Status(id) => id,
    };
    let (start, end) = times(exec).map_err(&fail)?;
    let case = executed_case(exec)?;
    let (_, version_id) = case_target(&case.key, ctx).map_err(&fail)?;
    let mut extras = Extras::default();
    let step_logs = step_logs(steps, layout, ctx, &mut extras).map_err(&fail)?;
    describe_execution(exec, ctx, &mut extras);
    let block = extras.block();
    let note = text::paragraphs([exec.comment.as_deref(), block.as_deref()]);
    Ok(LogPlan::Create(NewTestLog {
        status: IdRef { id: status },
        exe_start_date: start,
        exe_end_date: end,
        note: (!note.is_empty()).then_some(note),
        test_case_version_id: version_id,
        test_step_logs: step_logs,
    }))
}

fn times(exec: &TestExecution) -> Result<(String, String), Reason> {
    let text = exec.actual_end_date.as_deref().ok_or(Reason::Missing {
        field: "actualEndDate",
    })?;
    let end = dates::parse(text).ok_or_else(|| Reason::BadDate {
        field: "actualEndDate",
        value: text.to_owned(),
    })?;
    let ms = exec.execution_time.unwrap_or(0);
    let start = dates::subtract_ms(end, ms).ok_or_else(|| Reason::BadDate {
        field: "executionTime",
        value: ms.to_string(),
    })?;
    Ok((dates::format(start), dates::format(end)))
}

/// Places step results on their qTest steps (see [`StepLayout::slots_for`]).
/// A result without a status is logged with qTest's default status; one that
/// has no qTest step to attach to goes into the note.
fn step_logs(
    results: &[ExecutionStep],
    layout: &StepLayout,
    ctx: &Context<'_>,
    extras: &mut Extras,
) -> Result<Vec<NewTestStepLog>, Reason> {
    let slots = layout.slots_for(results.len());
    let mut logs = Vec::new();
    for (index, result) in results.iter().enumerate() {
        let Some(inline) = &result.inline else {
            continue;
        };
        let order = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let status = step_status(inline, ctx)?;
        match (slots.get(index).copied().flatten(), status) {
            (Some(slot), Some(id)) => logs.push(NewTestStepLog {
                test_step_id: slot.test_step_id,
                status: IdRef { id },
                actual_result: inline.actual_result.clone().unwrap_or_default(),
                order,
                called_test_case_id: slot.called_test_case_id,
                parent_test_step_id: slot.parent_test_step_id,
            }),
            _ => describe_step(order, inline, ctx, extras),
        }
    }
    Ok(logs)
}

/// `None` when neither the step's Zephyr status nor qTest's default can be
/// used, so the step goes into the note.
fn step_status(inline: &ExecutionStepInline, ctx: &Context<'_>) -> Result<Option<u64>, Reason> {
    let default = ctx.catalog.default_execution_status();
    let Some(status) = &inline.status else {
        return Ok(default);
    };
    Ok(match ctx.catalog.execution_outcome(status.id)? {
        ExecutionOutcome::Status(id) => Some(id),
        ExecutionOutcome::NoLog(_) => default,
    })
}

fn describe_step(order: u32, inline: &ExecutionStepInline, ctx: &Context<'_>, extras: &mut Extras) {
    let status = inline.status.as_ref().map(|s| {
        ctx.catalog
            .zephyr_name(super::catalog::ZephyrList::ExecutionStatus, s.id)
            .map_or_else(|_| format!("status id {}", s.id), str::to_owned)
    });
    let actual = inline
        .actual_result
        .as_deref()
        .map(|a| format!("actual: {a}"));
    let value = text::join(", ", [status.as_deref(), actual.as_deref()]);
    extras.add(&format!("Step {order}"), &value);
}

fn describe_execution(exec: &TestExecution, ctx: &Context<'_>, extras: &mut Extras) {
    extras.add("Key", exec.key.as_deref().unwrap_or(""));
    // Zephyr names people by Atlassian account id only; names need Jira.
    let account =
        |id: Option<&str>| id.map_or(String::new(), |id| format!("{id} (Atlassian account id)"));
    extras.add("Executed by", &account(exec.executed_by_id.as_deref()));
    extras.add("Assigned to", &account(exec.assigned_to_id.as_deref()));
    if let Some(environment) = &exec.environment {
        extras.add(
            "Environment",
            &ctx.catalog.context().environment(environment.id),
        );
    }
    for (label, text) in super::links::parts(exec.links.as_ref()) {
        extras.add(label, &text);
    }
    if let Some(version) = &exec.jira_project_version {
        extras.add("Jira version", &version.id.to_string());
    }
    for (name, value) in &exec.custom_fields {
        extras.add(name, &fields::display(value));
    }
}

/// Sorts a run's executions into log order: by `actualEndDate` (parsed, so
/// offsets compare right), then id; executions without a readable date last
/// (their logs fail on their own).
pub fn sort_for_logs(executions: &mut [TestExecution]) {
    executions.sort_by_cached_key(|e| {
        let end = e.actual_end_date.as_deref().and_then(dates::parse);
        (end.is_none(), end, e.id)
    });
}

#[cfg(test)]
#[path = "execution_tests.rs"]
mod tests;
