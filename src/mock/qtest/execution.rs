//! Test execution writes: test cycles, test runs, test logs.

use super::body;
use super::config::QtestConfig;
use super::state::*;
use super::write::{Applied, Refusal, Write, bad, missing, path_id};

pub(crate) fn create_cycle(st: &mut QtestState, w: &Write) -> Result<Applied, Refusal> {
    let parent_id = w.query_id("parentId")?.unwrap_or(0);
    let parent_type = w.query("parentType").unwrap_or("root").to_string();
    match parent_type.as_str() {
        "root" if parent_id == 0 => {}
        "root" => return Err(bad("parentId must be 0 when parentType is root")),
        "test-cycle" => drop(
            st.test_cycle(parent_id)
                .ok_or_else(|| missing("Test cycle", parent_id))?,
        ),
        "release" => return Err(missing("Release", parent_id)),
        _ => return Err(bad("parentType must be one of root, release, test-cycle")),
    }
    let o = w.obj()?;
    let name = body::required_str(o, "name").map_err(bad)?;
    let description = body::opt_str(o, "description").map_err(bad)?;
    let at = crate::mock::time::format(w.at);
    let id = add_cycle(st, name, description, (parent_id, &parent_type), at);
    Ok(Applied {
        status: 201,
        kind: "test-cycle",
        id,
    })
}

/// Adds a cycle as the last child of `(parent id, parent type)`; returns its id.
pub(crate) fn add_cycle(
    st: &mut QtestState,
    name: String,
    description: String,
    (parent_id, parent_type): (u64, &str),
    created_date: String,
) -> u64 {
    let order = st
        .test_cycles
        .iter()
        .filter(|c| c.parent_id == parent_id && c.parent_type == parent_type)
        .count() as u32
        + 1;
    let (id, pid) = st.next_ids("CL");
    st.test_cycles.push(Cycle {
        id,
        pid,
        name,
        description,
        parent_id,
        parent_type: parent_type.to_string(),
        order,
        created_date,
    });
    id
}

pub(crate) fn create_run(st: &mut QtestState, w: &Write) -> Result<Applied, Refusal> {
    if w.query("parentType") != Some("test-cycle") {
        return Err(bad(
            "parentType must be test-cycle (the mock has no releases or suites)",
        ));
    }
    let parent_id = w
        .query_id("parentId")?
        .ok_or_else(|| bad("parentId is required"))?;
    st.test_cycle(parent_id)
        .ok_or_else(|| missing("Test cycle", parent_id))?;
    let o = w.obj()?;
    let name = body::required_str(o, "name").map_err(bad)?;
    // The spec's TestRunWithCustomFieldResource requires `properties` (an empty list will do).
    if !matches!(o.get("properties"), Some(serde_json::Value::Array(_))) {
        return Err(bad("properties is required"));
    }
    let case_id = body::required_ref(o, "test_case").map_err(bad)?;
    let case = st
        .test_case(case_id)
        .ok_or_else(|| bad(format!("Test case {case_id} does not exist")))?;
    let version = match body::opt_id(o, "test_case_version_id").map_err(bad)? {
        Some(v) if case.versions.iter().any(|x| x.id == v) => v,
        Some(v) => return Err(bad(format!("{v} is not a version of test case {case_id}"))),
        None => case.current().id,
    };
    let (id, pid) = st.next_ids("TR");
    let run = Run {
        id,
        pid,
        name,
        parent_id,
        parent_type: "test-cycle".to_string(),
        test_case_id: case_id,
        test_case_version_id: version,
        status_id: None,
    };
    st.test_runs.push(run);
    Ok(Applied {
        status: 201,
        kind: "test-run",
        id,
    })
}

