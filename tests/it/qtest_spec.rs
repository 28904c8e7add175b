//! The qTest side of following the published spec (issue 13), over real
//! sockets: what the qTest mock now does like the real service, and that the
//! client and the migration cope. One section per finding.

use std::collections::BTreeSet;
use std::sync::Arc;

use etlpool::http::AuthProvider;
use etlpool::migrate::{MappingConfig, MigrateOptions, Phases, QtestAuth};
use etlpool::mock::qtest::state::{QtestState, TestCase as MockCase};
use etlpool::mock::zephyr::data::{Dataset, Script};
use etlpool::mock::{DataSizes, MockOptions, MockServers};
use etlpool::qtest::{CycleParent, NewTestCycle, QtestLogin, TestCycle};
use serde_json::{Value, json};

use crate::support::flatten::{
    assert_results_on_their_steps, flattening_zephyr, has_calls, migrate_through,
};
use crate::support::migration::clients;
use crate::support::mock::{Mocks, Resp, call, small};
use crate::support::{Migration, Seen, scripted, test_pool};

fn sizes() -> DataSizes {
    DataSizes {
        folders: 6,
        folder_depth: 3,
        cycle_folders: 4,
        cases: 30,
        steps_per_case: 4,
        cycles: 6,
        executions: 80,
    }
}

fn complete(m: &Migration, options: &MigrateOptions) {
    let summary = m.run_with(options);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
}

// ---- 1. The password login names its site ----

/// `POST /oauth/token` on the mock with this `Authorization`.
fn login(m: &Mocks, authorization: Option<&str>) -> Resp {
    m.oauth(
        "grant_type=password&username=etlpool&password=etlpool",
        authorization,
    )
}

#[test]
fn the_mock_refuses_a_login_that_does_not_name_its_site() {
    let mut o = small(101);
    o.qtest_site = "acme".into();
    let m = Mocks::start(o);
    let none = login(&m, None);
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], "unauthorized");
    // base64("other:") and base64("acme") (no colon) name no site of this mock.
    for wrong in ["Basic b3RoZXI6", "Basic YWNtZQ==", "Bearer x"] {
        let r = login(&m, Some(wrong));
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (401, Some("invalid_client")),
            "{wrong}"
        );
    }
    let ok = login(&m, Some("Basic YWNtZTo=")); // base64("acme:")
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.json()["access_token"].is_string());
    assert_eq!(m.m.qtest_tokens_issued(), 1);
}

#[test]
fn the_login_sends_basic_site_colon_from_the_host_or_the_setting() {
    let server = scripted(|_, req| {
        crate::support::json(
            200,
            json!({"access_token": "t", "expires_in": 3599, "token": req.path}),
        )
    });
    let pool = test_pool().build().unwrap();
    let sent = |seen: &Seen| {
        seen.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.clone())
    };
    let localhost = format!("http://localhost:{}/api/v3", server.server.addr().port());
    QtestLogin::new(&pool, &localhost, "u", "p")
        .unwrap()
        .authorization()
        .unwrap();
    let named = QtestLogin::new(&pool, &format!("{}/api/v3", server.url()), "u", "p").unwrap();
    named.with_site("apitryout").authorization().unwrap();
    let seen = server.seen.lock().clone();
    assert_eq!(
        seen.iter().map(sent).collect::<Vec<_>>(),
        [
            Some("Basic bG9jYWxob3N0Og==".to_string()), // "localhost:", the host's first label
            Some("Basic YXBpdHJ5b3V0Og==".to_string()), // the spec's example site
        ]
    );
    // An address names no site: the error says what to set, and nothing is sent.
    let ip = QtestLogin::new(&pool, &format!("{}/api/v3", server.url()), "u", "p").unwrap();
    let err = ip.authorization().unwrap_err().to_string();
    assert!(err.contains("QTEST_SITE"), "{err}");
    assert_eq!(server.count(), 2);
}

#[test]
fn a_migration_logs_in_with_the_site_name() {
    let mut o = MockOptions::seeded(102);
    o.sizes = small(102).sizes;
    o.qtest_site = "acme".into();
    let m = Migration::with_options(o);
    let (username, password) = m.mocks.qtest_login();
    let mut endpoints = m.endpoints();
    endpoints.qtest_auth = QtestAuth::Login {
        username: username.into(),
        password: password.into(),
        site: Some("acme".into()),
    };
    complete(
        &m,
        &MigrateOptions {
            endpoints,
            ..m.options()
        },
    );
    assert!(m.mocks.qtest_tokens_issued() >= 1);
}

