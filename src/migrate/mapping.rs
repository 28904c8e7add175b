//! The configurable name maps of a migration: the `[mapping]` section of the
//! config file.
//!
//! Names are matched without regard to case. A Zephyr priority or status maps
//! to the qTest value with the same label when qTest has one (Zephyr
//! "Approved" -> qTest "Approved"), and through these tables otherwise
//! (`same_label_first = false` lets the tables decide first). A table given in
//! the file replaces that table's default as a whole (no hidden merging); a
//! Zephyr name a table does not list maps to the qTest value of the same name.
//!
//! ```toml
//! [mapping]
//! default_module = "Zephyr (no folder)"
//! approve_approved = true
//! approve_executed = true
//!
//! [mapping.priority]
//! High = "High"
//! Normal = "Medium"
//! Low = "Low"
//!
//! [mapping.execution_status]
//! Pass = "Passed"
//! "In Progress" = "Incomplete"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::MigrateError;

/// The `[mapping]` section. [`Default`] holds every default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// Whether a Zephyr priority or status goes to the qTest value with the same
    /// label, when there is one, before the tables below are asked. Defaults
    /// to `true`.
    pub same_label_first: bool,
    /// Zephyr priority name -> label of an allowed value of the qTest
    /// priority field. Defaults to High->High, Normal->Medium, Low->Low.
    pub priority: BTreeMap<String, String>,
    /// Zephyr case status name -> label of an allowed value of the qTest
    /// status field. Defaults to Draft->New, Approved->New, Deprecated->Obsolete.
    pub case_status: BTreeMap<String, String>,
    /// Zephyr execution status name -> qTest execution status name.
    /// Defaults to Pass->Passed, Fail->Failed, Blocked->Blocked, In Progress->Incomplete.
    pub execution_status: BTreeMap<String, String>,
    /// Zephyr execution statuses that get no test log (the test run stays
    /// unexecuted). Defaults to `["Not Executed"]`.
    pub no_log_statuses: Vec<String>,
    /// Root module for cases in no folder. Defaults to `Zephyr (no folder)`.
    pub default_module: String,
    /// Root test cycle for executions in no cycle. Defaults to `Zephyr (no cycle)`.
    pub default_cycle: String,
    /// Whether cases with the Zephyr status `Approved` are approved on qTest
    /// (`PUT …/approve`), which gives them a new version. Defaults to `true`.
    pub approve_approved: bool,
    /// Whether cases with executions are approved on qTest before their test
    /// runs are created, so runs and logs record an approved version (logging
    /// an unapproved one needs the Approve permission). Defaults to `true`.
    pub approve_executed: bool,
    /// Label of the qTest text field that holds the Zephyr key, the
    /// idempotency key. Defaults to `Zephyr Key`.
    pub key_field: String,
    /// Label of the qTest priority field. Defaults to `Priority`.
    pub priority_field: String,
    /// Label of the qTest status field. Defaults to `Status`.
    pub status_field: String,
    /// qTest field labels for Zephyr's built-in case fields.
    pub fields: FieldLabels,
}

/// Labels of the qTest fields that receive Zephyr's built-in case fields. An
/// empty label means "always into the description". Zephyr custom fields go to
/// the qTest field with the same label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldLabels {
    /// Labels. Defaults to `Labels`.
    pub labels: String,
    /// Estimated time. Defaults to `Estimated Time`.
    pub estimated_time: String,
    /// Owner (an Atlassian account id). Defaults to `Owner`.
    pub owner: String,
    /// Jira component (its id). Defaults to `Component`.
    pub component: String,
}

impl Default for FieldLabels {
    fn default() -> Self {
        Self {
            labels: "Labels".into(),
            estimated_time: "Estimated Time".into(),
            owner: "Owner".into(),
            component: "Component".into(),
        }
    }
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            same_label_first: true,
            priority: pairs(&[("High", "High"), ("Normal", "Medium"), ("Low", "Low")]),
            case_status: pairs(&[
                ("Draft", "New"),
                ("Approved", "New"),
                ("Deprecated", "Obsolete"),
            ]),
            execution_status: pairs(&[
                ("Pass", "Passed"),
                ("Fail", "Failed"),
                ("Blocked", "Blocked"),
                ("In Progress", "Incomplete"),
            ]),
            no_log_statuses: vec!["Not Executed".into()],
            default_module: "Zephyr (no folder)".into(),
            default_cycle: "Zephyr (no cycle)".into(),
            approve_approved: true,
            approve_executed: true,
            key_field: "Zephyr Key".into(),
            priority_field: "Priority".into(),
            status_field: "Status".into(),
            fields: FieldLabels::default(),
        }
    }
}

