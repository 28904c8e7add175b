//! The migration end to end against the mocks, over real sockets.

mod support;

use std::collections::HashMap;

use etlpool::mock::DataSizes;
use support::Migration;

fn small() -> DataSizes {
    DataSizes {
        folders: 6,
        folder_depth: 3,
        cycle_folders: 2,
        cases: 40,
        steps_per_case: 3,
        cycles: 4,
        executions: 90,
    }
}

#[test]
fn a_full_migration_creates_every_record_once_and_a_second_run_writes_nothing() {
    let m = Migration::new(11, small());
    let summary = m.run();
    println!("{summary}");
    assert!(summary.is_complete(), "{summary}");
    let state = m.mocks.qtest_state();
    let source = m.mocks.source();
    assert_eq!(state.test_cases.len(), source.cases.len());
    let key_field = m.mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let mut keys: HashMap<String, usize> = HashMap::new();
    for case in &state.test_cases {
        let key = case
            .properties
            .iter()
            .find(|p| p.field_id == key_field)
            .map(|p| p.field_value.clone())
            .unwrap_or_default();
        *keys.entry(key).or_default() += 1;
    }
    for case in &source.cases {
        assert_eq!(keys.get(&case.key), Some(&1), "case {}", case.key);
    }
    let writes = state.journal.len();
    let again = m.run();
    assert!(again.is_complete(), "{again}");
    assert_eq!(
        m.mocks.qtest_state().journal.len(),
        writes,
        "the second run wrote"
    );
}
