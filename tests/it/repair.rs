//! Repair end to end over real sockets: records deleted on the qTest mock
//! (a module with everything under it, a cycle with its runs, one log, one
//! file) are made again by `--repair`, once, with the journal corrected; a
//! repair stopped halfway is finished by the next run; a dry run only reads.

use std::collections::{BTreeMap, HashSet};

use crate::support::{Migration, Scratch};
use etlpool::migrate::{Journal, MigrateOptions, RecordKind, RunHooks, RunSummary, SyncOptions};
use etlpool::mock::zephyr::attachments::MockAttachments;
use etlpool::mock::{DataSizes, MockOptions};

pub(crate) fn options(seed: u64, state: Option<&Scratch>) -> MockOptions {
    let mut options = MockOptions::seeded(seed);
    options.sizes = DataSizes {
        folders: 6,
        folder_depth: 2,
        cycle_folders: 1,
        cases: 24,
        steps_per_case: 2,
        cycles: 4,
        executions: 70,
    };
    options.attachments = MockAttachments {
        sample: true,
        big_bytes: 0,
    };
    options.state_file = state.map(|dir| dir.0.join("qtest-state.jsonl"));
    options
}

pub(crate) fn migrated(options: MockOptions) -> Migration {
    let m = Migration::with_options(options);
    let first = m.run();
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    m
}

pub(crate) fn run(m: &Migration, options: &MigrateOptions, sync: SyncOptions) -> RunSummary {
    let cancel = etlpool::CancelToken::new();
    let hooks = RunHooks::default().sync(sync).max_outage(m.max_outage);
    etlpool::migrate::migrate_with(&m.pool, options, &cancel, &hooks).expect("run")
}

pub(crate) fn journal(m: &Migration) -> Journal {
    Journal::read_only(m.dir.0.join("journal.csv")).expect("journal")
}

/// qTest writes since `from`, by method and kind.
pub(crate) fn writes_since(m: &Migration, from: usize) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in &m.mocks.journal()[from..] {
        *out.entry(format!("{} {}", e.method, e.kind)).or_default() += 1;
    }
    out
}

/// Keys of the Zephyr cases another case calls: such a case made again gets
/// a new id its callers' steps don't follow, so the tests delete others.
pub(crate) fn called(mocks: &etlpool::mock::MockServers) -> HashSet<String> {
    use etlpool::mock::zephyr::data::{Script, Step};
    let data = mocks.zephyr_data();
    let mut out = HashSet::new();
    for case in &data.cases {
        if let Script::Steps(steps) = &case.script {
            for step in steps {
                if let Step::Call { test_case_key, .. } = step {
                    out.insert(test_case_key.clone());
                }
            }
        }
    }
    out
}

/// A migrated module whose subtree holds cases with runs and no called
/// case, and the number of runs under it. Its modules' names are unique
/// among their siblings: one made again comes last among its siblings on
/// qTest, and `verify` matches same-named siblings by order (see README).
fn deletable_module(m: &Migration) -> (u64, usize) {
    let called = called(&m.mocks);
    let journal = journal(m);
    let keys: std::collections::HashMap<u64, String> = journal
        .entries_of(RecordKind::Case)
        .into_iter()
        .map(|(key, t)| (t.id, key))
        .collect();
    let state = m.mocks.qtest_state();
    let mut best = None;
    for (_, module) in journal.entries_of(RecordKind::Module) {
        let mut tree = HashSet::from([module.id]);
        while let Some(more) = state
            .modules
            .iter()
            .find(|x| x.parent_id.is_some_and(|p| tree.contains(&p)) && !tree.contains(&x.id))
        {
            tree.insert(more.id);
        }
        let cases: Vec<u64> = state
            .test_cases
            .iter()
            .filter(|c| tree.contains(&c.parent_id))
            .map(|c| c.id)
            .collect();
        let repeated = tree.iter().filter_map(|id| state.module(*id)).any(|x| {
            let same = state
                .modules
                .iter()
                .filter(|y| y.parent_id == x.parent_id && y.name == x.name);
            same.count() > 1
        });
        if repeated
            || cases
                .iter()
                .any(|c| keys.get(c).is_none_or(|k| called.contains(k)))
        {
            continue;
        }
        let runs = state
            .test_runs
            .iter()
            .filter(|r| cases.contains(&r.test_case_id))
            .count();
        if runs > 0 && best.is_none_or(|(_, n)| runs > n) {
            best = Some((module.id, runs));
        }
    }
    best.expect("a module with runs and no called case")
}