fn pairs(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What an execution status becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionTarget<'a> {
    /// A test log with the qTest execution status of this name.
    Status(&'a str),
    /// No test log.
    NoLog,
}

/// The Zephyr case status whose cases may be approved on qTest.
const APPROVED: &str = "Approved";

impl MappingConfig {
    /// Reads the `[mapping]` section of a whole config file (other sections
    /// are left to their owners) and validates it. A file without the section
    /// gives the defaults.
    pub fn from_toml(text: &str) -> Result<Self, MigrateError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            mapping: MappingConfig,
        }
        let file: File = toml::from_str(text)
            .map_err(|e| MigrateError::config("mapping", e.to_string().trim_end()))?;
        file.mapping.validate()?;
        Ok(file.mapping)
    }

    /// Checks every setting; the error names the first bad key.
    pub fn validate(&self) -> Result<(), MigrateError> {
        for (key, value) in [
            ("default_module", &self.default_module),
            ("default_cycle", &self.default_cycle),
            ("key_field", &self.key_field),
            ("priority_field", &self.priority_field),
            ("status_field", &self.status_field),
        ] {
            if value.trim().is_empty() {
                return Err(MigrateError::config(
                    format!("mapping.{key}"),
                    "must not be empty",
                ));
            }
        }
        check_map("priority", &self.priority)?;
        check_map("case_status", &self.case_status)?;
        check_map("execution_status", &self.execution_status)?;
        check_names("no_log_statuses", self.no_log_statuses.iter())?;
        if let Some(name) = self
            .no_log_statuses
            .iter()
            .find(|n| find(&self.execution_status, n).is_some())
        {
            return Err(MigrateError::config(
                "mapping.no_log_statuses",
                format!("`{name}` is also mapped in mapping.execution_status"),
            ));
        }
        Ok(())
    }

    /// The qTest priority label for a Zephyr priority name, given whether
    /// qTest has a value labelled like the Zephyr name (see
    /// [`same_label_first`](Self::same_label_first)).
    pub fn priority_label<'a>(&'a self, zephyr_name: &'a str, exists: bool) -> &'a str {
        self.pick(&self.priority, zephyr_name, exists)
    }

    /// The qTest status label for a Zephyr case status name; see
    /// [`priority_label`](Self::priority_label).
    pub fn case_status_label<'a>(&'a self, zephyr_name: &'a str, exists: bool) -> &'a str {
        self.pick(&self.case_status, zephyr_name, exists)
    }

    /// What a Zephyr execution status name becomes; `exists` says whether
    /// qTest has an execution status of that very name.
    pub fn execution_target<'a>(
        &'a self,
        zephyr_name: &'a str,
        exists: bool,
    ) -> ExecutionTarget<'a> {
        if self
            .no_log_statuses
            .iter()
            .any(|n| same_name(n, zephyr_name))
        {
            return ExecutionTarget::NoLog;
        }
        ExecutionTarget::Status(self.pick(&self.execution_status, zephyr_name, exists))
    }

    fn pick<'a>(
        &'a self,
        table: &'a BTreeMap<String, String>,
        name: &'a str,
        exists: bool,
    ) -> &'a str {
        if self.same_label_first && exists {
            return name;
        }
        find(table, name).unwrap_or(name)
    }

    /// Whether a case with this Zephyr status is to be approved when created.
    pub fn approves(&self, zephyr_status: &str) -> bool {
        self.approve_approved && same_name(zephyr_status, APPROVED)
    }

    /// Whether anything is ever approved, so the API user needs the Approve
    /// permission.
    pub fn approves_any(&self) -> bool {
        self.approve_approved || self.approve_executed
    }
}

/// Whether two names are equal, ignoring case and surrounding blanks.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn find<'a>(map: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    map.get(name)
        .or_else(|| map.iter().find(|(k, _)| same_name(k, name)).map(|(_, v)| v))
        .map(String::as_str)
}

fn check_map(table: &str, map: &BTreeMap<String, String>) -> Result<(), MigrateError> {
    check_names(table, map.keys())?;
    match map.iter().find(|(_, v)| v.trim().is_empty()) {
        Some((k, _)) => Err(MigrateError::config(
            format!("mapping.{table}.{k:?}"),
            "must name a qTest value",
        )),
        None => Ok(()),
    }
}

/// Rejects empty names and names that differ only in case: lookups ignore
/// case, so such a pair would be ambiguous.
fn check_names<'a>(
    table: &str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), MigrateError> {
    let mut seen: Vec<&String> = Vec::new();
    for name in names {
        if name.trim().is_empty() {
            return Err(MigrateError::config(
                format!("mapping.{table}"),
                "contains an empty status or priority name",
            ));
        }
        if let Some(other) = seen.iter().find(|s| same_name(s, name)) {
            return Err(MigrateError::config(
                format!("mapping.{table}"),
                format!("`{other}` and `{name}` differ only in case"),
            ));
        }
        seen.push(name);
    }
    Ok(())
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
