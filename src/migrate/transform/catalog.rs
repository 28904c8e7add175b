//! The resolved lookups of one migration: Zephyr names by id, qTest fields and
//! statuses by name, and the mapping between them. Built once from the lookup
//! lists both APIs return, so no id is ever hard-coded.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{self, FieldKind};
use crate::migrate::error::{MigrateError, Reason};
use crate::migrate::mapping::{ExecutionTarget, MappingConfig, same_name};
use crate::qtest::{ExecutionStatus, Field, PropertyValue};
use crate::zephyr::{Priority, Status};

/// The lookup lists read from both services before anything is migrated.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    /// `GET /priorities`.
    pub zephyr_priorities: Vec<Priority>,
    /// `GET /statuses?statusType=TEST_CASE`.
    pub zephyr_case_statuses: Vec<Status>,
    /// `GET /statuses?statusType=TEST_CYCLE`.
    pub zephyr_cycle_statuses: Vec<Status>,
    /// `GET /statuses?statusType=TEST_EXECUTION`.
    pub zephyr_execution_statuses: Vec<Status>,
    /// `GET /settings/test-cases/fields`.
    pub qtest_case_fields: Vec<Field>,
    /// `GET /test-runs/execution-statuses`.
    pub qtest_execution_statuses: Vec<ExecutionStatus>,
}

/// Which Zephyr list an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZephyrList {
    Priority,
    CaseStatus,
    CycleStatus,
    ExecutionStatus,
}

impl ZephyrList {
    pub(crate) fn what(self) -> &'static str {
        match self {
            ZephyrList::Priority => "priority",
            ZephyrList::CaseStatus => "case status",
            ZephyrList::CycleStatus => "cycle status",
            ZephyrList::ExecutionStatus => "execution status",
        }
    }
}

/// What an execution status becomes on qTest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutionOutcome<'a> {
    /// A log with this qTest status id.
    Status(u64),
    /// No log; the Zephyr status name says why.
    NoLog(&'a str),
}

/// The resolved lookups and the mapping; see the module docs.
#[derive(Debug, Clone)]
pub struct Catalog {
    mapping: MappingConfig,
    zephyr: [HashMap<u64, String>; 4],
    /// Active case fields only.
    fields: Vec<Field>,
    key_field: u64,
    /// Active execution statuses only.
    statuses: Vec<ExecutionStatus>,
    /// Environment names and test plans, read when a phase first needs them.
    context: std::sync::OnceLock<super::links::ZephyrContext>,
}

impl Catalog {
    /// Resolves the lookups. Fails when qTest has no usable text field for
    /// the Zephyr key (labelled [`MappingConfig::key_field`]): without it a
    /// re-run could not find what an earlier one created.
    pub fn new(mapping: MappingConfig, lookups: &Lookups) -> Result<Catalog, MigrateError> {
        let names = |list: &mut dyn Iterator<Item = (u64, &String)>| {
            list.map(|(id, name)| (id, name.clone())).collect()
        };
        let zephyr = [
            names(&mut lookups.zephyr_priorities.iter().map(|p| (p.id, &p.name))),
            names(&mut lookups.zephyr_case_statuses.iter().map(|s| (s.id, &s.name))),
            names(
                &mut lookups
                    .zephyr_cycle_statuses
                    .iter()
                    .map(|s| (s.id, &s.name)),
            ),
            names(
                &mut lookups
                    .zephyr_execution_statuses
                    .iter()
                    .map(|s| (s.id, &s.name)),
            ),
        ];
        let fields: Vec<Field> = lookups
            .qtest_case_fields
            .iter()
            .filter(|f| f.is_active != Some(false))
            .cloned()
            .collect();
        let key_field = key_field(&fields, &mapping.key_field)?;
        let statuses = lookups
            .qtest_execution_statuses
            .iter()
            .filter(|s| s.active != Some(false))
            .cloned()
            .collect();
        Ok(Catalog {
            mapping,
            zephyr,
            fields,
            key_field,
            statuses,
            context: std::sync::OnceLock::new(),
        })
    }

    /// This catalog with environment names and test plans (see
    /// [`ZephyrContext`](super::ZephyrContext)).
    pub fn with_context(self, context: super::links::ZephyrContext) -> Self {
        self.context_or_init(|| context);
        self
    }

    /// Environment names and test plans: those given, else `load`'s, read
    /// once (the phases that show them load them when they start, so a run
    /// that migrates only cases never asks).
    pub fn context_or_init(
        &self,
        load: impl FnOnce() -> super::links::ZephyrContext,
    ) -> &super::links::ZephyrContext {
        self.context.get_or_init(load)
    }

