//! Adversarial review of the files of steps (issue 14 item 1): over real
//! sockets, with Zephyr behind the byte-level front of
//! [`crate::attachments_adv`] where its answers must be bent. What must
//! hold: a step's file lands on its own qTest step (or step log) or is
//! reported with a reason, never on another step, never twice, never
//! silently lost; a 413 on a step file leaves the pool usable; every image
//! pasted into rich text is listed once, as its link, and nothing else is;
//! a re-run lists no step's files again.

use crate::attachments::{Files, actual, expected, options, run as run_plain, uploads};
use crate::attachments_adv::{Front, report, run, through, with, with_length};
use crate::support::Migration;
use etlpool::migrate::{AttachmentOptions, Journal, RecordKind, RunHooks, RunSummary, SyncOptions};
use etlpool::mock::qtest::attachments::sha256_hex;
use etlpool::mock::zephyr::attachments::{FileOwner, MockFile, execution_step_id};
use etlpool::mock::zephyr::data::StepResult;

fn full() -> RunHooks {
    RunHooks::default().sync(SyncOptions::default().full(true))
}

fn run_hooks(m: &Migration, hooks: RunHooks) -> RunSummary {
    run(m, &m.options(), hooks)
}

/// The first file of the sample set on a case step / an execution step.
fn step_file(m: &Migration, on_case: bool) -> MockFile {
    m.mocks
        .source()
        .attachments
        .iter()
        .find(|f| match f.owner {
            FileOwner::CaseStep(..) => on_case,
            FileOwner::ExecutionStep(..) => !on_case,
            _ => false,
        })
        .cloned()
        .expect("the sample set has step files")
}

/// The first file on a case step, its case's key and its step's id.
fn case_step_file(m: &Migration) -> (MockFile, String, u64) {
    let f = step_file(m, true);
    match f.owner.clone() {
        FileOwner::CaseStep(key, step) => (f, key, step),
        _ => unreachable!("step_file(_, true) is on a case step"),
    }
}

/// The first file on an execution's step result, its execution and step ids.
fn execution_step_file(m: &Migration) -> (MockFile, u64, u64) {
    let f = step_file(m, false);
    match f.owner {
        FileOwner::ExecutionStep(e, step) => (f, e, step),
        _ => unreachable!("step_file(_, false) is on an execution step"),
    }
}

/// The qTest steps of migrated case `key`, in their order.
fn qtest_steps(m: &Migration, key: &str) -> Vec<etlpool::mock::qtest::state::TestStep> {
    let id = journaled(m, RecordKind::Case, key);
    let mut steps = m
        .mocks
        .qtest_state()
        .test_case(id)
        .unwrap()
        .test_steps
        .clone();
    steps.sort_by_key(|s| s.order);
    steps
}

/// The files now on any of `steps`.
fn on_steps(m: &Migration, steps: &[etlpool::mock::qtest::state::TestStep]) -> Files {
    actual(m)
        .into_iter()
        .filter(|((t, o), _)| t == "test-steps" && steps.iter().any(|s| s.id == *o))
        .collect()
}

/// A qTest object, and one file on it, as [`Files`] holds them.
type FileObject = (String, u64);
type FileRow = (String, u64, String);

/// File `id` (`name`, `size` bytes) as [`actual`] lists it on qTest step `step`.
fn on_step(step: u64, id: u64, name: &str, size: u64) -> (FileObject, Vec<FileRow>) {
    let bytes = etlpool::mock::zephyr::attachments::file_vec(id, size);
    (
        ("test-steps".to_string(), step),
        vec![(name.to_string(), size, sha256_hex(&bytes))],
    )
}

fn journaled(m: &Migration, kind: RecordKind, key: &str) -> u64 {
    let journal = Journal::read_only(m.dir.0.join("journal.csv")).expect("journal");
    journal.get(kind, key).expect("migrated").id
}

