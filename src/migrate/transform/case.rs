//! Test cases and their steps.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::catalog::ZephyrList;
use super::fields::{self, FieldKind};
use super::text::{self, BR, Extras};
use super::{Context, fail};
use crate::migrate::error::{Reason, TransformError};
use crate::migrate::record::{Lookup, RecordKind};
use crate::qtest::{Field, NewTestCase, NewTestStep, PropertyValue};
use crate::zephyr::{CallToTest, InlineStep, ScriptType, TestCase, TestScript, TestStep};

/// A case's script as read from Zephyr (see [`TestCase::script_location`]).
#[derive(Debug, Clone, Copy)]
pub enum CaseScript<'a> {
    /// No script.
    None,
    /// A step-by-step script (all pages of `/teststeps`).
    Steps(&'a [TestStep]),
    /// A plain or BDD script (`/testscript`).
    Script(&'a TestScript),
}

/// What to create for a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasePlan {
    /// The `POST /test-cases` body.
    pub body: NewTestCase,
    /// Whether to approve the case after creating it
    /// (`mapping.approve_approved` and a Zephyr status of `Approved`).
    pub approve: bool,
}

/// Maps a case: name, objective -> description, precondition, folder ->
/// module, priority and status by name, the Zephyr key, other fields by label
/// or into the description, and the script.
pub fn case_plan(
    case: &TestCase,
    script: CaseScript<'_>,
    ctx: &Context<'_>,
) -> Result<CasePlan, TransformError> {
    let fail = fail(RecordKind::Case, &case.key);
    let name = case.name.trim();
    if name.is_empty() {
        return Err(fail(Reason::Missing { field: "name" }));
    }
    let parent = match &case.folder {
        Some(folder) => ctx.required(RecordKind::Module, &folder.id.to_string()),
        None => ctx.default_target(RecordKind::Module, "mapping.default_module"),
    }
    .map_err(&fail)?;
    let mut props = Properties::new(ctx, &case.key);
    let mut extras = Extras::default();
    let mapping = ctx.catalog.mapping();
    props
        .choice(
            ZephyrList::Priority,
            case.priority.id,
            &mapping.priority_field,
            "Priority",
            &mut extras,
        )
        .map_err(&fail)?;
    props
        .choice(
            ZephyrList::CaseStatus,
            case.status.id,
            &mapping.status_field,
            "Status",
            &mut extras,
        )
        .map_err(&fail)?;
    let status = ctx
        .catalog
        .zephyr_name(ZephyrList::CaseStatus, case.status.id)
        .map_err(&fail)?;
    props.builtin_fields(case, &mut extras);
    for (name, value) in &case.custom_fields {
        props.put(name, name, value, &mut extras);
    }
    for (label, text) in super::links::parts(case.links.as_ref()) {
        props.put(label, label, &Value::String(text), &mut extras);
    }
    props.fill_required().map_err(&fail)?;
    let (test_steps, bdd) = script_parts(script, ctx.lookup);
    let block = extras.block();
    Ok(CasePlan {
        body: NewTestCase {
            name: name.to_owned(),
            description: text::paragraphs([case.objective.as_deref(), bdd, block.as_deref()]),
            precondition: case.precondition.clone().unwrap_or_default(),
            parent_id: Some(parent.id),
            properties: props.values,
            test_steps,
        },
        approve: mapping.approves(status),
    })
}

/// The properties of one case, each qTest field set at most once.
struct Properties<'a> {
    ctx: &'a Context<'a>,
    values: Vec<PropertyValue>,
    used: HashSet<u64>,
    /// The first Zephyr value that a required field can't take: the case fails.
    refused: Option<Reason>,
}

impl<'a> Properties<'a> {
    fn new(ctx: &'a Context<'a>, key: &str) -> Self {
        let key_field = ctx.catalog.key_field_id();
        Properties {
            ctx,
            values: vec![PropertyValue {
                field_id: key_field,
                field_value: key.to_owned(),
            }],
            used: HashSet::from([key_field]),
            refused: None,
        }
    }

