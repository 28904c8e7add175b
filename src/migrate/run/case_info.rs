//! What runs and logs need of a migrated case, read once per run: its name,
//! whether its version is approved, and its steps on both sides (for placing
//! step results by structure). Also the approval of executed cases.

use std::sync::Arc;

use parking_lot::Mutex;

use super::shared::Shared;
use crate::error::{Error, Result};
use crate::migrate::packed::packed;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::{
    CaseScript, CaseSteps, ScriptShape, StepLayout, StepRef, StepSource, step_layout,
};
use crate::qtest::TestCase as QtestCase;
use crate::zephyr::ZephyrClient;

/// What runs and logs need of a migrated case. Kept as a packed array in the
/// run's [`CaseCache`](super::case_cache::CaseCache).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaseInfo {
    pub(crate) name: String,
    /// Its current version is approved.
    pub(crate) approved: bool,
    /// Its current version.
    pub(crate) version_id: Option<u64>,
    pub(crate) steps: Arc<CaseSteps>,
}

packed!(CaseInfo {
    name: String,
    approved: bool,
    version_id: Option<u64>,
    steps: Arc<CaseSteps>,
});

impl CaseInfo {
    /// From a qTest case read with its steps, and its Zephyr script's shape.
    pub(crate) fn of(case: &QtestCase, shape: Option<ScriptShape>) -> CaseInfo {
        CaseInfo {
            name: case.name.clone(),
            approved: case.is_approved(),
            version_id: case.test_case_version_id,
            steps: Arc::new(CaseSteps {
                case_id: case.id,
                qtest: StepRef::list(&case.test_steps),
                zephyr: shape,
            }),
        }
    }
}

/// Cases being approved now, so jobs of one case approve it once.
pub(crate) type Approving = Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>;

/// The case with this Zephyr key: remembered if this run created or read it,
/// else read from both services. `None` when it is not migrated (or deleted
/// on qTest since), and always in a dry run.
pub(crate) fn case_info(s: &Shared, key: &str) -> Result<Option<Arc<CaseInfo>>> {
    if s.dry_run() {
        return Ok(None);
    }
    let Some(target) = s.target_of(RecordKind::Case, key) else {
        return Ok(None);
    };
    if let Some(info) = s.cases.get(key) {
        return Ok(Some(info));
    }
    let Some(case) = s.qtest.test_case(target.id)? else {
        return Ok(None);
    };
    let info = CaseInfo::of(&case, script_shape(&s.zephyr, key)?);
    s.cases.insert(key, &info);
    Ok(Some(Arc::new(info)))
}

impl StepSource for Shared {
    fn steps_of(&self, case_key: &str) -> Result<Option<Arc<CaseSteps>>> {
        Ok(case_info(self, case_key)?.map(|info| info.steps.clone()))
    }
}

/// The shape of a case's script read by key: its steps, or its plain or BDD
/// script where the steps endpoint has none (or refuses with 422, as Zephyr
/// does for such a case). `None` when neither can be read.
fn script_shape(zephyr: &ZephyrClient, key: &str) -> Result<Option<ScriptShape>> {
    let refused = |e: &Error| matches!(e.status(), Some(404 | 422));
    match zephyr.test_steps(key) {
        Ok(steps) if !steps.is_empty() => {
            return Ok(Some(ScriptShape::of(CaseScript::Steps(&steps))));
        }
        Ok(_) => {}
        Err(e) if refused(&e) => {}
        Err(e) => return Err(e),
    }
    match zephyr.test_script(key) {
        Ok(Some(script)) => Ok(Some(ScriptShape::of(CaseScript::Script(&script)))),
        Ok(None) => Ok(Some(ScriptShape::of(CaseScript::None))),
        Err(e) if refused(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The executed case of a run job: approved first when its run is to be made
/// (see [`approved_for_runs`]), read when only its logs are; `None` when
/// neither is wanted.
pub(crate) fn executed_case_info(
    s: &Shared,
    key: &str,
    run_wanted: bool,
    logs_wanted: bool,
) -> Result<Option<Arc<CaseInfo>>> {
    match (run_wanted, logs_wanted) {
        (true, _) => approved_for_runs(s, key),
        (false, true) => case_info(s, key),
        (false, false) => Ok(None),
    }
}

/// Where the step results of the case's executions go; empty when the case
/// is unknown (a dry run, a case not migrated).
pub(crate) fn step_layout_of(s: &Shared, known: bool, key: &str) -> Result<StepLayout> {
    match known {
        true => step_layout(key, s),
        false => Ok(StepLayout::default()),
    }
}

/// Approves an executed case before its first run is made
/// (`mapping.approve_executed`), once however many jobs ask, and returns it
/// with the approved version: the journal records the new version, so runs
/// and logs name it.
pub(crate) fn approved_for_runs(s: &Shared, key: &str) -> Result<Option<Arc<CaseInfo>>> {
    let Some(info) = case_info(s, key)? else {
        return Ok(None);
    };
    if info.approved {
        // Approved by an earlier run that stopped before journaling the version.
        let journaled = s.target_of(RecordKind::Case, key);
        if journaled.is_some_and(|t| t.version_id != info.version_id) {
            record_version(s, key, info.steps.case_id, info.version_id);
        }
        return Ok(Some(info));
    }
    if !s.catalog.mapping().approve_executed {
        return Ok(Some(info));
    }
    let gate = s
        .approving
        .lock()
        .entry(key.to_owned())
        .or_default()
        .clone();
    let _one_at_a_time = gate.lock();
    if let Some(now) = s.cases.get(key).filter(|now| now.approved) {
        return Ok(Some(now));
    }
    let id = info.steps.case_id;
    s.qtest.approve_case(id)?;
    // A new version may have new step ids: read it back.
    let case = s.qtest.test_case(id)?.ok_or_else(|| {
        Error::config(
            format!("case {key}"),
            format!("qTest case {id} disappeared while it was approved"),
        )
    })?;
    let same_steps = StepRef::list(&case.test_steps) == info.steps.qtest;
    super::step_files::new_version(s, key, id, case.test_case_version_id, same_steps);
    record_version(s, key, id, case.test_case_version_id);
    let approved = CaseInfo::of(&case, info.steps.zephyr.clone());
    s.cases.insert(key, &approved);
    s.approving.lock().remove(key);
    log::debug!("approved case {key} (qTest {id}) before its runs");
    Ok(Some(Arc::new(approved)))
}

/// Journals a case's current version, which runs and logs then name.
fn record_version(s: &Shared, key: &str, id: u64, version_id: Option<u64>) {
    if let Err(e) = s
        .journal
        .record(RecordKind::Case, key, Target { id, version_id })
    {
        // Not journaled: the next run reads the case's version from qTest again.
        log::error!("{}", crate::error::error_chain(&e));
    }
}