/// Every journaled file is on the object its owner's record names, and
/// each (object, name) holds as many files as the journal says (files of
/// one owner may share a name).
pub(crate) fn assert_files_in_place(m: &Migration) {
    let journal = journal(m);
    let state = m.mocks.qtest_state();
    let mut journaled: BTreeMap<(String, u64, String), usize> = BTreeMap::new();
    for (key, target) in journal.entries_of(RecordKind::Attachment) {
        let parts: Vec<&str> = key.split('/').collect();
        let (object_type, owner) = match parts.as_slice() {
            ["case", case, id] if *id != "all" => {
                ("test-cases", journal.get(RecordKind::Case, case))
            }
            ["log", log, id] if *id != "all" => ("test-logs", journal.get(RecordKind::Log, log)),
            _ => continue,
        };
        let owner = owner.unwrap_or_else(|| panic!("{key}: owner journaled")).id;
        let file = state.attachments.iter().find(|f| f.id == target.id);
        let file = file.unwrap_or_else(|| panic!("{key}: attachment {} on qTest", target.id));
        assert_eq!(
            (file.object_type.as_str(), file.object_id),
            (object_type, owner),
            "{key}"
        );
        *journaled
            .entry((file.object_type.clone(), owner, file.name.clone()))
            .or_default() += 1;
    }
    assert!(!journaled.is_empty(), "no files were journaled");
    for ((object_type, owner, name), n) in journaled {
        let held = state
            .attachments
            .iter()
            .filter(|f| f.object_type == object_type && f.object_id == owner && f.name == name);
        assert_eq!(held.count(), n, "{name} on {object_type}/{owner}");
    }
}

#[test]
fn repair_makes_again_a_deleted_module_cycle_log_and_file_with_what_was_under_them() {
    let m = migrated(options(41, None));
    let (module, module_runs) = deletable_module(&m);
    m.mocks.delete_module(module).unwrap();
    // A cycle that still has runs, deleted with them.
    let journal_now = journal(&m);
    let state = m.mocks.qtest_state();
    let (_, cycle) = journal_now
        .entries_of(RecordKind::Cycle)
        .into_iter()
        .find(|(_, c)| state.test_runs.iter().any(|r| r.parent_id == c.id))
        .expect("a cycle with runs");
    let cycle_runs = state
        .test_runs
        .iter()
        .filter(|r| r.parent_id == cycle.id)
        .count();
    // The last log of a run that stays, and a file of a case that stays.
    let kept = state
        .test_runs
        .iter()
        .filter(|r| r.parent_id != cycle.id)
        .find(|r| state.logs_of(r.id).count() > 1)
        .expect("a run with logs")
        .id;
    let log = state.logs_of(kept).map(|l| l.id).max().unwrap();
    let file = state
        .attachments
        .iter()
        .find(|f| f.object_type == "test-cases" && state.test_case(f.object_id).is_some())
        .expect("a file of a case")
        .clone();
    drop(state);
    m.mocks.delete_cycle(cycle.id).unwrap();
    m.mocks.delete_log(kept, log).unwrap();
    m.mocks
        .delete_attachment("test-cases", file.object_id, file.id)
        .unwrap();
    assert!(!m.verify().is_clean());

    let before = m.mocks.journal().len();
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let writes = writes_since(&m, before);
    let n = |what: &str| writes.get(what).copied().unwrap_or(0);
    assert!(n("POST module") >= 1, "{writes:?}");
    assert!(n("POST test-case") >= 1, "{writes:?}");
    assert_eq!(n("POST test-cycle"), 1, "{writes:?}");
    assert_eq!(n("POST test-run"), module_runs + cycle_runs, "{writes:?}");
    assert!(n("POST test-log") > 1, "{writes:?}");
    assert!(n("POST attachment") >= 1, "{writes:?}");
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
    assert_files_in_place(&m);
    let state = m.mocks.qtest_state();
    assert!(
        state
            .attachments
            .iter()
            .any(|f| f.object_id == file.object_id && f.name == file.name),
        "{} uploaded again",
        file.name
    );
    drop(state);

    // The corrected journal holds: a plain run and another repair write nothing.
    for sync in [SyncOptions::default(), SyncOptions::default().repair(true)] {
        let before = m.mocks.journal().len();
        let after = run(&m, &m.options(), sync);
        assert!(after.is_complete(), "{after}");
        assert_eq!(writes_since(&m, before), BTreeMap::new(), "{after}");
    }
}

