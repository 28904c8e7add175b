use super::*;
use crate::migrate::mapping::MappingConfig;
use crate::migrate::record::Target;
use crate::migrate::transform::fixtures::{self, *};
use crate::migrate::transform::{Catalog, Lookups};
use crate::zephyr::Page;
use crate::zephyr::examples::{CASE, STEPS_PAGE};
use crate::zephyr::{Ref, SelfLink};
use std::collections::HashMap;

fn contract_case() -> TestCase {
    serde_json::from_str(CASE).unwrap()
}

fn plan_with(
    case: &TestCase,
    script: CaseScript<'_>,
    catalog: &Catalog,
    migrated: &HashMap<(RecordKind, String), Target>,
) -> Result<CasePlan, TransformError> {
    fixtures::with_context(catalog, migrated, |ctx| case_plan(case, script, ctx))
}

fn plan(case: &TestCase, script: CaseScript<'_>) -> Result<CasePlan, TransformError> {
    plan_with(case, script, &fixtures::catalog(), &fixtures::migrated())
}

fn prop(field_id: u64, value: &str) -> PropertyValue {
    PropertyValue {
        field_id,
        field_value: value.into(),
    }
}

fn catalog_with(mapping: MappingConfig, edit: impl FnOnce(&mut Lookups)) -> Catalog {
    let mut lookups = fixtures::lookups();
    edit(&mut lookups);
    Catalog::new(mapping, &lookups).unwrap()
}

#[test]
fn the_contract_case_maps_field_by_field() {
    let steps = serde_json::from_str::<Page<TestStep>>(STEPS_PAGE)
        .unwrap()
        .values;
    let plan = plan(&contract_case(), CaseScript::Steps(&steps)).unwrap();
    assert!(!plan.approve);
    let body = plan.body;
    assert_eq!(body.name, "Check pump");
    assert_eq!(body.precondition, "Pump available");
    assert_eq!(body.parent_id, Some(2_107_619));
    assert_eq!(
        body.properties,
        [
            prop(8010, "PROJ-T1"),
            prop(8001, "713"),
            prop(8002, "201"),
            prop(8022, "Regression"),
            prop(8021, "20"),
            prop(8020, "[31]"),
        ]
    );
    assert_eq!(
        body.description,
        "Ensure pump works<br><br>Zephyr fields:<br>Estimated Time: 2m 18s\
         <br>Owner: 5b10a2844c20165700ede21g\
         <br>Release Date: 2020-01-01 (not set in qTest field `Release Date`: not a number)"
    );
    assert_eq!(
        body.test_steps,
        [
            NewTestStep {
                description: "Login<br>Test data: user=a".into(),
                expected: "Dashboard shown".into(),
                order: 1,
                called_test_case_id: None,
            },
            NewTestStep {
                description: "Call to PROJ-T123<br>Parameters: user=admin".into(),
                expected: String::new(),
                order: 2,
                called_test_case_id: Some(55_123),
            },
        ]
    );
}

#[test]
fn a_case_in_no_folder_goes_to_the_default_module() {
    let mut case = contract_case();
    case.folder = None;
    assert_eq!(
        plan(&case, CaseScript::None).unwrap().body.parent_id,
        Some(2_107_000)
    );
    let mut migrated = fixtures::migrated();
    migrated.remove(&(RecordKind::Module, "default".to_owned()));
    let err = plan_with(&case, CaseScript::None, &fixtures::catalog(), &migrated).unwrap_err();
    assert_eq!(
        err.reason,
        Reason::NoDefault {
            setting: "mapping.default_module"
        }
    );
    case.folder = Some(Ref {
        id: 5,
        self_url: None,
    });
    let err = plan(&case, CaseScript::None).unwrap_err();
    assert_eq!(err.to_string(), "case PROJ-T1: module 5 is not migrated");
}

