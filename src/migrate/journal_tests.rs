use super::*;
use crate::migrate::test_util::{TempDir, dead_pid};
use std::fs;
use std::sync::Barrier;
use std::time::Instant;

fn case(id: u64, version: u64) -> Target {
    Target {
        id,
        version_id: Some(version),
    }
}

fn corrupt_line(path: &Path) -> (u64, String) {
    match Journal::open(path) {
        Err(MigrateError::CorruptJournal { line, reason, .. }) => (line, reason),
        other => panic!("expected CorruptJournal, got {other:?}"),
    }
}

#[test]
fn a_new_journal_gets_a_header_and_resumes_what_was_recorded() {
    let dir = TempDir::new("journal-resume");
    let path = dir.join("PROJ.journal.csv");
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.stats(), JournalStats::default());
    journal
        .record(RecordKind::Module, "100006", Target::id(2_107_619))
        .unwrap();
    journal
        .record(RecordKind::Case, "PROJ-T1", case(55001, 88001))
        .unwrap();
    assert_eq!(
        journal.get(RecordKind::Case, "PROJ-T1"),
        Some(case(55001, 88001))
    );
    journal.close().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{HEADER}\nmodule,100006,2107619,\ncase,PROJ-T1,55001,88001\n")
    );

    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.stats().entries, 2);
    assert_eq!(journal.stats().torn_lines, 0);
    assert_eq!(
        journal.target(RecordKind::Module, "100006"),
        Some(Target::id(2_107_619))
    );
    assert_eq!(journal.get(RecordKind::Module, "PROJ-T1"), None);
    assert_eq!(
        journal.entries_of(RecordKind::Case),
        vec![("PROJ-T1".to_owned(), case(55001, 88001))]
    );
}

#[test]
fn a_torn_last_line_is_ignored_cut_off_and_counted() {
    let dir = TempDir::new("journal-torn");
    let path = dir.join("j.csv");
    let intact = format!("{HEADER}\ncase,PROJ-T1,1,2\ncase,PROJ-T2,3,4\n");
    fs::write(&path, format!("{intact}case,PROJ-T3,5")).unwrap();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.stats().torn_lines, 1);
    assert_eq!(journal.stats().entries, 2);
    assert_eq!(journal.get(RecordKind::Case, "PROJ-T3"), None);
    assert_eq!(fs::read_to_string(&path).unwrap(), intact);
    journal
        .record(RecordKind::Case, "PROJ-T3", case(5, 6))
        .unwrap();
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.stats().torn_lines, 0);
    assert_eq!(journal.get(RecordKind::Case, "PROJ-T3"), Some(case(5, 6)));
}

#[test]
fn a_torn_header_is_rewritten() {
    let dir = TempDir::new("journal-torn-header");
    let path = dir.join("j.csv");
    fs::write(&path, "kind,sou").unwrap();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.stats().torn_lines, 1);
    drop(journal);
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"));
}

#[test]
fn a_malformed_line_before_the_last_is_an_error_with_its_number() {
    let dir = TempDir::new("journal-malformed");
    let path = dir.join("j.csv");
    let cases = [
        ("case,PROJ-T2,abc,\n", "not a number"),
        ("case,PROJ-T2,1\n", "expected 4 fields"),
        ("case,PROJ-T2,1,2,3\n", "expected 4 fields"),
        ("folder,7,1,\n", "unknown record kind"),
        ("case,,1,\n", "empty source key"),
        ("case,PROJ-T2,1,v2\n", "version id"),
    ];
    for (bad, why) in cases {
        fs::write(
            &path,
            format!("{HEADER}\ncase,PROJ-T1,1,2\n{bad}case,PROJ-T3,3,4\n"),
        )
        .unwrap();
        let (line, reason) = corrupt_line(&path);
        assert_eq!(line, 3, "{bad}");
        assert!(reason.contains(why), "{bad}: {reason}");
    }
    // A complete last line is not torn: it is checked like any other.
    fs::write(&path, format!("{HEADER}\ncase,PROJ-T1,x,\n")).unwrap();
    assert_eq!(corrupt_line(&path).0, 2);
    fs::write(&path, "case,PROJ-T1,1,2\n").unwrap();
    let (line, reason) = corrupt_line(&path);
    assert_eq!(line, 1);
    assert!(reason.contains("header"), "{reason}");
    assert!(
        !dir.join("j.csv.lock").exists(),
        "a failed open releases the lock"
    );
}

#[test]
fn concurrent_appends_from_eight_threads_are_all_whole_lines() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 500;
    let dir = TempDir::new("journal-concurrent");
    let path = dir.join("j.csv");
    let journal = Journal::open(&path).unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (journal, barrier) = (&journal, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let key = format!("T{t}-{i}");
                    let id = u64::try_from(t * PER_THREAD + i).unwrap();
                    journal
                        .record(RecordKind::Log, &key, Target::id(id))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(journal.stats().appended, (THREADS * PER_THREAD) as u64);
    journal.close().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1 + THREADS * PER_THREAD);
    assert!(text.ends_with('\n'));
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.stats().entries, THREADS * PER_THREAD);
    assert_eq!(
        journal.get(RecordKind::Log, "T7-499"),
        Some(Target::id(3999))
    );
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_lock() {
    let dir = TempDir::new("journal-locked");
    let path = dir.join("j.csv");
    let first = Journal::open(&path).unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    drop(first);
    Journal::open(&path).unwrap().close().unwrap();
}

