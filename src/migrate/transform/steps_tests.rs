use super::*;
use crate::zephyr::{ScriptType, TestScript};
use serde_json::json;

/// A Zephyr script of inline steps and calls: `"-"` is an inline step, a key a call.
fn script(items: &[&str]) -> Vec<TestStep> {
    let steps: Vec<_> = items
        .iter()
        .map(|item| match *item {
            "-" => json!({"inline": {"description": "do"}}),
            key => json!({"testCase": {"testCaseKey": key}}),
        })
        .collect();
    serde_json::from_value(json!(steps)).unwrap()
}

/// A migrated case: its Zephyr script and its qTest step ids, with the
/// qTest case each step calls.
fn case(case_id: u64, items: &[&str], qtest: &[(u64, Option<u64>)]) -> Arc<CaseSteps> {
    Arc::new(CaseSteps {
        case_id,
        qtest: qtest
            .iter()
            .map(|&(id, called_test_case_id)| StepRef {
                id,
                called_test_case_id,
            })
            .collect(),
        zephyr: Some(ScriptShape::of(CaseScript::Steps(&script(items)))),
    })
}

fn slot(id: u64, called: Option<(u64, u64)>) -> Option<StepSlot> {
    Some(StepSlot {
        test_step_id: id,
        called_test_case_id: called.map(|(c, _)| c),
        parent_test_step_id: called.map(|(_, p)| p),
    })
}

type Source = HashMap<String, Arc<CaseSteps>>;

fn source(cases: &[(&str, Arc<CaseSteps>)]) -> Source {
    cases
        .iter()
        .map(|(k, c)| (k.to_string(), c.clone()))
        .collect()
}

#[test]
fn inline_steps_pair_up_in_order() {
    let src = source(&[("P-T1", case(1, &["-", "-"], &[(11, None), (12, None)]))]);
    let layout = step_layout("P-T1", &src).unwrap();
    assert_eq!(layout.flat, Some(vec![slot(11, None), slot(12, None)]));
    assert_eq!(layout.top, [slot(11, None), slot(12, None)]);
    assert_eq!(layout.slots_for(2), layout.top);
    assert!(!layout.is_empty());
    let listed = StepRef::list(&[
        crate::qtest::TestStep::new(12, 2, None),
        crate::qtest::TestStep::new(11, 1, None),
    ]);
    assert_eq!(StepLayout::inline(&listed), layout);
}

#[test]
fn a_linked_call_logs_the_called_steps_with_their_case_and_calling_step() {
    let src = source(&[
        (
            "P-T2",
            case(
                2,
                &["-", "P-T1", "-"],
                &[(21, None), (22, Some(1)), (23, None)],
            ),
        ),
        ("P-T1", case(1, &["-", "-"], &[(11, None), (12, None)])),
    ]);
    let layout = step_layout("P-T2", &src).unwrap();
    let flat = vec![
        slot(21, None),
        slot(11, Some((1, 22))),
        slot(12, Some((1, 22))),
        slot(23, None),
    ];
    assert_eq!(layout.flat.as_ref(), Some(&flat));
    // A service that gives a call one result of its own: the call's result has no step.
    assert_eq!(layout.top, [slot(21, None), None, slot(23, None)]);
    assert_eq!(layout.slots_for(4), flat);
    assert_eq!(layout.slots_for(3), layout.top);
    // Neither length: the flattened layout, position by position.
    assert_eq!(layout.slots_for(9), flat);
}

#[test]
fn an_unlinked_call_keeps_its_results_in_the_note_and_the_rest_in_place() {
    // The called case was not migrated yet when P-T2 was created: no link on qTest.
    let src = source(&[
        ("P-T2", case(2, &["P-T1", "-"], &[(22, None), (23, None)])),
        ("P-T1", case(1, &["-", "-"], &[(11, None), (12, None)])),
    ]);
    let layout = step_layout("P-T2", &src).unwrap();
    assert_eq!(layout.flat, Some(vec![None, None, slot(23, None)]));
    // A link to another case than the one Zephyr calls is no link either.
    let src = source(&[
        (
            "P-T2",
            case(2, &["P-T1", "-"], &[(22, Some(99)), (23, None)]),
        ),
        ("P-T1", case(1, &["-"], &[(11, None)])),
    ]);
    assert_eq!(
        step_layout("P-T2", &src).unwrap().flat,
        Some(vec![None, slot(23, None)])
    );
}

