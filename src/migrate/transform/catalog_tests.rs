use super::*;
use crate::migrate::transform::fixtures::{self, *};

#[test]
fn zephyr_names_by_id_and_unknown_ids() {
    let catalog = fixtures::catalog();
    assert_eq!(
        catalog.zephyr_name(ZephyrList::Priority, NORMAL),
        Ok("Normal")
    );
    assert_eq!(
        catalog.zephyr_name(ZephyrList::CaseStatus, NORMAL),
        Err(Reason::UnknownZephyrId {
            what: "case status",
            id: NORMAL
        })
    );
    assert_eq!(catalog.key_field_id(), 8010);
}

#[test]
fn priorities_and_statuses_resolve_by_mapped_label() {
    let catalog = fixtures::catalog();
    let value = |list, id, field| catalog.choice(list, id, field);
    let prop = |field_id, v: &str| {
        Ok(Ok(PropertyValue {
            field_id,
            field_value: v.into(),
        }))
    };
    for (list, id, field, field_id, v) in [
        (ZephyrList::Priority, NORMAL, "Priority", 8001, "713"),
        (ZephyrList::Priority, HIGH, "priority", 8001, "712"),
        (ZephyrList::CaseStatus, DRAFT, "Status", 8002, "201"),
        (ZephyrList::CaseStatus, DEPRECATED, "Status", 8002, "203"),
    ] {
        assert_eq!(value(list, id, field), prop(field_id, v), "{id}");
    }
    assert_eq!(
        value(ZephyrList::Priority, CRITICAL, "Priority"),
        Err(Reason::NoAllowedValue {
            field: "Priority".into(),
            value: "Critical".into()
        })
    );
    // No such qTest field: the Zephyr name is handed back for the description.
    assert_eq!(
        value(ZephyrList::Priority, HIGH, "Severity"),
        Ok(Err("High".into()))
    );
}

#[test]
fn execution_statuses_resolve_by_name_and_not_executed_gets_no_log() {
    let catalog = fixtures::catalog();
    let outcome = |id| catalog.execution_outcome(id);
    assert_eq!(outcome(PASS), Ok(ExecutionOutcome::Status(601)));
    assert_eq!(outcome(FAIL), Ok(ExecutionOutcome::Status(602)));
    assert_eq!(outcome(BLOCKED), Ok(ExecutionOutcome::Status(604)));
    assert_eq!(outcome(IN_PROGRESS), Ok(ExecutionOutcome::Status(603)));
    assert_eq!(
        outcome(NOT_EXECUTED),
        Ok(ExecutionOutcome::NoLog("Not Executed"))
    );
    assert_eq!(
        outcome(RETEST),
        Err(Reason::NoExecutionStatus {
            name: "Retest".into()
        })
    );
    assert_eq!(catalog.default_execution_status(), Some(605));
}

#[test]
fn ids_come_from_the_lists_not_from_constants() {
    let mut lookups = fixtures::lookups();
    for status in &mut lookups.qtest_execution_statuses {
        status.id += 1000;
    }
    lookups.qtest_case_fields[0].allowed_values[1].value = "9913".into();
    let catalog = Catalog::new(MappingConfig::default(), &lookups).unwrap();
    assert_eq!(
        catalog.execution_outcome(PASS),
        Ok(ExecutionOutcome::Status(1601))
    );
    assert_eq!(
        catalog.choice(ZephyrList::Priority, NORMAL, "Priority"),
        Ok(Ok(PropertyValue {
            field_id: 8001,
            field_value: "9913".into()
        }))
    );
}

#[test]
fn inactive_fields_and_statuses_are_ignored() {
    let mut lookups = fixtures::lookups();
    lookups.qtest_execution_statuses[0].active = Some(false);
    let catalog = Catalog::new(MappingConfig::default(), &lookups).unwrap();
    assert!(catalog.field("Retired").is_none());
    assert!(catalog.field("").is_none());
    assert!(catalog.execution_outcome(PASS).is_err());
}

#[test]
fn the_key_field_must_exist_and_be_text() {
    let mut lookups = fixtures::lookups();
    lookups
        .qtest_case_fields
        .retain(|f| f.label != "Zephyr Key");
    let err = Catalog::new(MappingConfig::default(), &lookups).unwrap_err();
    assert!(matches!(err, MigrateError::Catalog { .. }), "{err:?}");
    assert!(err.to_string().contains("Zephyr Key"), "{err}");

    let mapping = MappingConfig {
        key_field: "Priority".into(),
        ..MappingConfig::default()
    };
    let err = Catalog::new(mapping, &fixtures::lookups()).unwrap_err();
    assert!(err.to_string().contains("text field"), "{err}");

    let mapping = MappingConfig {
        key_field: "Labels".into(),
        ..MappingConfig::default()
    };
    assert_eq!(
        Catalog::new(mapping, &fixtures::lookups())
            .unwrap()
            .key_field_id(),
        8022
    );
}

#[test]
fn problems_list_what_would_fail_every_record() {
    assert_eq!(
        fixtures::catalog().problems(),
        [
            "Zephyr priority `Critical`: qTest field `Priority` has no value `Critical`",
            "Zephyr execution status `Retest`: qTest has no execution status `Retest`",
        ]
    );
    let mut lookups = fixtures::lookups();
    lookups.qtest_case_fields[1].allowed_values.truncate(1);
    let catalog = Catalog::new(MappingConfig::default(), &lookups).unwrap();
    assert!(catalog.problems().contains(
        &"Zephyr case status `Deprecated`: qTest field `Status` has no value `Obsolete`".to_owned()
    ));
}
