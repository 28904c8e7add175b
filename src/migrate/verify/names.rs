//! Readable names for the ids a difference shows: qTest field labels,
//! allowed-value labels and execution status names.

use std::collections::HashMap;

use crate::migrate::transform::Lookups;
use crate::qtest::Field;

/// qTest's fields and execution statuses by id.
#[derive(Debug, Default)]
pub(super) struct Names {
    fields: HashMap<u64, Field>,
    statuses: HashMap<u64, String>,
}

impl Names {
    pub(super) fn new(lookups: &Lookups) -> Self {
        Names {
            fields: lookups
                .qtest_case_fields
                .iter()
                .map(|f| (f.id, f.clone()))
                .collect(),
            statuses: lookups
                .qtest_execution_statuses
                .iter()
                .map(|s| (s.id, s.name.clone()))
                .collect(),
        }
    }

    /// A field's label, or `field <id>`.
    pub(super) fn field(&self, id: u64) -> String {
        self.fields
            .get(&id)
            .map_or_else(|| format!("field {id}"), |f| f.label.clone())
    }

    /// A property value: a choice as `Label (id)`, anything else quoted.
    pub(super) fn value(&self, field: u64, value: Option<&str>) -> String {
        let Some(value) = value else {
            return "none".to_owned();
        };
        let label = self
            .fields
            .get(&field)
            .and_then(|f| f.allowed_values.iter().find(|v| v.value == value));
        match label {
            Some(allowed) => format!("{} ({value})", allowed.label),
            None => super::text::quote(value),
        }
    }

    /// An execution status's name, or `status <id>`.
    pub(super) fn status(&self, id: u64) -> String {
        self.statuses
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("status {id}"))
    }
}
