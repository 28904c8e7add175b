//! Reading the two sides before and during a migration or a verification:
//! the projects, the lookup lists, and a case's script.

use super::error::MigrateError;
use super::transform::{CaseScript, Lookups};
use crate::qtest::QtestClient;
use crate::zephyr::{Record, ScriptLocation, TestCase, TestScript, TestStep, ZephyrClient, split};

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
            zephyr_priorities: readable("priorities", joined(priorities)?),
            zephyr_case_statuses: readable("TEST_CASE statuses", joined(case)?),
            zephyr_cycle_statuses: readable("TEST_CYCLE statuses", joined(cycle)?),
            zephyr_execution_statuses: readable("TEST_EXECUTION statuses", joined(execution)?),
            qtest_case_fields: joined(fields)?,
            qtest_execution_statuses: joined(exec_statuses)?,
        })
    })
}

/// The readable items of a lookup list; one that can't be read is logged and
/// left out, so only the records that use it fail (as an unknown id).
fn readable<T>(list: &str, records: Vec<Record<T>>) -> Vec<T> {
    let (good, bad) = split(records);
    for record in bad {
        log::warn!("Zephyr {list}: {record}; records that use it will fail");
    }
    good
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

/// Reads a case's script from the endpoint `testScript.self` names, and
/// from the other one when that answers 422: `/testscript` answers 422 for a
/// step-by-step case and `/teststeps` for a plain or BDD one (spec), and the
/// link may name `/testscript` whatever the script is (the spec's example
/// does). A link naming neither tries `/teststeps` first. A 404 from
/// `/testscript` is no script. A case without the link is asked too: the
/// spec makes `testScript` optional without saying that its absence means no
/// script, and taking it so would drop a script silently; `/teststeps` first,
/// then `/testscript` when that answers 404 or 422.
///
/// The request goes to the configured base URL with the case's key, not to
/// the link's own host: an API gateway may name itself differently in links,
/// and the key is checked to be a plain path segment.
pub fn read_script(zephyr: &ZephyrClient, case: &TestCase) -> crate::Result<ZephyrScript> {
    let steps = || zephyr.test_steps(&case.key).map(ZephyrScript::Steps);
    let text = || {
        let script = zephyr.test_script(&case.key)?;
        Ok(script.map_or(ZephyrScript::None, ZephyrScript::Text))
    };
    let wrong_endpoint = |e: &crate::Error| e.status() == Some(422);
    match case.script_location() {
        ScriptLocation::None => match steps() {
            Err(e) if matches!(e.status(), Some(404 | 422)) => text(),
            other => other,
        },
        ScriptLocation::Script => match text() {
            Err(e) if wrong_endpoint(&e) => steps(),
            other => other,
        },
        ScriptLocation::Steps | ScriptLocation::Unknown => match steps() {
            Err(e) if wrong_endpoint(&e) => text(),
            other => other,
        },
    }
}