// ---- 2. Nested cycles under hyphenated keys ----

/// Every cycle of a tree, with its depth from 1.
fn flatten(cycles: &[TestCycle], depth: usize, out: &mut Vec<(String, usize)>) {
    for c in cycles {
        out.push((c.name.clone(), depth));
        flatten(&c.test_cycles, depth + 1, out);
    }
}

#[test]
fn the_client_reads_cycles_nested_under_test_cycles() {
    let m = Mocks::start(small(103));
    let raw = m
        .q(
            "GET",
            "/test-cycles?parentId=0&parentType=root&expand=descendants",
            None,
        )
        .json();
    let release = &raw[0];
    assert_eq!(release["name"], "Release 2023.4");
    assert!(
        release.get("test_cycles").is_none(),
        "the spec's key is hyphenated"
    );
    assert_eq!(
        release["test-cycles"][0]["test-cycles"][0]["test-cycles"][0]["name"],
        "Smoke"
    );
    let (_, qtest) = clients(&m.m);
    let mut seen = Vec::new();
    flatten(
        &qtest.cycles(CycleParent::Root, true).unwrap(),
        1,
        &mut seen,
    );
    assert_eq!(
        seen,
        [
            ("Release 2023.4".to_string(), 1),
            ("Regression".to_string(), 2),
            ("Week 1".to_string(), 3),
            ("Smoke".to_string(), 4),
            ("Week 2".to_string(), 3),
        ]
    );
}

#[test]
fn a_resume_without_the_journal_finds_nested_cycles_and_verify_sees_them() {
    let m = Migration::new(104, sizes());
    complete(&m, &m.options());
    let state = m.mocks.qtest_state();
    let nested = state
        .test_cycles
        .iter()
        .filter(|c| depth(&state, c.id) >= 3)
        .count();
    assert!(nested > 0, "the seed nests migrated cycles two levels deep");
    let writes = state.journal.len();
    std::fs::remove_file(m.dir.0.join("journal.csv")).unwrap();
    let again = m.run();
    assert!(again.is_complete(), "{again}\n{}", m.failures());
    assert_eq!(
        m.mocks.qtest_state().journal.len(),
        writes,
        "a resume without the journal created records again"
    );
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
}

fn depth(state: &QtestState, id: u64) -> usize {
    let cycle = state.test_cycle(id).unwrap();
    match cycle.parent_type.as_str() {
        "test-cycle" => 1 + depth(state, cycle.parent_id),
        _ => 1,
    }
}

// ---- 3. One case's steps come with expand=teststep ----

#[test]
fn one_case_comes_with_its_steps_only_when_asked_as_the_spec_says() {
    let m = Mocks::start(small(105));
    let root = m.module("Root", None);
    let id = m.case("Check pump", root, "PROJ-T1")["id"]
        .as_u64()
        .unwrap();
    let plain = m.q("GET", &format!("/test-cases/{id}"), None).json();
    assert!(plain.get("test_steps").is_none() && plain["properties"].is_array());
    let list_flags = m
        .q(
            "GET",
            &format!("/test-cases/{id}?expandSteps=true&expandProps=true"),
            None,
        )
        .json();
    assert!(
        list_flags.get("test_steps").is_none(),
        "the list's flags mean nothing here"
    );
    let expanded = m
        .q("GET", &format!("/test-cases/{id}?expand=teststep"), None)
        .json();
    assert_eq!(expanded["test_steps"][0]["description"], "Login");
    let (_, qtest) = clients(&m.m);
    let read = qtest.test_case(id).unwrap().unwrap();
    assert_eq!(read.test_steps.len(), 1);
    assert!(read.test_steps[0].id.is_some());
}

#[test]
fn logs_made_by_a_later_run_keep_their_step_results() {
    let m = Migration::new(106, sizes());
    let only = |phases: &str| MigrateOptions {
        only: phases.parse::<Phases>().unwrap(),
        ..m.options()
    };
    complete(&m, &only("modules,cases,cycles"));
    complete(&m, &only("runs,logs"));
    let state = m.mocks.qtest_state();
    let with_steps = state
        .test_logs
        .iter()
        .filter(|l| !l.test_step_logs.is_empty())
        .count();
    let executed_with_steps = executed_step_cases(m.mocks.source());
    assert!(executed_with_steps > 0);
    assert!(
        with_steps >= executed_with_steps,
        "{with_steps} logs carry step results; executions of step cases logged: {executed_with_steps}"
    );
}