#[test]
fn a_repair_stopped_halfway_is_finished_by_the_next_plain_run_once() {
    let dir = Scratch::new("repair-crash");
    let mut m = migrated(options(41, Some(&dir)));
    let (module, _) = deletable_module(&m);
    m.mocks.delete_module(module).unwrap();
    let case = m.mocks.qtest_state().test_runs[0].test_case_id;
    m.mocks.delete_case_with_runs(case).ok();
    // qTest goes down after the repair's first two writes.
    m.mocks.faults().qtest.set_crash_after_writes(Some(2));
    let stopped = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(!stopped.is_complete(), "{stopped}");
    assert!(m.mocks.faults().qtest.crashed());
    m.mocks.faults().qtest.clear();
    m.mocks.restart_qtest().unwrap();
    m.new_process();

    // A plain run: no --repair, yet it finishes what the repair forgot.
    let mut runs = 0;
    loop {
        let next = run(&m, &m.options(), SyncOptions::default());
        runs += 1;
        if next.is_complete() {
            break;
        }
        assert!(runs < 3, "{next}\n{}", m.failures());
    }
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
    assert_files_in_place(&m);
    let before = m.mocks.journal().len();
    let after = run(&m, &m.options(), SyncOptions::default());
    assert!(after.is_complete(), "{after}");
    assert_eq!(writes_since(&m, before), BTreeMap::new(), "{after}");
}

