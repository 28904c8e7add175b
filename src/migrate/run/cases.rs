//! Test cases with their steps, one queue job per case.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::case_info::CaseInfo;
use super::folders::default_module;
use super::shared::{Fresh, PlanInfo, Shared};
use super::sync::{fingerprint, record_digest, sync_case};
use crate::error::Result;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::source::{ZephyrScript, read_script};
use crate::migrate::transform::{ScriptShape, case_plan};
use crate::qtest::{SearchRequest, TestCase as QtestCase};
use crate::zephyr::{TestCase, TestStep};

/// Cases by Zephyr key, or why they could not be read.
type Snapshot = OnceLock<std::result::Result<HashMap<String, Existing>, String>>;

/// Cases already on qTest, by Zephyr key, read once per run with one paged
/// search instead of one search per case; and, for a case the search does
/// not show, its module's listing, read once per module. The search index
/// may lag behind writes: a case whose create was in doubt when the last run
/// stopped (applied, not journaled) shows in its module's listing at once,
/// and is not created twice.
#[derive(Default)]
pub(crate) struct CaseIndex {
    snapshot: Snapshot,
    modules: Mutex<HashMap<u64, Arc<Snapshot>>>,
}

/// A case found on qTest.
#[derive(Debug, Clone, Copy)]
struct Existing {
    target: Target,
    /// Its current version is approved (a whole number: `1.0`, `2.0`).
    approved: bool,
}

impl Existing {
    fn of(case: &QtestCase) -> Existing {
        Existing {
            target: target(case),
            approved: case.is_approved(),
        }
    }
}

impl CaseIndex {
    fn get(&self, s: &Shared, key: &str) -> Result<Option<Existing>> {
        let snap = self
            .snapshot
            .get_or_init(|| load_index(s).map_err(|e| e.to_string()));
        match snap {
            Ok(map) => Ok(map.get(key).copied()),
            // The bulk search failed: ask about this case alone.
            Err(_) => find_case(s, key),
        }
    }

    /// The case with this Zephyr key in `module`'s listing, read once for
    /// all of the module's cases.
    fn get_in(&self, s: &Shared, module: u64, key: &str) -> Result<Option<Existing>> {
        let listed = self.modules.lock().entry(module).or_default().clone();
        let snap = listed.get_or_init(|| list_module(s, module).map_err(|e| e.to_string()));
        match snap {
            Ok(map) => Ok(map.get(key).copied()),
            Err(_) => find_case_in(s, module, key),
        }
    }
}

/// Keeps the oldest (lowest id) case of each key.
fn keep_oldest(index: &mut HashMap<String, Existing>, key: &str, found: Existing) {
    index
        .entry(key.to_string())
        .and_modify(|e| {
            if found.target.id < e.target.id {
                *e = found;
            }
        })
        .or_insert(found);
}

fn target(case: &QtestCase) -> Target {
    Target {
        id: case.id,
        version_id: case.test_case_version_id,
    }
}

/// Every case carrying a Zephyr key of this project; for a key found twice,
/// the oldest (lowest id), as in `find_case`.
fn load_index(s: &Shared) -> Result<HashMap<String, Existing>> {
    let label = &s.catalog.mapping().key_field;
    let prefix = format!("{}-", s.zephyr.project_key());
    let mut index = HashMap::new();
    let Some(mut request) = SearchRequest::field_equals("test-cases", label, &prefix) else {
        return Ok(index);
    };
    request.query = request.query.replacen(" = ", " ~ ", 1);
    let key_field = s.catalog.key_field_id();
    s.qtest.search(&request, |cases: Vec<QtestCase>| {
        for case in cases {
            if let Some(key) = case.property_value(key_field) {
                keep_oldest(&mut index, key, Existing::of(&case));
            }
        }
        Ok(())
    })?;
    Ok(index)
}

/// The case with this Zephyr key, asked now of the search (when the bulk
/// search that makes the index failed).
fn find_case(s: &Shared, key: &str) -> Result<Option<Existing>> {
    let cases = s.qtest.cases_where(&s.catalog.mapping().key_field, key)?;
    Ok(oldest(&cases, |_| true))
}

/// The case with this Zephyr key in module `module`, read from its listing:
/// committed state, where the search index may not show a case created a
/// moment ago (after a create whose outcome is unknown).
fn find_case_in(s: &Shared, module: u64, key: &str) -> Result<Option<Existing>> {
    Ok(list_module(s, module)?.get(key).copied())
}

/// The cases of module `module` by Zephyr key, from its listing.
fn list_module(s: &Shared, module: u64) -> Result<HashMap<String, Existing>> {
    let key_field = s.catalog.key_field_id();
    let mut index = HashMap::new();
    s.qtest.case_summaries_in(module, |cases: Vec<QtestCase>| {
        for case in cases {
            if let Some(key) = case.property_value(key_field) {
                keep_oldest(&mut index, key, Existing::of(&case));
            }
        }
        Ok(())
    })?;
    Ok(index)
}

