use super::*;

fn config_error(text: &str) -> (String, String) {
    match MappingConfig::from_toml(text) {
        Err(MigrateError::Config { key, message }) => (key, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn defaults_follow_the_contract() {
    let m = MappingConfig::default();
    assert_eq!(m.priority_label("High", false), "High");
    assert_eq!(m.priority_label("Normal", false), "Medium");
    assert_eq!(m.priority_label("low", false), "Low");
    assert_eq!(m.case_status_label("Draft", false), "New");
    assert_eq!(m.case_status_label("Deprecated", false), "Obsolete");
    assert_eq!(m.case_status_label("Approved", false), "New");
    assert_eq!(
        m.execution_target("Pass", false),
        ExecutionTarget::Status("Passed")
    );
    assert_eq!(
        m.execution_target("Fail", false),
        ExecutionTarget::Status("Failed")
    );
    assert_eq!(
        m.execution_target("Blocked", false),
        ExecutionTarget::Status("Blocked")
    );
    assert_eq!(
        m.execution_target("in progress", false),
        ExecutionTarget::Status("Incomplete")
    );
    assert_eq!(
        m.execution_target("Not Executed", true),
        ExecutionTarget::NoLog
    );
    assert!(m.approves("Approved") && m.approve_executed && m.approves_any());
    assert_eq!(m.key_field, "Zephyr Key");
    m.validate().unwrap();
}

#[test]
fn the_same_label_wins_over_the_table_unless_switched_off() {
    let mut m = MappingConfig::default();
    // qTest has "Approved" and "Normal": the table's Approved->New and Normal->Medium yield.
    assert_eq!(m.case_status_label("Approved", true), "Approved");
    assert_eq!(m.priority_label("Normal", true), "Normal");
    assert_eq!(
        m.execution_target("Pass", true),
        ExecutionTarget::Status("Pass")
    );
    m.same_label_first = false;
    assert_eq!(m.case_status_label("Approved", true), "New");
    assert_eq!(m.priority_label("Normal", true), "Medium");
    m.approve_approved = false;
    m.approve_executed = false;
    assert!(!m.approves("Approved") && !m.approves_any());
}

#[test]
fn unlisted_names_map_to_themselves() {
    let m = MappingConfig::default();
    assert_eq!(m.priority_label("Critical", false), "Critical");
    assert_eq!(m.case_status_label("In Review", false), "In Review");
    assert_eq!(
        m.execution_target("Retest", false),
        ExecutionTarget::Status("Retest")
    );
}

#[test]
fn a_file_without_the_section_gives_the_defaults() {
    let m = MappingConfig::from_toml("[other]\nworkers = 4\n").unwrap();
    assert_eq!(m, MappingConfig::default());
    assert_eq!(
        MappingConfig::from_toml("").unwrap(),
        MappingConfig::default()
    );
}

#[test]
fn a_table_replaces_its_default_and_other_settings_are_read() {
    let text = r#"
[mapping]
default_module = "Imported"
approve_approved = true
approve_executed = false
same_label_first = false
no_log_statuses = ["Not Executed", "Skipped"]

[mapping.priority]
Critical = "High"
Normal = "Medium"

[mapping.execution_status]
"In Progress" = "Incomplete"

[mapping.fields]
owner = ""
"#;
    let m = MappingConfig::from_toml(text).unwrap();
    assert_eq!(m.default_module, "Imported");
    assert!(m.approves("approved") && !m.approves("Draft"));
    assert!(!m.approve_executed && !m.same_label_first);
    assert_eq!(m.priority.len(), 2);
    assert_eq!(m.priority_label("critical", false), "High");
    // High is no longer listed, so it maps to itself.
    assert_eq!(m.priority_label("High", false), "High");
    assert_eq!(
        m.execution_target("Pass", false),
        ExecutionTarget::Status("Pass")
    );
    assert_eq!(m.execution_target("skipped", false), ExecutionTarget::NoLog);
    assert_eq!(m.fields.owner, "");
    assert_eq!(m.fields.labels, "Labels");
    assert_eq!(m.case_status, MappingConfig::default().case_status);
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let (key, message) = config_error("[mapping]\ndefault_modul = \"x\"\n");
    assert_eq!(key, "mapping");
    assert!(message.contains("default_modul"), "{message}");
    let (_, message) = config_error("[mapping.fields]\nlabel = \"x\"\n");
    assert!(message.contains("label"), "{message}");
    let (_, message) = config_error("[mapping]\napprove_approved = \"yes\"\n");
    assert!(message.contains("approve_approved"), "{message}");
}

#[test]
fn validation_names_the_key() {
    let (key, _) = config_error("[mapping]\ndefault_module = \" \"\n");
    assert_eq!(key, "mapping.default_module");
    let (key, _) = config_error("[mapping]\nkey_field = \"\"\n");
    assert_eq!(key, "mapping.key_field");
    let (key, _) = config_error("[mapping.priority]\nHigh = \"\"\n");
    assert_eq!(key, "mapping.priority.\"High\"");
    let (key, message) = config_error("[mapping.case_status]\nDraft = \"New\"\ndraft = \"Old\"\n");
    assert_eq!(key, "mapping.case_status");
    assert!(message.contains("differ only in case"), "{message}");
    let (key, _) = config_error("[mapping.priority]\n\"\" = \"High\"\n");
    assert_eq!(key, "mapping.priority");
    let (key, message) = config_error(
        "[mapping]\nno_log_statuses = [\"Pass\"]\n[mapping.execution_status]\npass = \"Passed\"\n",
    );
    assert_eq!(key, "mapping.no_log_statuses");
    assert!(message.contains("Pass"), "{message}");
}

#[test]
fn restating_the_defaults_changes_nothing() {
    let default = MappingConfig::default();
    let mut text = String::from("[mapping]\n");
    for (k, v) in [
        ("default_module", &default.default_module),
        ("default_cycle", &default.default_cycle),
    ] {
        text.push_str(&format!("{k} = {v:?}\n"));
    }
    text.push_str("[mapping.priority]\nHigh = \"High\"\nNormal = \"Medium\"\nLow = \"Low\"\n");
    assert_eq!(MappingConfig::from_toml(&text).unwrap(), default);
}
