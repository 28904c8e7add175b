//! `ZephyrClient`, `QtestClient` and `QtestLogin` over real sockets, against
//! the embedded mocks (and, where a behaviour must be scripted, a loopback
//! server that records what it reads). Nothing leaves 127.0.0.1.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::migration::{all, clients, readable, required_properties};
use crate::support::scripted;
use etlpool::http::{ApiClient, Auth, AuthProvider};
use etlpool::migrate::{ZephyrScript, read_script};
use etlpool::mock::zephyr::data::{Script, Step};
use etlpool::mock::{MockOptions, MockServers};
use etlpool::qtest::{
    CycleParent, IdRef, NewModule, NewTestCase, NewTestCycle, NewTestLog, NewTestRun, NewTestStep,
    PropertyValue, QtestClient, QtestLogin, SearchRequest, TestCase,
};
use etlpool::zephyr::{Page, ScriptType, TestStep, ZephyrClient};
use etlpool::{Error, Pool};
use serde_json::{Value, json};

fn mocks(edit: impl FnOnce(&mut MockOptions)) -> MockServers {
    let mut options = MockOptions::seeded(11);
    edit(&mut options);
    MockServers::start(options).expect("start the mocks")
}

fn requests(stats: &etlpool::mock::ServerStats) -> u64 {
    stats.snapshot().requests
}

// ---- Zephyr ----