#[test]
fn unmappable_priorities_and_statuses_are_typed_errors() {
    let mut case = contract_case();
    case.priority.id = 1;
    let err = plan(&case, CaseScript::None).unwrap_err();
    assert_eq!((err.kind, err.key.as_str()), (RecordKind::Case, "PROJ-T1"));
    assert_eq!(
        err.reason,
        Reason::UnknownZephyrId {
            what: "priority",
            id: 1
        }
    );
    case.priority.id = CRITICAL;
    let err = plan(&case, CaseScript::None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "case PROJ-T1: qTest field `Priority` has no value `Critical`"
    );
    let mut case = contract_case();
    case.status.id = 2;
    assert!(matches!(
        plan(&case, CaseScript::None).unwrap_err().reason,
        Reason::UnknownZephyrId {
            what: "case status",
            ..
        }
    ));
}

#[test]
fn statuses_map_by_name_and_approved_cases_can_be_approved() {
    let mut case = contract_case();
    case.status.id = DEPRECATED;
    let plan_ = plan(&case, CaseScript::None).unwrap();
    assert!(plan_.body.properties.contains(&prop(8002, "203")));
    case.status.id = APPROVED;
    // qTest has no "Approved" value here: the table's Approved -> New applies.
    let plan_ = plan(&case, CaseScript::None).unwrap();
    assert!(plan_.body.properties.contains(&prop(8002, "201")));
    assert!(plan_.approve, "approved by default");
    let migrated = fixtures::migrated();
    let with_approved = |mapping: MappingConfig| {
        catalog_with(mapping, |l| {
            let value =
                serde_json::from_value(serde_json::json!({"value": 202, "label": "approved"}));
            l.qtest_case_fields[1].allowed_values.push(value.unwrap());
        })
    };
    // The same label first: Zephyr Approved -> qTest approved, whatever the table says.
    let same = with_approved(MappingConfig::default());
    let plan_ = plan_with(&case, CaseScript::None, &same, &migrated).unwrap();
    assert!(plan_.body.properties.contains(&prop(8002, "202")));
    let table = with_approved(MappingConfig {
        same_label_first: false,
        ..MappingConfig::default()
    });
    let plan_ = plan_with(&case, CaseScript::None, &table, &migrated).unwrap();
    assert!(plan_.body.properties.contains(&prop(8002, "201")));
    let not_approving = catalog_with(
        MappingConfig {
            approve_approved: false,
            ..MappingConfig::default()
        },
        |_| {},
    );
    assert!(
        !plan_with(&case, CaseScript::None, &not_approving, &migrated)
            .unwrap()
            .approve
    );
    case.status.id = DRAFT;
    assert!(!plan(&case, CaseScript::None).unwrap().approve);
}

#[test]
fn required_fields_take_their_default_or_fail_the_case_by_name() {
    let required = |edit: fn(&mut serde_json::Value)| {
        catalog_with(MappingConfig::default(), move |l| {
            let mut fields = serde_json::to_value(&l.qtest_case_fields).unwrap();
            fields.as_array_mut().unwrap().extend([
                serde_json::json!({"id": 8030, "label": "Test Level", "data_type": 3, "required": true,
                    "default_value": "92", "allowed_values": [{"value": 91, "label": "Unit"}, {"value": 92, "label": "System"}]}),
                serde_json::json!({"id": 8031, "label": "Team", "data_type": 1, "required": true,
                    "default_value": "QA", "allowed_values": []}),
            ]);
            edit(&mut fields);
            l.qtest_case_fields = serde_json::from_value(fields).unwrap();
        })
    };
    let migrated = fixtures::migrated();
    let case = contract_case();
    let catalog = required(|_| {});
    let props = plan_with(&case, CaseScript::None, &catalog, &migrated)
        .unwrap()
        .body
        .properties;
    assert!(props.contains(&prop(8030, "92")) && props.contains(&prop(8031, "QA")));
    // No default: the case fails, naming the field.
    let catalog = required(|f| f[9]["default_value"] = serde_json::Value::Null);
    let err = plan_with(&case, CaseScript::None, &catalog, &migrated).unwrap_err();
    assert_eq!(
        err.reason,
        Reason::RequiredField {
            field: "Team".into()
        }
    );
    assert!(err.to_string().contains("`Team` is required"), "{err}");
    // A default that isn't an allowed value.
    let catalog = required(|f| f[8]["default_value"] = "Acceptance".into());
    let err = plan_with(&case, CaseScript::None, &catalog, &migrated).unwrap_err();
    assert!(
        err.to_string().contains("Test Level (combo box 3)"),
        "{err}"
    );
    // A required field that refuses Zephyr's own value fails too (no default instead of it).
    let catalog = required(|f| f[4]["required"] = true.into());
    let mut case = contract_case();
    case.custom_fields
        .insert("Build Number".into(), "twenty".into());
    let err = plan_with(&case, CaseScript::None, &catalog, &migrated).unwrap_err();
    assert!(
        matches!(&err.reason, Reason::FieldUnfit { field, value, .. }
            if field == "Build Number (number 7)" && value == "twenty"),
        "{err}"
    );
}