#[test]
fn a_stale_lock_left_by_a_dead_run_is_recovered() {
    let dir = TempDir::new("journal-stale");
    let path = dir.join("j.csv");
    fs::write(&path, format!("{HEADER}\ncycle,10010,67890,\n")).unwrap();
    fs::write(dir.join("j.csv.lock"), format!("{}\n", dead_pid())).unwrap();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(
        journal.get(RecordKind::Cycle, "10010"),
        Some(Target::id(67890))
    );
}

#[test]
fn appended_lines_are_synced_within_the_interval_and_on_close() {
    let dir = TempDir::new("journal-sync");
    let journal = Journal::open(dir.join("j.csv")).unwrap();
    let before = journal.stats().syncs;
    journal
        .record(RecordKind::Run, "1/P-T1", Target::id(1))
        .unwrap();
    let start = Instant::now();
    while journal.stats().syncs == before {
        assert!(
            start.elapsed() < SYNC_INTERVAL * 10,
            "no sync within {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nothing new to sync: the flusher stays idle.
    let idle = journal.stats().syncs;
    std::thread::sleep(SYNC_INTERVAL * 2);
    assert_eq!(journal.stats().syncs, idle);
    journal.sync().unwrap();
    assert_eq!(journal.stats().syncs, idle + 1);
}

#[test]
fn keys_are_quoted_and_line_breaks_refused() {
    let dir = TempDir::new("journal-keys");
    let path = dir.join("j.csv");
    let journal = Journal::open(&path).unwrap();
    let odd = "a,b \"c\"";
    journal
        .record(RecordKind::Case, odd, Target::id(1))
        .unwrap();
    let err = journal
        .record(RecordKind::Case, "a\nb", Target::id(2))
        .unwrap_err();
    assert!(matches!(err, MigrateError::InvalidKey { .. }), "{err:?}");
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.get(RecordKind::Case, odd), Some(Target::id(1)));
    assert_eq!(journal.stats().entries, 1);
}

#[test]
fn a_record_written_twice_keeps_the_later_target() {
    let dir = TempDir::new("journal-twice");
    let path = dir.join("j.csv");
    fs::write(&path, format!("{HEADER}\ncase,P-T1,1,2\ncase,P-T1,3,4\n")).unwrap();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.get(RecordKind::Case, "P-T1"), Some(case(3, 4)));
    assert_eq!(journal.stats().entries, 1);
}

#[test]
fn journal_is_send_and_sync() {
    fn ensure<T: Send + Sync>() {}
    ensure::<Journal>();
}

#[test]
fn fingerprints_and_marks_survive_a_reopen_and_marks_never_move_back() {
    let dir = TempDir::new("journal-sync-state");
    let path = dir.join("journal.csv");
    {
        let journal = Journal::open(&path).unwrap();
        journal.set_digest("PROJ-T1", 17).unwrap();
        journal.set_digest("PROJ-T1", 18).unwrap();
        journal.set_mark("executions", 1_000).unwrap();
        journal.set_mark("executions", 900).unwrap();
        assert_eq!(journal.mark("executions"), Some(1_000));
        journal.close().unwrap();
    }
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.digest("PROJ-T1"), Some(18));
    assert_eq!(journal.mark("executions"), Some(1_000));
    assert_eq!(journal.mark("cases"), None);
    // Sync state is not a record of any kind a run migrates.
    assert!(journal.entries_of(RecordKind::Case).is_empty());
    journal
        .record(RecordKind::Case, "PROJ-T1", Target::id(5))
        .unwrap();
    assert_eq!(
        journal.forget(RecordKind::Case, "PROJ-T1").unwrap(),
        Some(Target::id(5))
    );
    assert_eq!(journal.get(RecordKind::Case, "PROJ-T1"), None);
}

#[test]
fn a_forgotten_record_stays_forgotten_after_a_reopen_until_it_is_made_again() {
    let dir = TempDir::new("journal-forget");
    let path = dir.join("journal.csv");
    {
        let journal = Journal::open(&path).unwrap();
        journal
            .record(RecordKind::Case, "PROJ-T1", Target::id(5))
            .unwrap();
        journal
            .record(RecordKind::Case, "PROJ-T2", Target::id(6))
            .unwrap();
        journal.forget(RecordKind::Case, "PROJ-T1").unwrap();
        journal.forget(RecordKind::Case, "PROJ-T2").unwrap();
        journal
            .record(RecordKind::Case, "PROJ-T2", Target::id(7))
            .unwrap();
        // Dropped without closing, as a crash would leave it (the lines are written).
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("case,PROJ-T1,,\n"), "{text}");
    for journal in [
        Journal::read_only(&path).unwrap(),
        Journal::open(&path).unwrap(),
    ] {
        assert_eq!(journal.get(RecordKind::Case, "PROJ-T1"), None);
        assert_eq!(
            journal.get(RecordKind::Case, "PROJ-T2"),
            Some(Target::id(7))
        );
    }
    // A read-only journal (a dry run) forgets in memory and writes nothing.
    let before = std::fs::read(&path).unwrap();
    let dry = Journal::read_only(&path).unwrap();
    assert_eq!(
        dry.forget(RecordKind::Case, "PROJ-T2").unwrap(),
        Some(Target::id(7))
    );
    assert_eq!(dry.get(RecordKind::Case, "PROJ-T2"), None);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
