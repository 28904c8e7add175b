//! Attachments end to end over real sockets: streamed from the Zephyr mock
//! into the qTest mock, each file once on the right object, byte for byte.

use std::collections::BTreeMap;

use crate::support::Migration;
use etlpool::migrate::{AttachmentOptions, Journal, RecordKind, RunHooks, RunSummary, SyncOptions};
use etlpool::mock::qtest::attachments::sha256_hex;
use etlpool::mock::zephyr::attachments::{FileOwner, MockAttachments, step_index};
use etlpool::mock::{DataSizes, FailPoint, MockOptions};

/// Files of the sample set that have a qTest object to go to: 5 on cases,
/// 2 on executions, 2 on case steps, 2 on execution step results.
pub(crate) const SAMPLE_FILES: usize = 11;

pub(crate) fn options(seed: u64) -> MockOptions {
    let mut options = MockOptions::seeded(seed);
    options.sizes = DataSizes {
        folders: 3,
        folder_depth: 2,
        cycle_folders: 1,
        cases: 8,
        steps_per_case: 2,
        cycles: 2,
        executions: 12,
    };
    options.attachments = MockAttachments {
        sample: true,
        big_bytes: 0,
    };
    options
}

pub(crate) fn run(m: &Migration, attachments: AttachmentOptions) -> RunSummary {
    run_with(m, RunHooks::default().attachments(attachments))
}

/// A run that lists everything again (`--full`): a project migrated without
/// attachments has its high-water marks set, so a plain sync would not
/// visit the unchanged cases and executions whose files are missing.
fn run_full(m: &Migration) -> RunSummary {
    run_with(
        m,
        RunHooks::default().sync(SyncOptions::default().full(true)),
    )
}

fn run_with(m: &Migration, hooks: RunHooks) -> RunSummary {
    let cancel = etlpool::CancelToken::new();
    etlpool::migrate::migrate_with(&m.pool, &m.options(), &cancel, &hooks).expect("run")
}

/// Each Zephyr file of a case, an execution or one of their steps, as
/// (qTest object type, qTest object id) → [(name, size, sha256)], expected
/// from the source, the journal and the qTest steps and step logs made.
pub(crate) type Files = BTreeMap<(String, u64), Vec<(String, u64, String)>>;

