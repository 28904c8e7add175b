//! An adversarial review of issue 13 (the tool against the real services):
//! the spec's facts the clients and the mocks had both missed, and how the
//! migration copes with what the spec allows. Over real sockets, against the
//! mocks or small servers of the test's own.

use crate::support::mock::{Mocks, small};
use crate::support::{Migration, check};
use etlpool::migrate::MappingConfig;
use etlpool::mock::MockOptions;

// ---- The spec's FieldResource example: `Name`, a required system field ----

#[test]
fn a_required_system_field_the_body_sets_is_no_property_to_fill() {
    // The spec's example of a field is `Name`, system, required: the mock lists
    // Id, Name, Description and Precondition as system fields, Name required.
    let m = Mocks::start(small(1301));
    let fields = m.q("GET", "/settings/test-cases/fields", None).json();
    let name = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == "Name")
        .expect("a Name field");
    assert_eq!((&name["system_field"], &name["required"]), (&true.into(), &true.into()));
    // A create sets it through `name`, not a property.
    let body = serde_json::json!({"name": "n", "properties": m.required()});
    assert_eq!(m.q("POST", "/test-cases", Some(&body)).status, 200);
    let mut o = MockOptions::seeded(1302);
    o.sizes = small(1302).sizes;
    let run = Migration::with_options(o);
    let summary = run.run();
    assert!(summary.is_complete(), "{summary}\n{}", run.failures());
    check::assert_migrated(&run.mocks);
}

// ---- Logging an unapproved version needs the Approve permission ----

#[test]
fn a_user_who_may_not_approve_is_stopped_before_any_work_even_with_approval_off() {
    // Contract section 0: executing (logging) an unapproved case version needs
    // the Approve permission. With approval switched off every case stays at
    // 0.1, so every log would be refused: say so before any work.
    let mut o = MockOptions::seeded(1303);
    o.sizes = small(1303).sizes;
    o.qtest_can_approve = false;
    let m = Migration::with_options(o);
    let mut options = m.options();
    options.mapping = MappingConfig {
        approve_approved: false,
        approve_executed: false,
        ..MappingConfig::default()
    };
    let result = etlpool::migrate::migrate(&m.pool, &options, &etlpool::CancelToken::new());
    let message = match result {
        Ok(summary) => panic!("the run started: {summary}\n{}", m.failures()),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("Approve") && message.contains("log"), "{message}");
    assert!(m.mocks.qtest_state().journal.is_empty(), "nothing was written");
}
