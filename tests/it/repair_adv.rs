//! Adversarial review of repair (issue 14 item 4) and `verify`'s file
//! comparison, over the mocks' real sockets: a repair that crashed between
//! its tombstones, a dry run after it, and a journal of another project.

use std::io::Write as _;

use crate::repair::{assert_files_in_place, called, journal, migrated, options, run, writes_since};
use etlpool::migrate::{MigrateOptions, RecordKind, SyncOptions, VerifyOptions};

/// A migrated case that no case calls, with files of its own, preferring
/// one whose steps hold files too: its key and how many step files.
fn case_with_files(m: &crate::support::Migration) -> (String, usize) {
    let called = called(&m.mocks);
    let j = journal(m);
    let files = j.entries_of(RecordKind::Attachment);
    let owned = |prefix: &str| -> Vec<String> {
        files
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(prefix)?;
                let (case, tail) = rest.split_once('/')?;
                (!tail.ends_with("all")).then(|| case.to_string())
            })
            .collect()
    };
    let (own, on_steps) = (owned("case/"), owned("step/"));
    let fits = |c: &&String| !called.contains(*c) && j.get(RecordKind::Case, c).is_some();
    let key = own
        .iter()
        .filter(fits)
        .find(|c| on_steps.contains(c))
        .or_else(|| own.iter().find(fits))
        .expect("a case with files that no case calls")
        .clone();
    let steps = on_steps.iter().filter(|c| **c == key).count();
    (key, steps)
}

/// Files on the qTest steps of case `id`.
fn step_files(m: &crate::support::Migration, id: u64) -> usize {
    let state = m.mocks.qtest_state();
    let case = state.test_case(id).expect("the case on qTest");
    let steps: Vec<u64> = case.test_steps.iter().map(|s| s.id).collect();
    state
        .attachments
        .iter()
        .filter(|f| f.object_type == "test-steps" && steps.contains(&f.object_id))
        .count()
}

#[test]
fn a_repair_that_crashed_after_forgetting_a_case_uploads_its_files_to_the_new_case() {
    let m = migrated(options(45, None));
    let (key, on_steps) = case_with_files(&m);
    assert!(on_steps > 0, "{key}: its steps hold files");
    let old = journal(&m).get(RecordKind::Case, &key).unwrap().id;
    m.mocks.delete_case_with_runs(old).unwrap();
    // The crash: the repair's mark and the case's tombstone were written,
    // the digest's tombstone only in part, its runs' and files' not at all.
    let path = m.dir.0.join("journal.csv");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    write!(file, "mark,repair,1,\ncase,{key},,\ndigest,{key},").unwrap();
    drop(file);

    // A dry run now reads only: neither qTest nor the journal (torn tail
    // included) changes.
    let bytes = std::fs::read(&path).unwrap();
    let before = m.mocks.journal().len();
    let dry = MigrateOptions {
        dry_run: true,
        report: m.dir.0.join("plan.csv"),
        ..m.options()
    };
    let planned = run(&m, &dry, SyncOptions::default());
    assert!(planned.is_complete(), "{planned}");
    assert!(planned.records["case"].planned >= 1, "{planned}");
    assert_eq!(m.mocks.journal().len(), before, "a dry run wrote to qTest");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nor to the journal");

    // A plain run takes the repair up and makes the case with its files.
    let repaired = run(&m, &m.options(), SyncOptions::default());
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let writes = writes_since(&m, before);
    assert_eq!(writes.get("POST test-case"), Some(&1), "{writes:?}");
    assert!(
        !writes.keys().any(|w| w.starts_with("DELETE")),
        "a repair deletes nothing: {writes:?}"
    );
    let new = journal(&m).get(RecordKind::Case, &key).unwrap().id;
    assert_ne!(new, old);
    assert_files_in_place(&m);
    assert_eq!(step_files(&m, new), on_steps, "the files of {key}'s steps");
    assert!(m.verify().is_clean(), "{}", m.verify());
    let (zephyr, qtest) = crate::support::migration::clients(&m.mocks);
    let with_journal = VerifyOptions {
        journal: Some(path.clone()),
        ..VerifyOptions::default()
    };
    let report = etlpool::migrate::verify(&zephyr, &qtest, &Default::default(), &with_journal)
        .expect("verify");
    assert!(report.is_clean(), "{report}");

    let before = m.mocks.journal().len();
    let again = run(&m, &m.options(), SyncOptions::default());
    assert!(again.is_complete(), "{again}");
    assert!(writes_since(&m, before).is_empty(), "{again}");
}

#[test]
fn verify_with_the_journal_of_another_project_is_an_error_not_clean() {
    let mut small = options(46, None);
    small.sizes.cases = 8;
    small.sizes.executions = 10;
    let m = migrated(small);
    // The same project's journal, as another project (`OTHR`, migrated into
    // another qTest project) would have it.
    let text = std::fs::read_to_string(m.dir.0.join("journal.csv")).unwrap();
    let mut other = String::from("kind,source_key,target_id,version_id\n");
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if !(fields[0] == "case" || fields[1].starts_with("case/")) {
            continue;
        }
        let id: u64 = fields[2].parse().unwrap();
        let key = fields[1].replace("PROJ-", "OTHR-");
        other.push_str(&format!("{},{key},{},\n", fields[0], id + 900_000));
    }
    assert!(other.contains("attachment,case/OTHR-"), "{other}");
    let path = m.dir.0.join("other.journal.csv");
    std::fs::write(&path, other).unwrap();
    let (zephyr, qtest) = crate::support::migration::clients(&m.mocks);
    let with_journal = VerifyOptions {
        journal: Some(path),
        ..VerifyOptions::default()
    };
    let verdict = etlpool::migrate::verify(&zephyr, &qtest, &Default::default(), &with_journal);
    let e = verdict.expect_err("another project's journal");
    let text = etlpool::error_chain(&e);
    assert!(text.contains("OTHR-") && text.contains("PROJ"), "{text}");
}
