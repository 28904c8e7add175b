//! Issue 12 end to end: the CLI against the mocks of `etlpool mock` with
//! every fault on at once finishes in ONE run, for five seeds: exit 0, no
//! failed record, no duplicate (the mock's write journal), the logs of every
//! run in `actualEndDate` order.

use std::collections::HashMap;

use clap::Parser;
use etlpool::cli::MockArgs;
use etlpool::mock::MockServers;

use crate::cli::{migrate, reports, run};
use crate::support::{Scratch, check};

/// The faults of the issue, as `etlpool mock` takes them.
const FAULTS: [&str; 11] = [
    "--fail-rate",
    "0.2",
    "--fail-after-write",
    "--rate-limit",
    "50",
    "--idle-close-ms",
    "300",
    "--reset-rate",
    "0.02",
    "--malformed-rate",
    "0.05",
];

#[derive(Parser)]
struct Mock {
    #[command(flatten)]
    args: MockArgs,
}

/// The mocks `etlpool mock --seed SEED <FAULTS>` serves.
fn mocks(seed: u64) -> MockServers {
    let seed = seed.to_string();
    let argv = ["mock", "--seed", seed.as_str()].into_iter().chain(FAULTS);
    let mock = Mock::try_parse_from(argv).expect("etlpool mock's arguments");
    MockServers::start(mock.args.to_options()).expect("start the mocks")
}

/// One run against one seed's mocks; panics with what went wrong.
fn one_run(seed: u64) {
    let mocks = mocks(seed);
    let dir = Scratch::new(&format!("faults-e2e-{seed}"));
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    let report = reports(&dir.0)
        .pop()
        .unwrap_or_else(|| panic!("seed {seed}: no report: {out}"));
    let report = std::fs::read_to_string(report).unwrap();
    let failed: Vec<&str> = report.lines().filter(|l| l.contains(",failed,")).collect();
    assert_eq!(code, 0, "seed {seed}: {out}\n{failed:#?}");
    assert!(failed.is_empty(), "seed {seed}: {failed:#?}");
    // No case created twice: each Zephyr key once among the journal's creates
    // (assert_migrated below counts every other kind on qTest).
    let key_field = mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let mut creates: HashMap<String, usize> = HashMap::new();
    for entry in mocks.journal().iter().filter(|e| e.kind == "test-case") {
        let properties = entry.body["properties"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let key = properties
            .iter()
            .find(|p| p["field_id"].as_u64() == Some(key_field))
            .map(|p| p["field_value"].to_string())
            .unwrap_or_default();
        *creates.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = creates.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "seed {seed}: created twice: {twice:#?}");
    // Every record once, in place; each run's logs in end-date order.
    check::assert_migrated(&mocks);
}

#[test]
fn one_run_finishes_under_every_fault_at_once_for_five_seeds() {
    std::thread::scope(|scope| {
        let runs: Vec<_> = (301..=305)
            .map(|seed| (seed, scope.spawn(move || one_run(seed))))
            .collect();
        let failed: Vec<String> = runs
            .into_iter()
            .filter_map(|(seed, run)| run.join().err().map(|e| panic_text(seed, e)))
            .collect();
        assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    });
}

fn panic_text(seed: u64, e: Box<dyn std::any::Any + Send>) -> String {
    let text = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    format!("seed {seed}: {text}")
}
