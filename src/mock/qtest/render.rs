//! The JSON shapes of the spec's resources (`ModuleResource`, `TestCaseWithCustomFieldResource`,
//! `TestCycleResource`, `TestRunWithCustomFieldResource`, `TestLogResource`, `FieldResource`).

use serde_json::{Value, json};

use super::body::value_name;
use super::config::{Field, QtestConfig};
use super::state::*;

/// Renders entities with links under `base` (`http://host:port/api/v3/projects/{p}`).
pub(crate) struct Render<'a> {
    pub base: String,
    pub origin: &'a str,
    pub cfg: &'a QtestConfig,
    pub st: &'a QtestState,
}

impl Render<'_> {
    fn links(&self, path: &str, id: u64) -> Value {
        json!([{ "rel": "self", "href": format!("{}/{path}/{id}", self.base) }])
    }

    fn web_url(&self, object: u32, id: u64) -> String {
        let tab = if object == 1 {
            "testdesign"
        } else {
            "testexecution"
        };
        format!(
            "{}/p/{}/portal/project#tab={tab}&object={object}&id={id}",
            self.origin, self.cfg.project_id
        )
    }

    fn properties(&self, fields: &[Field], props: &[Property]) -> Vec<Value> {
        props
            .iter()
            .map(|p| {
                let (label, name) = value_name(fields, p);
                json!({ "field_id": p.field_id, "field_name": label, "field_value": p.field_value,
                        "field_value_name": name })
            })
            .collect()
    }

    pub(crate) fn project(&self) -> Value {
        json!({ "id": self.cfg.project_id, "name": "Migrated project", "description": "",
                "status_id": 1, "start_date": "2024-01-01T00:00:00+00:00",
                "links": [{ "rel": "self", "href": self.base }] })
    }

    /// A module; with `expand`, its descendants under `children`.
    pub(crate) fn module(&self, m: &Module, expand: bool) -> Value {
        let mut v = json!({ "id": m.id, "pid": m.pid, "name": m.name, "order": m.order, "parent_id": m.parent_id,
                            "description": m.description, "shared": false, "links": self.links("modules", m.id) });
        if expand {
            let children: Vec<Value> = self
                .st
                .modules
                .iter()
                .filter(|c| c.parent_id == Some(m.id))
                .map(|c| self.module(c, true))
                .collect();
            v["children"] = Value::Array(children);
        }
        v
    }

    /// A test case; properties and steps only when asked for. A step that calls another case
    /// names it (`called_test_case_id`, `called_test_case_name`); the called steps are not
    /// expanded into the list.
    pub(crate) fn case(&self, c: &TestCase, props: bool, steps: bool) -> Value {
        let version = c.current();
        let mut v = json!({
            "id": c.id, "pid": c.pid, "name": c.name, "parent_id": c.parent_id, "test_case_version_id": version.id,
            "version": version.version, "description": c.description, "precondition": c.precondition,
            "created_date": c.created_date, "last_modified_date": c.created_date,
            "web_url": self.web_url(1, c.id), "links": self.links("test-cases", c.id),
        });
        if props {
            v["properties"] = Value::Array(self.properties(&self.cfg.case_fields, &c.properties));
        }
        if steps {
            let steps: Vec<Value> = c
                .test_steps
                .iter()
                .map(|s| {
                    let called = s.called_test_case_id.and_then(|id| self.st.test_case(id));
                    json!({ "id": s.id, "description": s.description, "expected": s.expected, "order": s.order,
                            "called_test_case_id": s.called_test_case_id,
                            "called_test_case_name": called.map(|c| c.name.as_str()) })
                })
                .collect();
            v["test_steps"] = Value::Array(steps);
        }
        v
    }

    /// A test cycle; with `expand`, its descendants under the hyphenated `test-cycles` (and
    /// `test-suites`, always empty: the mock has no suites), as the spec names them.
    pub(crate) fn cycle(&self, c: &Cycle, expand: bool) -> Value {
        let children: Vec<Value> = match expand {
            true => self
                .st
                .test_cycles
                .iter()
                .filter(|x| is_child(x, c.id))
                .map(|x| self.cycle(x, true))
                .collect(),
            false => Vec::new(),
        };
        json!({ "id": c.id, "pid": c.pid, "name": c.name, "description": c.description, "target_release_id": null,
                "target_build_id": null, "order": c.order, "created_date": c.created_date,
                "last_modified_date": c.created_date, "web_url": self.web_url(2, c.id),
                "test-cycles": children, "test-suites": [], "links": self.links("test-cycles", c.id) })
    }

    pub(crate) fn run(&self, r: &Run) -> Value {
        let status = r.status_id.unwrap_or_else(|| self.cfg.default_status().id);
        let status_field = self.cfg.run_fields.iter().find(|f| f.label == "Status");
        let prop = Property {
            field_id: status_field.map_or(0, |f| f.id),
            field_value: status.to_string(),
        };
        // The spec spells the parent of a run in camelCase, unlike every other field.
        json!({ "id": r.id, "pid": r.pid, "name": r.name, "parentId": r.parent_id, "parentType": r.parent_type,
                "test_case": { "id": r.test_case_id }, "test_case_version_id": r.test_case_version_id,
                "properties": self.properties(&self.cfg.run_fields, &[prop]),
                "web_url": self.web_url(3, r.id), "links": self.links("test-runs", r.id) })
    }

    pub(crate) fn log(&self, l: &Log) -> Value {
        let status =
            |id: u64| json!({ "id": id, "name": self.cfg.status(id).map(|s| s.name.as_str()) });
        let steps: Vec<Value> = l
            .test_step_logs
            .iter()
            .map(|s| {
                json!({ "test_step_log_id": s.id, "test_step_id": s.test_step_id, "status": status(s.status_id),
                        "actual_result": s.actual_result, "order": s.order,
                        "called_test_case_id": s.called_test_case_id,
                        "parent_test_step_id": s.parent_test_step_id })
            })
            .collect();
        json!({ "id": l.id, "status": status(l.status_id), "exe_start_date": l.exe_start_date,
                "exe_end_date": l.exe_end_date, "note": l.note, "test_case_version_id": l.test_case_version_id,
                "result_number": l.result_number, "test_step_logs": steps,
                "links": [{ "rel": "self", "href": format!("{}/test-runs/{}/test-logs/{}", self.base, l.run_id, l.id) }] })
    }

    /// The API user's permissions in the project (`UserProfile`): everything but, possibly,
    /// approving test cases.
    pub(crate) fn profile(&self) -> Value {
        let all = |names: &[&str]| -> Value {
            Value::Object(
                names
                    .iter()
                    .map(|n| (n.to_string(), Value::Bool(true)))
                    .collect(),
            )
        };
        let mut test_case = all(&[
            "create",
            "edit",
            "delete",
            "view",
            "edit_assignment",
            "export",
            "import",
        ]);
        test_case["approve"] = Value::Bool(self.cfg.can_approve);
        json!({ "user_id": 1, "project_id": self.cfg.project_id,
                "module": all(&["create", "edit", "delete", "view"]),
                "test_case": test_case,
                "test_cycle": all(&["create", "edit", "delete", "view"]),
                "test_run": all(&["create", "edit", "delete", "view", "execute", "export", "edit_assignment"]) })
    }

    pub(crate) fn field(&self, f: &Field) -> Value {
        let values: Vec<Value> = f
            .allowed_values
            .iter()
            .map(|a| json!({ "value": a.value, "label": a.label, "order": a.order, "is_default": a.is_default,
                             "is_active": true }))
            .collect();
        json!({ "id": f.id, "label": f.label, "original_name": f.label, "system_field": f.system_field,
                "required": f.required, "multiple": f.multiple, "data_type": f.data_type, "is_active": f.active,
                "default_value": f.default_value, "allowed_values": values })
    }
}

/// Whether cycle `c` sits directly under cycle `parent`.
pub(crate) fn is_child(c: &Cycle, parent: u64) -> bool {
    c.parent_type == "test-cycle" && c.parent_id == parent
}