    /// Environment names and test plans; empty until loaded.
    pub fn context(&self) -> &super::links::ZephyrContext {
        static EMPTY: std::sync::OnceLock<super::links::ZephyrContext> = std::sync::OnceLock::new();
        self.context
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    /// The mapping this catalog applies.
    pub fn mapping(&self) -> &MappingConfig {
        &self.mapping
    }

    /// Id of the qTest field holding the Zephyr key (for searches).
    pub fn key_field_id(&self) -> u64 {
        self.key_field
    }

    /// Zephyr priorities and statuses that would fail every record using them
    /// (their mapped qTest value does not exist), one message each. A runner
    /// can refuse to start, or warn, before any work is done.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |list: ZephyrList, field: &str| {
            for (id, name) in sorted(&self.zephyr[list as usize]) {
                if let Err(reason) = self.choice(list, id, field) {
                    problems.push(format!("Zephyr {} `{name}`: {reason}", list.what()));
                }
            }
        };
        check(ZephyrList::Priority, &self.mapping.priority_field);
        check(ZephyrList::CaseStatus, &self.mapping.status_field);
        for (id, name) in sorted(&self.zephyr[ZephyrList::ExecutionStatus as usize]) {
            if let Err(reason) = self.execution_outcome(id) {
                problems.push(format!("Zephyr execution status `{name}`: {reason}"));
            }
        }
        problems
    }

    /// The name of a Zephyr priority or status.
    pub(crate) fn zephyr_name(&self, list: ZephyrList, id: u64) -> Result<&str, Reason> {
        self.zephyr[list as usize]
            .get(&id)
            .map(String::as_str)
            .ok_or(Reason::UnknownZephyrId {
                what: list.what(),
                id,
            })
    }

    /// The active required case fields a create sets through `properties` (not the system
    /// fields the body's own keys set, such as `Name`).
    pub(crate) fn required_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .filter(|f| f.required && !f.is_body_field())
    }

    /// The active case field with this label, if any.
    pub(crate) fn field(&self, label: &str) -> Option<&Field> {
        if label.trim().is_empty() {
            return None;
        }
        self.fields.iter().find(|f| same_name(&f.label, label))
    }

    /// A mapped priority or case status: `Ok(Err(name))` when qTest has no
    /// field with that label (the name then goes into the description).
    pub(crate) fn choice(
        &self,
        list: ZephyrList,
        id: u64,
        field_label: &str,
    ) -> Result<Result<PropertyValue, String>, Reason> {
        let name = self.zephyr_name(list, id)?;
        let Some(field) = self.field(field_label) else {
            return Ok(Err(name.to_owned()));
        };
        let exists =
            fields::format(field, &Value::String(name.to_owned())).is_ok_and(|v| v.is_some());
        let label = match list {
            ZephyrList::Priority => self.mapping.priority_label(name, exists),
            _ => self.mapping.case_status_label(name, exists),
        };
        let no_value = || Reason::NoAllowedValue {
            field: field.label.clone(),
            value: label.to_owned(),
        };
        let value = fields::format(field, &Value::String(label.to_owned()))
            .map_err(|_| no_value())?
            .ok_or_else(no_value)?;
        Ok(Ok(PropertyValue {
            field_id: field.id,
            field_value: value,
        }))
    }

    /// What a Zephyr execution status becomes.
    pub(crate) fn execution_outcome(&self, zephyr_id: u64) -> Result<ExecutionOutcome<'_>, Reason> {
        let name = self.zephyr_name(ZephyrList::ExecutionStatus, zephyr_id)?;
        let exists = self.statuses.iter().any(|s| same_name(&s.name, name));
        match self.mapping.execution_target(name, exists) {
            ExecutionTarget::NoLog => Ok(ExecutionOutcome::NoLog(name)),
            ExecutionTarget::Status(target) => self
                .statuses
                .iter()
                .find(|s| same_name(&s.name, target))
                .map(|s| ExecutionOutcome::Status(s.id))
                .ok_or_else(|| Reason::NoExecutionStatus {
                    name: target.to_owned(),
                }),
        }
    }

    /// qTest's default execution status (usually `Unexecuted`), for steps
    /// whose Zephyr status gets no log of its own.
    pub(crate) fn default_execution_status(&self) -> Option<u64> {
        self.statuses
            .iter()
            .find(|s| s.is_default == Some(true))
            .map(|s| s.id)
    }
}

fn key_field(fields: &[Field], label: &str) -> Result<u64, MigrateError> {
    let field = fields
        .iter()
        .find(|f| same_name(&f.label, label))
        .ok_or_else(|| MigrateError::Catalog {
            message: format!(
                "qTest has no active test-case field `{label}`; create a text field with that \
                 label (it holds each case's Zephyr key, so a re-run finds what exists)"
            ),
        })?;
    match fields::kind(field) {
        FieldKind::Text => Ok(field.id),
        other => Err(MigrateError::Catalog {
            message: format!("qTest field `{label}` must be a text field, not {other:?}"),
        }),
    }
}

fn sorted(map: &HashMap<u64, String>) -> Vec<(u64, &str)> {
    let mut list: Vec<(u64, &str)> = map.iter().map(|(id, n)| (*id, n.as_str())).collect();
    list.sort_unstable();
    list
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
