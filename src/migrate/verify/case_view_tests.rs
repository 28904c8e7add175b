use super::*;
use crate::qtest::{NewTestStep, PropertyValue};
use serde_json::json;

fn body() -> NewTestCase {
    NewTestCase {
        name: "Check pump".into(),
        description: "Ensure pump works<br/>fully".into(),
        precondition: "Pump available".into(),
        parent_id: Some(5),
        properties: vec![
            PropertyValue {
                field_id: 8010,
                field_value: "PROJ-T1".into(),
            },
            PropertyValue {
                field_id: 8001,
                field_value: "712".into(),
            },
        ],
        test_steps: vec![
            NewTestStep {
                description: "Login".into(),
                expected: "Dashboard".into(),
                order: 1,
                called_test_case_id: None,
            },
            NewTestStep {
                description: "Call to PROJ-T0".into(),
                expected: String::new(),
                order: 2,
                called_test_case_id: Some(77),
            },
        ],
    }
}

/// The case as qTest returns it for `body()`: steps out of order, an extra
/// default property, rich text rewritten.
fn read_back() -> serde_json::Value {
    json!({
        "id": 55001, "name": "Check pump ", "parent_id": 5,
        "description": "Ensure pump works<br />fully", "precondition": "Pump available",
        "properties": [
            {"field_id": 8001, "field_value": "712", "field_value_name": "High"},
            {"field_id": 8010, "field_value": "PROJ-T1"},
            {"field_id": 8099, "field_value": "Manual"}
        ],
        "test_steps": [
            {"id": 2, "description": "Call to PROJ-T0", "expected": "", "order": 2, "called_test_case_id": 77},
            {"id": 1, "description": "Login", "expected": "Dashboard", "order": 1}
        ]
    })
}

fn actual(edit: impl FnOnce(&mut serde_json::Value)) -> CaseView<String> {
    let mut value = read_back();
    edit(&mut value);
    CaseView::actual(&serde_json::from_value(value).unwrap())
}

/// Mismatches found on full texts and on digests, which must agree.
fn both(expected: &CaseView<String>, actual: &CaseView<String>) -> Vec<Mismatch> {
    let full = mismatches(expected, actual);
    assert_eq!(mismatches(&expected.digest(), &actual.digest()), full);
    full
}

#[test]
fn a_faithful_copy_matches() {
    let expected = CaseView::expected(&body());
    assert_eq!(both(&expected, &actual(|_| {})), []);
}

#[test]
fn each_field_is_named() {
    let expected = CaseView::expected(&body());
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, Vec<Mismatch>); 6] = [
        (|v| v["name"] = json!("Other"), vec![Mismatch::Name]),
        (
            |v| v["description"] = json!("Ensure"),
            vec![Mismatch::Description],
        ),
        (|v| v["parent_id"] = json!(6), vec![Mismatch::Parent]),
        (
            |v| v["properties"][0]["field_value"] = json!("714"),
            vec![Mismatch::Property(8001)],
        ),
        (
            |v| v["test_steps"][1]["expected"] = json!("Nothing"),
            vec![Mismatch::StepExpected(0)],
        ),
        (
            |v| {
                let steps = v["test_steps"].as_array_mut().unwrap();
                steps.pop();
            },
            vec![Mismatch::StepCount],
        ),
    ];
    for (edit, wanted) in cases {
        assert_eq!(both(&expected, &actual(edit)), wanted);
    }
}

#[test]
fn call_links_may_be_missing_but_not_wrong() {
    let expected = CaseView::expected(&body());
    let unlinked = actual(|v| v["test_steps"][0]["called_test_case_id"] = json!(null));
    assert_eq!(both(&expected, &unlinked), []);
    let wrong = actual(|v| v["test_steps"][0]["called_test_case_id"] = json!(78));
    assert_eq!(both(&expected, &wrong), [Mismatch::StepCall(1)]);
    let linked_to_nothing = actual(|v| v["test_steps"][1]["called_test_case_id"] = json!(78));
    assert_eq!(both(&expected, &linked_to_nothing), [Mismatch::StepCall(0)]);
}

#[test]
fn missing_parents_and_called_cases_are_left_to_their_own_difference() {
    let mut b = body();
    b.parent_id = Some(MISSING);
    b.test_steps[1].called_test_case_id = Some(MISSING);
    let expected = CaseView::expected(&b);
    assert_eq!(both(&expected, &actual(|_| {})), []);
}

#[test]
fn differences_are_described_readably() {
    let lookups = crate::migrate::transform::Lookups {
        qtest_case_fields: serde_json::from_value(json!([
            {"id": 8001, "label": "Priority", "allowed_values": [
                {"value": 712, "label": "High"}, {"value": 714, "label": "Low"}]}
        ]))
        .unwrap(),
        ..Default::default()
    };
    let names = Names::new(&lookups);
    let expected = CaseView::expected(&body());
    let a = actual(|v| {
        v["properties"][0]["field_value"] = json!("714");
        v["parent_id"] = json!(null);
        v["test_steps"][1]["description"] = json!("Log in");
    });
    let described: Vec<(String, String, String)> = mismatches(&expected, &a)
        .into_iter()
        .map(|m| describe(m, &expected, &a, &names))
        .collect();
    let texts = |f: &str, e: &str, a: &str| (f.to_owned(), e.to_owned(), a.to_owned());
    assert_eq!(
        described,
        [
            texts("parent", "module 5", "none"),
            texts("Priority", "High (712)", "Low (714)"),
            texts("step 1 description", "\"Login\"", "\"Log in\""),
        ]
    );
}

#[test]
fn fingerprints_agree_for_a_case_as_sent_and_as_read_back_and_are_stable() {
    let case: TestCase = serde_json::from_value(read_back()).unwrap();
    let sent = sent_fingerprint(&body());
    // qTest's extra default property and rewritten rich text don't count.
    assert_eq!(held_fingerprint(&case, &body()), sent);
    // Kept in journals: the same body must give the same number in every
    // build (FNV-1a, not `DefaultHasher`).
    assert_eq!(sent, sent_fingerprint(&body()));
    assert_eq!(sent, 0xe7c4_41e6_c575_e0dc, "{sent:#x}");
    // An edit by people, a new step text, a move: each changes it.
    let mut edited = read_back();
    edited["name"] = json!("Renamed");
    let edited: TestCase = serde_json::from_value(edited).unwrap();
    assert_ne!(held_fingerprint(&edited, &body()), sent);
    let mut changed = body();
    changed.test_steps[0].expected = "Dashboard shown".into();
    assert_ne!(sent_fingerprint(&changed), sent);
    changed = body();
    changed.parent_id = Some(6);
    assert_ne!(sent_fingerprint(&changed), sent);
    // Linking a call that was not linked is not a change.
    changed = body();
    changed.test_steps[1].called_test_case_id = None;
    assert_eq!(sent_fingerprint(&changed), sent);
}