    /// Gives every required field nothing has set its default; a required
    /// field without one, or a required field refusing Zephyr's value, fails
    /// the case with a reason naming the field.
    fn fill_required(&mut self) -> Result<(), Reason> {
        if let Some(reason) = self.refused.take() {
            return Err(reason);
        }
        let catalog = self.ctx.catalog;
        let unset: Vec<&Field> = catalog
            .required_fields()
            .filter(|f| !self.used.contains(&f.id))
            .collect();
        for field in unset {
            match fields::default_value(field) {
                Ok(Some(value)) => self.push(PropertyValue {
                    field_id: field.id,
                    field_value: value,
                }),
                Ok(None) => {
                    return Err(Reason::RequiredField {
                        field: field.label.clone(),
                    });
                }
                Err(why) => {
                    return Err(Reason::FieldUnfit {
                        field: format!("{} ({})", field.label, field.type_name()),
                        value: field.default_value.clone().unwrap_or_default(),
                        why,
                    });
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, value: PropertyValue) {
        self.used.insert(value.field_id);
        self.values.push(value);
    }

    /// A priority or status: mapped strictly, since a missing target is a
    /// configuration mistake the user should see, not a footnote.
    fn choice(
        &mut self,
        list: ZephyrList,
        id: u64,
        field: &str,
        name: &str,
        extras: &mut Extras,
    ) -> Result<(), Reason> {
        match self.ctx.catalog.choice(list, id, field)? {
            Ok(value) if !self.used.contains(&value.field_id) => self.push(value),
            Ok(_) => extras.add(name, self.ctx.catalog.zephyr_name(list, id)?),
            Err(zephyr_name) => extras.add(name, &zephyr_name),
        }
        Ok(())
    }

    /// Labels, estimated time, owner and component, under their configured
    /// labels.
    fn builtin_fields(&mut self, case: &TestCase, extras: &mut Extras) {
        let labels = &self.ctx.catalog.mapping().fields;
        if !case.labels.is_empty() {
            self.put("Labels", &labels.labels, &json!(case.labels), extras);
        }
        if let Some(ms) = case.estimated_time {
            self.put_estimate(&labels.estimated_time, ms, extras);
        }
        if let Some(owner) = &case.owner {
            self.put("Owner", &labels.owner, &json!(owner.account_id), extras);
        }
        if let Some(component) = &case.component {
            self.put("Component", &labels.component, &json!(component.id), extras);
        }
    }

    /// A number field gets Zephyr's milliseconds; anything else, or the
    /// description, a readable duration.
    fn put_estimate(&mut self, label: &str, ms: u64, extras: &mut Extras) {
        let human = humantime::format_duration(Duration::from_millis(ms)).to_string();
        let number = self
            .ctx
            .catalog
            .field(label)
            .is_some_and(|f| fields::kind(f) == FieldKind::Number);
        let value = if number { json!(ms) } else { json!(human) };
        self.put("Estimated Time", label, &value, extras);
    }

    /// Sets the field labelled `label` to `value` if it exists, is not set
    /// yet and accepts the value; otherwise describes it as `name`.
    fn put(&mut self, name: &str, label: &str, value: &Value, extras: &mut Extras) {
        if fields::is_empty(value) {
            return;
        }
        let shown = fields::display(value);
        let field = self.ctx.catalog.field(label);
        match field.filter(|f| !self.used.contains(&f.id)) {
            Some(field) => match fields::format(field, value) {
                Ok(Some(v)) => self.push(PropertyValue {
                    field_id: field.id,
                    field_value: v,
                }),
                Ok(None) => {}
                Err(why) if field.required => {
                    let reason = Reason::FieldUnfit {
                        field: format!("{} ({})", field.label, field.type_name()),
                        value: text::excerpt(&shown),
                        why,
                    };
                    self.refused.get_or_insert(reason);
                }
                Err(why) => extras.add_unfit(name, &shown, &field.label, &why),
            },
            None => extras.add(name, &shown),
        }
    }
}

/// Steps, and the BDD text that goes into the description.
fn script_parts<'s>(
    script: CaseScript<'s>,
    lookup: &dyn Lookup,
) -> (Vec<NewTestStep>, Option<&'s str>) {
    match script {
        CaseScript::None => (Vec::new(), None),
        CaseScript::Steps(steps) => (test_steps(steps, lookup), None),
        CaseScript::Script(script) if script.text.trim().is_empty() => (Vec::new(), None),
        CaseScript::Script(script) => match script.kind {
            ScriptType::Plain => (
                vec![step(1, script.text.clone(), String::new(), None)],
                None,
            ),
            ScriptType::Bdd => (Vec::new(), Some(script.text.as_str())),
        },
    }
}

/// How many qTest steps [`case_plan`] makes of a script: one per Zephyr step,
/// one for a non-empty plain script, none for BDD (it goes into the
/// description) or no script.
pub(crate) fn script_step_count(script: CaseScript<'_>) -> u32 {
    match script {
        CaseScript::Steps(steps) => u32::try_from(steps.len()).unwrap_or(u32::MAX),
        CaseScript::Script(s) if s.kind == ScriptType::Plain && !s.text.trim().is_empty() => 1,
        CaseScript::Script(_) | CaseScript::None => 0,
    }
}

/// Maps a step-by-step script. An inline step keeps its description with the
/// test data appended; a call to a case already migrated links it by
/// `called_test_case_id`, and is described as "Call to KEY" either way.
pub fn test_steps(steps: &[TestStep], lookup: &dyn Lookup) -> Vec<NewTestStep> {
    steps
        .iter()
        .zip(1u32..)
        .map(|(s, order)| match s {
            TestStep::Inline(inline) => inline_step(order, inline),
            TestStep::Call(call) => call_step(order, call, lookup),
        })
        .collect()
}

fn inline_step(order: u32, inline: &InlineStep) -> NewTestStep {
    let data = inline
        .test_data
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| format!("Test data: {d}"));
    let mut extras = Extras::default();
    for (name, value) in &inline.custom_fields {
        extras.add(name, &fields::display(value));
    }
    let block = extras.block();
    let description = text::join(
        BR,
        [
            inline.description.as_deref(),
            data.as_deref(),
            block.as_deref(),
        ],
    );
    let expected = inline.expected_result.clone().unwrap_or_default();
    step(order, description, expected, None)
}

fn call_step(order: u32, call: &CallToTest, lookup: &dyn Lookup) -> NewTestStep {
    let params: Vec<String> = call
        .parameters
        .iter()
        .map(|p| match &p.value {
            Some(v) => format!("{}={}", p.name, fields::display(v)),
            None => p.name.clone(),
        })
        .collect();
    let params = (!params.is_empty()).then(|| format!("Parameters: {}", params.join(", ")));
    let head = format!("Call to {}", call.test_case_key);
    let description = text::join(BR, [Some(head.as_str()), params.as_deref()]);
    let called = lookup.target(RecordKind::Case, &call.test_case_key);
    step(order, description, String::new(), called.map(|t| t.id))
}

fn step(order: u32, description: String, expected: String, called: Option<u64>) -> NewTestStep {
    NewTestStep {
        description,
        expected,
        order,
        called_test_case_id: called,
    }
}

#[cfg(test)]
#[path = "case_tests.rs"]
mod tests;