/// Executions of step-by-step cases that get a log (their status is not Not Executed).
fn executed_step_cases(src: &Dataset) -> usize {
    let not_executed: Vec<u64> = src
        .statuses
        .iter()
        .filter(|s| s.name == "Not Executed")
        .map(|s| s.id)
        .collect();
    src.executions
        .iter()
        .filter(|e| !not_executed.contains(&e.status_id))
        .filter(|e| matches!(src.case(&e.test_case_key).map(|c| &c.script), Some(Script::Steps(s)) if !s.is_empty()))
        .count()
}

// ---- 4. Step logs of called steps ----

#[test]
fn the_mock_wants_called_steps_logged_with_their_case_and_calling_step() {
    let m = Mocks::start(small(107));
    let root = m.module("Root", None);
    let called = m.case("Login", root, "PROJ-T1");
    let mut properties = m.required();
    properties.push(json!({"field_id": m.field("Zephyr Key"), "field_value": "PROJ-T2"}));
    let caller = m.q("POST", "/test-cases", Some(&json!({"name": "Checkout", "parent_id": root,
        "properties": properties,
        "test_steps": [{"description": "Open", "expected": "", "order": 1},
                       {"description": "Call to PROJ-T1", "expected": "", "order": 2, "called_test_case_id": called["id"]}]})));
    assert_eq!(caller.status, 200, "{}", caller.text);
    let caller = caller.json();
    let cycle = m
        .q("POST", "/test-cycles", Some(&json!({"name": "c"})))
        .json()["id"]
        .as_u64()
        .unwrap();
    let run = m.q("POST", &format!("/test-runs?parentId={cycle}&parentType=test-cycle"),
        Some(&json!({"name": "r", "properties": [], "test_case": {"id": caller["id"]}, "test_case_version_id": caller["test_case_version_id"]}))).json();
    let passed = m.m.qtest_config().status_named("Passed").unwrap().id;
    let (own, calling, called_step) = (
        &caller["test_steps"][0]["id"],
        &caller["test_steps"][1]["id"],
        &called["test_steps"][0]["id"],
    );
    let log = |step_logs: Value| {
        let body = json!({"status": {"id": passed}, "exe_start_date": "2024-01-01T00:00:00Z",
            "exe_end_date": "2024-01-01T00:01:00Z", "test_case_version_id": caller["test_case_version_id"],
            "test_step_logs": step_logs});
        m.q(
            "POST",
            &format!("/test-runs/{}/test-logs", run["id"]),
            Some(&body),
        )
    };
    let step = |id: &Value, extra: Value| {
        let mut s = json!({"test_step_id": id, "status": {"id": passed}, "order": 1});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    for (bad, why) in [
        (
            json!([step(called_step, json!({}))]),
            "a called step without its call fields",
        ),
        (
            json!([step(
                called_step,
                json!({"called_test_case_id": called["id"]})
            )]),
            "without the calling step",
        ),
        (
            json!([step(
                called_step,
                json!({"called_test_case_id": called["id"], "parent_test_step_id": own})
            )]),
            "a parent that calls nothing",
        ),
        (json!([step(calling, json!({}))]), "the calling step itself"),
        (
            json!([step(
                own,
                json!({"called_test_case_id": called["id"], "parent_test_step_id": calling})
            )]),
            "call fields on an own step",
        ),
    ] {
        let r = log(bad);
        assert_eq!(r.status, 400, "{why}: {}", r.text);
    }
    let good = log(json!([
        step(own, json!({})),
        step(
            called_step,
            json!({"called_test_case_id": called["id"], "parent_test_step_id": calling})
        )
    ]));
    assert_eq!(good.status, 201, "{}", good.text);
    let read = &good.json()["test_step_logs"][1];
    assert_eq!(
        (&read["called_test_case_id"], &read["parent_test_step_id"]),
        (&called["id"], calling)
    );
}

#[test]
fn a_migration_never_logs_a_calling_step_when_zephyr_reports_one_result_per_step() {
    // The Zephyr mock gives a call step one result of its own: it goes into the note.
    let m = Migration::new(108, sizes());
    assert!(
        has_calls(m.mocks.source()),
        "the seed has call-to-test steps"
    );
    complete(&m, &m.options());
    let state = m.mocks.qtest_state();
    let calling: BTreeSet<u64> = state
        .test_cases
        .iter()
        .flat_map(|c| &c.test_steps)
        .filter(|t| t.called_test_case_id.is_some())
        .map(|t| t.id)
        .collect();
    let mut noted = 0;
    for log in &state.test_logs {
        let case = run_case(&state, log.run_id);
        for s in &log.test_step_logs {
            assert!(
                !calling.contains(&s.test_step_id),
                "log {} logs a calling step",
                log.id
            );
            if s.called_test_case_id.is_none() {
                assert!(
                    case.test_steps.iter().any(|t| t.id == s.test_step_id),
                    "log {}",
                    log.id
                );
            }
        }
        let calls = case
            .test_steps
            .iter()
            .filter(|t| t.called_test_case_id.is_some())
            .count();
        if calls > 0 && log.note.contains("<br>Step ") {
            noted += 1;
        }
    }
    assert!(noted > 0, "a call's own result goes into the note");
}

#[test]
fn flattened_step_results_are_placed_on_the_called_cases_steps() {
    let mocks = Arc::new(
        MockServers::start(MockOptions {
            sizes: sizes(),
            ..MockOptions::seeded(109)
        })
        .unwrap(),
    );
    assert!(has_calls(mocks.source()));
    let front = flattening_zephyr(mocks.clone(), None);
    let summary = migrate_through(&mocks, &front);
    assert!(summary.is_complete(), "{summary}");
    assert!(
        assert_results_on_their_steps(&mocks) > 0,
        "no called step was logged"
    );
}

fn run_case(state: &QtestState, run: u64) -> &MockCase {
    state
        .test_case(state.test_run(run).unwrap().test_case_id)
        .unwrap()
}

// ---- 7. Every list read to its end ----

#[test]
fn test_cycles_page_by_100_and_the_client_reads_every_page() {
    let m = Mocks::start(small(110));
    for n in 0..130 {
        let r = m.q(
            "POST",
            "/test-cycles?parentId=0&parentType=root",
            Some(&json!({"name": format!("c{n}")})),
        );
        assert_eq!(r.status, 201);
    }
    let count = |q: &str| {
        m.q(
            "GET",
            &format!("/test-cycles?parentId=0&parentType=root{q}"),
            None,
        )
        .json()
        .as_array()
        .unwrap()
        .len()
    };
    // 131 root cycles with the seeded release.
    assert_eq!(count(""), 100, "the spec's default page size");
    assert_eq!(count("&page=2"), 31);
    assert_eq!(
        count("&pageSize=-1"),
        131,
        "a negative pageSize without a page: all"
    );
    assert_eq!(count("&page=2&pageSize=50"), 50);
    assert_eq!(
        m.q("GET", "/test-cycles?page=1&pageSize=-1", None).status,
        400
    );
    let (_, qtest) = clients(&m.m);
    let names: BTreeSet<String> = qtest
        .cycles(CycleParent::Root, false)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names.len(), 131);
    let parent = qtest
        .create_cycle(
            CycleParent::Root,
            &NewTestCycle {
                name: "p".into(),
                description: String::new(),
            },
        )
        .unwrap()
        .id;
    for n in 0..105 {
        qtest
            .create_cycle(
                CycleParent::TestCycle(parent),
                &NewTestCycle {
                    name: format!("k{n}"),
                    description: String::new(),
                },
            )
            .unwrap();
    }
    assert_eq!(
        qtest
            .cycles(CycleParent::TestCycle(parent), false)
            .unwrap()
            .len(),
        105
    );
    let tree = qtest.cycles(CycleParent::Root, true).unwrap();
    let p = tree.iter().find(|c| c.id == parent).unwrap();
    assert_eq!(p.test_cycles.len(), 105);
}

