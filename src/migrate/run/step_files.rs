//! Files on steps. Zephyr lists attachments per step (a case step, an
//! execution's step result), each under the step's own id; qTest takes them
//! on the test step (`test-steps`) and on the test step log
//! (`test-step-logs`). Steps are matched by position: a case's qTest steps
//! are made in its Zephyr script's order (a call-to-test step becomes one
//! calling step, so positions line up), and a step log carries the `order`
//! of the step result it logs.
//!
//! No mapping is journaled: it is read again when a step's files are not
//! done yet. Each step is an [`Owner`] of its own (journaled as
//! `step/<case key>/v<qTest version id>/<step id>/…` and
//! `steplog/<execution id>/<step id>/…`), so re-runs find what was uploaded
//! by name and size, like any file. A case step's key names the qTest
//! version its files went to: a sync that updates the case replaces its
//! steps, and their files are moved again onto the new ones.
//! Call-to-test steps have no step object of their own, and plain and BDD
//! scripts no steps at all: they have no step files to move.

use std::cell::RefCell;

use super::attachments::{Destination, Owner};
use super::shared::Shared;
use crate::error::{Error, Result};
use crate::migrate::record::{RecordKind, Target, attachment_key};
use crate::migrate::transform::StepRef;
use crate::qtest::{AttachmentTarget, TestStepLog};
use crate::zephyr::{AttachmentOwner, ExecutionStep, TestStep};

/// The files of the steps of case `key` (`steps`, its Zephyr script), now
/// on qTest as `target`.
pub(crate) fn of_case_steps(s: &Shared, key: &str, target: Target, steps: &[TestStep]) {
    if !s.attachment_options.migrates_steps() || s.dry_run() {
        return;
    }
    // The qTest steps' ids in order, read once for all steps of the case.
    let qtest: RefCell<Option<Vec<u64>>> = RefCell::new(None);
    let qtest_steps = || -> Result<Vec<u64>> {
        if let Some(ids) = qtest.borrow().as_ref() {
            return Ok(ids.clone());
        }
        let refs = match s.cases.get(key).filter(|c| c.steps.case_id == target.id) {
            Some(info) => info.steps.qtest.clone(),
            None => {
                let case = s.patiently(|| s.qtest.test_case(target.id))?;
                let case = case.ok_or_else(|| {
                    Error::config(
                        format!("case {key}"),
                        format!("qTest case {} is gone: its steps' files wait", target.id),
                    )
                })?;
                StepRef::list(&case.test_steps)
            }
        };
        let ids: Vec<u64> = refs.iter().map(|r| r.id).collect();
        *qtest.borrow_mut() = Some(ids.clone());
        Ok(ids)
    };
    // The case's qTest version, in the journal keys: a new version (an
    // update that replaced the steps, an approval) may have new steps, so
    // their files are looked for again, found where they still are.
    let version = steps_version(s, key, target.id).map_or_else(String::new, |v| format!("/v{v}"));
    for (position, step) in steps.iter().enumerate() {
        let TestStep::Inline(inline) = step else {
            continue;
        };
        let Some(step_id) = inline.id else {
            no_id(s, &format!("step/{key}{version}"), position, key);
            continue;
        };
        let destination = || -> Result<Destination> {
            let ids = qtest_steps()?;
            Ok(match ids.get(position) {
                Some(&id) if ids.len() == steps.len() => Ok(AttachmentTarget::TestStep(id)),
                _ => Err(format!(
                    "step {} of {key}: the qTest case has {} steps where Zephyr has {}, \
                     so the step can't be matched; left on Zephyr",
                    position + 1,
                    ids.len(),
                    steps.len()
                )),
            })
        };
        let owner = Owner {
            key: format!("step/{key}{version}/{step_id}"),
            zephyr: AttachmentOwner::CaseStep(key.to_owned(), step_id),
            qtest: &destination,
        };
        owner.migrate(s);
    }
}

/// Journal key of the qTest version a case's step files are keyed by, when
/// it is not the case's own: see [`new_version`].
fn steps_key(key: &str) -> String {
    format!("steps-of/{key}")
}

/// The qTest version whose steps the step files of case `key` (qTest case
/// `case_id`) are keyed by: the one they were put on, carried over newer
/// versions that kept its steps, else the case's journaled version.
fn steps_version(s: &Shared, key: &str, case_id: u64) -> Option<u64> {
    s.journal
        .get(RecordKind::Attachment, &steps_key(key))
        .filter(|t| t.id == case_id)
        .map(|t| t.version_id)
        .unwrap_or_else(|| {
            s.target_of(RecordKind::Case, key)
                .and_then(|t| t.version_id)
        })
}