/// The report's rows that mention every one of `needles`.
fn rows(summary: &RunSummary, needles: &[&str]) -> Vec<String> {
    report(summary)
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// `files` without the file named `name` of `size` bytes.
fn without(mut files: Files, name: &str, size: u64) -> Files {
    for v in files.values_mut() {
        v.retain(|(n, s, _)| !(n == name && *s == size));
    }
    files.retain(|_, v| !v.is_empty());
    files
}

/// Zephyr's step attachment listings so far (the mock's request counts).
fn step_listings(m: &Migration) -> u64 {
    m.mocks
        .zephyr_requests()
        .iter()
        .filter(|(route, _)| route.contains("teststeps") && route.ends_with("/attachments"))
        .map(|(_, n)| *n)
        .sum()
}

/// A file added to the Zephyr mock (its bytes are made from its id).
fn add_file(m: &Migration, id: u64, owner: FileOwner, name: &str, size: u64) {
    m.mocks.mutate_zephyr(|d| {
        d.attachments.push(MockFile {
            id,
            owner,
            name: name.into(),
            size,
            content_type: "application/octet-stream".into(),
        })
    });
}

// ---- position mapping ----

#[test]
fn a_step_added_on_qtest_leaves_the_cases_step_files_reported_never_on_another_step() {
    let m = Migration::with_options(options(151));
    let first = run_plain(&m, AttachmentOptions::off());
    assert!(first.is_complete(), "{first}");
    let (f, key, _) = case_step_file(&m);
    // A person adds a step on qTest before the files are migrated.
    let id = journaled(&m, RecordKind::Case, &key);
    let steps = qtest_steps(&m, &key);
    let mut body: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| serde_json::json!({"description": s.description, "expected": s.expected, "order": s.order}))
        .collect();
    let n = body.len() as u32 + 1;
    body.push(serde_json::json!({"description": "added on qTest", "expected": "", "order": n}));
    m.mocks
        .edit_case(id, serde_json::json!({ "test_steps": body }))
        .unwrap();
    let second = run_hooks(&m, full());
    let listed = rows(&second, &[&f.name, "skipped", "can't be matched"]);
    assert_eq!(
        listed.len(),
        1,
        "reported with its reason:\n{}",
        report(&second)
    );
    let on_case_steps = on_steps(&m, &qtest_steps(&m, &key));
    assert!(
        on_case_steps.is_empty(),
        "on a step of the edited case: {on_case_steps:?}"
    );
    assert_eq!(actual(&m), without(expected(&m), &f.name, f.size));
    // A nightly re-run lists no step's files again.
    let listed_before = step_listings(&m);
    let uploaded = uploads(&m);
    let third = run_hooks(&m, full());
    assert_eq!(step_listings(&m), listed_before, "{third}");
    assert_eq!(uploads(&m), uploaded);
}

#[test]
fn a_step_zephyr_lists_without_an_id_is_reported_and_the_next_steps_keep_their_places() {
    let m = Migration::with_options(options(152));
    let (_, key, step) = case_step_file(&m);
    // The sample's file is on the case's last step; one more on its first,
    // whose id Zephyr then doesn't give.
    let first_step = step - (step % 1000) + 1;
    assert_ne!(first_step, step, "the file is not on the first step");
    add_file(
        &m,
        9101,
        FileOwner::CaseStep(key.clone(), first_step),
        "first.bin",
        333,
    );
    let listing = format!("/testcases/{key}/teststeps");
    let z = Front::start(&m.mocks.zephyr_url(), move |call, up| {
        let path = call.target.split('?').next().unwrap_or("");
        if !path.ends_with(&listing) {
            return None;
        }
        let body = String::from_utf8_lossy(&up.body)
            .replace(&format!("\"id\":{first_step}"), "\"id\":null")
            .into_bytes();
        Some(with_length(up, body.len(), &body))
    });
    let summary = run(
        &m,
        &through(&m, &z, None),
        with(AttachmentOptions::default()),
    );
    let text = report(&summary);
    let listed = rows(&summary, &[&key, "skipped", "without an id"]);
    assert_eq!(listed.len(), 1, "the id-less step is reported:\n{text}");
    // The file on the later step is on its own qTest step.
    assert_eq!(
        actual(&m),
        without(expected(&m), "first.bin", 333),
        "{text}"
    );
}

// ---- the execution step listing: a 404 that isn't "no files" ----

