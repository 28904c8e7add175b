//! The sync flags through the binary: a conflict is reported and left
//! alone, `--overwrite` replaces it, `verify` suggests `--repair` for a
//! deleted case and `migrate --repair` restores it. `extra` arguments (a
//! Redis journal) go to every `migrate`.

use std::collections::BTreeMap;

use crate::cli::{migrate, run};
use crate::ops_errors::verify;
use crate::support::Scratch;
use etlpool::mock::{MockOptions, MockServers};

/// The qTest id of the case migrated from Zephyr `key`.
fn case_id(mocks: &MockServers, key: &str) -> u64 {
    let field = mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let state = mocks.qtest_state();
    let case = state
        .test_cases
        .iter()
        .find(|c| c.property(field) == Some(key));
    case.unwrap_or_else(|| panic!("{key} is on qTest")).id
}

fn writes_since(mocks: &MockServers, from: usize) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in &mocks.journal()[from..] {
        *out.entry(format!("{} {}", e.method, e.kind)).or_default() += 1;
    }
    out
}

/// `after_outage` runs once qTest is back from an outage the test caused
/// (a fleet forgets its shared breaker's state there).
pub(crate) fn conflict_overwrite_and_repair(extra: &[&str], after_outage: &dyn Fn()) {
    let mut options = MockOptions::seeded(1414);
    options.sizes.cases = 15;
    options.sizes.executions = 40;
    let mocks = MockServers::start(options).unwrap();
    let dir = Scratch::new("sync-cli");
    let sync = |args: &[&str]| run(migrate(&mocks, &dir.0).args(extra).args(args));
    let (code, out) = sync(&[]);
    assert_eq!(code, 0, "{out}");

    let changed = mocks.mutate_zephyr(|d| d.change_cases(1));
    let id = case_id(&mocks, &changed[0]);
    mocks
        .edit_case(id, serde_json::json!({"name": "Renamed by a person"}))
        .unwrap();
    let before = mocks.journal().len();
    let (code, out) = sync(&[]);
    assert_eq!(code, 0, "a conflict is reported, not a failure: {out}");
    let warned = format!("case {}: changed in Zephyr and on qTest", changed[0]);
    assert!(out.contains(&warned), "{out}");
    assert_eq!(writes_since(&mocks, before), BTreeMap::new(), "{out}");

    let (code, out) = sync(&["--overwrite"]);
    assert_eq!(code, 0, "{out}");
    let case = mocks.qtest_state().test_case(id).cloned().unwrap();
    assert!(case.name.ends_with("(changed)"), "{}", case.name);

    let key = mocks.zephyr_data().cases[1].key.clone();
    mocks.delete_case_with_runs(case_id(&mocks, &key)).unwrap();
    let (code, out) = run(&mut verify(&mocks, &dir.0));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("etlpool migrate --repair"), "{out}");
    let (code, out) = sync(&["--repair"]);
    assert_eq!(code, 0, "{out}");
    case_id(&mocks, &key);
    let (code, out) = run(&mut verify(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");

    // A repair stopped by qTest going down after its first write: the
    // next plain run finishes it (the forgotten records are remembered as
    // forgotten in either journal).
    let called = crate::repair::called(&mocks);
    let key = mocks.zephyr_data().cases[2..]
        .iter()
        .map(|c| c.key.clone())
        .find(|k| !called.contains(k))
        .expect("a case no other case calls (a call keeps the old id)");
    mocks.delete_case_with_runs(case_id(&mocks, &key)).unwrap();
    mocks.faults().qtest.set_crash_after_writes(Some(1));
    let (code, out) = sync(&["--repair", "--max-outage", "1s"]);
    assert_ne!(code, 0, "{out}");
    mocks.faults().qtest.clear();
    mocks.restart_qtest().unwrap();
    after_outage();
    let (code, out) = sync(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("an earlier repair did not finish"), "{out}");
    let (code, out) = run(&mut verify(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_sync_flags_work_through_the_binary() {
    conflict_overwrite_and_repair(&[], &|| {});
}