#[test]
fn nested_calls_name_the_innermost_case_and_its_calling_step() {
    let src = source(&[
        ("P-T3", case(3, &["P-T2"], &[(31, Some(2))])),
        (
            "P-T2",
            case(2, &["-", "P-T1"], &[(21, None), (22, Some(1))]),
        ),
        ("P-T1", case(1, &["-"], &[(11, None)])),
    ]);
    let layout = step_layout("P-T3", &src).unwrap();
    assert_eq!(
        layout.flat,
        Some(vec![slot(21, Some((2, 31))), slot(11, Some((1, 22)))])
    );
    assert_eq!(layout.top, [None]);
}

#[test]
fn loops_unknown_and_unreadable_cases_leave_only_the_own_steps() {
    let looped = source(&[(
        "P-T1",
        case(1, &["-", "P-T1"], &[(11, None), (12, Some(1))]),
    )]);
    let layout = step_layout("P-T1", &looped).unwrap();
    assert_eq!(layout.flat, None);
    assert_eq!(layout.top, [slot(11, None), None]);
    assert_eq!(
        *layout.slots_for(5),
        [slot(11, None), None, None, None, None]
    );
    let unknown = source(&[("P-T2", case(2, &["P-T9", "-"], &[(21, None), (22, None)]))]);
    let layout = step_layout("P-T2", &unknown).unwrap();
    assert_eq!(layout.flat, None);
    // P-T9's results (how many is unknown) sit before P-T2's own last step.
    assert_eq!(*layout.slots_for(4), [None, None, None, slot(22, None)]);
    let mut unread = (*case(2, &["-", "-"], &[(21, None), (22, None)])).clone();
    unread.zephyr = None;
    let layout = step_layout("P-T2", &source(&[("P-T2", Arc::new(unread))])).unwrap();
    assert_eq!(
        (&layout.flat, &layout.top),
        (&None, &vec![slot(21, None), slot(22, None)])
    );
    assert_eq!(*layout.slots_for(3), [slot(21, None), slot(22, None), None]);
    assert!(step_layout("P-T404", &Source::new()).unwrap().is_empty());
}

#[test]
fn a_case_whose_step_counts_differ_places_nothing_by_position() {
    // qTest has one step less than Zephyr's script: positions can't be trusted.
    let src = source(&[("P-T1", case(1, &["-", "-"], &[(11, None)]))]);
    assert_eq!(
        step_layout("P-T1", &src).unwrap().flat,
        Some(vec![None, None])
    );
}

#[test]
fn shapes_count_what_the_case_transform_creates() {
    let text = |kind, text: &str| TestScript {
        id: None,
        kind,
        text: text.into(),
    };
    for (script, len) in [
        (CaseScript::None, 0),
        (CaseScript::Script(&text(ScriptType::Plain, "Do it")), 1),
        (CaseScript::Script(&text(ScriptType::Plain, "  ")), 0),
        (CaseScript::Script(&text(ScriptType::Bdd, "Given")), 0),
    ] {
        assert_eq!(ScriptShape::of(script).len(), len, "{script:?}");
    }
    let steps = script(&["-", "P-T7", "-"]);
    let shape = ScriptShape::of(CaseScript::Steps(&steps));
    assert_eq!((shape.len(), shape.is_empty()), (3, false));
    assert_eq!(
        (shape.call_at(0), shape.call_at(1), shape.call_at(5)),
        (None, Some("P-T7"), None)
    );
}

#[test]
fn the_known_head_keeps_no_step_of_an_unlinked_call() {
    // P-T3 calls P-T2 without a link on qTest; P-T2 calls P-T9, unknown.
    let src = source(&[
        (
            "P-T3",
            case(
                3,
                &["-", "P-T2", "-"],
                &[(31, None), (32, None), (33, None)],
            ),
        ),
        ("P-T2", case(2, &["-", "P-T9"], &[(21, None), (22, None)])),
    ]);
    let layout = step_layout("P-T3", &src).unwrap();
    assert_eq!(layout.flat, None);
    assert_eq!(
        layout.ends,
        (vec![slot(31, None), None], vec![slot(33, None)])
    );
    assert_eq!(
        *layout.slots_for(5),
        [slot(31, None), None, None, None, slot(33, None)]
    );
    // Fewer results than both ends: only the head is placed.
    assert_eq!(*layout.slots_for(1), [slot(31, None)]);
}