#[test]
fn zephyr_paging_reads_every_case_once_when_the_server_lowers_max_results() {
    let m = mocks(|o| o.zephyr_max_results = 7);
    let zephyr = clients(&m).0.with_page_size(10);
    let before = requests(&m.zephyr_stats());
    let mut pages = Vec::new();
    zephyr
        .test_cases(|page| {
            let keys = readable(page).into_iter().map(|c| c.key);
            pages.push(keys.collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
    let keys: Vec<String> = pages.concat();
    let source: Vec<String> = m.source().cases.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys, source);
    assert_eq!(requests(&m.zephyr_stats()) - before, 8);
}

#[test]
fn zephyr_pages_carry_next_until_the_last_and_the_total() {
    let m = mocks(|_| {});
    let zephyr = clients(&m).0;
    let page = |start: &str| -> Page<Value> {
        let query = [
            ("projectKey", "PROJ"),
            ("startAt", start),
            ("maxResults", "20"),
        ];
        zephyr.api().get_json("/testcases", &query).unwrap()
    };
    let first = page("0");
    assert_eq!(
        (first.total, first.is_last, first.values.len()),
        (Some(50), Some(false), 20)
    );
    let next = first
        .next
        .expect("a next link on a page that is not the last");
    assert!(next.starts_with(&m.zephyr_url()), "{next}");
    assert!(
        next.contains("startAt=20") && next.contains("maxResults=20"),
        "{next}"
    );
    let last = page("40");
    assert_eq!(
        (last.next, last.is_last, last.values.len()),
        (None, Some(true), 10)
    );
    assert_eq!(zephyr.count("/testcases", &[]).unwrap(), Some(50));
}

/// A Zephyr-like server with `items` cases that sends only the required
/// `startAt`, `maxResults` and `values`: no `next`, `total` or `isLast`.
fn bare_zephyr(items: usize) -> crate::support::Scripted {
    scripted(move |_, req| {
        let num = |k: &str| req.query_param(k).and_then(|v| v.parse::<usize>().ok());
        let (start, size) = (num("startAt").unwrap_or(0), num("maxResults").unwrap_or(10));
        let values: Vec<Value> = (start..items.min(start + size))
            .map(|n| json!({"n": n}))
            .collect();
        crate::support::json(
            200,
            json!({"startAt": start, "maxResults": size, "values": values}),
        )
    })
}

#[test]
fn zephyr_paging_without_next_total_or_is_last_stops_on_a_short_or_empty_page() {
    let pool = crate::support::test_pool().build().unwrap();
    for (items, pages) in [(25, 3), (30, 4), (0, 1)] {
        let server = bare_zephyr(items);
        let api = ApiClient::new(&pool, &server.url(), Auth::None).unwrap();
        let zephyr = ZephyrClient::new(api, "PROJ").with_page_size(10);
        let got: Vec<Value> = readable(zephyr.all("/testcases", &[]).unwrap());
        let ns: Vec<u64> = got.iter().map(|v| v["n"].as_u64().unwrap()).collect();
        assert_eq!(ns, (0..items as u64).collect::<Vec<_>>(), "{items} items");
        assert_eq!(server.count(), pages, "{items} items");
    }
}

#[test]
fn zephyr_steps_and_scripts_plain_bdd_and_none() {
    // More steps than one /teststeps page holds (100).
    let m = mocks(|o| o.sizes.steps_per_case = 130);
    let zephyr = clients(&m).0;
    let cases = all(|visit| zephyr.test_cases(visit));
    let (mut steps, mut plain, mut bdd) = (0, 0, 0);
    for case in &cases {
        let source = &m.source().case(&case.key).unwrap().script;
        let script = read_script(&zephyr, case).unwrap();
        match (source, &script) {
            (Script::Steps(wrote), ZephyrScript::Steps(read)) => {
                assert_eq!(read.len(), 130);
                assert!(
                    read.iter().zip(wrote).all(|(r, w)| same_step(r, w)),
                    "{}",
                    case.key
                );
                let wrong = zephyr.test_script(&case.key).unwrap_err();
                assert_eq!(wrong.status(), Some(422), "{}", case.key);
                steps += 1;
            }
            (Script::Plain(text) | Script::Bdd(text), ZephyrScript::Text(read)) => {
                assert_eq!(&read.text, text);
                match read.kind {
                    ScriptType::Plain => plain += 1,
                    ScriptType::Bdd => bdd += 1,
                }
                assert_eq!(
                    matches!(source, Script::Bdd(_)),
                    read.kind == ScriptType::Bdd
                );
                let wrong = zephyr.test_steps(&case.key).unwrap_err();
                assert_eq!(wrong.status(), Some(422), "{}", case.key);
            }
            other => panic!("{}: read {other:?}", case.key),
        }
    }
    assert_eq!(steps + plain + bdd, 50);
    assert!(steps > 0 && plain > 0 && bdd > 0, "{steps} {plain} {bdd}");
}

fn same_step(read: &TestStep, wrote: &Step) -> bool {
    match (read, wrote) {
        (TestStep::Inline(i), Step::Inline { description, .. }) => {
            i.description.as_ref() == Some(description)
        }
        (TestStep::Call(c), Step::Call { test_case_key, .. }) => &c.test_case_key == test_case_key,
        _ => false,
    }
}

#[test]
fn zephyr_executions_by_cycle_partition_all_executions() {
    let m = mocks(|o| o.zephyr_max_results = 16);
    let zephyr = clients(&m).0;
    let mut seen = HashSet::new();
    for cycle in &m.source().cycles {
        let execs = all(|visit| zephyr.executions(Some(&cycle.key), visit));
        let wanted: HashSet<u64> = m
            .source()
            .executions
            .iter()
            .filter(|e| e.cycle_id == Some(cycle.id))
            .map(|e| e.id)
            .collect();
        assert!(
            execs
                .iter()
                .all(|e| e.test_cycle.as_ref().map(|c| c.id) == Some(cycle.id))
        );
        let ids: HashSet<u64> = execs.iter().map(|e| e.id).collect();
        assert_eq!((ids.len(), &ids), (execs.len(), &wanted), "{}", cycle.key);
        seen.extend(ids);
    }
    // The rest are the ad-hoc executions, outside any cycle.
    let every = all(|visit| zephyr.executions(None, visit));
    let ad_hoc: HashSet<u64> = every
        .iter()
        .filter(|e| e.test_cycle.is_none())
        .map(|e| e.id)
        .collect();
    assert!(!ad_hoc.is_empty() && ad_hoc.is_disjoint(&seen));
    assert_eq!(seen.len() + ad_hoc.len(), m.source().executions.len());
    assert_eq!(every.len(), m.source().executions.len());
}

#[test]
fn a_malformed_body_is_a_decode_error_and_the_next_call_succeeds() {
    let m = mocks(|_| {});
    let (zephyr, qtest) = clients(&m);
    m.faults().zephyr.set_malformed_rate(1.0);
    m.faults().qtest.set_malformed_rate(1.0);
    let zephyr_error = zephyr.test_cases(|_| Ok(())).unwrap_err();
    assert!(
        matches!(&zephyr_error, Error::Decode(d) if d.status == 200),
        "{zephyr_error:?}"
    );
    let qtest_error = qtest.case_fields().unwrap_err();
    assert!(
        matches!(&qtest_error, Error::Decode(d) if d.status == 200),
        "{qtest_error:?}"
    );
    m.faults().zephyr.clear();
    m.faults().qtest.clear();
    assert_eq!(all(|visit| zephyr.test_cases(visit)).len(), 50);
    assert!(!qtest.case_fields().unwrap().is_empty());
}

pub(crate) fn zephyr_on(server: &crate::support::Scripted, page_size: u64) -> ZephyrClient {
    let pool = crate::support::test_pool().build().unwrap();
    let api = ApiClient::new(&pool, &server.url(), Auth::None).unwrap();
    ZephyrClient::new(api, "PROJ").with_page_size(page_size)
}

#[test]
fn zephyr_reads_the_records_the_spec_allows_and_a_naive_client_rejects() {
    // Seeded odd records: owners with a null account id, executions without
    // testCase.id, ad-hoc executions with testCycle null or absent.
    let m = mocks(|_| {});
    let zephyr = clients(&m).0;
    let src = m.source();
    let cases = all(|visit| zephyr.test_cases(visit));
    assert_eq!(cases.len(), src.cases.len());
    for case in &cases {
        let owner = src.case(&case.key).unwrap().owner.as_deref();
        assert_eq!(case.owner.as_ref().map(|o| o.account_id.as_str()), owner);
    }
    let cycles = all(|visit| zephyr.test_cycles(visit));
    assert_eq!(cycles.len(), src.cycles.len());
    let execs = all(|visit| zephyr.executions(None, visit));
    assert_eq!(execs.len(), src.executions.len());
    for (read, wrote) in execs.iter().zip(&src.executions) {
        assert_eq!(read.id, wrote.id);
        assert_eq!(read.test_cycle.as_ref().map(|c| c.id), wrote.cycle_id);
        assert_eq!(read.case_version().unwrap().key, wrote.test_case_key);
    }
    assert!(execs.iter().any(|e| e.test_case.id.is_none()));
    assert!(execs.iter().any(|e| e.test_cycle.is_none()));
}

#[test]
fn zephyr_an_unreadable_record_fails_alone_and_its_listing_goes_on() {
    let m = mocks(|o| {
        o.unreadable_records = 2;
        o.zephyr_max_results = 7;
    });
    let zephyr = clients(&m).0;
    let src = m.source();
    let broken = |quirk| src.cases.iter().filter(move |c| c.quirk == quirk);
    let mut records = Vec::new();
    zephyr
        .test_cases(|page| {
            records.extend(page);
            Ok(())
        })
        .unwrap();
    let (good, bad) = etlpool::zephyr::split(records);
    assert_eq!(good.len(), src.cases.len() - 2);
    let unreadable = Some(etlpool::mock::zephyr::data::Quirk::Unreadable);
    let want: Vec<String> = broken(unreadable).map(|c| c.key.clone()).collect();
    let names: Vec<String> = bad.iter().map(|b| b.name_by_key()).collect();
    assert_eq!(names, want);
    for b in &bad {
        assert!(
            b.reason.contains("null") && b.excerpt.starts_with('{'),
            "{b}"
        );
        assert!(b.to_string().contains(&b.name_by_key()), "{b}");
        assert!(
            b.to_string().contains(&format!("position {}", b.position)),
            "{b}"
        );
    }
    // Executions without id and key are named by their position.
    let mut records = Vec::new();
    zephyr
        .executions(None, |page| {
            records.extend(page);
            Ok(())
        })
        .unwrap();
    let positions: Vec<usize> = src
        .executions
        .iter()
        .enumerate()
        .filter(|(_, e)| e.quirk == unreadable)
        .map(|(i, _)| i)
        .collect();
    let (good, bad) = etlpool::zephyr::split(records);
    assert_eq!(good.len(), src.executions.len() - 2);
    let names: Vec<String> = bad.iter().map(|b| b.name_by_id()).collect();
    let want: Vec<String> = positions.iter().map(|p| format!("#{p}")).collect();
    assert_eq!(names, want);
    assert!(
        bad.iter().all(|b| b.reason.contains("missing field")),
        "{bad:?}"
    );
}

#[test]
fn zephyr_offset_paging_goes_on_after_a_short_page_that_is_not_the_last() {
    // 25 items; the server leaves items out of its first page (as one that
    // filters by permission after paging does) but says it is not the last.
    let server = scripted(|_, req| {
        let start: usize = req
            .query_param("startAt")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (values, last): (Vec<usize>, bool) = match start {
            0 => ((0..7).collect(), false),
            10 => ((10..20).collect(), false),
            _ => ((20..25).collect(), true),
        };
        let values: Vec<Value> = values.into_iter().map(|n| json!({"n": n})).collect();
        crate::support::json(
            200,
            json!({"startAt": start, "maxResults": 10, "isLast": last, "values": values}),
        )
    });
    let zephyr = zephyr_on(&server, 10);
    let got: Vec<Value> = readable(zephyr.all("/folders", &[]).unwrap());
    let ns: Vec<u64> = got.iter().map(|v| v["n"].as_u64().unwrap()).collect();
    assert_eq!(ns.len(), 22, "{ns:?}");
    assert_eq!(server.count(), 3);
}

#[test]
fn zephyr_cursor_paging_follows_next_start_at_id_and_cannot_loop() {
    // 2,500 executions with ids 1..=2500 behind a NextGen endpoint that caps
    // `limit` at 1000, repeats the last item of each page at the start of the
    // next, and whose cursor may stall.
    let stall = Arc::new(AtomicUsize::new(0));
    let stalls = stall.clone();
    // (startAtId, limit, projectKey) of each request.
    type Asked = Vec<(u64, u64, Option<String>)>;
    let asked: Arc<parking_lot::Mutex<Asked>> = Arc::default();
    let log = asked.clone();
    let server = scripted(move |_, req| {
        let num = |k: &str| req.query_param(k).and_then(|v| v.parse::<u64>().ok());
        let (start, limit) = (
            num("startAtId").unwrap_or(0),
            num("limit").unwrap_or(10).min(1000),
        );
        let project = req.query_param("projectKey").map(str::to_owned);
        log.lock().push((start, num("limit").unwrap_or(0), project));
        assert!(
            req.path.starts_with("/testexecutions/nextgen"),
            "{}",
            req.path
        );
        let first = start.max(1).saturating_sub(u64::from(start > 1));
        let ids: Vec<u64> = (first..=2500).take(limit as usize).collect();
        let mut next = ids.last().copied().filter(|&l| l < 2500).map(|l| l + 1);
        if start == 1001 && stalls.fetch_add(1, Ordering::SeqCst) == 0 {
            next = Some(start); // a cursor that fails to move
        }
        let values: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"id": id, "project": {"id": 1},
            "testCase": {"self": format!("x/testcases/PROJ-T{id}/versions/1")},
            "testExecutionStatus": {"id": 5}})
            })
            .collect();
        crate::support::json(
            200,
            json!({"next": null, "nextStartAtId": next, "limit": limit, "values": values}),
        )
    });
    let zephyr = zephyr_on(&server, 5000);
    let execs = all(|visit| zephyr.executions(None, visit));
    let ids: Vec<u64> = execs.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=2500).collect::<Vec<_>>(),
        "every execution once, in order"
    );
    let asked = asked.lock().clone();
    let project = Some("PROJ".to_string());
    assert!(
        asked
            .iter()
            .all(|(_, limit, p)| *limit == 1000 && *p == project),
        "{asked:?}"
    );
    let starts: Vec<u64> = asked.iter().map(|(s, _, _)| *s).collect();
    // The stalled cursor (1001 again) moves on past the page's highest id.
    assert_eq!(starts, [0, 1001, 2000], "{asked:?}");
    assert_eq!(stall.load(Ordering::SeqCst), 1);
}

