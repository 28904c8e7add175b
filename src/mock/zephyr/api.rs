//! Routes of the Zephyr mock: every GET of contract section 1 with its filters and paging,
//! and the NextGen (cursor-paged) listings of test cases, cycles and executions.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::data::{Dataset, Execution, Script};
use super::render::Render;
use crate::mock::gate::{Api, Flavor, Outcome};
use crate::mock::paging::{ZephyrPage, cursor_envelope, cursor_page, zephyr_envelope, zephyr_page};
use crate::mock::server::{Request, Response};
use crate::mock::time;

/// `/teststeps` pages hold at most this many items whatever the general cap.
const STEPS_CAP: usize = 100;

/// The Zephyr mock's API.
pub(crate) struct ZephyrApi {
    /// The data served; swapped whole by a test's mutation, so a request
    /// sees one version of it. Guards only the pointer.
    pub data: parking_lot::RwLock<Arc<Dataset>>,
    /// `http://127.0.0.1:PORT`, known once the server is bound.
    pub origin: OnceLock<String>,
    pub cap: usize,
    /// Requests per route (`testcases/{}/teststeps`), for tests; guards only the map.
    pub routes: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    /// How many of the next file downloads are answered 503 (for tests).
    pub fail_downloads: std::sync::atomic::AtomicU64,
    /// Where downloads are sent with a 302, when they are
    /// ([`MockOptions::attachments_redirect`](crate::mock::MockOptions::attachments_redirect)).
    pub files: Option<Arc<super::files::FileHost>>,
}

/// Path segments that name a route; any other segment is a key or id.
const ROUTE_WORDS: &[&str] = &[
    "projects",
    "folders",
    "testcases",
    "testcycles",
    "testexecutions",
    "nextgen",
    "teststeps",
    "testscript",
    "versions",
    "statuses",
    "priorities",
    "attachments",
    "environments",
    "testplans",
];

/// The route of a request's path segments: keys and ids become `{}`.
fn route(segments: &[&str]) -> String {
    let parts: Vec<&str> = segments
        .iter()
        .map(|s| if ROUTE_WORDS.contains(s) { *s } else { "{}" })
        .collect();
    parts.join("/")
}

type Answer = Result<Value, Response>;

fn err(status: u16, msg: impl AsRef<str>) -> Response {
    Flavor::Zephyr.error(status, msg.as_ref())
}

fn not_found(what: &str, id: &str) -> Response {
    err(
        404,
        format!("{what} '{id}' does not exist or you do not have access to it"),
    )
}

impl Api for ZephyrApi {
    fn call(&self, req: &Request) -> Outcome {
        let Some(rest) = req.path.strip_prefix("/v2/") else {
            return err(404, "Not found").into();
        };
        if req.method != "GET" && req.method != "HEAD" {
            return Response::json(
                403,
                &serde_json::json!({"message": "Missing Authentication Token"}),
            )
            .into();
        }
        let origin = self.origin.get().map_or("", String::as_str);
        let base = format!("{origin}/v2");
        let data = Arc::clone(&self.data.read());
        let ctx = Ctx {
            req,
            origin,
            files: self.files.as_deref(),
            r: Render {
                base: &base,
                data: &data,
            },
            cap: self.cap,
        };
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        *self.routes.lock().entry(route(&segments)).or_default() += 1;
        let download = matches!(segments.as_slice(), [_, _, "attachments", _]);
        if download
            && self
                .fail_downloads
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return err(503, "Service Unavailable").into();
        }
        if let Some(answer) = ctx.attachments(&segments) {
            return answer.unwrap_or_else(|e| e).into();
        }
        match ctx.check_project().and_then(|()| ctx.route(&segments)) {
            Ok(v) => Response::json(200, &v).into(),
            Err(resp) => resp.into(),
        }
    }

    fn hook(&self, req: &Request) -> Option<Response> {
        (req.path == "/__source").then(|| {
            let data = Arc::clone(&self.data.read());
            Response::json(200, &serde_json::to_value(&*data).unwrap_or_default())
        })
    }
}

struct Ctx<'a> {
    req: &'a Request,
    origin: &'a str,
    files: Option<&'a super::files::FileHost>,
    r: Render<'a>,
    cap: usize,
}

