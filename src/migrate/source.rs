//! Reading the two sides before and during a migration or a verification:
//! the projects, the lookup lists, and a case's script.

use super::error::MigrateError;
use super::transform::{CaseScript, Lookups};
use crate::qtest::QtestClient;
use crate::zephyr::{ScriptLocation, TestCase, TestScript, TestStep, ZephyrClient};

/// Fails with [`MigrateError::UnknownProject`] unless both projects exist (and
/// the tokens can see them).
pub fn check_projects(zephyr: &ZephyrClient, qtest: &QtestClient) -> Result<(), MigrateError> {
    if zephyr.project()?.is_none() {
        return Err(MigrateError::UnknownProject {
            service: "Zephyr Scale",
            project: zephyr.project_key().to_owned(),
        });
    }
    if !qtest.project_exists()? {
        return Err(MigrateError::UnknownProject {
            service: "qTest",
            project: qtest.project_id().to_string(),
        });
    }
    Ok(())
}

/// Reads the lookup lists a [`Catalog`](super::transform::Catalog) is built
/// from, the six requests at once (they are independent, and a run waits for
/// them before anything else).
pub fn load_lookups(zephyr: &ZephyrClient, qtest: &QtestClient) -> crate::Result<Lookups> {
    std::thread::scope(|s| {
        let statuses = |kind: &'static str| s.spawn(move || zephyr.statuses(kind));
        let priorities = s.spawn(|| zephyr.priorities());
        let case = statuses("TEST_CASE");
        let cycle = statuses("TEST_CYCLE");
        let execution = statuses("TEST_EXECUTION");
        let fields = s.spawn(|| qtest.case_fields());
        let exec_statuses = s.spawn(|| qtest.execution_statuses());
        Ok(Lookups {
            zephyr_priorities: joined(priorities)?,
            zephyr_case_statuses: joined(case)?,
            zephyr_cycle_statuses: joined(cycle)?,
            zephyr_execution_statuses: joined(execution)?,
            qtest_case_fields: joined(fields)?,
            qtest_execution_statuses: joined(exec_statuses)?,
        })
    })
}

/// A scoped thread's result; its panic goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, crate::Result<T>>) -> crate::Result<T> {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A case's script as read from Zephyr, owned; see [`read_script`].
#[derive(Debug, Clone, PartialEq)]
pub enum ZephyrScript {
    /// No script.
    None,
    /// A step-by-step script, every page of it.
    Steps(Vec<TestStep>),
    /// A plain or BDD script.
    Text(TestScript),
}

impl ZephyrScript {
    /// The borrowed form the transform takes.
    pub fn as_case_script(&self) -> CaseScript<'_> {
        match self {
            ZephyrScript::None => CaseScript::None,
            ZephyrScript::Steps(steps) => CaseScript::Steps(steps),
            ZephyrScript::Text(script) => CaseScript::Script(script),
        }
    }
}

/// Reads a case's script from where `testScript.self` points; an unknown
/// link tries `/teststeps`, then `/testscript` (contract, section 1).
pub fn read_script(zephyr: &ZephyrClient, case: &TestCase) -> crate::Result<ZephyrScript> {
    let text = |zephyr: &ZephyrClient| {
        Ok(zephyr
            .test_script(&case.key)?
            .map_or(ZephyrScript::None, ZephyrScript::Text))
    };
    match case.script_location() {
        ScriptLocation::None => Ok(ZephyrScript::None),
        ScriptLocation::Steps => Ok(ZephyrScript::Steps(zephyr.test_steps(&case.key)?)),
        ScriptLocation::Script => text(zephyr),
        ScriptLocation::Unknown => match zephyr.test_steps(&case.key)? {
            steps if steps.is_empty() => text(zephyr),
            steps => Ok(ZephyrScript::Steps(steps)),
        },
    }
}