#[test]
fn zephyr_scripts_follow_the_link_and_fall_back_to_the_other_endpoint_on_422() {
    // PROJ-T1 has steps, PROJ-T2 a plain script, PROJ-T3 none at all.
    let server = scripted(|_, req| {
        let wrong = || {
            crate::support::json(
                422,
                json!({"errorCode": 422, "message": "use the other endpoint"}),
            )
        };
        match req.path.split('?').next().unwrap_or_default() {
            "/testcases/PROJ-T1/teststeps" => crate::support::json(
                200,
                json!({"startAt": 0, "maxResults": 100,
                "isLast": true, "values": [{"inline": {"description": "Login"}}]}),
            ),
            "/testcases/PROJ-T2/testscript" => {
                crate::support::json(200, json!({"type": "plain", "text": "Try it"}))
            }
            "/testcases/PROJ-T3/testscript" => {
                crate::support::json(404, json!({"errorCode": 404, "message": "none"}))
            }
            _ => wrong(),
        }
    });
    let zephyr = zephyr_on(&server, 100);
    let case = |key: &str, link: Option<&str>| {
        let mut v = json!({"id": 1, "key": key, "name": "n", "project": {"id": 1},
            "priority": {"id": 1}, "status": {"id": 1}});
        if let Some(link) = link {
            v["testScript"] = json!({"self": format!("https://z/v2/testcases/{key}/{link}")});
        }
        serde_json::from_value::<etlpool::zephyr::TestCase>(v).unwrap()
    };
    let read = |key: &str, link: Option<&str>| {
        let before = server.count();
        let script = read_script(&zephyr, &case(key, link)).unwrap();
        (script, server.count() - before)
    };
    let steps = |s: &ZephyrScript| matches!(s, ZephyrScript::Steps(v) if v.len() == 1);
    let text = |s: &ZephyrScript| matches!(s, ZephyrScript::Text(t) if t.text == "Try it");
    // The link names the right endpoint: one request.
    let (s, n) = read("PROJ-T1", Some("teststeps"));
    assert!(steps(&s) && n == 1, "{s:?} {n}");
    let (s, n) = read("PROJ-T2", Some("testscript"));
    assert!(text(&s) && n == 1, "{s:?} {n}");
    // The link names the other endpoint (as the spec's example does for a
    // step-by-step case): 422, then the right one.
    let (s, n) = read("PROJ-T1", Some("testscript"));
    assert!(steps(&s) && n == 2, "{s:?} {n}");
    let (s, n) = read("PROJ-T2", Some("teststeps"));
    assert!(text(&s) && n == 2, "{s:?} {n}");
    let (s, n) = read("PROJ-T2", Some("other"));
    assert!(text(&s) && n == 2, "{s:?} {n}");
    // No script: a 404 from /testscript.
    assert_eq!(read("PROJ-T3", Some("testscript")).0, ZephyrScript::None);
    // No link (the spec makes it optional): asked all the same.
    assert_eq!(read("PROJ-T3", None), (ZephyrScript::None, 2));
    // 422 from both is an error naming the status.
    let e = read_script(&zephyr, &case("PROJ-T9", Some("testscript"))).unwrap_err();
    assert_eq!(e.status(), Some(422));
}