impl Ctx<'_> {
    fn data(&self) -> &Dataset {
        self.r.data
    }

    fn check_project(&self) -> Result<(), Response> {
        match self.req.query_param("projectKey") {
            Some(k) if k != self.data().project.key => {
                Err(err(400, format!("Cannot access projects '{k}'")))
            }
            _ => Ok(()),
        }
    }

    /// A page of `items`, rendering only the page's share.
    fn page<T>(&self, items: Vec<T>, render: impl FnMut(T) -> Value, cap: usize) -> Answer {
        let page: ZephyrPage = zephyr_page(self.req, cap).map_err(|m| err(400, m))?;
        Ok(zephyr_envelope(self.req, self.origin, page, items, render))
    }

    /// A NextGen page of `sorted` (ascending ids), keeping what `keep` accepts.
    fn cursor<T>(
        &self,
        sorted: &[T],
        id: impl Fn(&T) -> u64,
        keep: impl Fn(&T) -> bool,
        render: impl FnMut(&T) -> Value,
    ) -> Answer {
        let page = cursor_page(self.req, self.cap).map_err(|m| err(400, m))?;
        Ok(cursor_envelope(
            self.req,
            self.origin,
            page,
            sorted,
            id,
            keep,
            render,
        ))
    }

    /// The attachment routes (`None` for any other path): a list as
    /// `{"attachments":[{"id","name"}]}`, or one file's bytes.
    fn attachments(&self, seg: &[&str]) -> Option<Result<Response, Response>> {
        use super::attachments::FileOwner;
        let (owner, rest) = match seg {
            ["testcases", key, "attachments", rest @ ..] => {
                (self.case(key).map(|c| FileOwner::Case(c.key.clone())), rest)
            }
            ["testcycles", key, "attachments", rest @ ..] => (
                self.cycle(key).map(|c| FileOwner::Cycle(c.key.clone())),
                rest,
            ),
            ["testexecutions", key, "attachments", rest @ ..] => (
                self.execution(key).map(|e| FileOwner::Execution(e.id)),
                rest,
            ),
            [
                "testcases",
                key,
                "teststeps",
                step,
                "attachments",
                rest @ ..,
            ] => (self.case_step(key, step), rest),
            [
                "testexecutions",
                key,
                "teststeps",
                step,
                "attachments",
                rest @ ..,
            ] => (self.execution_step(key, step), rest),
            _ => return None,
        };
        let owner = match owner {
            Ok(owner) => owner,
            Err(resp) => return Some(Err(resp)),
        };
        let mut files = self.data().attachments.iter().filter(|f| f.owner == owner);
        Some(match rest {
            [] => {
                let items: Vec<Value> = files
                    .map(|f| serde_json::json!({ "id": f.id, "name": f.name }))
                    .collect();
                Ok(Response::json(
                    200,
                    &serde_json::json!({ "attachments": items }),
                ))
            }
            [id] => match files.find(|f| f.id.to_string() == *id) {
                Some(f) => Ok(match self.files {
                    Some(host) => Response::new(302).header("Location", host.link(f)),
                    None => Response::bytes(
                        200,
                        &f.content_type,
                        super::attachments::file_vec(f.id, f.size),
                    ),
                }),
                None => Err(not_found("Attachment", id)),
            },
            _ => Err(err(404, "Not found")),
        })
    }

    /// The step with id `step` of case `key`, as the owner of files.
    fn case_step(&self, key: &str, step: &str) -> Result<super::attachments::FileOwner, Response> {
        use super::attachments::{FileOwner, case_step_id};
        let case = self.case(key)?;
        let count = match &case.script {
            Script::Steps(steps) => steps.len(),
            Script::Plain(_) | Script::Bdd(_) => 0,
        };
        (0..count)
            .map(|i| case_step_id(case.id, i))
            .find(|id| id.to_string() == step)
            .map(|id| FileOwner::CaseStep(case.key.clone(), id))
            .ok_or_else(|| not_found("Test step", step))
    }

    /// The step result with id `step` of execution `key`, as the owner of files.
    fn execution_step(
        &self,
        key: &str,
        step: &str,
    ) -> Result<super::attachments::FileOwner, Response> {
        use super::attachments::{FileOwner, execution_step_id};
        let e = self.execution(key)?;
        (0..e.step_results.len())
            .map(|i| execution_step_id(e.id, i))
            .find(|id| id.to_string() == step)
            .map(|id| FileOwner::ExecutionStep(e.id, id))
            .ok_or_else(|| not_found("Test step", step))
    }

    fn route(&self, seg: &[&str]) -> Answer {
        let d = self.data();
        match seg {
            ["projects"] => self.page(vec![self.r.project_entity()], |v| v, self.cap),
            ["projects", id] if *id == d.project.key || *id == d.project.id.to_string() => {
                Ok(self.r.project_entity())
            }
            ["projects", id] => Err(not_found("Project", id)),
            ["folders"] => self.folders(),
            ["folders", id] => find(&d.folders, id, |f| f.id).map(|f| self.r.folder(f)),
            ["testcases"] => self.cases(),
            ["testcases", "nextgen"] => self.cases_nextgen(),
            ["testcases", key] => self.case(key).map(|c| self.r.case(c)),
            ["testcases", key, "versions", "1"] => self.case(key).map(|c| self.r.case(c)),
            ["testcases", key, "teststeps"] => self.case_steps(key),
            ["testcases", key, "testscript"] => self.script(key),
            ["testcycles"] => self.cycles(),
            ["testcycles", "nextgen"] => self.cycles_nextgen(),
            ["testcycles", id] => self.cycle(id).map(|c| self.r.cycle(c)),
            ["testexecutions"] => self.executions(),
            ["testexecutions", "nextgen"] => self.executions_nextgen(),
            ["testexecutions", id] => self.execution(id).map(|e| self.r.execution(e)),
            ["testexecutions", id, "teststeps"] => self.execution_steps(id),
            ["statuses"] => self.statuses(),
            ["statuses", id] => find(&d.statuses, id, |s| s.id).map(|s| self.r.status(s)),
            ["priorities"] => self.page(
                d.priorities.iter().collect(),
                |p| self.r.priority(p),
                self.cap,
            ),
            ["priorities", id] => find(&d.priorities, id, |p| p.id).map(|p| self.r.priority(p)),
            ["environments"] => self.page(
                (10_000u64..)
                    .zip(super::attachments::ENVIRONMENTS)
                    .collect(),
                |(id, name)| {
                    serde_json::json!({ "id": id, "name": name, "index": id - 10_000,
                        "archived": false, "project": self.r.project() })
                },
                self.cap,
            ),
            ["testplans"] => self.page(d.test_plans.iter().collect(), |p| self.r.plan(p), self.cap),
            _ => Err(Response::json(
                403,
                &serde_json::json!({"message": "Missing Authentication Token"}),
            )),
        }
    }

    fn id_param(&self, name: &str) -> Result<Option<u64>, Response> {
        self.req
            .query_param(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| err(400, format!("{name} must be an integer")))
            })
            .transpose()
    }

    fn enum_param(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, Response> {
        match self.req.query_param(name) {
            Some(v) if !allowed.contains(&v) => Err(err(
                400,
                format!("{name} must be one of {}", allowed.join(", ")),
            )),
            v => Ok(v.map(str::to_string)),
        }
    }

    fn folders(&self) -> Answer {
        let t = self.enum_param("folderType", &["TEST_CASE", "TEST_PLAN", "TEST_CYCLE"])?;
        let items = self
            .data()
            .folders
            .iter()
            .filter(|f| t.as_ref().is_none_or(|t| *t == f.folder_type));
        self.page(items.collect(), |f| self.r.folder(f), self.cap)
    }

    fn statuses(&self) -> Answer {
        let t = self.enum_param(
            "statusType",
            &["TEST_CASE", "TEST_PLAN", "TEST_CYCLE", "TEST_EXECUTION"],
        )?;
        let items = self
            .data()
            .statuses
            .iter()
            .filter(|s| t.as_ref().is_none_or(|t| *t == s.status_type));
        self.page(items.collect(), |s| self.r.status(s), self.cap)
    }

    fn cases(&self) -> Answer {
        let folder = self.id_param("folderId")?;
        let items = self
            .data()
            .cases
            .iter()
            .filter(|c| folder.is_none() || c.folder_id == folder);
        self.page(items.collect(), |c| self.r.case(c), self.cap)
    }

    fn cases_nextgen(&self) -> Answer {
        let folder = self.id_param("folderId")?;
        let after = self.date_param("updatedAfter")?;
        let updated = |c: &super::data::TestCase| {
            time::parse(c.updated_on.as_deref().unwrap_or(&c.created_on))
        };
        self.cursor(
            &self.data().cases,
            |c| c.id,
            |c| {
                (folder.is_none() || c.folder_id == folder)
                    && after.is_none_or(|a| updated(c).is_some_and(|u| u > a))
            },
            |c| self.r.case(c),
        )
    }

    /// A date-time query parameter (spec: `yyyy-MM-dd'T'HH:mm:ss'Z'`).
    fn date_param(&self, name: &str) -> Result<Option<i64>, Response> {
        self.req
            .query_param(name)
            .map(|v| {
                time::parse(v)
                    .ok_or_else(|| err(400, format!("{name} must be a date-time, got '{v}'")))
            })
            .transpose()
    }

    fn case(&self, key: &str) -> Result<&super::data::TestCase, Response> {
        let valid = key
            .rsplit_once("-T")
            .is_some_and(|(p, n)| !p.is_empty() && n.parse::<u64>().is_ok());
        if !valid {
            return Err(err(
                400,
                format!("testCaseKey '{key}' must match .+-T[0-9]+"),
            ));
        }
        self.data()
            .case(key)
            .ok_or_else(|| not_found("Test case", key))
    }

    /// The steps of a step-by-step case; 422 for a plain or BDD one (spec).
    fn case_steps(&self, key: &str) -> Answer {
        let case = self.case(key)?;
        let steps = match &case.script {
            Script::Steps(steps) => steps.iter().enumerate().collect(),
            Script::Plain(_) | Script::Bdd(_) => {
                return Err(err(
                    422,
                    format!(
                        "Test case '{key}' has a plain text or BDD script: use the testscript endpoint"
                    ),
                ));
            }
        };
        self.page(
            steps,
            |(i, s)| self.r.step(s, super::attachments::case_step_id(case.id, i)),
            self.cap.min(STEPS_CAP),
        )
    }

    /// The script of a plain or BDD case; 422 for a step-by-step one (spec).
    fn script(&self, key: &str) -> Answer {
        let case = self.case(key)?;
        let (kind, text) = match &case.script {
            Script::Plain(t) => ("plain", t),
            Script::Bdd(t) => ("bdd", t),
            Script::Steps(_) => {
                return Err(err(
                    422,
                    format!(
                        "Test case '{key}' has step-by-step test steps: use the teststeps endpoint"
                    ),
                ));
            }
        };
        Ok(serde_json::json!({ "id": 1_000_000 + case.id, "type": kind, "text": text }))
    }

    fn cycle_filter(&self) -> Result<impl Fn(&super::data::TestCycle) -> bool, Response> {
        let folder = self.id_param("folderId")?;
        let version = self.id_param("jiraProjectVersionId")?;
        Ok(move |c: &super::data::TestCycle| {
            (folder.is_none() || c.folder_id == folder)
                && (version.is_none() || c.jira_project_version == version)
        })
    }

    fn cycles(&self) -> Answer {
        let keep = self.cycle_filter()?;
        let items = self.data().cycles.iter().filter(|c| keep(c));
        self.page(items.collect(), |c| self.r.cycle(c), self.cap)
    }

    fn cycles_nextgen(&self) -> Answer {
        let keep = self.cycle_filter()?;
        self.cursor(&self.data().cycles, |c| c.id, keep, |c| self.r.cycle(c))
    }

    fn cycle(&self, id_or_key: &str) -> Result<&super::data::TestCycle, Response> {
        let found = self
            .data()
            .cycles
            .iter()
            .find(|c| c.key == id_or_key || c.id.to_string() == id_or_key);
        found.ok_or_else(|| not_found("Test cycle", id_or_key))
    }

    /// By id (executions are sorted by id) or by key (`<project>-E<n>` is the n-th).
    fn execution(&self, id_or_key: &str) -> Result<&Execution, Response> {
        let all = &self.data().executions;
        let by_id = id_or_key.parse::<u64>().ok().and_then(|id| {
            let i = all.partition_point(|e| e.id < id);
            all.get(i).filter(|e| e.id == id)
        });
        let by_key = || {
            let (_, n) = id_or_key.rsplit_once("-E")?;
            let i = n.parse::<usize>().ok()?.checked_sub(1)?;
            all.get(i).filter(|e| e.key == id_or_key)
        };
        by_id
            .or_else(by_key)
            .ok_or_else(|| not_found("Test execution", id_or_key))
    }

    fn execution_steps(&self, id: &str) -> Answer {
        let e = self.execution(id)?;
        let items = e.step_results.iter().enumerate().collect();
        self.page(
            items,
            |(i, r)| {
                self.r
                    .step_result(r, i, super::attachments::execution_step_id(e.id, i))
            },
            self.cap.min(STEPS_CAP),
        )
    }

    fn executions(&self) -> Answer {
        let filter = ExecFilter::from_request(self)?;
        let matching: Vec<&Execution> = self
            .data()
            .executions
            .iter()
            .filter(|e| filter.accepts(e))
            .collect();
        let items = match filter.only_last {
            true => matching
                .iter()
                .filter(|e| is_last_of_pair(e, &matching))
                .copied()
                .collect(),
            false => matching,
        };
        self.page(items, |e| self.r.execution(e), self.cap)
    }

    /// The same filters as `/testexecutions`, with cursor paging.
    fn executions_nextgen(&self) -> Answer {
        let filter = ExecFilter::from_request(self)?;
        let all = &self.data().executions;
        let last = |e: &Execution| {
            let matching: Vec<&Execution> = all.iter().filter(|x| filter.accepts(x)).collect();
            is_last_of_pair(e, &matching)
        };
        self.cursor(
            all,
            |e| e.id,
            |e| filter.accepts(e) && (!filter.only_last || last(e)),
            |e| self.r.execution(e),
        )
    }
}

