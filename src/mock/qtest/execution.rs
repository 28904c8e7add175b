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
    let (id, pid) = st.next_ids("CL");
    st.test_cycles.push(Cycle {
        id,
        pid,
        name,
        description,
        parent_id,
        parent_type,
    });
    Ok(Applied {
        status: 200,
        kind: "test-cycle",
        id,
    })
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
    let mut step_logs = Vec::new();
    for (i, s) in body::opt_array(o, "test_step_logs")
        .map_err(bad)?
        .into_iter()
        .enumerate()
    {
        let step = body::opt_id(s, "test_step_id")
            .map_err(bad)?
            .ok_or_else(|| bad("test_step_logs[].test_step_id is required"))?;
        if !case.test_steps.iter().any(|t| t.id == step) {
            return Err(bad(format!(
                "Test step {step} is not a step of test case {}",
                case.id
            )));
        }
        let status = known_status(cfg, body::required_ref(s, "status").map_err(bad)?)?;
        let order = body::opt_id(s, "order")
            .map_err(bad)?
            .map_or(i as u32 + 1, |o| o as u32);
        let actual_result = body::opt_str(s, "actual_result").map_err(bad)?;
        step_logs.push(StepLog {
            test_step_id: step,
            status_id: status,
            actual_result,
            order,
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