#[test]
fn zephyr_project_is_read_by_key() {
    let m = mocks(|_| {});
    let zephyr = clients(&m).0;
    let project = zephyr.project().unwrap().unwrap();
    assert_eq!(project.key, "PROJ");
    assert_eq!(m.zephyr_requests().get("projects/{}"), Some(&1));
    let pool = crate::support::test_pool().build().unwrap();
    let api = ApiClient::new(
        &pool,
        &m.zephyr_url(),
        Auth::Bearer(m.zephyr_token().into()),
    )
    .unwrap();
    assert_eq!(ZephyrClient::new(api, "OTHER").project().unwrap(), None);
}

// ---- qTest ----

fn ids<T>(items: &[T], id: impl Fn(&T) -> u64) -> Vec<u64> {
    items.iter().map(id).collect()
}

fn new_case(name: &str, parent: u64, properties: Vec<PropertyValue>) -> NewTestCase {
    NewTestCase {
        name: name.into(),
        description: format!("{name}<br>described"),
        precondition: "Pump available".into(),
        parent_id: Some(parent),
        properties,
        test_steps: Vec::new(),
    }
}

fn key_field(qtest: &QtestClient) -> u64 {
    let fields = qtest.case_fields().unwrap();
    fields.iter().find(|f| f.label == "Zephyr Key").unwrap().id
}