#[test]
fn the_script_shape_counts_the_steps_case_plan_makes() {
    let steps = serde_json::from_str::<Page<TestStep>>(STEPS_PAGE)
        .unwrap()
        .values;
    let plain = |kind, text: &str| crate::zephyr::TestScript {
        id: None,
        kind,
        text: text.into(),
    };
    let (p, blank, bdd) = (
        plain(crate::zephyr::ScriptType::Plain, "Do"),
        plain(crate::zephyr::ScriptType::Plain, " "),
        plain(crate::zephyr::ScriptType::Bdd, "Given"),
    );
    for script in [
        CaseScript::Steps(&steps),
        CaseScript::Script(&p),
        CaseScript::Script(&blank),
        CaseScript::Script(&bdd),
        CaseScript::None,
    ] {
        let made = plan(&contract_case(), script)
            .unwrap()
            .body
            .test_steps
            .len();
        assert_eq!(
            crate::migrate::transform::ScriptShape::of(script).len(),
            made,
            "{script:?}"
        );
    }
}

#[test]
fn the_priority_map_is_configurable() {
    let mut mapping = MappingConfig::default();
    mapping.priority.insert("Critical".into(), "High".into());
    mapping.priority.insert("Normal".into(), "Low".into());
    let catalog = catalog_with(mapping, |_| {});
    let migrated = fixtures::migrated();
    let mut case = contract_case();
    let props = |case: &TestCase| {
        plan_with(case, CaseScript::None, &catalog, &migrated)
            .unwrap()
            .body
            .properties
    };
    assert!(props(&case).contains(&prop(8001, "714")));
    case.priority.id = CRITICAL;
    assert!(props(&case).contains(&prop(8001, "712")));
}

#[test]
fn without_qtest_priority_and_status_fields_the_names_go_to_the_description() {
    let catalog = catalog_with(MappingConfig::default(), |l| {
        l.qtest_case_fields
            .retain(|f| f.label != "Priority" && f.label != "Status");
    });
    let plan = plan_with(
        &contract_case(),
        CaseScript::None,
        &catalog,
        &fixtures::migrated(),
    )
    .unwrap();
    assert!(
        plan.body
            .properties
            .iter()
            .all(|p| p.field_id != 8001 && p.field_id != 8002)
    );
    assert!(
        plan.body
            .description
            .contains("Zephyr fields:<br>Priority: Normal<br>Status: Draft<br>"),
        "{}",
        plan.body.description
    );
}

#[test]
fn builtin_fields_follow_configured_labels_and_field_types() {
    let mut mapping = MappingConfig::default();
    mapping.fields.labels = String::new();
    mapping.fields.estimated_time = "Build Number".into();
    let catalog = catalog_with(mapping, |_| {});
    let mut case = contract_case();
    case.custom_fields.clear();
    case.component = Some(Ref {
        id: 10001,
        self_url: None,
    });
    let plan = plan_with(&case, CaseScript::None, &catalog, &fixtures::migrated()).unwrap();
    // A number field gets milliseconds.
    assert!(plan.body.properties.contains(&prop(8021, "138000")));
    let description = plan.body.description;
    assert!(description.contains("Labels: Regression"), "{description}");
    assert!(description.contains("Component: 10001"), "{description}");
    assert!(!description.contains("Estimated"), "{description}");
}

