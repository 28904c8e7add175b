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
    /// Whether it takes several values (always for check boxes and multi-selects).
    pub multiple: bool,
    /// Type code, as the spec numbers them: 1 text box, 2 text area, 3 combo box, 4 date,
    /// 5 user list, 6 rich text, 7 number, 8 check box, 9 date-time, 12 URL, 17 multi-select.
    pub data_type: u32,
    /// The field's default, as text: an allowed value's id for choice fields. A create that
    /// leaves a required field out is refused even when it has one.
    pub default_value: Option<String>,
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
    /// Whether the API user may approve test cases (the `Approve` permission of test cases in
    /// the user's profile). Without it `PUT .../approve` and logs of unapproved versions are
    /// refused with 403.
    pub can_approve: bool,
}

/// Data type codes of the spec's `FieldResource.data_type`.
pub mod data_type {
    /// Text box.
    pub const TEXT_BOX: u32 = 1;
    /// Text area.
    pub const TEXT_AREA: u32 = 2;
    /// Combo box (one allowed value).
    pub const COMBO_BOX: u32 = 3;
    /// Date picker.
    pub const DATE: u32 = 4;
    /// Rich text editor.
    pub const RICH_TEXT: u32 = 6;
    /// Number.
    pub const NUMBER: u32 = 7;
    /// Check box: several allowed values.
    pub const CHECK_BOX: u32 = 8;
    /// Date-time picker.
    pub const DATE_TIME: u32 = 9;
    /// Multiple selection combo box.
    pub const MULTI_SELECT: u32 = 17;
}

use data_type::*;

/// A choice field: label, type, values, the default (an index into the values), required.
struct Choice {
    label: &'static str,
    data_type: u32,
    values: &'static [&'static str],
    /// Marked `is_default` among the allowed values.
    is_default: Option<usize>,
    /// Given as the field's `default_value`.
    default_value: Option<usize>,
    required: bool,
    system: bool,
}

const CHOICES: &[Choice] = &[
    Choice {
        label: "Priority",
        data_type: COMBO_BOX,
        values: &["High", "Medium", "Low"],
        is_default: Some(1),
        default_value: None,
        required: false,
        system: true,
    },
    Choice {
        label: "Status",
        data_type: COMBO_BOX,
        values: &[
            "New",
            "In Review",
            "Approved",
            "Ready for Baseline",
            "Baselined",
            "Obsolete",
        ],
        is_default: Some(0),
        default_value: None,
        required: false,
        system: true,
    },
    Choice {
        label: "Type",
        data_type: COMBO_BOX,
        values: &["Manual", "Automation", "Performance", "Scenario"],
        is_default: Some(0),
        default_value: None,
        required: false,
        system: true,
    },
    Choice {
        label: "Category",
        data_type: MULTI_SELECT,
        values: &["Perf", "Security", "Usability"],
        is_default: None,
        default_value: None,
        required: false,
        system: false,
    },
    Choice {
        label: "Platforms",
        data_type: CHECK_BOX,
        values: &["Web", "Android", "iOS"],
        is_default: None,
        default_value: None,
        required: false,
        system: false,
    },
    // Required, and only a `default_value` (no `is_default` value) says what to fill in.
    Choice {
        label: "Test Level",
        data_type: COMBO_BOX,
        values: &["Unit", "Integration", "System", "Acceptance"],
        is_default: None,
        default_value: Some(2),
        required: true,
        system: false,
    },
];
/// Free-form fields: label, type, required default.
const TEXT_FIELDS: &[(&str, u32, Option<&str>)] = &[
    ("Zephyr Key", TEXT_BOX, None),
    ("Labels", TEXT_AREA, None),
    ("Estimated Time", NUMBER, None),
    ("Owner", TEXT_BOX, None),
    ("Component", TEXT_BOX, None),
    ("Build Number", NUMBER, None),
    ("Release Date", DATE, None),
    ("Team", TEXT_BOX, Some("QA")),
];
/// System fields a create sets through the body's own keys (`name`, `description`,
/// `precondition`; the id is qTest's), listed among the fields as the spec's `FieldResource`
/// example lists `Name`: a system field, required. Label, type, required.
pub const BODY_FIELDS: &[(&str, u32, bool)] = &[
    ("Id", TEXT_BOX, false),
    ("Name", TEXT_BOX, true),
    ("Description", RICH_TEXT, false),
    ("Precondition", RICH_TEXT, false),
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
        for (label, data_type, default) in TEXT_FIELDS {
            let mut field = text_field(ids.take(), label, *data_type, true);
            if let Some(default) = default {
                field.required = true;
                field.default_value = Some(default.to_string());
            }
            case_fields.push(field);
        }
        case_fields.push(text_field(ids.take(), "Legacy Id", TEXT_BOX, false));
        for (label, data_type, required) in BODY_FIELDS {
            case_fields.push(Field {
                system_field: true,
                required: *required,
                ..text_field(ids.take(), label, *data_type, true)
            });
        }
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
            system_field: true,
            ..text_field(ids.take(), "Status", COMBO_BOX, true)
        };
        let run_priority = choice_field(&mut ids, &mut values, &CHOICES[0]);
        QtestConfig {
            project_id: project_id.unwrap_or(seeded_project),
            case_fields,
            run_fields: vec![run_status, run_priority],
            statuses,
            can_approve: true,
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
        default_value: None,
        active,
        allowed_values: Vec::new(),
    }
}

fn choice_field(ids: &mut Ids, values: &mut Ids, c: &Choice) -> Field {
    let allowed_values: Vec<AllowedValue> = c
        .values
        .iter()
        .enumerate()
        .map(|(i, l)| AllowedValue {
            value: values.take(),
            label: l.to_string(),
            order: i as u32 + 1,
            is_default: c.is_default == Some(i),
        })
        .collect();
    let default_value = c
        .default_value
        .and_then(|i| allowed_values.get(i))
        .map(|a| a.value.to_string());
    Field {
        system_field: c.system,
        required: c.required,
        multiple: matches!(c.data_type, CHECK_BOX | MULTI_SELECT),
        default_value,
        allowed_values,
        ..text_field(ids.take(), c.label, c.data_type, true)
    }
}