#[test]
fn a_step_zephyr_says_it_doesnt_know_fails_loudly_and_a_rerun_brings_its_file() {
    let m = Migration::with_options(options(153));
    let (_, e, step) = execution_step_file(&m);
    let mine = format!("/testexecutions/{e}/teststeps/{step}/attachments");
    let z = Front::start(&m.mocks.zephyr_url(), move |call, up| {
        let path = call.target.split('?').next().unwrap_or("");
        let step_listing = path.contains("/teststeps/") && path.ends_with("/attachments");
        let message = match () {
            _ if path.ends_with(&mine) => {
                "The test execution step with the given ID does not exist in the test execution."
            }
            // Zephyr's other 404 for a step: exists, has no files.
            _ if step_listing && up.body.ends_with(br#"[]}"#) => {
                "No attachment metadata was found for the given test execution step."
            }
            _ => return None,
        };
        let body = serde_json::json!({"errorCode": 404, "message": message}).to_string();
        let answer = crate::attachments_adv::Upstream {
            status: 404,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.clone().into_bytes(),
        };
        Some(with_length(&answer, body.len(), body.as_bytes()))
    });
    let summary = run(
        &m,
        &through(&m, &z, None),
        with(AttachmentOptions::default()),
    );
    let failed = rows(&summary, &[&format!("steplog/{e}/{step}"), "failed"]);
    assert_eq!(
        failed.len(),
        1,
        "reported, not silent:\n{}",
        report(&summary)
    );
    assert_eq!(summary.records["attachment"].failed, 1, "{summary}");
    // Zephyr knows the step again: the next run brings its file, once.
    let again = run_hooks(&m, RunHooks::default());
    assert!(again.is_complete(), "{again}\n{}", m.failures());
    assert_eq!(actual(&m), expected(&m));
}

#[test]
fn a_step_result_that_went_into_the_logs_note_has_its_files_reported_by_name() {
    let m = Migration::with_options(options(154));
    let (_, e, _) = execution_step_file(&m);
    // One more result than the case has steps: it goes into the note.
    let extra = m.mocks.mutate_zephyr(|d| {
        let exec = d.executions.iter_mut().find(|x| x.id == e).unwrap();
        let status_id = exec.step_results[0].status_id;
        exec.step_results.push(StepResult {
            description: "not on qTest".into(),
            test_data: None,
            expected_result: None,
            actual_result: Some("done".into()),
            status_id,
        });
        execution_step_id(e, exec.step_results.len() - 1)
    });
    add_file(
        &m,
        9102,
        FileOwner::ExecutionStep(e, extra),
        "in-note.txt",
        77,
    );
    let summary = run_plain(&m, AttachmentOptions::default());
    let listed = rows(&summary, &["in-note.txt", "skipped", "note"]);
    assert_eq!(listed.len(), 1, "{}", report(&summary));
    assert_eq!(actual(&m), without(expected(&m), "in-note.txt", 77));
}

// ---- idempotency: a crash right after a step upload, then a resumed run ----

/// For a migration of `seed` made by `before` (if any), then `crash`: which
/// write of the `crash` run is the first upload to a step, and to a step log.
fn step_uploads(seed: u64, before: Option<RunHooks>, crash: RunHooks) -> [u64; 2] {
    let m = Migration::with_options(options(seed));
    let mut after = 0;
    if let Some(hooks) = before {
        assert!(run_hooks(&m, hooks).is_complete());
        after = m.mocks.qtest_state().journal.len() as u64;
    }
    let s = run_hooks(&m, crash);
    assert!(s.is_complete(), "{s}");
    let writes = m.mocks.qtest_state().journal;
    let nth = |object: &str| {
        let mut w = writes.iter().skip(after as usize);
        let upload = w
            .find(|w| w.kind == "attachment" && w.target.contains(object))
            .expect("uploaded");
        upload.seq - after
    };
    [nth("/test-steps/"), nth("/test-step-logs/")]
}

/// A migration of `seed` made by `before` (if any), then `crash`, whose
/// qTest dies right after the `k`-th write of that run; then `resume` in a
/// new process: every file once, on its object.
fn crash_and_resume(
    seed: u64,
    k: u64,
    before: Option<RunHooks>,
    crash: RunHooks,
    resume: RunHooks,
) {
    let dir = crate::support::Scratch::new("steps-crash");
    let mut opts = options(seed);
    opts.state_file = Some(dir.0.join("qtest-state.jsonl"));
    let mut m = Migration::with_options(opts);
    if let Some(hooks) = before {
        let first = run_hooks(&m, hooks);
        assert!(first.is_complete(), "{first}");
    }
    m.mocks.faults().qtest.set_crash_after_writes(Some(k));
    let crashed = run_hooks(&m, crash);
    assert!(!crashed.is_complete(), "k={k}: {crashed}");
    m.mocks.faults().qtest.clear();
    m.mocks.restart_qtest().unwrap();
    m.new_process();
    let resumed = run_hooks(&m, resume);
    assert!(resumed.is_complete(), "k={k}: {resumed}\n{}", m.failures());
    assert_eq!(
        actual(&m),
        expected(&m),
        "k={k}: each file once, on its object"
    );
}

