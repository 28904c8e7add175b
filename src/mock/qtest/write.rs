//! The writes of the qTest mock: validate, then change the state. Pure (no I/O), so a
//! journal replay gives the same ids.

use serde_json::Value;

use super::body::{self, Obj};
use super::config::QtestConfig;
use super::state::*;
use crate::mock::time;

/// What a write did.
pub(crate) struct Applied {
    pub status: u16,
    pub kind: &'static str,
    pub id: u64,
}

/// A refused write: status and message. Unknown ids in the path or query are 404; anything
/// wrong inside the body, unknown referenced ids included, is 400.
pub(crate) type Refusal = (u16, String);

/// Name of the module that takes test cases created without `parent_id`.
pub(crate) const CREATED_VIA_API: &str = "Created via API";

/// One write request, its project segment already checked.
pub(crate) struct Write<'a> {
    pub method: &'a str,
    /// Path segments after `/api/v3/projects/{p}/`.
    pub seg: &'a [&'a str],
    pub query: &'a [(String, String)],
    pub body: &'a Value,
    pub at: i64,
}

impl Write<'_> {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn query_id(&self, name: &str) -> Result<Option<u64>, Refusal> {
        self.query(name)
            .map(|v| v.parse().map_err(|_| bad(format!("{name} must be an id"))))
            .transpose()
    }

    fn obj(&self) -> Result<&Obj, Refusal> {
        body::object(self.body).map_err(bad)
    }
}

fn bad(msg: impl Into<String>) -> Refusal {
    (400, msg.into())
}

fn missing(what: &str, id: u64) -> Refusal {
    (404, format!("{what} {id} not found"))
}

fn path_id(s: &str) -> Result<u64, Refusal> {
    s.parse().map_err(|_| (404, format!("'{s}' is not an id")))
}

/// Applies `w` if it is a write route; `None` when it is not one.
pub(crate) fn apply(
    st: &mut QtestState,
    cfg: &QtestConfig,
    w: &Write,
) -> Option<Result<Applied, Refusal>> {
    let result = match (w.method, w.seg) {
        ("POST", ["modules"]) => create_module(st, w),
        ("POST", ["test-cases"]) => create_case(st, cfg, w),
        ("PUT", ["test-cases", id, "approve"]) => approve(st, id),
        ("DELETE", ["test-cases", id]) => delete_case(st, id),
        ("POST", ["test-cycles"]) => create_cycle(st, w),
        ("POST", ["test-runs"]) => create_run(st, w),
        ("POST", ["test-runs", id, "test-logs"]) => create_log(st, cfg, w, id),
        _ => return None,
    };
    Some(result)
}

fn create_module(st: &mut QtestState, w: &Write) -> Result<Applied, Refusal> {
    let o = w.obj()?;
    // qTest 6+ reads parentId from the query, older versions parent_id from the body.
    let parent = match w.query_id("parentId")? {
        Some(p) => Some(p),
        None => body::opt_id(o, "parent_id").map_err(bad)?,
    }
    .filter(|&p| p != 0);
    if let Some(p) = parent {
        st.module(p).ok_or_else(|| missing("Module", p))?;
    }
    let name = body::required_str(o, "name").map_err(bad)?;
    let id = add_module(
        st,
        name,
        body::opt_str(o, "description").map_err(bad)?,
        parent,
    );
    Ok(Applied {
        status: 200,
        kind: "module",
        id,
    })
}

fn add_module(
    st: &mut QtestState,
    name: String,
    description: String,
    parent_id: Option<u64>,
) -> u64 {
    let order = st
        .modules
        .iter()
        .filter(|m| m.parent_id == parent_id)
        .count() as u32
        + 1;
    let (id, pid) = st.next_ids("MD");
    st.modules.push(Module {
        id,
        pid,
        name,
        description,
        parent_id,
        order,
    });
    id
}

fn create_case(st: &mut QtestState, cfg: &QtestConfig, w: &Write) -> Result<Applied, Refusal> {
    let o = w.obj()?;
    let name = body::required_str(o, "name").map_err(bad)?;
    let parent = body::opt_id(o, "parent_id").map_err(bad)?;
    if let Some(p) = parent {
        st.module(p)
            .ok_or_else(|| bad(format!("Module {p} does not exist")))?;
    }
    let properties = body::properties(o, &cfg.case_fields).map_err(bad)?;
    let steps = steps(st, o)?;
    let (description, precondition) = (
        body::opt_str(o, "description").map_err(bad)?,
        body::opt_str(o, "precondition").map_err(bad)?,
    );
    let parent_id = match parent {
        Some(p) => p,
        None => created_via_api(st),
    };
    let (id, pid) = st.next_ids("TC");
    let version = Version {
        id: st.next_ids("TCV").0,
        version: "0.1".to_string(),
        approved: false,
    };
    let test_steps = steps
        .into_iter()
        .map(|(description, expected, order, called_test_case_id)| {
            let id = st.next_ids("TS").0;
            TestStep {
                id,
                description,
                expected,
                order,
                called_test_case_id,
            }
        })
        .collect();
    let created_date = time::format(w.at);
    st.test_cases.push(TestCase {
        id,
        pid,
        name,
        description,
        precondition,
        parent_id,
        versions: vec![version],
        properties,
        test_steps,
        created_date,
    });
    Ok(Applied {
        status: 200,
        kind: "test-case",
        id,
    })
}

type StepInput = (String, String, u32, Option<u64>);

fn steps(st: &QtestState, o: &Obj) -> Result<Vec<StepInput>, Refusal> {
    let items = body::opt_array(o, "test_steps").map_err(bad)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, s) in items.into_iter().enumerate() {
        let called = body::opt_id(s, "called_test_case_id").map_err(bad)?;
        if let Some(c) = called {
            st.test_case(c)
                .ok_or_else(|| bad(format!("Called test case {c} does not exist")))?;
        }
        let order = body::opt_id(s, "order")
            .map_err(bad)?
            .map_or(i as u32 + 1, |o| o as u32);
        let description = body::opt_str(s, "description").map_err(bad)?;
        out.push((
            description,
            body::opt_str(s, "expected").map_err(bad)?,
            order,
            called,
        ));
    }
    Ok(out)
}

fn created_via_api(st: &mut QtestState) -> u64 {
    let existing = st
        .modules
        .iter()
        .find(|m| m.parent_id.is_none() && m.name == CREATED_VIA_API);
    match existing {
        Some(m) => m.id,
        None => add_module(st, CREATED_VIA_API.to_string(), String::new(), None),
    }
}

fn approve(st: &mut QtestState, id: &str) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    let version_id = st.next_ids("TCV").0;
    let case = by_id_mut(&mut st.test_cases, id).ok_or_else(|| missing("Test case", id))?;
    let major = case
        .current()
        .version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(0);
    case.versions.push(Version {
        id: version_id,
        version: format!("{}.0", major + 1),
        approved: true,
    });
    Ok(Applied {
        status: 200,
        kind: "approve",
        id,
    })
}

fn delete_case(st: &mut QtestState, id: &str) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    let i = st
        .test_cases
        .binary_search_by_key(&id, |c| c.id)
        .map_err(|_| missing("Test case", id))?;
    st.test_cases.remove(i);
    Ok(Applied {
        status: 204,
        kind: "delete",
        id,
    })
}

fn create_cycle(st: &mut QtestState, w: &Write) -> Result<Applied, Refusal> {
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

fn create_run(st: &mut QtestState, w: &Write) -> Result<Applied, Refusal> {
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

fn create_log(
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
    let result_number = st.logs_of(run_id).count() as u32 + 1;
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
