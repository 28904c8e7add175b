//! The JSON shapes of contract section 1, rendered from the typed dataset.

use serde_json::{Value, json};

use super::data::*;

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

    fn owner(&self, account: &Option<String>) -> Value {
        account.as_ref().map_or(Value::Null, |a| {
            json!({ "accountId": a, "self": format!("https://jira.invalid/rest/api/3/user?accountId={a}") })
        })
    }

    fn project(&self) -> Value {
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

    pub(crate) fn case(&self, c: &TestCase) -> Value {
        let script = match c.script {
            Script::Steps(_) => "teststeps",
            Script::Plain(_) | Script::Bdd(_) => "testscript",
        };
        let own = format!("{}/testcases/{}", self.base, c.key);
        json!({
            "id": c.id, "key": c.key, "name": c.name, "project": self.project(), "createdOn": c.created_on,
            "objective": c.objective, "precondition": c.precondition, "estimatedTime": c.estimated_time,
            "labels": c.labels, "component": null, "priority": self.link("priorities", c.priority_id),
            "status": self.link("statuses", c.status_id), "folder": self.opt_link("folders", c.folder_id),
            "owner": self.owner(&c.owner), "testScript": { "self": format!("{own}/{script}") },
            "customFields": c.custom_fields,
            "links": { "self": format!("{own}/links"), "issues": [], "webLinks": [] },
        })
    }

    pub(crate) fn step(&self, s: &Step) -> Value {
        match s {
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
        }
    }

    pub(crate) fn cycle(&self, c: &TestCycle) -> Value {
        json!({
            "id": c.id, "key": c.key, "name": c.name, "project": self.project(),
            "jiraProjectVersion": self.opt_link("versions", c.jira_project_version),
            "status": self.link("statuses", c.status_id), "folder": self.opt_link("folders", c.folder_id),
            "description": c.description, "plannedStartDate": c.planned_start_date,
            "plannedEndDate": c.planned_end_date, "owner": self.owner(&c.owner), "customFields": {},
            "links": { "self": format!("{}/testcycles/{}/links", self.base, c.id), "issues": [],
                       "webLinks": [], "testPlans": [] },
        })
    }

    pub(crate) fn execution(&self, e: &Execution) -> Value {
        let case = format!("{}/testcases/{}/versions/1", self.base, e.test_case_key);
        json!({
            "id": e.id, "key": e.key, "project": self.project(),
            "testCase": { "id": e.test_case_id, "self": case },
            "environment": self.opt_link("environments", e.environment_id), "jiraProjectVersion": null,
            "testExecutionStatus": self.link("statuses", e.status_id), "actualEndDate": e.actual_end_date,
            "estimatedTime": null, "executionTime": e.execution_time, "executedById": e.executed_by_id,
            "assignedToId": null, "comment": e.comment, "automated": false,
            "testCycle": self.link("testcycles", e.cycle_id), "customFields": {},
            "links": { "self": format!("{}/testexecutions/{}/links", self.base, e.id), "issues": [] },
        })
    }

    pub(crate) fn step_result(&self, r: &StepResult, row: usize) -> Value {
        json!({ "inline": {
            "description": r.description, "testData": r.test_data, "expectedResult": r.expected_result,
            "actualResult": r.actual_result, "testDataRowNumber": row,
            "status": self.link("statuses", r.status_id) } })
    }
}