#[test]
fn a_crash_right_after_a_step_upload_then_a_resume_puts_each_file_once_on_its_step() {
    // A project migrated without files gets them with --full (README).
    let off = || Some(with(AttachmentOptions::off()));
    for k in step_uploads(155, off(), full()) {
        crash_and_resume(155, k, off(), full(), full());
    }
}

// ---- 413 on a step file ----

#[test]
fn a_step_file_over_qtests_limit_is_a_413_and_the_pool_goes_on() {
    let mut opts = options(156);
    opts.qtest_max_body_bytes = 1024 * 1024;
    let m = Migration::with_options(opts);
    let f = step_file(&m, true);
    add_file(&m, 9103, f.owner.clone(), "huge.bin", 6 * 1024 * 1024);
    let summary = run_plain(&m, AttachmentOptions::default());
    let failed = rows(&summary, &["failed"]);
    assert_eq!(failed.len(), 1, "{}", report(&summary));
    assert!(
        failed[0].contains("step/")
            && failed[0].contains("status 413")
            && failed[0].contains("huge.bin is too large for qTest"),
        "{}",
        failed[0]
    );
    // The refused upload's connection is the only one qTest closed: no
    // request after it was read from a stream left mid-body (a 400, or a
    // reset, would show here).
    let stats = m.mocks.qtest_stats().snapshot();
    assert_eq!((stats.server_closed, stats.resets), (1, 0), "{stats:?}");
    // Every other file went through the same pool, whole.
    assert_eq!(
        actual(&m),
        without(expected(&m), "huge.bin", 6 * 1024 * 1024)
    );
}

// ---- images pasted into rich text ----

