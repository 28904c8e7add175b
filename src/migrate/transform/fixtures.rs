//! Shared test data: the contract's examples, extended where a test needs more.

use std::collections::HashMap;

use serde_json::json;

use super::{Catalog, Context, DEFAULT_KEY, Lookups};
use crate::migrate::mapping::MappingConfig;
use crate::migrate::record::{RecordKind, Target};

/// Zephyr ids used by the fixtures.
pub(crate) const HIGH: u64 = 10001;
pub(crate) const NORMAL: u64 = 10002;
pub(crate) const CRITICAL: u64 = 10004;
pub(crate) const DRAFT: u64 = 10000;
pub(crate) const APPROVED: u64 = 10005;
pub(crate) const DEPRECATED: u64 = 10006;
pub(crate) const NOT_EXECUTED: u64 = 10027;
pub(crate) const IN_PROGRESS: u64 = 10028;
pub(crate) const PASS: u64 = 10029;
pub(crate) const FAIL: u64 = 10030;
pub(crate) const BLOCKED: u64 = 10031;
pub(crate) const RETEST: u64 = 10032;

/// The contract's lookups, plus: an Obsolete status value, custom fields of
/// several types, and Zephyr names the default mapping does not list.
pub(crate) fn lookups() -> Lookups {
    Lookups {
        zephyr_priorities: named(&[(HIGH, "High"), (NORMAL, "Normal"), (10003, "Low"), (CRITICAL, "Critical")]),
        zephyr_case_statuses: named(&[(DRAFT, "Draft"), (APPROVED, "Approved"), (DEPRECATED, "Deprecated")]),
        zephyr_cycle_statuses: named(&[(10020, "In Progress")]),
        zephyr_execution_statuses: named(&[
            (NOT_EXECUTED, "Not Executed"),
            (IN_PROGRESS, "In Progress"),
            (PASS, "Pass"),
            (FAIL, "Fail"),
            (BLOCKED, "Blocked"),
            (RETEST, "Retest"),
        ]),
        qtest_case_fields: serde_json::from_value(json!([
            {"id":8001,"label":"Priority","original_name":"Priority","system_field":true,"required":false,"multiple":false,"data_type":3,
             "allowed_values":[{"value":712,"label":"High","order":1,"is_active":true},{"value":713,"label":"Medium","is_default":true},{"value":714,"label":"Low"}]},
            {"id":8002,"label":"Status","original_name":"Status","system_field":true,
             "allowed_values":[{"value":201,"label":"New","is_default":true},{"value":203,"label":"Obsolete"}]},
            {"id":8010,"label":"Zephyr Key","system_field":false,"data_type":1,"allowed_values":[]},
            {"id":8020,"label":"Category","multiple":true,"data_type":3,
             "allowed_values":[{"value":31,"label":"Perf"},{"value":32,"label":"Func"}]},
            {"id":8021,"label":"Build Number","data_type":7,"allowed_values":[]},
            {"id":8022,"label":"Labels","data_type":1,"allowed_values":[]},
            {"id":8023,"label":"Release Date","data_type":7,"allowed_values":[]},
            {"id":8024,"label":"Retired","data_type":1,"is_active":false}
        ]))
        .unwrap(),
        qtest_execution_statuses: serde_json::from_value(json!([
            {"id":601,"name":"Passed","color":"#6cc644","active":true},{"id":602,"name":"Failed"},
            {"id":603,"name":"Incomplete"},{"id":604,"name":"Blocked"},{"id":605,"name":"Unexecuted","is_default":true}
        ]))
        .unwrap(),
    }
}

fn named<T: serde::de::DeserializeOwned>(list: &[(u64, &str)]) -> Vec<T> {
    let list: Vec<_> = list
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    serde_json::from_value(json!(list)).unwrap()
}

pub(crate) fn catalog() -> Catalog {
    Catalog::new(MappingConfig::default(), &lookups()).unwrap()
}

/// What is "already migrated" in the fixtures.
pub(crate) fn migrated() -> HashMap<(RecordKind, String), Target> {
    let mut map = HashMap::new();
    let mut add = |kind, key: &str, id, version_id| {
        map.insert((kind, key.to_owned()), Target { id, version_id });
    };
    add(RecordKind::Module, "100006", 2_107_619, None);
    add(RecordKind::Module, DEFAULT_KEY, 2_107_000, None);
    add(RecordKind::CycleFolder, "100010", 67_000, None);
    add(RecordKind::Cycle, "10010", 67_890, None);
    add(RecordKind::Cycle, DEFAULT_KEY, 67_001, None);
    add(RecordKind::Case, "PROJ-T1", 55_001, Some(88_001));
    add(RecordKind::Case, "PROJ-T123", 55_123, Some(88_123));
    map
}

/// Runs `f` with a context over `catalog` and `lookup`.
pub(crate) fn with_context<R>(
    catalog: &Catalog,
    lookup: &HashMap<(RecordKind, String), Target>,
    f: impl FnOnce(&Context<'_>) -> R,
) -> R {
    f(&Context { catalog, lookup })
}
