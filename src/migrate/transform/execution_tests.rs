use super::*;
use crate::migrate::record::Target;
use crate::migrate::transform::fixtures::{self, *};
use crate::migrate::transform::{Catalog, cycle_plan};
use crate::zephyr::examples::{CYCLE, EXECUTION};
use crate::zephyr::{Ref, TestCycle};
use serde_json::json;
use std::collections::HashMap;

fn execution() -> TestExecution {
    serde_json::from_str(EXECUTION).unwrap()
}

type Migrated = HashMap<(RecordKind, String), Target>;

fn with<R>(f: impl FnOnce(&Context<'_>) -> R) -> R {
    with_lookup(&fixtures::migrated(), f)
}

fn with_lookup<R>(migrated: &Migrated, f: impl FnOnce(&Context<'_>) -> R) -> R {
    let catalog: Catalog = fixtures::catalog();
    fixtures::with_context(&catalog, migrated, f)
}

/// The layout of a case of inline steps with these qTest ids, listed in reverse:
/// the layout must sort them by `order`.
fn qtest_steps(ids: &[u64]) -> StepLayout {
    let mut steps: Vec<crate::qtest::TestStep> = ids
        .iter()
        .zip(1u32..)
        .map(|(id, order)| crate::qtest::TestStep::new(*id, order, None))
        .collect();
    steps.reverse();
    StepLayout::inline(&crate::migrate::transform::StepRef::list(&steps))
}

fn none() -> StepLayout {
    StepLayout::default()
}

fn step_result(status: Option<u64>, actual: &str) -> ExecutionStep {
    serde_json::from_value(json!({"inline": {
        "actualResult": actual,
        "status": status.map(|id| json!({"id": id})),
    }}))
    .unwrap()
}

fn created(plan: LogPlan) -> NewTestLog {
    match plan {
        LogPlan::Create(log) => log,
        LogPlan::NoLog { status } => panic!("no log ({status})"),
    }
}

#[test]
fn the_contract_execution_becomes_a_run_and_a_log() {
    let exec = execution();
    let run = with(|ctx| run_plan(&exec, Some("Check pump"), ctx)).unwrap();
    assert_eq!(run.key, "10010/PROJ-T1");
    assert_eq!(run.parent, CycleParent::TestCycle(67_890));
    assert_eq!(
        serde_json::to_value(&run.body).unwrap(),
        json!({"name":"Check pump","test_case":{"id":55001},"test_case_version_id":88001,"properties":[]})
    );
    let steps = [step_result(Some(FAIL), "Error page")];
    let log = created(with(|ctx| log_plan(&exec, &steps, &qtest_steps(&[990]), ctx)).unwrap());
    assert_eq!(log.status, IdRef { id: 602 });
    assert_eq!(log.exe_end_date, "2018-05-20T13:15:13Z");
    assert_eq!(log.exe_start_date, "2018-05-20T13:13:13Z");
    assert_eq!(log.test_case_version_id, 88_001);
    assert_eq!(
        log.test_step_logs,
        [NewTestStepLog {
            test_step_id: 990,
            status: IdRef { id: 602 },
            actual_result: "Error page".into(),
            order: 1,
            called_test_case_id: None,
            parent_test_step_id: None,
        }]
    );
    assert_eq!(
        log.note.as_deref(),
        Some(
            "Login failed<br><br>Zephyr fields:<br>Key: PROJ-E10<br>Executed by: 5b10… (Atlassian account id)<br>Environment: id 10005"
        )
    );
}

#[test]
fn execution_statuses_map_by_name_and_not_executed_gets_no_log() {
    let mut exec = execution();
    for (status, qtest) in [(PASS, 601), (FAIL, 602), (BLOCKED, 604), (IN_PROGRESS, 603)] {
        exec.test_execution_status.id = status;
        let log = created(with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap());
        assert_eq!(log.status.id, qtest, "{status}");
    }
    exec.test_execution_status.id = NOT_EXECUTED;
    assert_eq!(
        with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap(),
        LogPlan::NoLog {
            status: "Not Executed".into()
        }
    );
    exec.test_execution_status.id = RETEST;
    let err = with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log 10100: qTest has no execution status `Retest`"
    );
}

#[test]
fn dates_are_required_and_checked() {
    let mut exec = execution();
    exec.execution_time = None;
    let log = created(with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap());
    assert_eq!(log.exe_start_date, log.exe_end_date);
    exec.actual_end_date = None;
    let err = with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap_err();
    assert_eq!(
        err.reason,
        Reason::Missing {
            field: "actualEndDate"
        }
    );
    exec.actual_end_date = Some("yesterday".into());
    let err = with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap_err();
    assert!(matches!(
        err.reason,
        Reason::BadDate {
            field: "actualEndDate",
            ..
        }
    ));
    exec.actual_end_date = Some("2018-05-20T13:15:13Z".into());
    exec.execution_time = Some(u64::MAX);
    let err = with(|ctx| log_plan(&exec, &[], &none(), ctx)).unwrap_err();
    assert!(matches!(
        err.reason,
        Reason::BadDate {
            field: "executionTime",
            ..
        }
    ));
}

#[test]
fn step_results_pair_with_qtest_steps_by_order_and_extras_go_to_the_note() {
    let exec = execution();
    let results = [
        step_result(Some(PASS), "ok"),
        step_result(None, ""),
        step_result(Some(NOT_EXECUTED), ""),
        ExecutionStep::default(),
        step_result(Some(FAIL), "late"),
    ];
    let log =
        created(with(|ctx| log_plan(&exec, &results, &qtest_steps(&[11, 12, 13]), ctx)).unwrap());
    let logged: Vec<(u64, u64, u32)> = log
        .test_step_logs
        .iter()
        .map(|s| (s.test_step_id, s.status.id, s.order))
        .collect();
    assert_eq!(logged, [(11, 601, 1), (12, 605, 2), (13, 605, 3)]);
    let note = log.note.unwrap();
    assert!(note.contains("Step 5: Fail, actual: late"), "{note}");
    assert!(!note.contains("Step 4"), "{note}");
    // Slots of called steps carry their case and calling step.
    let called = StepLayout {
        flat: Some(vec![
            None,
            Some(crate::migrate::transform::StepSlot {
                test_step_id: 41,
                called_test_case_id: Some(4),
                parent_test_step_id: Some(40),
            }),
        ]),
        top: vec![None],
        ends: Default::default(),
    };
    let two = [step_result(Some(PASS), "a"), step_result(Some(FAIL), "b")];
    let log = created(with(|ctx| log_plan(&exec, &two, &called, ctx)).unwrap());
    assert_eq!(log.test_step_logs.len(), 1);
    let s = &log.test_step_logs[0];
    assert_eq!(
        (
            s.test_step_id,
            s.called_test_case_id,
            s.parent_test_step_id,
            s.order
        ),
        (41, Some(4), Some(40), 2)
    );
    assert!(log.note.unwrap().contains("Step 1: Pass, actual: a"));
    let bad = [step_result(Some(1), "")];
    let err = with(|ctx| log_plan(&exec, &bad, &qtest_steps(&[11]), ctx)).unwrap_err();
    assert!(matches!(
        err.reason,
        Reason::UnknownZephyrId {
            what: "execution status",
            id: 1
        }
    ));
}

#[test]
fn runs_need_their_cycle_and_case_and_fall_back_to_the_default_cycle() {
    let mut exec = execution();
    exec.test_cycle = None;
    let run = with(|ctx| run_plan(&exec, None, ctx)).unwrap();
    assert_eq!(run.key, "-/PROJ-T1");
    assert_eq!(run.parent, CycleParent::TestCycle(67_001));
    assert_eq!(run.body.name, "PROJ-T1");
    let mut migrated = fixtures::migrated();
    migrated.remove(&(RecordKind::Cycle, "default".into()));
    let err = with_lookup(&migrated, |ctx| run_plan(&exec, None, ctx)).unwrap_err();
    assert_eq!(
        err.reason,
        Reason::NoDefault {
            setting: "mapping.default_cycle"
        }
    );

    exec.test_cycle = Some(Ref {
        id: 5,
        self_url: None,
    });
    let err = with(|ctx| run_plan(&exec, None, ctx)).unwrap_err();
    assert_eq!(err.to_string(), "run 5/PROJ-T1: cycle 5 is not migrated");
    exec.test_cycle = None;
    exec.test_case.self_url = Some("…/testcases/PROJ-T2/versions/1".into());
    let err = with(|ctx| run_plan(&exec, None, ctx)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "run -/PROJ-T2: case PROJ-T2 is not migrated"
    );
    exec.test_case.self_url = Some("…/testcycles/1".into());
    let err = with(|ctx| run_plan(&exec, None, ctx)).unwrap_err();
    assert_eq!((err.kind, err.key.as_str()), (RecordKind::Log, "10100"));
    assert!(matches!(err.reason, Reason::BadCaseLink { .. }));

    let mut no_version = fixtures::migrated();
    no_version.insert((RecordKind::Case, "PROJ-T1".into()), Target::id(55_001));
    let err = with_lookup(&no_version, |ctx| run_plan(&execution(), None, ctx)).unwrap_err();
    assert_eq!(
        err.reason,
        Reason::Missing {
            field: "test_case_version_id"
        }
    );
}

#[test]
fn logs_are_ordered_by_actual_end_date() {
    let at = |id: u64, end: Option<&str>| {
        let mut exec = execution();
        exec.id = id;
        exec.actual_end_date = end.map(String::from);
        exec
    };
    let mut list = vec![
        at(1, Some("2018-05-21T00:00:00Z")),
        at(2, None),
        at(3, Some("2018-05-20T23:00:00-02:00")),
        at(4, Some("2018-05-20T13:15:13Z")),
        at(5, Some("2018-05-20T13:15:13Z")),
    ];
    sort_for_logs(&mut list);
    let ids: Vec<u64> = list.iter().map(|e| e.id).collect();
    assert_eq!(ids, [4, 5, 1, 3, 2]);
}

#[test]
fn cycles_keep_dates_status_and_fields_in_the_description() {
    let text = CYCLE;
    let mut cycle: TestCycle = serde_json::from_str(text).unwrap();
    cycle.custom_fields.insert("Sprint".into(), json!(7));
    let plan = with(|ctx| cycle_plan(&cycle, ctx)).unwrap();
    assert_eq!(plan.parent, CycleParent::TestCycle(67_000));
    assert_eq!(plan.body.name, "Sprint 1");
    assert_eq!(
        plan.body.description,
        "Regression<br><br>Zephyr fields:<br>Key: PROJ-R40<br>Status: In Progress\
         <br>Planned start: 2018-05-19T13:15:13Z<br>Planned end: 2018-05-20T13:15:13Z<br>Sprint: 7"
    );
    cycle.folder = None;
    cycle.status.id = 1;
    let plan = with(|ctx| cycle_plan(&cycle, ctx)).unwrap();
    assert_eq!(plan.parent, CycleParent::Root);
    assert!(plan.body.description.contains("Status: unknown (id 1)"));
    cycle.folder = Some(Ref {
        id: 3,
        self_url: None,
    });
    let err = with(|ctx| cycle_plan(&cycle, ctx)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cycle 10010: cycle-folder 3 is not migrated"
    );
}
