//! qTest's per-instance configuration: project, fields with allowed values, execution
//! statuses. Every id comes from the seed, so a client that hard-codes one fails.

use fastrand::Rng;
use serde::{Deserialize, Serialize};

/// A field of test cases or test runs (`/settings/.../fields`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Field id, used as `field_id` in properties.
    pub id: u64,
    /// Display label, e.g. `Zephyr Key`.
    pub label: String,
    /// Built-in (`true`) or custom.
    pub system_field: bool,
    /// Whether a create must set it.
    pub required: bool,
    /// Whether it takes several values.
    pub multiple: bool,
    /// Type code (GUESS: 1 text, 2 number, 3 single choice).
    pub data_type: u32,
    /// Inactive fields are listed only with `includeInactive=true` and refuse values.
    pub active: bool,
    /// Choices; empty for free text.
    pub allowed_values: Vec<AllowedValue>,
}

/// One choice of a field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedValue {
    /// The id, written as the property's `field_value` (as a string).
    pub value: u64,
    /// Display label.
    pub label: String,
    /// Position, from 1.
    pub order: u32,
    /// Used when a create leaves the field out.
    pub is_default: bool,
}

/// A test-log execution status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStatus {
    /// Status id, written as `status.id` of a test log.
    pub id: u64,
    /// Name, e.g. `Passed`.
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// The status of a run without logs.
    pub is_default: bool,
}

/// Everything about the qTest instance that is configuration, not created state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QtestConfig {
    /// The project id.
    pub project_id: u64,
    /// Test-case fields.
    pub case_fields: Vec<Field>,
    /// Test-run fields.
    pub run_fields: Vec<Field>,
    /// Execution statuses.
    pub statuses: Vec<ExecStatus>,
}

const CHOICES: &[(&str, &[&str], usize)] = &[
    ("Priority", &["High", "Medium", "Low"], 1),
    (
        "Status",
        &[
            "New",
            "In Review",
            "Ready for Baseline",
            "Baselined",
            "Obsolete",
        ],
        0,
    ),
    (
        "Type",
        &["Manual", "Automation", "Performance", "Scenario"],
        0,
    ),
];
const TEXT_FIELDS: &[(&str, u32)] = &[
    ("Zephyr Key", 1),
    ("Labels", 1),
    ("Estimated Time", 2),
    ("Owner", 1),
    ("Component", 1),
];
const STATUSES: &[(&str, &str)] = &[
    ("Passed", "#6cc644"),
    ("Failed", "#e74c3c"),
    ("Incomplete", "#f39c12"),
    ("Blocked", "#8e44ad"),
    ("Unexecuted", "#999999"),
];

impl QtestConfig {
    /// The configuration of seed `seed`; `project_id` overrides the seeded project id.
    pub(crate) fn generate(seed: u64, project_id: Option<u64>) -> Self {
        let mut rng = Rng::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
        let seeded_project = 10_000 + rng.u64(0..90_000);
        let mut ids = Ids {
            next: 1_000 + rng.u64(0..90_000),
            rng: rng.clone(),
        };
        let mut values = Ids {
            next: 100 + rng.u64(0..9_000),
            rng: rng.clone(),
        };
        let mut case_fields: Vec<Field> = CHOICES
            .iter()
            .map(|c| choice_field(&mut ids, &mut values, c))
            .collect();
        for (label, data_type) in TEXT_FIELDS {
            case_fields.push(text_field(ids.take(), label, *data_type, true));
        }
        case_fields.push(text_field(ids.take(), "Legacy Id", 1, false));
        let mut order: Vec<usize> = (0..STATUSES.len()).collect();
        rng.shuffle(&mut order);
        let mut status_ids = Ids {
            next: 500 + rng.u64(0..9_000),
            rng,
        };
        let mut statuses: Vec<ExecStatus> = order
            .iter()
            .map(|&i| ExecStatus {
                id: status_ids.take(),
                name: STATUSES[i].0.to_string(),
                color: STATUSES[i].1.to_string(),
                is_default: STATUSES[i].0 == "Unexecuted",
            })
            .collect();
        statuses.sort_by_key(|s| STATUSES.iter().position(|(n, _)| *n == s.name));
        let run_status = Field {
            allowed_values: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| AllowedValue {
                    value: s.id,
                    label: s.name.clone(),
                    order: i as u32 + 1,
                    is_default: s.is_default,
                })
                .collect(),
            ..text_field(ids.take(), "Status", 3, true)
        };
        let run_priority = choice_field(&mut ids, &mut values, &CHOICES[0]);
        QtestConfig {
            project_id: project_id.unwrap_or(seeded_project),
            case_fields,
            run_fields: vec![run_status, run_priority],
            statuses,
        }
    }

    /// The test-case field with this label.
    pub fn case_field(&self, label: &str) -> Option<&Field> {
        self.case_fields
            .iter()
            .find(|f| f.label.eq_ignore_ascii_case(label))
    }

    /// The execution status with this id.
    pub fn status(&self, id: u64) -> Option<&ExecStatus> {
        self.statuses.iter().find(|s| s.id == id)
    }

    /// The execution status named `name`.
    pub fn status_named(&self, name: &str) -> Option<&ExecStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }

    /// The status of a run that has no log.
    pub(crate) fn default_status(&self) -> &ExecStatus {
        // generate() always makes "Unexecuted" the default.
        self.statuses
            .iter()
            .find(|s| s.is_default)
            .unwrap_or(&self.statuses[0])
    }
}

/// Increasing ids with seeded gaps.
struct Ids {
    next: u64,
    rng: Rng,
}

impl Ids {
    fn take(&mut self) -> u64 {
        self.next += self.rng.u64(1..7);
        self.next
    }
}

fn text_field(id: u64, label: &str, data_type: u32, active: bool) -> Field {
    Field {
        id,
        label: label.to_string(),
        system_field: false,
        required: false,
        multiple: false,
        data_type,
        active,
        allowed_values: Vec::new(),
    }
}

fn choice_field(
    ids: &mut Ids,
    values: &mut Ids,
    (label, choices, default): &(&str, &[&str], usize),
) -> Field {
    let allowed_values = choices
        .iter()
        .enumerate()
        .map(|(i, l)| AllowedValue {
            value: values.take(),
            label: l.to_string(),
            order: i as u32 + 1,
            is_default: i == *default,
        })
        .collect();
    Field {
        system_field: true,
        allowed_values,
        ..text_field(ids.take(), label, 3, true)
    }
}