#[test]
fn a_repair_dry_run_only_reads_and_plans_what_it_would_make_again() {
    let m = migrated(options(43, None));
    let (module, module_runs) = deletable_module(&m);
    m.mocks.delete_module(module).unwrap();
    let journal_path = m.dir.0.join("journal.csv");
    let journal_bytes = std::fs::read(&journal_path).unwrap();
    let before = m.mocks.journal().len();
    let dry = MigrateOptions {
        dry_run: true,
        report: m.dir.0.join("plan.csv"),
        ..m.options()
    };
    let planned = run(&m, &dry, SyncOptions::default().repair(true));
    assert!(planned.is_complete(), "{planned}");
    assert_eq!(m.mocks.journal().len(), before, "a dry run wrote to qTest");
    assert_eq!(
        std::fs::read(&journal_path).unwrap(),
        journal_bytes,
        "nor to the journal"
    );
    assert!(planned.records["module"].planned >= 1, "{planned}");
    assert!(planned.records["case"].planned >= 1, "{planned}");
    assert_eq!(
        planned.records["run"].planned, module_runs as u64,
        "{planned}"
    );
    assert!(planned.records["log"].planned > 0, "{planned}");
    let plan = std::fs::read_to_string(m.dir.0.join("plan.csv")).unwrap();
    assert!(
        plan.lines()
            .any(|l| l.starts_with("case,") && l.contains(",planned,")),
        "{plan}"
    );

    // The real repair then makes what the plan said.
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    assert_eq!(
        repaired.records["run"].created, module_runs as u64,
        "{repaired}"
    );
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn verify_with_the_journal_finds_missing_and_changed_files_and_repair_uploads_the_missing() {
    use etlpool::migrate::{DiffKind, VerifyOptions};
    let m = migrated(options(44, None));
    let (zephyr, qtest) = crate::support::migration::clients(&m.mocks);
    let with_journal = VerifyOptions {
        journal: Some(m.dir.0.join("journal.csv")),
        ..VerifyOptions::default()
    };
    let verify = || {
        etlpool::migrate::verify(&zephyr, &qtest, &Default::default(), &with_journal)
            .expect("verify")
    };
    let clean = verify();
    assert!(clean.is_clean(), "{clean}");
    let files = clean.checked.attachments;
    assert!(files > 2, "{clean}");
    // The sample set's files of steps and step results: said, not hidden.
    let steps = journal(&m)
        .entries_of(RecordKind::Attachment)
        .into_iter()
        .filter(|(k, _)| {
            (k.starts_with("step/") || k.starts_with("steplog/")) && !k.ends_with("/all")
        })
        .count() as u64;
    assert!(steps > 0, "the sample set has files on steps");
    assert_eq!(clean.not_comparable.attachments, steps, "{clean}");

    // One file of a case and one of a log deleted on qTest; one Zephyr
    // file now announces another size.
    let state = m.mocks.qtest_state();
    let pick = |object_type: &str| {
        let f = state
            .attachments
            .iter()
            .find(|f| f.object_type == object_type);
        f.unwrap_or_else(|| panic!("a file on {object_type}"))
            .clone()
    };
    // A case's file whose name another file of the case shares, if any.
    let shared_name = state.attachments.iter().find(|f| {
        f.object_type == "test-cases"
            && state.attachments.iter().any(|g| {
                g.id != f.id
                    && g.object_id == f.object_id
                    && g.object_type == f.object_type
                    && g.name == f.name
            })
    });
    let case_file = shared_name.cloned().unwrap_or_else(|| pick("test-cases"));
    let log_file = pick("test-logs");
    drop(state);
    m.mocks
        .delete_attachment("test-cases", case_file.object_id, case_file.id)
        .unwrap();
    m.mocks
        .delete_attachment("test-logs", log_file.object_id, log_file.id)
        .unwrap();
    let journal = journal(&m);
    let changed = m.mocks.mutate_zephyr(|d| {
        let f = d
            .attachments
            .iter_mut()
            .find(|f| f.name != case_file.name && f.name != log_file.name)
            .expect("another file");
        f.size += 7;
        f.id
    });
    let broken = verify();
    let missing = broken.find(etlpool::migrate::RecordKind::Attachment, DiffKind::Missing);
    assert_eq!(missing.len(), 2, "{broken}");
    let sizes = broken.find(etlpool::migrate::RecordKind::Attachment, DiffKind::Mismatch);
    assert_eq!(sizes.len(), 1, "{broken}");
    assert_eq!(sizes[0].field.as_deref(), Some("size"), "{broken}");
    assert!(sizes[0].key.ends_with(&format!("/{changed}")), "{broken}");
    assert_eq!(broken.checked.attachments, files, "{broken}");
    // Without the journal, files are not compared.
    assert!(m.verify().is_clean());
    drop(journal);

    let before = m.mocks.journal().len();
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let writes = writes_since(&m, before);
    assert_eq!(writes.get("POST attachment"), Some(&2), "{writes:?}");
    assert_eq!(writes.len(), 1, "only the files: {writes:?}");
    let after = verify();
    let left = after.find(etlpool::migrate::RecordKind::Attachment, DiffKind::Missing);
    assert!(left.is_empty(), "{after}");
    assert_files_in_place(&m);
}

#[test]
fn a_deleted_log_is_made_again_with_the_files_of_its_step_results() {
    let m = migrated(options(44, None));
    let journal_now = journal(&m);
    let (key, _) = journal_now
        .entries_of(RecordKind::Attachment)
        .into_iter()
        .find(|(k, _)| k.starts_with("steplog/") && !k.ends_with("/all"))
        .expect("a file of a step result was migrated");
    let execution = key.split('/').nth(1).unwrap().to_string();
    let log = journal_now.get(RecordKind::Log, &execution).unwrap().id;
    let state = m.mocks.qtest_state();
    let old = state
        .test_logs
        .iter()
        .find(|l| l.id == log)
        .unwrap()
        .clone();
    let files_before: Vec<String> = state
        .attachments
        .iter()
        .filter(|f| {
            f.object_type == "test-step-logs"
                && old.test_step_logs.iter().any(|s| s.id == f.object_id)
        })
        .map(|f| f.name.clone())
        .collect();
    assert!(
        !files_before.is_empty(),
        "the log's step results hold files"
    );
    drop(state);
    m.mocks.delete_log(old.run_id, log).unwrap();

    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let new = journal(&m).get(RecordKind::Log, &execution).unwrap().id;
    assert_ne!(new, log, "the log was made again");
    let state = m.mocks.qtest_state();
    let new = state.test_logs.iter().find(|l| l.id == new).unwrap();
    let mut files_after: Vec<String> = state
        .attachments
        .iter()
        .filter(|f| {
            f.object_type == "test-step-logs"
                && new.test_step_logs.iter().any(|s| s.id == f.object_id)
        })
        .map(|f| f.name.clone())
        .collect();
    files_after.sort();
    let mut files_before = files_before;
    files_before.sort();
    assert_eq!(files_after, files_before, "the step results' files");
}
