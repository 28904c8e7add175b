//! Test design writes: modules, test cases, approval, deletion.

use super::body::{self, Obj};
use super::config::QtestConfig;
use super::state::*;
use super::write::{Applied, CREATED_VIA_API, Refusal, Write, bad, missing, path_id};
use crate::mock::time;

pub(crate) fn create_module(st: &mut QtestState, w: &Write) -> Result<Applied, Refusal> {
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
        status: 201,
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

pub(crate) fn create_case(
    st: &mut QtestState,
    cfg: &QtestConfig,
    w: &Write,
) -> Result<Applied, Refusal> {
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
    let test_steps = new_steps(st, steps);
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

/// `PUT test-cases/{id}`: the fields sent replace the case's (properties by
/// field id; `test_steps`, when sent, replace every step), and the edit
/// makes a new unapproved minor version, as an edit in qTest's UI does.
pub(crate) fn update_case(
    st: &mut QtestState,
    cfg: &QtestConfig,
    w: &Write,
    id: &str,
) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    st.test_case(id).ok_or_else(|| missing("Test case", id))?;
    let o = w.obj()?;
    let name = body::opt_str(o, "name").map_err(bad)?;
    let parent = body::opt_id(o, "parent_id").map_err(bad)?;
    if let Some(p) = parent {
        st.module(p)
            .ok_or_else(|| bad(format!("Module {p} does not exist")))?;
    }
    // Required fields are checked only when properties are sent: an edit of
    // the name alone keeps the case's values.
    let properties = match o.contains_key("properties") {
        true => body::properties(o, &cfg.case_fields).map_err(bad)?,
        false => Vec::new(),
    };
    let steps = match o.contains_key("test_steps") {
        true => Some(new_steps(st, steps(st, o)?)),
        false => None,
    };
    let texts = [
        (
            o.contains_key("description"),
            body::opt_str(o, "description").map_err(bad)?,
        ),
        (
            o.contains_key("precondition"),
            body::opt_str(o, "precondition").map_err(bad)?,
        ),
    ];
    let version_id = st.next_ids("TCV").0;
    let case = by_id_mut(&mut st.test_cases, id).ok_or_else(|| missing("Test case", id))?;
    if !name.is_empty() {
        case.name = name;
    }
    if let Some(p) = parent {
        case.parent_id = p;
    }
    let [
        (has_description, description),
        (has_precondition, precondition),
    ] = texts;
    if has_description {
        case.description = description;
    }
    if has_precondition {
        case.precondition = precondition;
    }
    for p in properties {
        match case
            .properties
            .iter_mut()
            .find(|q| q.field_id == p.field_id)
        {
            Some(q) => *q = p,
            None => case.properties.push(p),
        }
    }
    if let Some(steps) = steps {
        case.test_steps = steps;
    }
    let (major, minor) = case
        .current()
        .version
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .unwrap_or((0, 0));
    case.versions.push(Version {
        id: version_id,
        version: format!("{major}.{}", minor + 1),
        approved: false,
    });
    Ok(Applied {
        status: 200,
        kind: "test-case",
        id,
    })
}

/// Gives parsed steps their ids.
fn new_steps(st: &mut QtestState, steps: Vec<StepInput>) -> Vec<TestStep> {
    steps
        .into_iter()
        .map(
            |(description, expected, order, called_test_case_id)| TestStep {
                id: st.next_ids("TS").0,
                description,
                expected,
                order,
                called_test_case_id,
            },
        )
        .collect()
}

/// `DELETE test-runs/{id}`: the run and its logs.
pub(crate) fn delete_run(st: &mut QtestState, id: &str) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    let i = st
        .test_runs
        .binary_search_by_key(&id, |r| r.id)
        .map_err(|_| missing("Test run", id))?;
    st.test_runs.remove(i);
    st.test_logs.retain(|l| l.run_id != id);
    Ok(Applied {
        status: 200,
        kind: "delete",
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

pub(crate) fn approve(
    st: &mut QtestState,
    cfg: &QtestConfig,
    id: &str,
) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    if !cfg.can_approve {
        return Err((
            403,
            "You do not have the Approve permission for test cases in this project".into(),
        ));
    }
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

pub(crate) fn delete_case(st: &mut QtestState, id: &str) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    let i = st
        .test_cases
        .binary_search_by_key(&id, |c| c.id)
        .map_err(|_| missing("Test case", id))?;
    st.test_cases.remove(i);
    Ok(Applied {
        status: 200,
        kind: "delete",
        id,
    })
}