#[test]
fn every_pasted_image_is_listed_once_as_its_link_and_nothing_else_is() {
    let m = Migration::with_options(options(157));
    let key = m.mocks.source().cases[0].key.clone();
    let many: String = (0..40)
        .map(|i| format!(r#"<img src="https://cdn.example/many-{i}.png">"#))
        .collect();
    let objective = concat!(
        r#"<p><img data-src="https://cdn.example/lazy.png" src="https://cdn.example/real.png"></p>"#,
        r#"<img src = "https://cdn.example/spaced.png">"#,
        r#"<img alt="a > b" src="https://cdn.example/after-gt.png">"#,
        r#"<img src="https://cdn.example/q.png?a=1&amp;b=2">"#,
        r#"<img src="https://cdn.example/twice.png"> and again <img src="https://cdn.example/twice.png">"#,
        r#"<a href="https://cdn.example/not-an-image.png">a link</a>"#,
        r#"<IMG SRC=https://cdn.example/bare.png>"#,
    );
    m.mocks.mutate_zephyr(|d| {
        d.cases[0].objective = Some(objective.into());
        d.cases[0].precondition = Some(many.clone());
    });
    let summary = run_plain(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let prefix = format!("case/{key}/inline-");
    let text = report(&summary);
    let listed: Vec<&str> = text.lines().filter(|l| l.contains(&prefix)).collect();
    let links: Vec<String> = listed
        .iter()
        .map(|l| {
            l.rsplit("can't read it): ")
                .next()
                .unwrap()
                .trim_end_matches('"')
                .to_owned()
        })
        .collect();
    let mut want: Vec<String> = [
        "real.png",
        "spaced.png",
        "after-gt.png",
        "q.png?a=1&b=2",
        "twice.png",
        "bare.png",
    ]
    .iter()
    .map(|n| format!("https://cdn.example/{n}"))
    .collect();
    want.extend((0..40).map(|i| format!("https://cdn.example/many-{i}.png")));
    assert_eq!(links, want, "{text}");
}

#[test]
fn an_image_pasted_into_a_case_the_sync_updates_is_listed() {
    let m = Migration::with_options(options(158));
    let first = run_plain(&m, AttachmentOptions::default());
    assert!(first.is_complete(), "{first}");
    let (_, key, _) = case_step_file(&m);
    let url = "https://zephyr-cdn.example.com/images/after-sync.png";
    assert!(m.mocks.mutate_zephyr(|d| {
        let changed = d.change_steps(&key);
        let case = d.cases.iter_mut().find(|c| c.key == key).unwrap();
        case.objective = Some(format!(r#"new: <img src="{url}">"#));
        changed
    }));
    let second = run_plain(&m, AttachmentOptions::default());
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(second.records["case"].updated, 1, "{second}");
    let listed = rows(&second, &[url, "skipped", "kept as a link"]);
    assert_eq!(listed.len(), 1, "{}", report(&second));
}

// ---- a sync that updates a case with a new step list ----

#[test]
fn a_step_inserted_in_zephyr_ahead_of_a_step_with_a_file_takes_the_file_to_that_steps_new_place() {
    use etlpool::mock::zephyr::attachments::case_step_id;
    use etlpool::mock::zephyr::data::{Script, Step};
    let m = Migration::with_options(options(159));
    let first = run_plain(&m, AttachmentOptions::default());
    assert!(first.is_complete(), "{first}");
    let (f, key, step) = case_step_file(&m);
    let before = uploads(&m);
    // Zephyr keeps a step's id (and files) when a step is inserted ahead of
    // it; the mock numbers steps by position, so the file follows by hand.
    assert!(m.mocks.mutate_zephyr(|d| {
        let changed = d.change_steps(&key);
        let case = d.cases.iter_mut().find(|c| c.key == key).unwrap();
        let Script::Steps(steps) = &mut case.script else {
            return false;
        };
        steps.insert(
            0,
            Step::Inline {
                description: "inserted in Zephyr".into(),
                test_data: None,
                expected_result: None,
            },
        );
        let moved = case_step_id(case.id, (step % 1000) as usize);
        let file = d.attachments.iter_mut().find(|a| a.id == f.id).unwrap();
        file.owner = FileOwner::CaseStep(key.clone(), moved);
        changed
    }));
    let second = run_plain(&m, AttachmentOptions::default());
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(second.records["case"].updated, 1, "{second}");
    // The file is on the qTest step that is its step now, once, whole; no
    // other live step of the case has a file.
    let live = qtest_steps(&m, &key);
    let at = (step % 1000) as usize;
    let want: Files = [on_step(live[at].id, f.id, &f.name, f.size)].into();
    assert_eq!(on_steps(&m, &live), want);
    assert_eq!(uploads(&m), before + 1, "only the moved file was uploaded");
}

// ---- request cost ----

#[test]
fn a_full_rerun_after_a_first_migration_lists_no_steps_files_again() {
    let m = Migration::with_options(options(160));
    let first = run_plain(&m, AttachmentOptions::default());
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    let listed = step_listings(&m);
    let uploaded = uploads(&m);
    let again = run_hooks(&m, full());
    assert!(again.is_complete(), "{again}\n{}", m.failures());
    assert_eq!(uploads(&m), uploaded, "{again}");
    assert_eq!(
        step_listings(&m) - listed,
        0,
        "a --full re-run listed step files again"
    );
}

#[test]
fn files_of_inline_steps_around_a_call_to_test_land_on_their_own_qtest_steps() {
    use etlpool::mock::zephyr::attachments::case_step_id;
    use etlpool::mock::zephyr::data::{Script, Step};
    let m = Migration::with_options(options(161));
    let (f, key, _) = case_step_file(&m);
    // [A, B(file)] becomes [A(file), call to another case, B(file)].
    let zephyr_id = m.mocks.mutate_zephyr(|d| {
        let other = d
            .cases
            .iter()
            .find(|c| c.key != key && matches!(c.script, Script::Steps(_)))
            .map(|c| c.key.clone())
            .unwrap();
        let case = d.cases.iter_mut().find(|c| c.key == key).unwrap();
        let Script::Steps(steps) = &mut case.script else {
            unreachable!()
        };
        assert_eq!(
            steps.len(),
            2,
            "the sample's step-file cases have two steps"
        );
        steps.insert(
            1,
            Step::Call {
                test_case_key: other,
                parameters: Vec::new(),
            },
        );
        let id = case.id;
        let file = d.attachments.iter_mut().find(|a| a.id == f.id).unwrap();
        file.owner = FileOwner::CaseStep(key.clone(), case_step_id(id, 2));
        id
    });
    add_file(
        &m,
        9104,
        FileOwner::CaseStep(key.clone(), case_step_id(zephyr_id, 0)),
        "a.txt",
        55,
    );
    let summary = run_plain(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let steps = qtest_steps(&m, &key);
    assert_eq!(steps.len(), 3, "one qTest step per Zephyr step");
    let want: Files = [
        on_step(steps[0].id, 9104, "a.txt", 55),
        on_step(steps[2].id, f.id, &f.name, f.size),
    ]
    .into();
    assert_eq!(on_steps(&m, &steps), want);
}

#[test]
fn a_first_migration_that_crashes_after_a_step_upload_is_finished_by_a_plain_rerun() {
    // The next nightly run, as scheduled: no --full.
    let plain = || with(AttachmentOptions::default());
    for k in step_uploads(162, None, plain()) {
        crash_and_resume(162, k, None, plain(), plain());
    }
}
