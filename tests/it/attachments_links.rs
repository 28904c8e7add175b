//! Links and context arrive where the README says: Jira issue links and web
//! links in the "Zephyr" block of a case's description (or a qTest field of
//! the same label), of a cycle's description and of a log's note; a cycle's
//! test plans in its description; environment names and the labelled
//! account id of who executed in the log's note.

use crate::support::Migration;
use etlpool::migrate::{Journal, RecordKind};
use etlpool::mock::DataSizes;
use etlpool::mock::zephyr::attachments::{ENVIRONMENTS, MockAttachments};

#[test]
fn links_plans_environments_and_executors_are_carried_into_qtest_text() {
    let mut options = etlpool::mock::MockOptions::seeded(41);
    options.sizes = DataSizes {
        folders: 2,
        folder_depth: 1,
        cycle_folders: 1,
        cases: 6,
        steps_per_case: 2,
        cycles: 3,
        executions: 30,
    };
    options.attachments = MockAttachments {
        sample: true,
        big_bytes: 0,
    };
    let m = Migration::with_options(options);
    let summary = m.run();
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    // verify expects what was written, test plans and environments included.
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
    let journal = Journal::read_only(m.dir.0.join("journal.csv")).unwrap();
    let state = m.mocks.qtest_state();
    let source = m.mocks.source();

    let case_key = &source.cases[0].key;
    let case_id = journal.get(RecordKind::Case, case_key).unwrap().id;
    let case = state.test_cases.iter().find(|c| c.id == case_id).unwrap();
    assert!(
        case.description
            .contains("Jira Issues: issue id 10101 (COVERAGE)"),
        "{}",
        case.description
    );
    assert!(
        case.description
            .contains("Web Links: https://wiki.example.com/page/1 (design notes)"),
        "{}",
        case.description
    );

    for (i, cycle) in source.cycles.iter().enumerate() {
        let id = journal
            .get(RecordKind::Cycle, &cycle.id.to_string())
            .unwrap()
            .id;
        let text = &state
            .test_cycles
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .description;
        let planned = text.contains("Test Plans: PROJ-P1 Release 1 regression");
        assert_eq!(planned, i < 2, "cycle {}: {text}", cycle.key);
        if i == 0 {
            assert!(
                text.contains("Jira Issues: issue id 10102 (COVERAGE)"),
                "{text}"
            );
            assert!(
                text.contains("Web Links: https://wiki.example.com/page/2"),
                "{text}"
            );
        }
    }

    let note_of = |exec_id: u64| {
        let log = journal.get(RecordKind::Log, &exec_id.to_string())?;
        let found = state.test_logs.iter().find(|l| l.id == log.id);
        Some(found.expect("a journaled log is on qTest").note.clone())
    };
    let mut with_environment = 0;
    for exec in source
        .executions
        .iter()
        .filter(|e| e.actual_end_date.is_some())
    {
        let Some(note) = note_of(exec.id) else {
            continue; // statuses that get no log
        };
        if let Some(who) = &exec.executed_by_id {
            let labelled = format!("Executed by: {who} (Atlassian account id)");
            assert!(note.contains(&labelled), "{note}");
        }
        if let Some(env) = exec.environment_id {
            let name = ENVIRONMENTS[usize::try_from(env - 10_000).unwrap()];
            assert!(note.contains(&format!("Environment: {name}")), "{note}");
            with_environment += 1;
        }
    }
    assert!(
        with_environment > 0,
        "the seed gives some executions an environment"
    );
    let first_executed = source
        .executions
        .iter()
        .find(|e| e.actual_end_date.is_some())
        .unwrap();
    if let Some(note) = note_of(first_executed.id) {
        assert!(
            note.contains("Jira Issues: issue id 10103 (COVERAGE)"),
            "{note}"
        );
    }
}
