//! Files on steps over real sockets: the files of Zephyr case steps go to the
//! matching qTest test steps, those of execution step results to the
//! matching qTest test step logs, once each, byte for byte; a qTest 413 is
//! reported as such; images pasted into any migrated rich text are listed.

use crate::attachments::{Files, actual, expected, options, run, upload_under, uploads};
use crate::support::Migration;
use etlpool::migrate::AttachmentOptions;

/// The files expected on objects of `object_type`.
fn on(files: &Files, object_type: &str) -> usize {
    files
        .iter()
        .filter(|((t, _), _)| t == object_type)
        .map(|(_, v)| v.len())
        .sum()
}

#[test]
fn every_step_file_arrives_once_on_its_step_or_step_log_and_a_rerun_uploads_nothing() {
    let m = Migration::with_options(options(41));
    let summary = run(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let want = expected(&m);
    assert_eq!(on(&want, "test-steps"), 2, "the sample set: {want:?}");
    assert_eq!(on(&want, "test-step-logs"), 2, "the sample set: {want:?}");
    assert_eq!(
        actual(&m),
        want,
        "each file once, on its object, byte for byte"
    );

    let before = uploads(&m);
    let again = run(&m, AttachmentOptions::default());
    assert!(again.is_complete(), "{again}");
    assert_eq!(uploads(&m), before, "the re-run uploaded");
    let listed = step_listings(&m);
    run(&m, AttachmentOptions::default());
    assert_eq!(
        step_listings(&m),
        listed,
        "a third run listed step files again"
    );
}

#[test]
fn a_reset_after_each_applied_step_upload_never_uploads_a_step_file_twice() {
    let (m, summary) = upload_under(42, |m| m.faults().qtest.set_reset_after_write_rate(1.0));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let want = expected(&m);
    let files: usize = want.values().map(Vec::len).sum();
    assert_eq!(uploads(&m), files, "one upload per file");
    assert_eq!(
        summary.records["attachment"].found, files as u64,
        "{summary}"
    );
    assert_eq!(actual(&m), want);
}

#[test]
fn a_file_qtest_refuses_as_too_large_is_reported_as_413() {
    let mut opts = options(43);
    // Big enough that the upload can't sit whole in the sockets' buffers
    // before the server answers: a server that closes without reading it
    // makes the client's write fail.
    opts.attachments.big_bytes = 24 * 1024 * 1024;
    opts.qtest_max_body_bytes = 1024 * 1024;
    let m = Migration::with_options(opts);
    let summary = run(&m, AttachmentOptions::default());
    let failures = m.failures();
    let row = failures
        .lines()
        .find(|l| l.contains("case/PROJ-T1/") && l.contains("failed"))
        .unwrap_or_else(|| panic!("a failure row for the big file: {failures}"));
    assert!(
        row.contains("status 413") && row.contains("too large for qTest"),
        "the 413 must show, not a broken connection: {row}"
    );
    assert_eq!(summary.records["attachment"].failed, 1, "{summary}\n{row}");
    // The other files went through on the same pool afterwards.
    let want = expected(&m);
    let files: usize = want.values().map(Vec::len).sum();
    assert_eq!(uploads(&m), files - 1);
}

#[test]
fn images_pasted_into_step_texts_comments_and_cycle_descriptions_are_listed() {
    let m = Migration::with_options(options(44));
    let summary = run(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let report = std::fs::read_to_string(&summary.report).unwrap();
    for n in 1..=5 {
        let url = format!("https://zephyr-cdn.example.com/images/pasted-{n}.png");
        let row = report
            .lines()
            .find(|l| l.contains(&url))
            .unwrap_or_else(|| panic!("{url} is not in the report:\n{report}"));
        assert!(
            row.contains("skipped") && row.contains("kept as a link"),
            "{row}"
        );
    }
}

#[test]
fn a_case_updated_with_new_steps_gets_its_step_files_again() {
    use etlpool::mock::zephyr::attachments::FileOwner;
    let m = Migration::with_options(options(45));
    let first = run(&m, AttachmentOptions::default());
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    let key = m
        .mocks
        .source()
        .attachments
        .iter()
        .find_map(|f| match &f.owner {
            FileOwner::CaseStep(key, _) => Some(key.clone()),
            _ => None,
        })
        .expect("a case with a step file");
    assert!(m.mocks.mutate_zephyr(|d| d.change_steps(&key)));
    // The sync updates the case: qTest replaces its steps (new ids).
    let second = run(&m, AttachmentOptions::default());
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(second.records["case"].updated, 1, "{second}");
    let want = expected(&m);
    let on_steps = |files: &Files| -> Files {
        files
            .iter()
            .filter(|((t, _), _)| t == "test-steps")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let live: std::collections::HashSet<u64> = m
        .mocks
        .qtest_state()
        .test_cases
        .iter()
        .flat_map(|c| c.test_steps.iter().map(|s| s.id))
        .collect();
    let now: Files = on_steps(&actual(&m))
        .into_iter()
        .filter(|((_, id), _)| live.contains(id))
        .collect();
    assert_eq!(
        now,
        on_steps(&want),
        "every step file on a step the case has now"
    );
}

#[test]
fn the_qtest_mock_takes_files_on_step_logs_it_has_and_404s_the_others() {
    let m = Migration::with_options(options(46));
    let summary = run(&m, AttachmentOptions::off());
    assert!(summary.is_complete(), "{summary}");
    let state = m.mocks.qtest_state();
    let step_log = state
        .test_logs
        .iter()
        .flat_map(|l| &l.test_step_logs)
        .map(|s| s.id)
        .next()
        .expect("a step log");
    assert_ne!(step_log, 0, "step logs have ids");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!(
        "{}/projects/{}",
        m.mocks.qtest_url(),
        m.mocks.qtest_project_id()
    );
    let upload = |object: &str| {
        agent
            .post(format!("{base}/{object}/blob-handles"))
            .header("Authorization", format!("Bearer {}", m.mocks.qtest_token()))
            .header("File-Name", "a.bin")
            .header("Content-Type", "application/octet-stream")
            .send(&b"abc"[..])
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(upload(&format!("test-step-logs/{step_log}")), 201);
    assert_eq!(
        upload(&format!("test-step-logs/{}", step_log + 100_000)),
        404
    );
    assert_eq!(upload("test-step-logs/0"), 404);
    let listed = agent
        .get(format!("{base}/test-step-logs/{step_log}/attachments"))
        .header("Authorization", format!("Bearer {}", m.mocks.qtest_token()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "a.bin", "{listed}");
}

/// The Zephyr requests that list the files of a step or a step result.
fn step_listings(m: &Migration) -> u64 {
    m.mocks
        .zephyr_requests()
        .iter()
        .filter(|(route, _)| route.contains("teststeps") && route.ends_with("/attachments"))
        .map(|(_, n)| *n)
        .sum()
}

#[test]
fn without_step_files_no_step_is_listed_and_the_other_files_still_migrate() {
    let m = Migration::with_options(options(43));
    let summary = run(&m, AttachmentOptions::default().steps(false));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(step_listings(&m), 0, "a step's files were listed");
    let got = actual(&m);
    assert_eq!(on(&got, "test-steps") + on(&got, "test-step-logs"), 0);
    let want = expected(&m);
    let others = on(&want, "test-cases") + on(&want, "test-logs");
    assert!(others > 0, "the sample set: {want:?}");
    assert_eq!(on(&got, "test-cases") + on(&got, "test-logs"), others);
}