fn module(qtest: &QtestClient, name: &str, parent: Option<u64>) -> u64 {
    let body = NewModule {
        name: name.into(),
        description: String::new(),
        parent_id: parent,
    };
    let created = qtest.create_module(parent, &body).unwrap();
    assert_eq!((created.name.as_str(), created.parent_id), (name, parent));
    created.id
}

fn cycle(qtest: &QtestClient, name: &str, parent: CycleParent) -> u64 {
    let body = NewTestCycle {
        name: name.into(),
        description: format!("{name} run"),
    };
    qtest.create_cycle(parent, &body).unwrap().id
}

#[test]
fn qtest_module_and_cycle_trees_read_back_nested() {
    let m = mocks(|_| {});
    let qtest = clients(&m).1;
    let login = module(&qtest, "Login", None);
    let forms = module(&qtest, "Forms", Some(login));
    let tree = qtest.modules(None, true).unwrap();
    let root = tree.iter().find(|m| m.id == login).unwrap();
    assert_eq!(ids(&root.children, |m| m.id), [forms]);
    assert_eq!(
        ids(&qtest.modules(Some(login), false).unwrap(), |m| m.id),
        [forms]
    );
    let sprints = cycle(&qtest, "Sprints", CycleParent::Root);
    let one = cycle(&qtest, "Sprint 1", CycleParent::TestCycle(sprints));
    let roots = qtest.cycles(CycleParent::Root, true).unwrap();
    let nested = &roots.iter().find(|c| c.id == sprints).unwrap().test_cycles;
    assert_eq!(ids(nested, |c| c.id), [one]);
    let children = qtest
        .cycles(CycleParent::TestCycle(sprints), false)
        .unwrap();
    assert_eq!(ids(&children, |c| c.id), [one]);
    assert_eq!(children[0].description.as_deref(), Some("Sprint 1 run"));
}