// ---- 8. Fields by type, required fields by default ----

#[test]
fn fields_are_written_by_type_and_required_ones_get_their_default() {
    let m = Migration::new(111, sizes());
    complete(&m, &m.options());
    let cfg = m.mocks.qtest_config();
    let field = |label: &str| cfg.case_field(label).unwrap();
    let (level, team, category, build, release) = (
        field("Test Level"),
        field("Team"),
        field("Category"),
        field("Build Number"),
        field("Release Date"),
    );
    assert!(level.required && team.required && category.multiple);
    let state = m.mocks.qtest_state();
    let key = field("Zephyr Key").id;
    let migrated: Vec<&MockCase> = state
        .test_cases
        .iter()
        .filter(|c| c.property(key).is_some())
        .collect();
    assert_eq!(migrated.len(), 30);
    for case in &migrated {
        assert_eq!(case.property(level.id), level.default_value.as_deref());
        assert_eq!(case.property(team.id), Some("QA"));
    }
    let src = m.mocks.source();
    let zephyr = |c: &MockCase| src.case(c.property(key).unwrap()).unwrap();
    let with_fields: Vec<&&MockCase> = migrated
        .iter()
        .filter(|c| !zephyr(c).custom_fields.is_empty())
        .collect();
    assert!(!with_fields.is_empty());
    for case in with_fields {
        let source = &zephyr(case).custom_fields;
        let label = source["Category"][0].as_str().unwrap();
        let id = category
            .allowed_values
            .iter()
            .find(|v| v.label == label)
            .unwrap()
            .value;
        assert_eq!(
            case.property(category.id),
            Some(format!("[{id}]").as_str()),
            "a multi-select holds a list"
        );
        assert_eq!(
            case.property(build.id),
            Some(source["Build Number"].to_string().as_str())
        );
        let date = source["Release Date"].as_str().unwrap();
        assert_eq!(
            case.property(release.id),
            Some(format!("{date}T00:00:00Z").as_str())
        );
    }
}