#[test]
fn a_field_is_set_once_and_empty_values_are_not_written() {
    let mut case = contract_case();
    case.custom_fields.clear();
    case.custom_fields
        .insert("Priority".into(), serde_json::json!("Urgent"));
    case.custom_fields
        .insert("Zephyr Key".into(), serde_json::json!("spoof"));
    case.custom_fields
        .insert("Empty".into(), serde_json::Value::Null);
    case.custom_fields
        .insert("Category".into(), serde_json::json!([]));
    let plan = plan(&case, CaseScript::None).unwrap();
    let fields: Vec<u64> = plan.body.properties.iter().map(|p| p.field_id).collect();
    assert_eq!(fields, [8010, 8001, 8002, 8022]);
    assert!(plan.body.properties.contains(&prop(8010, "PROJ-T1")));
    let description = plan.body.description;
    assert!(description.contains("Priority: Urgent"), "{description}");
    assert!(description.contains("Zephyr Key: spoof"), "{description}");
    assert!(!description.contains("Empty"), "{description}");
}

#[test]
fn call_to_test_steps_link_only_migrated_cases() {
    let steps: Vec<TestStep> = serde_json::from_value(serde_json::json!([
        {"testCase": {"testCaseKey": "PROJ-T999"}},
        {"testCase": {"testCaseKey": "PROJ-T1", "parameters": [{"name": "a"}, {"name": "b", "value": 2}]}},
        {"inline": {}},
        {"inline": {"description": "Check", "testData": " ", "customFields": {"Env": "prod"}}}
    ]))
    .unwrap();
    let migrated = fixtures::migrated();
    let mapped = test_steps(&steps, &migrated);
    let described: Vec<(&str, Option<u64>, u32)> = mapped
        .iter()
        .map(|s| (s.description.as_str(), s.called_test_case_id, s.order))
        .collect();
    assert_eq!(
        described,
        [
            ("Call to PROJ-T999", None, 1),
            ("Call to PROJ-T1<br>Parameters: a, b=2", Some(55_001), 2),
            ("", None, 3),
            ("Check<br>Zephyr fields:<br>Env: prod", None, 4),
        ]
    );
}

#[test]
fn plain_scripts_become_one_step_and_bdd_the_description() {
    let case = contract_case();
    let plain = TestScript {
        id: Some(7),
        kind: ScriptType::Plain,
        text: "Attempt to login".into(),
    };
    let body = plan(&case, CaseScript::Script(&plain)).unwrap().body;
    assert_eq!(
        body.test_steps,
        [NewTestStep {
            description: "Attempt to login".into(),
            expected: String::new(),
            order: 1,
            called_test_case_id: None
        }]
    );
    let bdd = TestScript {
        id: None,
        kind: ScriptType::Bdd,
        text: "Given a pump<br>When on<br>Then it pumps".into(),
    };
    let body = plan(&case, CaseScript::Script(&bdd)).unwrap().body;
    assert!(body.test_steps.is_empty());
    assert!(
        body.description
            .starts_with("Ensure pump works<br><br>Given a pump<br>When on<br>Then it pumps<br><br>Zephyr fields:"),
        "{}",
        body.description
    );
    let empty = TestScript {
        id: None,
        kind: ScriptType::Plain,
        text: " ".into(),
    };
    assert!(
        plan(&case, CaseScript::Script(&empty))
            .unwrap()
            .body
            .test_steps
            .is_empty()
    );
}

#[test]
fn a_case_without_a_name_is_an_error() {
    let mut case = contract_case();
    case.name = "  ".into();
    case.test_script = Some(SelfLink { self_url: None });
    let err = plan(&case, CaseScript::None).unwrap_err();
    assert_eq!(err.reason, Reason::Missing { field: "name" });
}