pub(crate) fn create_log(
    st: &mut QtestState,
    cfg: &QtestConfig,
    w: &Write,
    run: &str,
) -> Result<Applied, Refusal> {
    let run_id = path_id(run)?;
    let run = st
        .test_run(run_id)
        .ok_or_else(|| missing("Test run", run_id))?;
    let o = w.obj()?;
    let status_id = known_status(cfg, body::required_ref(o, "status").map_err(bad)?)?;
    let (start, end) = (
        body::required_date(o, "exe_start_date").map_err(bad)?,
        body::required_date(o, "exe_end_date").map_err(bad)?,
    );
    let case = st
        .test_case(run.test_case_id)
        .ok_or_else(|| bad("The run's test case no longer exists"))?;
    let version = match body::opt_id(o, "test_case_version_id").map_err(bad)? {
        Some(v) if case.versions.iter().any(|x| x.id == v) => v,
        Some(v) => {
            return Err(bad(format!(
                "{v} is not a version of test case {}",
                case.id
            )));
        }
        // Without a version qTest records the latest approved one.
        None => case
            .versions
            .iter()
            .rev()
            .find(|v| v.approved)
            .map(|v| v.id)
            .ok_or_else(|| {
                bad("The test case has no approved version: send test_case_version_id")
            })?,
    };
    let approved = case.versions.iter().any(|v| v.id == version && v.approved);
    if !approved && !cfg.can_approve {
        return Err((
            403,
            "Executing an unapproved test case version needs the Approve permission".into(),
        ));
    }
    let mut step_logs = Vec::new();
    for (i, s) in body::opt_array(o, "test_step_logs")
        .map_err(bad)?
        .into_iter()
        .enumerate()
    {
        let step = body::opt_id(s, "test_step_id")
            .map_err(bad)?
            .ok_or_else(|| bad("test_step_logs[].test_step_id is required"))?;
        let called = body::opt_id(s, "called_test_case_id").map_err(bad)?;
        let parent = body::opt_id(s, "parent_test_step_id").map_err(bad)?;
        check_step_target(st, case, step, called, parent)?;
        let status = known_status(cfg, body::required_ref(s, "status").map_err(bad)?)?;
        let order = body::opt_id(s, "order")
            .map_err(bad)?
            .map_or(i as u32 + 1, |o| o as u32);
        let actual_result = body::opt_str(s, "actual_result").map_err(bad)?;
        step_logs.push(StepLog {
            id: 0,
            test_step_id: step,
            status_id: status,
            actual_result,
            order,
            called_test_case_id: called,
            parent_test_step_id: parent,
        });
    }
    let note = body::opt_str(o, "note").map_err(bad)?;
    // Ids are shared and increasing, so a run's logs all come after it: count
    // from there (counting over every log made big migrations quadratic).
    let after_run = st.test_logs.partition_point(|l| l.id < run_id);
    let result_number = st.test_logs[after_run..]
        .iter()
        .filter(|l| l.run_id == run_id)
        .count() as u32
        + 1;
    let id = st.next_ids("TL").0;
    for s in &mut step_logs {
        s.id = st.next_ids("TSL").0;
    }
    st.test_logs.push(Log {
        id,
        run_id,
        status_id,
        exe_start_date: start,
        exe_end_date: end,
        note,
        test_case_version_id: version,
        test_step_logs: step_logs,
        result_number,
    });
    if let Some(run) = by_id_mut(&mut st.test_runs, run_id) {
        run.status_id = Some(status_id);
    }
    Ok(Applied {
        status: 201,
        kind: "test-log",
        id,
    })
}

fn known_status(cfg: &QtestConfig, id: u64) -> Result<u64, Refusal> {
    cfg.status(id)
        .map(|s| s.id)
        .ok_or_else(|| bad(format!("Status {id} does not exist")))
}

/// Checks what a step log points at. A step of the run's own case takes no call fields, and a
/// step that calls another case takes no log of its own. A step of a called case (directly or
/// through further calls) needs `called_test_case_id` (its case) and `parent_test_step_id`
/// (the step that calls that case), as the spec asks of called steps.
fn check_step_target(
    st: &QtestState,
    case: &TestCase,
    step: u64,
    called: Option<u64>,
    parent: Option<u64>,
) -> Result<(), Refusal> {
    if let Some(own) = case.test_steps.iter().find(|t| t.id == step) {
        if let Some(c) = own.called_test_case_id {
            return Err(bad(format!(
                "Test step {step} calls test case {c}: log the called case's steps, with \
                 called_test_case_id and parent_test_step_id"
            )));
        }
        return match (called, parent) {
            (None, None) => Ok(()),
            _ => Err(bad(format!(
                "Test step {step} is a step of test case {} itself: it takes no \
                 called_test_case_id or parent_test_step_id",
                case.id
            ))),
        };
    }
    // Calling steps reachable from the run's case: (calling step, called case).
    let mut calls: Vec<(u64, u64)> = Vec::new();
    let mut seen = vec![case.id];
    let mut queue = vec![case];
    while let Some(c) = queue.pop() {
        for s in &c.test_steps {
            let Some(callee) = s.called_test_case_id else {
                continue;
            };
            calls.push((s.id, callee));
            if !seen.contains(&callee) {
                seen.push(callee);
                queue.extend(st.test_case(callee));
            }
        }
    }
    let owner = seen[1..]
        .iter()
        .filter_map(|&id| st.test_case(id))
        .find(|c| {
            c.test_steps
                .iter()
                .any(|t| t.id == step && t.called_test_case_id.is_none())
        });
    let Some(owner) = owner else {
        return Err(bad(format!(
            "Test step {step} is not a step of test case {} or of a case it calls",
            case.id
        )));
    };
    let (Some(called), Some(parent)) = (called, parent) else {
        return Err(bad(format!(
            "Test step {step} belongs to test case {}, called from test case {}: \
             called_test_case_id and parent_test_step_id are required",
            owner.id, case.id
        )));
    };
    if called != owner.id {
        return Err(bad(format!(
            "called_test_case_id of test step {step} must be {}, got {called}",
            owner.id
        )));
    }
    if !calls.contains(&(parent, called)) {
        return Err(bad(format!(
            "parent_test_step_id {parent} is not a step that calls test case {called}"
        )));
    }
    Ok(())
}