#[test]
fn qtest_cases_runs_and_logs_read_back_as_created() {
    let m = mocks(|_| {});
    let qtest = clients(&m).1;
    let (key, folder) = (key_field(&qtest), module(&qtest, "Pumps", None));
    let fields = qtest.case_fields().unwrap();
    let priority = fields.iter().find(|f| f.label == "Priority").unwrap();
    let high = &priority
        .allowed_values
        .iter()
        .find(|v| v.label == "High")
        .unwrap()
        .value;
    let mut body = new_case("Check pump", folder, Vec::new());
    body.properties = vec![
        PropertyValue {
            field_id: key,
            field_value: "PROJ-T1".into(),
        },
        PropertyValue {
            field_id: priority.id,
            field_value: high.clone(),
        },
    ];
    body.properties.extend(required_properties(&qtest));
    body.test_steps = ["Open", "Close"]
        .iter()
        .zip(1..)
        .map(|(d, order)| NewTestStep {
            description: (*d).into(),
            expected: format!("{d}ed"),
            order,
            called_test_case_id: None,
        })
        .collect();
    let created = qtest.create_case(&body).unwrap();
    let read = qtest
        .test_case(created.id)
        .unwrap()
        .expect("the case exists");
    assert_eq!(
        (
            read.name.as_str(),
            read.description.as_deref(),
            read.precondition.as_deref()
        ),
        (
            "Check pump",
            Some("Check pump<br>described"),
            Some("Pump available")
        )
    );
    assert_eq!(read.parent_id, Some(folder));
    assert_eq!(read.property_value(key), Some("PROJ-T1"));
    assert_eq!(read.property_value(priority.id), Some(high.as_str()));
    let steps: Vec<(&str, &str, Option<u32>)> = read
        .test_steps
        .iter()
        .map(|s| (s.description.as_str(), s.expected.as_str(), s.order))
        .collect();
    assert_eq!(
        steps,
        [("Open", "Opened", Some(1)), ("Close", "Closeed", Some(2))]
    );
    assert_eq!(qtest.test_case(created.id + 1_000_000).unwrap(), None);

    let version = created.test_case_version_id.expect("a version id");
    let sprint = cycle(&qtest, "Sprint", CycleParent::Root);
    let run_body = NewTestRun {
        name: "Check pump".into(),
        test_case: IdRef { id: created.id },
        test_case_version_id: version,
        properties: Vec::new(),
    };
    let run = qtest.create_run(sprint, &run_body).unwrap();
    let runs = qtest.runs(sprint).unwrap();
    assert_eq!(ids(&runs, |r| r.id), [run.id]);
    assert_eq!(
        (runs[0].test_case, runs[0].test_case_version_id),
        (Some(IdRef { id: created.id }), Some(version))
    );

    let statuses = qtest.execution_statuses().unwrap();
    let passed = statuses.iter().find(|s| s.name == "Passed").unwrap().id;
    let log_body = NewTestLog {
        status: IdRef { id: passed },
        exe_start_date: "2024-05-01T10:00:00Z".into(),
        exe_end_date: "2024-05-01T10:02:00Z".into(),
        note: Some("fine".into()),
        test_case_version_id: version,
        test_step_logs: vec![etlpool::qtest::NewTestStepLog {
            test_step_id: read.test_steps[0].id.unwrap(),
            status: IdRef { id: passed },
            actual_result: "Opened".into(),
            order: 1,
            called_test_case_id: None,
            parent_test_step_id: None,
        }],
    };
    let log = qtest.create_log(run.id, &log_body).unwrap();
    let logs = qtest.logs(run.id).unwrap();
    assert_eq!(ids(&logs, |l| l.id), [log.id]);
    let l = &logs[0];
    assert_eq!(
        (l.status.id, l.status.name.as_deref()),
        (passed, Some("Passed"))
    );
    assert_eq!(l.exe_end_date.as_deref(), Some("2024-05-01T10:02:00Z"));
    assert_eq!(
        (l.note.as_deref(), l.test_step_logs.len()),
        (Some("fine"), 1)
    );
}

