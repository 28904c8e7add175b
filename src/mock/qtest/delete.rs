//! Deletions that take children with them, as qTest does them: a module
//! (`DELETE …/modules/{id}?force=true`: its sub-modules and test cases,
//! with the cases' runs and logs), a test cycle (`DELETE
//! …/test-cycles/{id}?force=true`: its sub-cycles and runs with their logs),
//! an attachment (`DELETE …/{objectType}/{id}/blob-handles/{attachmentId}`)
//! and, for tests only, a test log (`DELETE …/test-runs/{id}/test-logs/{logId}`:
//! the public API has no such route, qTest's UI deletes logs). Without
//! `force=true`, a module or cycle with children is refused (400), as the
//! spec says.

use std::collections::HashSet;

use super::state::{QtestState, by_id};
use super::write::{Applied, Refusal, Write, bad, missing, path_id};

/// `DELETE modules/{id}`.
pub(crate) fn module(st: &mut QtestState, w: &Write, id: &str) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    by_id(&st.modules, id).ok_or_else(|| missing("Module", id))?;
    let modules = subtree(id, st.modules.iter().map(|m| (m.id, m.parent_id)));
    let cases: HashSet<u64> = st
        .test_cases
        .iter()
        .filter(|c| modules.contains(&c.parent_id))
        .map(|c| c.id)
        .collect();
    if (modules.len() > 1 || !cases.is_empty()) && !forced(w) {
        return Err(bad(
            "The module has sub-modules or test cases; use force=true",
        ));
    }
    st.modules.retain(|m| !modules.contains(&m.id));
    st.test_cases.retain(|c| !cases.contains(&c.id));
    let runs = ids(st
        .test_runs
        .iter()
        .filter(|r| cases.contains(&r.test_case_id))
        .map(|r| r.id));
    drop_runs(st, &runs);
    Ok(deleted(id))
}

/// `DELETE test-cycles/{id}`.
pub(crate) fn cycle(st: &mut QtestState, w: &Write, id: &str) -> Result<Applied, Refusal> {
    let id = path_id(id)?;
    st.test_cycle(id).ok_or_else(|| missing("Test cycle", id))?;
    let tree = st.test_cycles.iter().map(|c| {
        let parent = (c.parent_type == "test-cycle").then_some(c.parent_id);
        (c.id, parent)
    });
    let cycles = subtree(id, tree);
    let runs = ids(st
        .test_runs
        .iter()
        .filter(|r| cycles.contains(&r.parent_id))
        .map(|r| r.id));
    if (cycles.len() > 1 || !runs.is_empty()) && !forced(w) {
        return Err(bad("The test cycle has children; use force=true"));
    }
    st.test_cycles.retain(|c| !cycles.contains(&c.id));
    drop_runs(st, &runs);
    Ok(deleted(id))
}

/// `DELETE test-runs/{run}/test-logs/{id}` (tests only).
pub(crate) fn log(st: &mut QtestState, run: &str, id: &str) -> Result<Applied, Refusal> {
    let (run, id) = (path_id(run)?, path_id(id)?);
    let before = st.test_logs.len();
    st.test_logs.retain(|l| !(l.id == id && l.run_id == run));
    if st.test_logs.len() == before {
        return Err(missing("Test log", id));
    }
    st.attachments
        .retain(|f| !(f.object_type == "test-logs" && f.object_id == id));
    Ok(deleted(id))
}

/// `DELETE {objectType}/{object}/blob-handles/{id}`.
pub(crate) fn attachment(
    st: &mut QtestState,
    object_type: &str,
    object: &str,
    id: &str,
) -> Result<Applied, Refusal> {
    let (object, id) = (path_id(object)?, path_id(id)?);
    let at = st
        .attachments
        .iter()
        .position(|f| f.id == id && f.object_type == object_type && f.object_id == object);
    let at = at.ok_or_else(|| missing("Attachment", id))?;
    st.attachments.remove(at);
    Ok(deleted(id))
}

fn forced(w: &Write) -> bool {
    w.query("force") == Some("true")
}

/// `root` and every id whose chain of parents reaches it.
fn subtree(root: u64, items: impl Iterator<Item = (u64, Option<u64>)>) -> HashSet<u64> {
    let items: Vec<(u64, Option<u64>)> = items.collect();
    let mut out = HashSet::from([root]);
    loop {
        let before = out.len();
        for (id, parent) in &items {
            if parent.is_some_and(|p| out.contains(&p)) {
                out.insert(*id);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

fn ids(items: impl Iterator<Item = u64>) -> HashSet<u64> {
    items.collect()
}

/// Removes runs with their logs and the files of those logs and cases gone.
fn drop_runs(st: &mut QtestState, runs: &HashSet<u64>) {
    st.test_runs.retain(|r| !runs.contains(&r.id));
    let logs = ids(st
        .test_logs
        .iter()
        .filter(|l| runs.contains(&l.run_id))
        .map(|l| l.id));
    st.test_logs.retain(|l| !logs.contains(&l.id));
    let cases = ids(st.test_cases.iter().map(|c| c.id));
    st.attachments.retain(|f| match f.object_type.as_str() {
        "test-logs" => !logs.contains(&f.object_id),
        "test-cases" => cases.contains(&f.object_id),
        _ => true,
    });
}

fn deleted(id: u64) -> Applied {
    Applied {
        status: 200,
        kind: "delete",
        id,
    }
}
