//! Checks a finished migration against the mocks' own records: every Zephyr
//! record on qTest exactly once, in the right place, with the right status.
//! Independent of how the state came about, so a clean run, a run with faults
//! and a crashed-and-resumed run must all pass it.

use std::collections::{BTreeMap, HashMap};

use etlpool::mock::MockServers;
use etlpool::mock::qtest::state::{QtestState, TestCase as QtestCase};
use etlpool::mock::zephyr::data::{Dataset, Script};

/// The contract's default mapping of execution statuses.
fn qtest_status(zephyr: &str) -> Option<&'static str> {
    match zephyr {
        "Pass" => Some("Passed"),
        "Fail" => Some("Failed"),
        "Blocked" => Some("Blocked"),
        "In Progress" => Some("Incomplete"),
        _ => None,
    }
}

fn paths<'a, T>(
    items: &'a [T],
    id: impl Fn(&T) -> u64,
    parent: impl Fn(&T) -> Option<u64>,
    name: impl Fn(&'a T) -> &'a str,
) -> HashMap<u64, String> {
    let by_id: HashMap<u64, &T> = items.iter().map(|i| (id(i), i)).collect();
    let mut out = HashMap::new();
    for item in items {
        let mut parts = vec![name(item)];
        let mut at = parent(item);
        while let Some(p) = at {
            let Some(up) = by_id.get(&p) else { break };
            parts.push(name(up));
            at = parent(up);
        }
        parts.reverse();
        out.insert(id(item), parts.join("/"));
    }
    out
}

fn counts<I: IntoIterator<Item = String>>(items: I) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i).or_default() += 1;
    }
    out
}

/// Asserts the qTest mock holds exactly the migration of the Zephyr mock.
pub fn assert_migrated(mocks: &MockServers) {
    let src = mocks.source();
    let state = mocks.qtest_state();
    check_modules(src, &state);
    let case_ids = check_cases(mocks, src, &state);
    let cycle_ids = check_cycles(src, &state);
    check_executions(mocks, src, &state, &case_ids, &cycle_ids);
}

fn check_modules(src: &Dataset, state: &QtestState) {
    let folders: Vec<_> = src
        .folders
        .iter()
        .filter(|f| f.folder_type == "TEST_CASE")
        .collect();
    let want = paths(&folders, |f| f.id, |f| f.parent_id, |f| f.name.as_str());
    let got = paths(
        &state.modules,
        |m| m.id,
        |m| m.parent_id,
        |m| m.name.as_str(),
    );
    let mut got_counts = counts(got.values().cloned());
    // The default module for folder-less cases, if any case needed it.
    got_counts.retain(|path, _| want.values().any(|w| w == path));
    assert_eq!(
        counts(want.values().cloned()),
        got_counts,
        "module tree differs"
    );
}

/// Returns Zephyr case key -> qTest case id.
fn check_cases(mocks: &MockServers, src: &Dataset, state: &QtestState) -> HashMap<String, u64> {
    let cfg = mocks.qtest_config();
    let key_field = cfg.case_field("Zephyr Key").expect("key field").id;
    let mut by_key: HashMap<String, Vec<&QtestCase>> = HashMap::new();
    for case in &state.test_cases {
        let key = case.property(key_field).unwrap_or_default().to_string();
        by_key.entry(key).or_default().push(case);
    }
    let folder_paths = paths(&src.folders, |f| f.id, |f| f.parent_id, |f| f.name.as_str());
    let module_paths = paths(
        &state.modules,
        |m| m.id,
        |m| m.parent_id,
        |m| m.name.as_str(),
    );
    let mut ids = HashMap::new();
    for case in &src.cases {
        let found = by_key.get(&case.key).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "case {} is on qTest {} times",
            case.key,
            found.len()
        );
        let q = found[0];
        assert_eq!(q.name, case.name.trim(), "name of {}", case.key);
        if let Some(objective) = &case.objective {
            assert!(
                q.description.contains(objective.as_str()),
                "description of {}",
                case.key
            );
        }
        if let Some(folder) = case.folder_id {
            assert_eq!(
                module_paths.get(&q.parent_id),
                folder_paths.get(&folder),
                "module of {}",
                case.key
            );
        }
        let steps = match &case.script {
            Script::Steps(steps) => steps.len(),
            Script::Plain(_) => 1,
            Script::Bdd(_) => 0,
        };
        assert_eq!(q.test_steps.len(), steps, "steps of {}", case.key);
        ids.insert(case.key.clone(), q.id);
    }
    assert_eq!(
        state.test_cases.len(),
        src.cases.len(),
        "extra cases on qTest"
    );
    ids
}

