//! The JSON shapes of contract section 1, rendered from the typed dataset.

use serde_json::{Value, json};

use super::attachments::{FileOwner, MockLink, MockPlan};
use super::data::*;

/// Takes `keys` out of a rendered object.
fn remove(v: &mut Value, keys: &[&str]) {
    if let Some(object) = v.as_object_mut() {
        for key in keys {
            object.remove(*key);
        }
    }
}

/// Renders entities with `self` links under `base` (`http://host:port/v2`).
pub(crate) struct Render<'a> {
    pub base: &'a str,
    pub data: &'a Dataset,
}

impl Render<'_> {
    fn link(&self, path: &str, id: u64) -> Value {
        json!({ "id": id, "self": format!("{}/{path}/{id}", self.base) })
    }

    fn opt_link(&self, path: &str, id: Option<u64>) -> Value {
        id.map_or(Value::Null, |id| self.link(path, id))
    }

    fn owner(&self, account: &Option<String>, quirk: Option<Quirk>) -> Value {
        if quirk == Some(Quirk::OwnerWithoutAccount) {
            return json!({ "accountId": null, "self": "https://jira.invalid/rest/api/3/user" });
        }
        account.as_ref().map_or(Value::Null, |a| {
            json!({ "accountId": a, "self": format!("https://jira.invalid/rest/api/3/user?accountId={a}") })
        })
    }

    pub(crate) fn project(&self) -> Value {
        self.link("projects", self.data.project.id)
    }

    pub(crate) fn project_entity(&self) -> Value {
        let p = &self.data.project;
        json!({ "id": p.id, "jiraProjectId": p.jira_project_id, "key": p.key, "enabled": true })
    }

    pub(crate) fn status(&self, s: &Status) -> Value {
        json!({ "id": s.id, "project": self.project(), "name": s.name, "description": null, "index": s.index,
                "color": s.color, "archived": false, "default": s.default })
    }

    pub(crate) fn priority(&self, p: &Priority) -> Value {
        json!({ "id": p.id, "project": self.project(), "name": p.name, "description": null, "index": p.index,
                "color": p.color, "default": p.default })
    }

    pub(crate) fn folder(&self, f: &Folder) -> Value {
        json!({ "id": f.id, "parentId": f.parent_id, "name": f.name, "index": f.index,
                "folderType": f.folder_type, "project": self.project() })
    }

    /// A case. `testScript.self` ends in `/testscript` whatever the script's
    /// kind, as in the spec's example: a client must fall back to
    /// `/teststeps` when `/testscript` answers 422.
    pub(crate) fn case(&self, c: &TestCase) -> Value {
        let own = format!("{}/testcases/{}", self.base, c.key);
        let mut v = json!({
            "id": c.id, "key": c.key, "name": c.name, "project": self.project(), "createdOn": c.created_on,
            "objective": c.objective, "precondition": c.precondition, "estimatedTime": c.estimated_time,
            "labels": c.labels, "component": null, "priority": self.link("priorities", c.priority_id),
            "status": self.link("statuses", c.status_id), "folder": self.opt_link("folders", c.folder_id),
            "owner": self.owner(&c.owner, c.quirk), "testScript": { "self": format!("{own}/testscript") },
            "customFields": c.custom_fields,
            "links": { "self": format!("{own}/links"),
                       "issues": self.issues(&FileOwner::Case(c.key.clone())),
                       "webLinks": self.web_links(&FileOwner::Case(c.key.clone())) },
        });
        if c.quirk == Some(Quirk::Unreadable) {
            v["name"] = Value::Null;
        }
        v
    }

    pub(crate) fn step(&self, s: &Step, id: u64) -> Value {
        let mut v = match s {
            Step::Inline {
                description,
                test_data,
                expected_result,
            } => json!({ "inline": {
                "description": description, "testData": test_data, "expectedResult": expected_result,
                "customFields": {}, "reflectRef": null } }),
            Step::Call {
                test_case_key,
                parameters,
            } => {
                let params: Vec<Value> = parameters
                    .iter()
                    .map(|(n, v)| json!({ "name": n, "type": "DEFAULT_VALUE", "value": v }))
                    .collect();
                json!({ "testCase": { "testCaseKey": test_case_key,
                    "self": format!("{}/testcases/{test_case_key}", self.base), "parameters": params } })
            }
        };
        v["id"] = json!(id);
        v
    }

    fn owned_links(&self, owner: &FileOwner) -> impl Iterator<Item = &MockLink> {
        self.data.links.iter().filter(move |l| l.owner == *owner)
    }

    /// The Jira issue links of `owner`.
    fn issues(&self, owner: &FileOwner) -> Vec<Value> {
        self.owned_links(owner)
            .filter_map(|l| {
                let id = l.issue_id?;
                Some(
                    json!({ "issueId": id, "id": id + 1_000, "type": l.link_type,
                    "target": format!("https://jira.example.com/rest/api/2/issue/{id}") }),
                )
            })
            .collect()
    }

    /// The web links of `owner`.
    fn web_links(&self, owner: &FileOwner) -> Vec<Value> {
        self.owned_links(owner)
            .filter_map(|l| {
                let url = l.url.as_ref()?;
                Some(json!({ "url": url, "description": "design notes", "type": l.link_type }))
            })
            .collect()
    }

    /// A test plan, with the cycles it links.
    pub(crate) fn plan(&self, p: &MockPlan) -> Value {
        let cycles: Vec<Value> = p
            .cycle_ids
            .iter()
            .map(|id| {
                json!({ "id": id + 500, "testCycleId": id,
                "self": format!("{}/links/{}", self.base, id + 500),
                "target": format!("{}/testcycles/{id}", self.base) })
            })
            .collect();
        json!({ "id": p.id, "key": p.key, "name": p.name, "project": self.project(),
            "status": null, "links": { "issues": [], "webLinks": [], "testCycles": cycles } })
    }

    pub(crate) fn cycle(&self, c: &TestCycle) -> Value {
        let mut v = json!({
            "id": c.id, "key": c.key, "name": c.name, "project": self.project(),
            "jiraProjectVersion": self.opt_link("versions", c.jira_project_version),
            "status": self.link("statuses", c.status_id), "folder": self.opt_link("folders", c.folder_id),
            "description": c.description, "plannedStartDate": c.planned_start_date,
            "plannedEndDate": c.planned_end_date, "owner": self.owner(&c.owner, c.quirk), "customFields": {},
            "links": { "self": format!("{}/testcycles/{}/links", self.base, c.id),
                       "issues": self.issues(&FileOwner::Cycle(c.key.clone())),
                       "webLinks": self.web_links(&FileOwner::Cycle(c.key.clone())), "testPlans": [] },
        });
        if c.quirk == Some(Quirk::Unreadable) {
            remove(&mut v, &["status"]);
        }
        v
    }

    pub(crate) fn execution(&self, e: &Execution) -> Value {
        let case_self = format!("{}/testcases/{}/versions/1", self.base, e.test_case_key);
        let test_case = match e.quirk {
            Some(Quirk::NoCaseId) => json!({ "self": case_self }),
            _ => json!({ "id": e.test_case_id, "self": case_self }),
        };
        let mut v = json!({
            "id": e.id, "key": e.key, "project": self.project(), "testCase": test_case,
            "environment": self.opt_link("environments", e.environment_id), "jiraProjectVersion": null,
            "testExecutionStatus": self.link("statuses", e.status_id), "actualEndDate": e.actual_end_date,
            "estimatedTime": null, "executionTime": e.execution_time, "executedById": e.executed_by_id,
            "assignedToId": null, "comment": e.comment, "automated": false,
            "testCycle": self.opt_link("testcycles", e.cycle_id), "customFields": {},
            "links": { "self": format!("{}/testexecutions/{}/links", self.base, e.id),
                       "issues": self.issues(&FileOwner::Execution(e.id)) },
        });
        // The spec makes `actualEndDate` optional, not nullable.
        if e.actual_end_date.is_none() {
            remove(&mut v, &["actualEndDate"]);
        }
        match e.quirk {
            Some(Quirk::NoCycleKey) => remove(&mut v, &["testCycle"]),
            Some(Quirk::Unreadable) => remove(&mut v, &["testExecutionStatus", "id", "key"]),
            _ => {}
        }
        v
    }

    pub(crate) fn step_result(&self, r: &StepResult, row: usize, id: u64) -> Value {
        json!({ "id": id, "inline": {
            "description": r.description, "testData": r.test_data, "expectedResult": r.expected_result,
            "actualResult": r.actual_result, "testDataRowNumber": row,
            "status": self.link("statuses", r.status_id) } })
    }
}