/// Case `key` (qTest case `case_id`) is about to journal a new qTest
/// version; `same_steps`: whether that version has the very steps (ids) of
/// the one before. An approval that keeps the steps leaves the step files
/// where they are, under their keys: without this, the next run that visits
/// the case would list every step's files on Zephyr again and look each up
/// on qTest. A version with other steps keys its files anew, so they are
/// put on its steps.
pub(crate) fn new_version(
    s: &Shared,
    key: &str,
    case_id: u64,
    version_id: Option<u64>,
    same_steps: bool,
) {
    if s.dry_run() {
        return;
    }
    let kept = s
        .journal
        .get(RecordKind::Attachment, &steps_key(key))
        .filter(|t| t.id == case_id);
    let record = match (same_steps, kept) {
        // Already keyed by an older version that had these steps.
        (true, Some(_)) => return,
        (true, None) => steps_version(s, key, case_id),
        // No alias: the case's own (new) version applies.
        (false, None) => return,
        (false, Some(_)) => version_id,
    };
    let target = Target {
        id: case_id,
        version_id: record,
    };
    if let Err(e) = s
        .journal
        .record(RecordKind::Attachment, &steps_key(key), target)
    {
        // Not journaled: the next visit lists the step files again and
        // finds them on qTest.
        log::warn!("{}", crate::error::error_chain(&e));
    }
}

/// The files of the step results of execution `id`, now on qTest as the
/// test log `log` of run `run`. `results` are its step results when the
/// caller has read them; else they are read here. Once all are done, a
/// marker (`steplog/<id>/all`) saves a re-run reading the results again.
pub(crate) fn of_execution_steps(
    s: &Shared,
    id: u64,
    run: u64,
    log: Target,
    results: Option<&[ExecutionStep]>,
) {
    if !s.attachment_options.migrates_steps() || s.dry_run() || s.cancel.is_cancelled() {
        return;
    }
    let done = attachment_key(&format!("steplog/{id}"), None);
    if s.journal.get(RecordKind::Attachment, &done).is_some() {
        return;
    }
    let read;
    let results = match results {
        Some(r) => r,
        None => match s.patiently(|| s.zephyr.execution_steps(&id.to_string())) {
            Ok(r) => {
                read = r;
                read.as_slice()
            }
            // No step results (as for a case with a plain or BDD script,
            // which Zephyr may refuse like the case's own `/teststeps`).
            Err(e) if matches!(e.status(), Some(404 | 422)) => &[],
            Err(e) => return s.failed(RecordKind::Attachment, &done, &e),
        },
    };
    // The log's step logs, read once for all results of the execution.
    let step_logs: RefCell<Option<Vec<TestStepLog>>> = RefCell::new(None);
    let step_log = |order: u32| -> Result<Option<TestStepLog>> {
        if step_logs.borrow().is_none() {
            let logs = s.patiently(|| s.qtest.logs(run))?;
            let found = logs.into_iter().find(|l| l.id == log.id).ok_or_else(|| {
                Error::config(
                    format!("log {id}"),
                    format!("qTest test log {} is not in run {run}", log.id),
                )
            })?;
            *step_logs.borrow_mut() = Some(found.test_step_logs);
        }
        let logs = step_logs.borrow();
        let found = logs
            .as_ref()
            .and_then(|v| v.iter().find(|l| l.order == Some(order)));
        Ok(found.cloned())
    };
    let mut all_done = true;
    for (position, result) in results.iter().enumerate() {
        let Some(step_id) = result.id else {
            no_id(
                s,
                &format!("steplog/{id}"),
                position,
                &format!("execution {id}"),
            );
            continue;
        };
        let order = u32::try_from(position + 1).unwrap_or(u32::MAX);
        let destination = || -> Result<Destination> {
            Ok(match step_log(order)? {
                Some(TestStepLog {
                    test_step_log_id: Some(log_id),
                    ..
                }) => Ok(AttachmentTarget::TestStepLog(log_id)),
                Some(_) => Err(format!(
                    "step {order} of execution {id}: qTest named no id for its step log; left on Zephyr"
                )),
                None => Err(format!(
                    "step {order} of execution {id} has no qTest step log (its result is in the log's note); left on Zephyr"
                )),
            })
        };
        let owner = Owner {
            key: format!("steplog/{id}/{step_id}"),
            zephyr: AttachmentOwner::ExecutionStep(id.to_string(), step_id),
            qtest: &destination,
        };
        all_done &= owner.migrate(s);
    }
    if all_done && !s.cancel.is_cancelled() {
        let count = u64::try_from(results.len()).unwrap_or(u64::MAX);
        if let Err(e) = s
            .journal
            .record(RecordKind::Attachment, &done, Target::id(count))
        {
            // Not journaled: a re-run reads the results again and finds
            // each step's marker.
            log::warn!("{}", crate::error::error_chain(&e));
        }
    }
}

/// Reports the step at `position` (from 0) of `record`, which Zephyr listed
/// without an id (the spec allows it): its files, if it has any, can't be
/// listed, and a step skipped without a word would lose them silently.
fn no_id(s: &Shared, prefix: &str, position: usize, record: &str) {
    let n = position + 1;
    s.skipped(
        RecordKind::Attachment,
        &format!("{prefix}/at-{n}"),
        &format!(
            "step {n} of {record}: Zephyr listed it without an id, so its files (if any) can't be listed; left on Zephyr"
        ),
    );
}