#[test]
fn qtest_search_and_case_lists_page_through_every_item_once() {
    let m = mocks(|_| {});
    let qtest = clients(&m).1;
    let (key, folder) = (key_field(&qtest), module(&qtest, "Paged", None));
    let required = required_properties(&qtest);
    for n in 1..=105 {
        let key = PropertyValue {
            field_id: key,
            field_value: format!("PAGE-T{n}"),
        };
        let mut properties = required.clone();
        properties.push(key);
        qtest
            .create_case(&new_case(&format!("Case {n}"), folder, properties))
            .unwrap();
    }
    let request = SearchRequest {
        object_type: "test-cases".into(),
        fields: vec!["*".into()],
        query: "'Zephyr Key' ~ 'PAGE-T'".into(),
    };
    let before = requests(&m.qtest_stats());
    let (mut sizes, mut keys) = (Vec::new(), HashSet::new());
    qtest
        .search(&request, |page: Vec<TestCase>| {
            sizes.push(page.len());
            keys.extend(
                page.iter()
                    .filter_map(|c| c.property_value(key).map(str::to_owned)),
            );
            Ok(())
        })
        .unwrap();
    assert_eq!((sizes, keys.len()), (vec![100, 5], 105));
    assert_eq!(requests(&m.qtest_stats()) - before, 2);
    let (mut sizes, mut listed) = (Vec::new(), HashSet::new());
    qtest
        .cases_in(folder, |page| {
            sizes.push(page.len());
            listed.extend(page.iter().map(|c| c.id));
            Ok(())
        })
        .unwrap();
    assert_eq!((sizes, listed.len()), (vec![100, 5], 105));
    assert_eq!(requests(&m.qtest_stats()) - before, 4);
    let exact = qtest.cases_where("Zephyr Key", "PAGE-T7").unwrap();
    assert_eq!(ids(&exact, |c| c.id).len(), 1);
    assert_eq!(exact[0].property_value(key), Some("PAGE-T7"));
}

// ---- qTest login ----