/// The filters of `GET /testexecutions`.
struct ExecFilter {
    cycle: Option<u64>,
    case: Option<String>,
    after: Option<i64>,
    before: Option<i64>,
    updated_after: Option<i64>,
    only_last: bool,
}

impl ExecFilter {
    fn from_request(ctx: &Ctx) -> Result<Self, Response> {
        let req = ctx.req;
        let cycle = req
            .query_param("testCycle")
            .map(|k| ctx.cycle(k).map(|c| c.id))
            .transpose()?;
        let case = req
            .query_param("testCase")
            .map(|k| ctx.case(k).map(|c| c.key.clone()))
            .transpose()?;
        let date = |name: &str| ctx.date_param(name);
        let only_last = match req.query_param("onlyLastExecutions") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(err(400, "onlyLastExecutions must be true or false")),
        };
        Ok(ExecFilter {
            cycle,
            case,
            after: date("actualEndDateAfter")?,
            before: date("actualEndDateBefore")?,
            updated_after: date("updatedAfter")?,
            only_last,
        })
    }

    fn accepts(&self, e: &Execution) -> bool {
        let end = e.actual_end_date.as_deref().and_then(time::parse);
        let dated = |bound: Option<i64>, ok: fn(i64, i64) -> bool| {
            bound.is_none_or(|b| end.is_some_and(|t| ok(t, b)))
        };
        self.cycle.is_none_or(|c| Some(c) == e.cycle_id)
            && self.case.as_ref().is_none_or(|k| *k == e.test_case_key)
            && dated(self.after, |t, b| t >= b)
            && dated(self.before, |t, b| t <= b)
            && self.updated_after.is_none_or(|b| {
                let updated = e.updated_on.as_deref().or(e.actual_end_date.as_deref());
                updated.and_then(time::parse).is_some_and(|t| t >= b)
            })
    }
}

/// Whether `e` is the latest (by end date, then id) execution of its cycle and case;
/// every ad-hoc execution (outside any cycle) counts as latest (spec).
fn is_last_of_pair(e: &Execution, all: &[&Execution]) -> bool {
    if e.cycle_id.is_none() {
        return true;
    }
    let rank = |x: &Execution| (x.actual_end_date.clone(), x.id);
    all.iter()
        .filter(|x| x.cycle_id == e.cycle_id && x.test_case_key == e.test_case_key)
        .all(|x| rank(x) <= rank(e))
}

fn find<'a, T>(items: &'a [T], id: &str, get: impl Fn(&T) -> u64) -> Result<&'a T, Response> {
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|n| items.iter().find(|x| get(x) == n));
    found.ok_or_else(|| not_found("Object", id))
}
