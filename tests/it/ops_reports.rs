//! Reports kept per run; nothing created by a dry run or a failed start.

use crate::cli::{migrate, mocks, reports, run};
use crate::support::Scratch;

#[test]
fn an_earlier_runs_report_is_still_there_after_a_rerun() {
    let mocks = mocks(91);
    let dir = Scratch::new("ops-reports");
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    let found = reports(&dir.0);
    assert_eq!(found.len(), 2, "{found:?}");
    let first = std::fs::read_to_string(&found[0]).unwrap();
    let second = std::fs::read_to_string(&found[1]).unwrap();
    assert!(first.contains(",created,"), "{first}");
    assert!(!second.contains(",created,"), "{second}");
    assert!(
        out.contains(&found[1].display().to_string()),
        "the summary names it: {out}"
    );
}

#[test]
fn a_dry_run_or_a_failed_start_creates_nothing() {
    let mocks = mocks(92);
    let dir = Scratch::new("ops-nothing");
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (code, out) = run(migrate(&mocks, &dir.0)
        .env("ZEPHYR_PROJECT", "NOPE")
        .arg("--dry-run"));
    assert_eq!(code, 4, "{out}");
    let (code, out) = run(migrate(&mocks, &dir.0).env("QTEST_TOKEN", "wrong"));
    assert_eq!(code, 4, "{out}");
    assert_eq!(
        listing(&dir.0),
        Vec::<String>::new(),
        "a failed start left files"
    );

    let (code, out) = run(migrate(&mocks, &dir.0).arg("--dry-run"));
    assert_eq!(code, 0, "{out}");
    let names = listing(&dir.0);
    assert!(!names.iter().any(|n| n.starts_with("journal")), "{names:?}");
    assert_eq!(names.len(), 1, "only the plan: {names:?}");
    assert!(mocks.qtest_state().journal.is_empty());
}