pub(crate) fn expected(m: &Migration) -> Files {
    let journal = Journal::read_only(m.dir.0.join("journal.csv")).expect("journal");
    let state = m.mocks.qtest_state();
    let migrated = |kind, key: &str| journal.get(kind, key).expect("the owner was migrated").id;
    let mut out = Files::new();
    for f in &m.mocks.source().attachments {
        let object = match &f.owner {
            FileOwner::Case(key) => ("test-cases", migrated(RecordKind::Case, key)),
            FileOwner::Execution(id) => ("test-logs", migrated(RecordKind::Log, &id.to_string())),
            FileOwner::CaseStep(key, step) => {
                let case = migrated(RecordKind::Case, key);
                let case = state.test_case(case).expect("the case is on qTest");
                let mut steps = case.test_steps.clone();
                steps.sort_by_key(|s| s.order);
                ("test-steps", steps[step_index(*step)].id)
            }
            FileOwner::ExecutionStep(id, step) => {
                let log = migrated(RecordKind::Log, &id.to_string());
                let log = state
                    .test_logs
                    .iter()
                    .find(|l| l.id == log)
                    .expect("the log");
                let order = step_index(*step) as u32 + 1;
                let step_log = log.test_step_logs.iter().find(|s| s.order == order);
                ("test-step-logs", step_log.expect("a step log").id)
            }
            FileOwner::Cycle(_) => continue,
        };
        let bytes = etlpool::mock::zephyr::attachments::file_vec(f.id, f.size);
        out.entry((object.0.to_string(), object.1))
            .or_default()
            .push((f.name.clone(), f.size, sha256_hex(&bytes)));
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

pub(crate) fn actual(m: &Migration) -> Files {
    let mut out = Files::new();
    for f in m.mocks.qtest_state().attachments {
        out.entry((f.object_type.clone(), f.object_id))
            .or_default()
            .push((f.name.clone(), f.size, f.sha256.clone()));
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

/// How many files of `m`'s sample set have a qTest object to go to (it
/// depends on the seed: a step result that went into a log's note has none).
pub(crate) fn files_to_migrate(m: &Migration) -> usize {
    expected(m).values().map(Vec::len).sum()
}

pub(crate) fn uploads(m: &Migration) -> usize {
    let state = m.mocks.qtest_state();
    state
        .journal
        .iter()
        .filter(|e| e.kind == "attachment")
        .count()
}

#[test]
fn every_file_arrives_once_on_its_object_byte_for_byte_and_a_rerun_reads_no_listing() {
    let m = Migration::with_options(options(21));
    let summary = run(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let want = expected(&m);
    assert_eq!(
        want.values().map(Vec::len).sum::<usize>(),
        SAMPLE_FILES,
        "the sample set"
    );
    assert_eq!(actual(&m), want);
    assert_eq!(summary.records["attachment"].created, SAMPLE_FILES as u64);
    // The cycle's file has no qTest object to go to, and the images pasted
    // into rich text (a case's objective, a step's expected result, an
    // execution's comment and step result, a cycle's description) can't be
    // read: reported, not lost.
    assert_eq!(summary.records["attachment"].skipped, 6, "{summary}");
    let report = std::fs::read_to_string(&summary.report).unwrap();
    assert!(report.contains("plan.txt"), "{report}");
    assert!(
        report.contains("https://zephyr-cdn.example.com/images/pasted-1.png"),
        "{report}"
    );

    let listed = |m: &Migration| {
        m.mocks
            .zephyr_requests()
            .iter()
            .filter(|(route, _)| route.ends_with("/attachments"))
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let before = (uploads(&m), listed(&m));
    let again = run(&m, AttachmentOptions::default());
    assert!(again.is_complete(), "{again}");
    assert_eq!(
        (uploads(&m), listed(&m)),
        before,
        "the re-run uploaded or listed"
    );
}

/// Runs once without attachments (every record made), then once with
/// `fault` on qTest: only uploads write in the second run.
pub(crate) fn upload_under(
    seed: u64,
    fault: impl Fn(&etlpool::mock::MockServers),
) -> (Migration, RunSummary) {
    let m = Migration::with_options(options(seed));
    let first = run(&m, AttachmentOptions::off());
    assert!(first.is_complete(), "{first}");
    fault(&m.mocks);
    let second = run_full(&m);
    m.mocks.faults().qtest.clear();
    (m, second)
}

#[test]
fn a_reset_after_each_applied_upload_is_resolved_by_lookup_never_by_a_second_upload() {
    let (m, summary) = upload_under(22, |m| m.faults().qtest.set_reset_after_write_rate(1.0));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    // Every upload was applied, its answer lost, and the file then found.
    assert_eq!(
        summary.records["attachment"].found, SAMPLE_FILES as u64,
        "{summary}"
    );
    assert_eq!(uploads(&m), SAMPLE_FILES, "one upload per file");
    assert_eq!(actual(&m), expected(&m));
}

#[test]
fn server_errors_after_applied_uploads_and_failed_lookups_never_upload_a_file_twice() {
    let m = Migration::with_options(options(25));
    let first = run(&m, AttachmentOptions::off());
    assert!(first.is_complete(), "{first}");
    // Reads fail too (a lookup may fail): re-runs finish the job.
    m.mocks.faults().qtest.set_fail_rate(0.3, FailPoint::After);
    let mut summaries = Vec::new();
    for round in 0..8 {
        // The first lists everything; failed files keep the marks for the next.
        let summary = match round {
            0 => run_full(&m),
            _ => run(&m, AttachmentOptions::default()),
        };
        let done = summary.is_complete();
        summaries.push(summary.to_string());
        if done {
            break;
        }
    }
    m.mocks.faults().qtest.clear();
    let last = run(&m, AttachmentOptions::default());
    assert!(last.is_complete(), "{}\n{last}", summaries.join("\n"));
    assert_eq!(uploads(&m), SAMPLE_FILES, "one upload per file");
    assert_eq!(actual(&m), expected(&m));
}

#[test]
fn files_over_the_limit_are_skipped_and_named_in_the_report() {
    let m = Migration::with_options(options(23));
    let summary = run(&m, AttachmentOptions::default().max_bytes(100_000));
    assert!(summary.is_complete(), "{summary}");
    let report = std::fs::read_to_string(&summary.report).unwrap();
    let row = report
        .lines()
        .find(|l| l.contains("trace.log"))
        .expect("a row for the big file");
    assert!(
        row.contains("skipped") && row.contains("over the limit"),
        "{row}"
    );
    let names: Vec<String> = actual(&m).into_values().flatten().map(|f| f.0).collect();
    assert!(!names.contains(&"trace.log".to_string()), "{names:?}");
    assert_eq!(names.len(), SAMPLE_FILES - 1);
}

#[test]
fn a_file_qtest_refuses_as_too_large_fails_alone() {
    let mut opts = options(26);
    opts.qtest_max_body_bytes = 100_000;
    let m = Migration::with_options(opts);
    let summary = run(&m, AttachmentOptions::default());
    assert_eq!(summary.records["attachment"].failed, 1, "{summary}");
    assert_eq!(
        summary.records["attachment"].created,
        SAMPLE_FILES as u64 - 1,
        "{summary}"
    );
    // Shown as a 413 (not a broken pipe): see attachments_steps.
    let failures = m.failures();
    assert!(failures.contains("case/PROJ-T1/"), "{failures}");
    let journal = &m.mocks.qtest_state().journal;
    assert_eq!(
        journal.iter().filter(|e| e.kind == "attachment").count(),
        SAMPLE_FILES - 1
    );
}

#[test]
fn no_attachments_reads_and_writes_no_file() {
    let m = Migration::with_options(options(24));
    let summary = run(&m, AttachmentOptions::off());
    assert!(summary.is_complete(), "{summary}");
    assert_eq!(uploads(&m), 0);
    let routes = m.mocks.zephyr_requests();
    assert!(
        !routes.keys().any(|r| r.contains("attachments")),
        "{routes:?}"
    );
}

#[test]
fn failed_downloads_get_more_rounds_within_the_run() {
    let m = Migration::with_options(options(27));
    // A download is one attempt (its body streams): the client can't retry it.
    m.mocks.fail_next_zephyr_downloads(3);
    let summary = run(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(
        summary.records["attachment"].created, SAMPLE_FILES as u64,
        "{summary}"
    );
    assert_eq!(uploads(&m), SAMPLE_FILES, "one upload per file");
    assert_eq!(actual(&m), expected(&m));
}

#[test]
fn refused_uploads_are_looked_up_and_sent_again_within_the_run() {
    let (m, summary) = upload_under(28, |m| m.refuse_next_qtest_writes(3));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(uploads(&m), SAMPLE_FILES, "one upload per file");
    assert_eq!(actual(&m), expected(&m));
}
