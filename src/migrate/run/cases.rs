//! Test cases with their steps, one queue job per case.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::case_info::CaseInfo;
use super::folders::default_module;
use super::shared::{Fresh, PlanInfo, Shared};
use crate::error::Result;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::source::read_script;
use crate::migrate::transform::{ScriptShape, case_plan};
use crate::qtest::{SearchRequest, TestCase as QtestCase};
use crate::zephyr::TestCase;

/// Cases already on qTest, by Zephyr key, read once per run with one paged
/// search instead of one search per case.
#[derive(Default)]
pub(crate) struct CaseIndex {
    snapshot: OnceLock<std::result::Result<HashMap<String, Existing>, String>>,
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
                let found = Existing::of(&case);
                index
                    .entry(key.to_string())
                    .and_modify(|e: &mut Existing| {
                        if found.target.id < e.target.id {
                            *e = found;
                        }
                    })
                    .or_insert(found);
            }
        }
        Ok(())
    })?;
    Ok(index)
}

/// The case with this Zephyr key, asked now.
fn find_case(s: &Shared, key: &str) -> Result<Option<Existing>> {
    let mut cases = s.qtest.cases_where(&s.catalog.mapping().key_field, key)?;
    cases.sort_by_key(|c| c.id);
    Ok(cases.first().map(Existing::of))
}

/// Migrates one case.
pub(crate) fn migrate_case(s: &Shared, index: &Arc<CaseIndex>, case: TestCase) {
    if let Some(target) = s.journaled(RecordKind::Case, &case.key) {
        // Its files may be what an earlier run didn't get to.
        return super::attachments::of_case(s, &case.key, target);
    }
    if case.folder.is_none() && default_module(s).is_none() {
        // The default module failed and was reported; so is this case.
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
    let script = match read_script(&s.zephyr, &case) {
        Ok(script) => script,
        Err(e) => return s.failed(RecordKind::Case, &case.key, &e),
    };
    let plan = match case_plan(&case, script.as_case_script(), &s.context()) {
        Ok(plan) => plan,
        Err(e) => return s.transform_failed(&e),
    };
    let shape = ScriptShape::of(script.as_case_script());
    let find = |fresh: Fresh| -> Result<Option<Target>> {
        let found = match fresh {
            Fresh::Snapshot => index.get(s, &case.key)?,
            Fresh::Live => find_case(s, &case.key)?,
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
        let texts = [case.objective.as_deref(), case.precondition.as_deref()];
        super::attachments::inline_images(s, &format!("case/{}", case.key), &texts);
        super::attachments::of_case(s, &case.key, target);
    }
}