#[test]
fn a_required_field_the_mapping_cannot_fill_fails_its_cases_by_name() {
    let m = Migration::new(112, sizes());
    // Estimated times into the required "Test Level" combo box: no such value.
    let mut mapping = MappingConfig::default();
    mapping.fields.estimated_time = "Test Level".into();
    let summary = m.run_with(&MigrateOptions {
        mapping,
        ..m.options()
    });
    let timed: Vec<&str> = m
        .mocks
        .source()
        .cases
        .iter()
        .filter(|c| c.estimated_time.is_some())
        .map(|c| c.key.as_str())
        .collect();
    assert!(!timed.is_empty());
    assert_eq!(
        summary.records["case"].failed as usize,
        timed.len(),
        "{}",
        m.failures()
    );
    assert_eq!(summary.records["case"].created as usize, 30 - timed.len());
    let failures = m.failures();
    for key in timed {
        let row = failures
            .lines()
            .find(|l| l.starts_with(&format!("case,{key},")))
            .unwrap();
        assert!(
            row.contains("qTest field `Test Level (combo box 3)` can't take"),
            "{row}"
        );
    }
}

// ---- 9. Same labels first; approval ----

#[test]
fn approved_and_executed_cases_are_approved_and_statuses_keep_their_label() {
    let m = Migration::new(113, sizes());
    complete(&m, &m.options());
    let (src, state, cfg) = (
        m.mocks.source(),
        m.mocks.qtest_state(),
        m.mocks.qtest_config(),
    );
    let key = cfg.case_field("Zephyr Key").unwrap().id;
    let status = cfg.case_field("Status").unwrap();
    let approved_value = status
        .allowed_values
        .iter()
        .find(|v| v.label == "Approved")
        .unwrap()
        .value
        .to_string();
    let executed: BTreeSet<&str> = src
        .executions
        .iter()
        .map(|e| e.test_case_key.as_str())
        .collect();
    let status_name = |id: u64| {
        src.statuses
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .name
            .as_str()
    };
    let mut approved_status = 0;
    for case in state
        .test_cases
        .iter()
        .filter(|c| c.property(key).is_some())
    {
        let zephyr = src.case(case.property(key).unwrap()).unwrap();
        let is_approved = status_name(zephyr.status_id) == "Approved";
        if is_approved {
            approved_status += 1;
            assert_eq!(
                case.property(status.id),
                Some(approved_value.as_str()),
                "{}: Approved -> Approved",
                zephyr.key
            );
        }
        let approved = case.current().approved;
        assert_eq!(
            approved,
            is_approved || executed.contains(zephyr.key.as_str()),
            "{}",
            zephyr.key
        );
        assert_eq!(
            case.versions.len(),
            1 + usize::from(approved),
            "{}: approved once",
            zephyr.key
        );
    }
    assert!(approved_status > 0);
    for run in &state.test_runs {
        let case = state.test_case(run.test_case_id).unwrap();
        assert_eq!(
            run.test_case_version_id,
            case.current().id,
            "runs record the approved version"
        );
    }
}

