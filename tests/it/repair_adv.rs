//! Adversarial review of repair (issue 14 item 4) and `verify`'s file
//! comparison, over the mocks' real sockets: a repair that crashed between
//! its tombstones, a dry run after it, and a journal of another project.

use std::io::Write as _;

use crate::repair::{assert_files_in_place, called, journal, migrated, options, run, writes_since};
use crate::support::Migration;
use etlpool::migrate::{MigrateOptions, RecordKind, SyncOptions, Target, VerifyOptions};

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

/// A journaled file of a case, with the case's key and qTest id.
struct CaseFile {
    key: String,
    target: Target,
    case: String,
    case_id: u64,
}

/// A small project migrated with its files, and one of a case's files.
fn small_migration_with_a_case_file(seed: u64) -> (Migration, CaseFile) {
    let mut small = options(seed, None);
    small.sizes.cases = 10;
    small.sizes.executions = 12;
    let m = migrated(small);
    let j = journal(&m);
    let (key, target) = j
        .entries_of(RecordKind::Attachment)
        .into_iter()
        .find(|(k, _)| k.starts_with("case/") && !k.ends_with("/all"))
        .expect("a case's file");
    let case = key.split('/').nth(1).unwrap().to_string();
    let case_id = j.get(RecordKind::Case, &case).unwrap().id;
    drop(j);
    let file = CaseFile {
        key,
        target,
        case,
        case_id,
    };
    (m, file)
}