fn login_client(
    pool: &Pool,
    url: &str,
    user: &str,
    password: &str,
) -> (Arc<QtestLogin>, QtestClient) {
    let login = QtestLogin::new(pool, url, user, password).unwrap();
    let login = Arc::new(login.with_site("site"));
    let api = ApiClient::new(pool, url, Auth::Provider(login.clone())).unwrap();
    (login, QtestClient::new(api, 1))
}

#[test]
fn qtest_login_renews_the_token_before_it_expires() {
    let m = mocks(|o| o.oauth_expiry = Duration::from_secs(1));
    let pool = crate::support::test_pool().build().unwrap();
    let (user, password) = m.qtest_login();
    let login = QtestLogin::new(&pool, &m.qtest_url(), user, password).unwrap();
    let login = Arc::new(login.with_site(m.qtest_site()));
    let api = ApiClient::new(&pool, &m.qtest_url(), Auth::Provider(login.clone())).unwrap();
    let qtest = QtestClient::new(api, m.qtest_project_id());
    assert!(qtest.project_exists().unwrap());
    let first = login.authorization().unwrap();
    assert_eq!(
        login.authorization().unwrap(),
        first,
        "a fresh token is kept"
    );
    // Renewal is due at half of a one-second life. Asking the login itself
    // (no request, so no 401 to react to) shows it renews on time alone.
    std::thread::sleep(Duration::from_millis(600));
    let second = login.authorization().unwrap();
    assert_ne!(second, first);
    assert!(qtest.project_exists().unwrap());
    // Past its life the server refuses the first token.
    std::thread::sleep(Duration::from_millis(500));
    let stale = first.strip_prefix("Bearer ").unwrap().to_owned();
    let old = ApiClient::new(&pool, &m.qtest_url(), Auth::Bearer(stale)).unwrap();
    let rejected = QtestClient::new(old, m.qtest_project_id())
        .project_exists()
        .unwrap_err();
    assert_eq!(rejected.status(), Some(401));
}

#[test]
fn qtest_login_takes_a_token_that_never_expires_in_our_lifetime() {
    let site = scripted(|_, req| {
        if req.path == "/oauth/token" {
            return crate::support::json(
                200,
                json!({"access_token": "forever", "expires_in": u64::MAX}),
            );
        }
        crate::support::json(200, json!({"id": 1}))
    });
    let pool = crate::support::test_pool().build().unwrap();
    let (login, qtest) = login_client(&pool, &format!("{}/api/v3", site.url()), "u", "p");
    assert!(qtest.project_exists().unwrap());
    assert_eq!(login.authorization().unwrap(), "Bearer forever");
}

/// A qTest site issuing tokens `t1`, `t2`, ... whose API accepts only `accepted`.
fn oauth_site(accepted: &'static str) -> (crate::support::Scripted, Arc<AtomicUsize>) {
    let logins = Arc::new(AtomicUsize::new(0));
    let count = logins.clone();
    let server = scripted(move |_, req| {
        if req.path == "/oauth/token" {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            return crate::support::json(
                200,
                json!({"access_token": format!("t{n}"), "expires_in": 3599}),
            );
        }
        match req.header("authorization") {
            Some(value) if value == format!("Bearer {accepted}") => {
                crate::support::json(200, json!({"id": 1}))
            }
            _ => crate::support::json(401, json!({"error": "invalid_token"})),
        }
    });
    (server, logins)
}

#[test]
fn qtest_login_logs_in_again_once_when_a_token_is_rejected() {
    let pool = crate::support::test_pool().build().unwrap();
    let (site, logins) = oauth_site("t2");
    let (_, qtest) = login_client(&pool, &format!("{}/api/v3", site.url()), "u", "p");
    assert!(qtest.project_exists().unwrap());
    assert!(qtest.project_exists().unwrap());
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    let seen: Vec<String> = site
        .seen
        .lock()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    let (token, project) = ("POST /oauth/token", "GET /api/v3/projects/1");
    assert_eq!(seen, [token, project, token, project, project]);

    let (site, logins) = oauth_site("never");
    let (_, qtest) = login_client(&pool, &format!("{}/api/v3", site.url()), "u", "p");
    let error = qtest.project_exists().unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert_eq!(
        logins.load(Ordering::SeqCst),
        2,
        "one login, one renewal, no loop"
    );
    assert_eq!(site.count(), 4);
}