#[test]
fn a_case_approved_by_a_run_that_stopped_before_journaling_it_gets_its_runs_on_the_new_version() {
    let m = Migration::new(118, sizes());
    let only = |phases: &str| MigrateOptions {
        only: phases.parse::<Phases>().unwrap(),
        ..m.options()
    };
    complete(&m, &only("modules,cases,cycles"));
    // Approve every unapproved case behind the journal's back, as a run that
    // crashed between approving and journaling would have.
    let agent = crate::support::mock::agent();
    let base = format!(
        "{}/projects/{}",
        m.mocks.qtest_url(),
        m.mocks.qtest_project_id()
    );
    for case in m
        .mocks
        .qtest_state()
        .test_cases
        .iter()
        .filter(|c| !c.current().approved)
    {
        let r = call(
            &agent,
            "PUT",
            &format!("{base}/test-cases/{}/approve", case.id),
            Some(m.mocks.qtest_token()),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    complete(&m, &only("runs,logs"));
    let state = m.mocks.qtest_state();
    assert!(!state.test_runs.is_empty());
    for run in &state.test_runs {
        let case = state.test_case(run.test_case_id).unwrap();
        assert_eq!(case.versions.len(), 2, "approved once, not again");
        assert_eq!(
            run.test_case_version_id,
            case.current().id,
            "the run names the approved version"
        );
    }
}

#[test]
fn a_user_who_may_not_approve_is_told_what_to_grant_before_any_work() {
    let mut o = MockOptions::seeded(114);
    o.sizes = small(114).sizes;
    o.qtest_can_approve = false;
    let m = Migration::with_options(o);
    let err =
        etlpool::migrate::migrate(&m.pool, &m.options(), &etlpool::CancelToken::new()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("Approve") && message.contains("approve_executed"),
        "{message}"
    );
    assert!(
        m.mocks.qtest_state().journal.is_empty(),
        "nothing was written"
    );
    // The profile the check reads says so.
    let (_, qtest) = clients(&m.mocks);
    let profile = qtest.user_profile().unwrap().unwrap();
    assert_eq!(profile.test_case.and_then(|p| p.approve), Some(false));
}

// ---- 11. qTest's rate-limit headers ----

#[test]
fn every_answer_carries_the_quota_and_a_spent_quota_is_a_429_without_retry_after() {
    let mut o = small(115);
    o.qtest_quota.per_minute = 3;
    let m = Mocks::start(o);
    let remaining: Vec<(u16, Option<String>, Option<String>, bool)> = (0..4)
        .map(|_| {
            let r = m.q("GET", "/modules", None);
            let h = |n: &str| r.header(n).map(str::to_string);
            (
                r.status,
                h("x-ratelimit-remaining-minute"),
                h("x-ratelimit-remaining-month"),
                r.header("retry-after").is_some(),
            )
        })
        .collect();
    // Three fit in the minute (unless it turned meanwhile: then the counts restart).
    let statuses: Vec<u16> = remaining.iter().map(|r| r.0).collect();
    assert!(
        statuses == [200, 200, 200, 429] || statuses.iter().filter(|s| **s == 200).count() >= 3,
        "{remaining:?}"
    );
    let last = remaining.last().unwrap();
    if last.0 == 429 {
        assert_eq!(
            (last.1.as_deref(), last.3),
            (Some("0"), false),
            "no Retry-After: {remaining:?}"
        );
    }
    assert_eq!(remaining[0].1.as_deref(), Some("2"));
    let month: Vec<u64> = remaining
        .iter()
        .map(|r| r.2.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(month[0] > month[1] && month[1] > month[2], "{month:?}");
    let mut o = small(116);
    o.qtest_quota.throttle_rate = 1.0;
    let throttled = Mocks::start(o);
    let r = throttled.q("GET", "/modules", None);
    assert_eq!((r.status, r.header("retry-after")), (429, None));
    assert_eq!(r.header("x-ratelimit-remaining-minute"), Some("0"));
    assert!(r.json()["message"].is_string());
}