#[test]
fn a_file_replaced_on_qtest_by_another_of_its_name_is_a_size_mismatch_and_repair_keeps_it() {
    use etlpool::migrate::DiffKind;
    use etlpool::qtest::AttachmentTarget;
    let (
        m,
        CaseFile {
            key,
            target,
            case_id,
            ..
        },
    ) = small_migration_with_a_case_file(47);
    let file = m
        .mocks
        .qtest_state()
        .attachments
        .iter()
        .find(|f| f.id == target.id)
        .expect("the file on qTest")
        .clone();
    // Someone replaced it on qTest: deleted, and a bigger file of its name
    // uploaded, next to a second one of that name.
    m.mocks
        .delete_attachment("test-cases", case_id, file.id)
        .unwrap();
    let (zephyr, qtest) = crate::support::migration::clients(&m.mocks);
    let theirs = vec![7u8; usize::try_from(file.size).unwrap() + 100];
    let on = AttachmentTarget::TestCase(case_id);
    let mut people = Vec::new();
    for _ in 0..2 {
        let made = qtest
            .upload(
                on,
                &file.name,
                "application/octet-stream",
                &mut &theirs[..],
                None,
            )
            .expect("upload");
        people.push(made.id);
    }
    let path = m.dir.0.join("journal.csv");
    let with_journal = VerifyOptions {
        journal: Some(path),
        ..VerifyOptions::default()
    };
    let verify = || {
        etlpool::migrate::verify(&zephyr, &qtest, &Default::default(), &with_journal)
            .expect("verify")
    };
    let report = verify();
    let sizes = report.find(RecordKind::Attachment, DiffKind::Mismatch);
    assert_eq!(sizes.len(), 1, "{report}");
    assert_eq!(sizes[0].field.as_deref(), Some("size"), "{report}");
    assert_eq!(sizes[0].key, key, "{report}");

    // A repair uploads the migrated file again, deleting nothing of theirs.
    let before = m.mocks.journal().len();
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let writes = writes_since(&m, before);
    assert_eq!(writes.get("POST attachment"), Some(&1), "{writes:?}");
    assert_eq!(writes.len(), 1, "{writes:?}");
    let state = m.mocks.qtest_state();
    for id in &people {
        assert!(state.attachments.iter().any(|f| f.id == *id), "{id} kept");
    }
    drop(state);
    let report = verify();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn a_repair_while_another_run_holds_the_journal_is_refused_before_any_read_or_write() {
    let mut small = options(48, None);
    small.sizes.cases = 8;
    small.sizes.executions = 10;
    let m = migrated(small);
    // A case no case calls (one that is called gets a new id its callers'
    // steps don't follow, see README).
    let called = called(&m.mocks);
    let case = journal(&m)
        .entries_of(RecordKind::Case)
        .into_iter()
        .find(|(k, _)| !called.contains(k))
        .expect("a case no case calls")
        .1
        .id;
    m.mocks.delete_case_with_runs(case).unwrap();
    let path = m.dir.0.join("journal.csv");
    let held = etlpool::migrate::Journal::open(&path).expect("the other run's lock");
    let bytes = std::fs::read(&path).unwrap();
    let before = m.mocks.journal().len();
    let cancel = etlpool::CancelToken::new();
    let hooks = etlpool::migrate::RunHooks::default()
        .sync(SyncOptions::default().repair(true))
        .max_outage(m.max_outage);
    let refused = etlpool::migrate::migrate_with(&m.pool, &m.options(), &cancel, &hooks)
        .expect_err("the journal is locked");
    assert!(refused.is_locked(), "{refused}");
    assert_eq!(m.mocks.journal().len(), before, "nothing written to qTest");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nor to the journal");
    drop(held);
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    assert!(m.verify().is_clean(), "{}", m.verify());
}

#[test]
fn a_deleted_cycle_folder_is_made_again_with_its_cycles_and_runs_once() {
    let m = migrated(options(49, None));
    let j = journal(&m);
    let state = m.mocks.qtest_state();
    let (_, folder) = j
        .entries_of(RecordKind::CycleFolder)
        .into_iter()
        .find(|(_, f)| state.test_cycles.iter().any(|c| c.parent_id == f.id))
        .expect("a cycle folder holding cycles");
    let cycles: Vec<u64> = state
        .test_cycles
        .iter()
        .filter(|c| c.parent_type == "test-cycle" && c.parent_id == folder.id)
        .map(|c| c.id)
        .collect();
    let runs = state
        .test_runs
        .iter()
        .filter(|r| cycles.contains(&r.parent_id))
        .count();
    let logs: usize = state
        .test_runs
        .iter()
        .filter(|r| cycles.contains(&r.parent_id))
        .map(|r| state.logs_of(r.id).count())
        .sum();
    drop(state);
    drop(j);
    assert!(runs > 0, "the folder's cycles hold runs");
    m.mocks.delete_cycle(folder.id).unwrap();

    let before = m.mocks.journal().len();
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let writes = writes_since(&m, before);
    let n = |what: &str| writes.get(what).copied().unwrap_or(0);
    assert_eq!(n("POST test-cycle"), 1 + cycles.len(), "{writes:?}");
    assert_eq!(n("POST test-run"), runs, "{writes:?}");
    assert_eq!(n("POST test-log"), logs, "{writes:?}");
    assert!(
        !writes.keys().any(|w| w.starts_with("DELETE")),
        "{writes:?}"
    );
    assert!(m.verify().is_clean(), "{}", m.verify());
    assert_files_in_place(&m);
}

#[test]
fn a_repair_without_attachments_leaves_missing_files_for_a_later_repair_to_upload() {
    use etlpool::migrate::AttachmentOptions;
    let (
        m,
        CaseFile {
            key,
            target,
            case,
            case_id,
        },
    ) = small_migration_with_a_case_file(50);
    let state = m.mocks.qtest_state();
    let name = state
        .attachments
        .iter()
        .find(|f| f.id == target.id)
        .expect("the file")
        .name
        .clone();
    let named = |state: &etlpool::mock::qtest::state::QtestState| {
        let on = |f: &&etlpool::mock::qtest::attachments::StoredFile| {
            f.object_type == "test-cases" && f.object_id == case_id && f.name == name
        };
        state.attachments.iter().filter(on).count()
    };
    let held = named(&state);
    drop(state);
    m.mocks
        .delete_attachment("test-cases", case_id, target.id)
        .unwrap();
    // A repair with files turned off: it can't make the file again.
    let cancel = etlpool::CancelToken::new();
    let hooks = etlpool::migrate::RunHooks::default()
        .sync(SyncOptions::default().repair(true))
        .attachments(AttachmentOptions::off())
        .max_outage(m.max_outage);
    let without = etlpool::migrate::migrate_with(&m.pool, &m.options(), &cancel, &hooks)
        .expect("a repair without files");
    assert!(without.is_complete(), "{without}");

    // The file is still journaled, so the next repair with files on
    // checks it and uploads it again.
    assert!(journal(&m).get(RecordKind::Attachment, &key).is_some());
    let next = run(&m, &m.options(), SyncOptions::default().repair(true));
    assert!(next.is_complete(), "{next}\n{}", m.failures());
    assert_eq!(
        named(&m.mocks.qtest_state()),
        held,
        "{name} on case {case} again"
    );
    assert_files_in_place(&m);
}

#[test]
fn a_case_a_person_made_again_on_qtest_is_found_by_the_repair_not_overwritten_nor_doubled() {
    use etlpool::qtest::{NewTestCase, PropertyValue};
    let mut small = options(51, None);
    small.sizes.cases = 10;
    small.sizes.executions = 12;
    let m = migrated(small);
    let called = called(&m.mocks);
    let (key, target) = journal(&m)
        .entries_of(RecordKind::Case)
        .into_iter()
        .find(|(k, _)| !called.contains(k))
        .expect("a case no case calls");
    let old = m.mocks.qtest_state().test_case(target.id).unwrap().clone();
    m.mocks.delete_case_with_runs(target.id).unwrap();
    // A person makes it again by hand, with its Zephyr Key and another name.
    let (_, qtest) = crate::support::migration::clients(&m.mocks);
    let theirs = NewTestCase {
        name: "Made again by a person".into(),
        description: String::new(),
        precondition: String::new(),
        parent_id: Some(old.parent_id),
        properties: old
            .properties
            .iter()
            .map(|p| PropertyValue {
                field_id: p.field_id,
                field_value: p.field_value.clone(),
            })
            .collect(),
        test_steps: Vec::new(),
    };
    let made = qtest.create_case(&theirs).expect("their case");

    let before = m.mocks.journal().len();
    let repaired = run(&m, &m.options(), SyncOptions::default().repair(true));
    let writes = writes_since(&m, before);
    assert!(
        !writes.contains_key("POST test-case"),
        "{key} doubled: {writes:?}"
    );
    assert!(
        !writes.contains_key("PUT test-case"),
        "{key} overwritten: {writes:?}"
    );
    assert!(
        !writes.keys().any(|w| w.starts_with("DELETE")),
        "{writes:?}"
    );
    let state = m.mocks.qtest_state();
    let now = state.test_case(made.id).expect("their case kept");
    assert_eq!(now.name, "Made again by a person", "{repaired}");
    assert_eq!(
        journal(&m).get(RecordKind::Case, &key).map(|t| t.id),
        Some(made.id)
    );
}