/// Returns Zephyr cycle id -> qTest cycle id.
fn check_cycles(src: &Dataset, state: &QtestState) -> HashMap<u64, u64> {
    let mut ids = HashMap::new();
    for cycle in &src.cycles {
        let marker = format!("Key: {}", cycle.key);
        let found: Vec<_> = state
            .test_cycles
            .iter()
            .filter(|c| c.description.split("<br>").any(|part| part == marker))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "cycle {} is on qTest {} times",
            cycle.key,
            found.len()
        );
        assert_eq!(found[0].name, cycle.name.trim());
        ids.insert(cycle.id, found[0].id);
    }
    ids
}

fn check_executions(
    mocks: &MockServers,
    src: &Dataset,
    state: &QtestState,
    cases: &HashMap<String, u64>,
    cycles: &HashMap<u64, u64>,
) {
    let status_name: HashMap<u64, &str> = src
        .statuses
        .iter()
        .map(|s| (s.id, s.name.as_str()))
        .collect();
    let cfg = mocks.qtest_config();
    // Ad-hoc executions (outside any cycle) go to the default cycle at the root.
    let default_cycle = || {
        let name = etlpool::migrate::MappingConfig::default().default_cycle;
        let found: Vec<u64> = state
            .test_cycles
            .iter()
            .filter(|c| c.parent_id == 0 && c.name == name)
            .map(|c| c.id)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "default cycle is on qTest {} times",
            found.len()
        );
        found[0]
    };
    let mut expected: BTreeMap<(u64, u64), Vec<(String, u64)>> = BTreeMap::new();
    for e in &src.executions {
        let cycle = e.cycle_id.map_or_else(default_cycle, |id| cycles[&id]);
        let run = (cycle, cases[&e.test_case_key]);
        let entry = expected.entry(run).or_default();
        if let Some(name) = qtest_status(status_name[&e.status_id]) {
            let end = e
                .actual_end_date
                .clone()
                .expect("executions have an end date");
            entry.push((end, cfg.status_named(name).expect("status").id));
        }
    }
    let mut runs: HashMap<(u64, u64), Vec<u64>> = HashMap::new();
    for r in &state.test_runs {
        runs.entry((r.parent_id, r.test_case_id))
            .or_default()
            .push(r.id);
    }
    assert_eq!(runs.len(), expected.len(), "runs on qTest");
    for (pair, mut logs) in expected {
        let run = runs.get(&pair).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            run.len(),
            1,
            "run of {pair:?} is on qTest {} times",
            run.len()
        );
        let mut got: Vec<_> = state
            .test_logs
            .iter()
            .filter(|l| l.run_id == run[0])
            .collect();
        got.sort_by_key(|l| l.result_number);
        logs.sort();
        let mut got_pairs: Vec<(String, u64)> = got
            .iter()
            .map(|l| (l.exe_end_date.clone(), l.status_id))
            .collect();
        // qTest takes a run's status from its latest log: they must come in end-date order.
        let ends: Vec<&String> = got_pairs.iter().map(|(e, _)| e).collect();
        assert!(
            ends.windows(2).all(|w| w[0] <= w[1]),
            "logs of {pair:?} out of order: {ends:?}"
        );
        got_pairs.sort();
        assert_eq!(got_pairs, logs, "logs of run {pair:?}");
    }
}