/// The oldest (lowest id) of `cases` that `wanted` accepts, as `find_case`
/// and the index pick among copies.
fn oldest(cases: &[QtestCase], wanted: impl Fn(&QtestCase) -> bool) -> Option<Existing> {
    cases
        .iter()
        .filter(|c| wanted(c))
        .min_by_key(|c| c.id)
        .map(Existing::of)
}

/// Migrates one case.
pub(crate) fn migrate_case(s: &Shared, index: &Arc<CaseIndex>, case: TestCase) {
    let journaled = match s.dry_run() {
        true => None,
        false => s.journal.get(RecordKind::Case, &case.key),
    };
    if journaled.is_none()
        && let Some(target) = s.journaled(RecordKind::Case, &case.key)
    {
        // A dry run plans what an earlier run didn't get to: its files.
        return super::attachments::of_case(s, &case.key, target);
    }
    if case.folder.is_none() && default_module(s).is_none() {
        // The default module failed and was reported; this case waits for it.
        let e = crate::migrate::error::TransformError::new(
            RecordKind::Case,
            &case.key,
            crate::migrate::error::Reason::NoDefault {
                setting: "mapping.default_module",
            },
        );
        s.transform_failed(&e);
        return;
    }
    let script = match s.patiently(|| read_script(&s.zephyr, &case)) {
        Ok(script) => script,
        Err(e) => return s.failed(RecordKind::Case, &case.key, &e),
    };
    let plan = match case_plan(&case, script.as_case_script(), &s.context()) {
        Ok(plan) => plan,
        Err(e) => return s.transform_failed(&e),
    };
    let shape = ScriptShape::of(script.as_case_script());
    if let Some(target) = journaled {
        if sync_case(s, &case.key, target, &plan, shape) {
            // Its texts were sent again: images pasted since are listed.
            inline_images(s, &case, &script);
        }
        // Its files may be what an earlier run didn't get to.
        super::attachments::of_case(s, &case.key, target);
        return step_files(s, &case.key, target, &script);
    }
    let find = |fresh: Fresh| -> Result<Option<Target>> {
        let found = match (fresh, plan.body.parent_id) {
            (Fresh::Snapshot, Some(module)) => match index.get(s, &case.key)? {
                None => index.get_in(s, module, &case.key)?,
                found => found,
            },
            (Fresh::Snapshot, None) => index.get(s, &case.key)?,
            (Fresh::Live, Some(module)) => find_case_in(s, module, &case.key)?,
            (Fresh::Live, None) => find_case(s, &case.key)?,
        };
        match found {
            // Created by an earlier run that stopped before approving it.
            Some(e) if plan.approve && !e.approved => {
                let approved = s.qtest.approve_case(e.target.id)?;
                Ok(Some(Target {
                    version_id: approved.test_case_version_id,
                    ..e.target
                }))
            }
            other => Ok(other.map(|e| e.target)),
        }
    };
    let create = || -> Result<Target> {
        let mut created = s.qtest.create_case(&plan.body)?;
        if plan.approve {
            s.qtest.approve_case(created.id)?;
            // The approved version may have new step ids: read it back.
            if let Some(approved) = s.qtest.test_case(created.id)? {
                created = approved;
            }
        }
        s.cases
            .insert(&case.key, &CaseInfo::of(&created, Some(shape.clone())));
        Ok(target(&created))
    };
    let info = PlanInfo {
        parent: plan
            .body
            .parent_id
            .map_or("default".into(), |p| p.to_string()),
        name: &plan.body.name,
        body: &plan.body,
    };
    if let Some(target) = s.ensure(RecordKind::Case, &case.key, info, &find, &create) {
        record_digest(s, &case.key, fingerprint(&plan));
        inline_images(s, &case, &script);
        super::attachments::of_case(s, &case.key, target);
        step_files(s, &case.key, target, &script);
    }
}

/// Lists the images pasted into the case's rich text (see
/// [`super::attachments::inline_images`]).
fn inline_images(s: &Shared, case: &TestCase, script: &ZephyrScript) {
    let mut texts = vec![case.objective.as_deref(), case.precondition.as_deref()];
    if let ZephyrScript::Steps(steps) = script {
        for step in steps {
            if let TestStep::Inline(i) = step {
                texts.extend(
                    [&i.description, &i.test_data, &i.expected_result].map(|t| t.as_deref()),
                );
            }
        }
    }
    super::attachments::inline_images(s, &format!("case/{}", case.key), &texts);
}

/// The files of the case's steps, when it is written step by step.
fn step_files(s: &Shared, key: &str, target: Target, script: &ZephyrScript) {
    if let ZephyrScript::Steps(steps) = script {
        super::step_files::of_case_steps(s, key, target, steps);
    }
}
