//! Routes of the qTest mock.

use std::collections::HashSet;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::config::QtestConfig;
use super::lag::Lagging;
use super::render::{Render, is_child};
use super::state::{JournalEntry, QtestState};
use super::write::{self, Write};
use super::{persist, search};
use crate::mock::gate::{Api, Flavor, Outcome};
use crate::mock::paging::{qtest_bare, qtest_envelope};
use crate::mock::server::{Request, Response};
use crate::mock::time::now;
use crate::mock::zephyr::data::Dataset;

/// The qTest mock's API and created state.
pub(crate) struct QtestApi {
    pub cfg: QtestConfig,
    // Guards the state and the journal file together, so the file's order is the apply order
    // (a replay must give the same ids). The append under it is one small write to the page cache.
    pub store: Mutex<Store>,
    /// `http://127.0.0.1:PORT`, known once the server is bound.
    pub origin: OnceLock<String>,
    /// Served as `/__source` too, for tools that only know the qTest URL.
    pub source: Arc<Dataset>,
    /// What the search index has not caught up with. Locked after `store`, never before.
    pub lag: Mutex<Lagging>,
    /// Writes still to be refused with a 503 before they are applied.
    pub refuse_writes: AtomicU64,
}

pub(crate) struct Store {
    pub state: QtestState,
    pub file: Option<File>,
}

type Answer = Result<Value, Response>;

fn err(status: u16, msg: impl AsRef<str>) -> Response {
    Flavor::Qtest.error(status, msg.as_ref())
}

/// A qTest error answer.
pub(crate) fn error(status: u16, msg: impl AsRef<str>) -> Response {
    err(status, msg)
}

impl Api for QtestApi {
    fn call(&self, req: &Request) -> Outcome {
        let Some(rest) = req.path.strip_prefix("/api/v3/") else {
            return err(404, "Not found").into();
        };
        let seg: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let inner = match seg.as_slice() {
            ["projects"] if req.method == "GET" => return self.read(req, &[]).into(),
            ["projects", p, inner @ ..] if *p == self.cfg.project_id.to_string() => inner,
            ["projects", p, ..] => return err(404, format!("Project {p} not found")).into(),
            _ => return err(404, "Not found").into(),
        };
        match req.method.as_str() {
            "POST" if inner != ["search"] => self.write(req, inner),
            "PUT" | "DELETE" => self.write(req, inner),
            _ => self.read(req, inner).into(),
        }
    }

    fn hook(&self, req: &Request) -> Option<Response> {
        match req.path.as_str() {
            "/__state" => {
                let store = self.store.lock();
                Some(Response::json(
                    200,
                    &json!({ "config": self.cfg, "state": store.state }),
                ))
            }
            "/__source" => Some(Response::json(
                200,
                &serde_json::to_value(&*self.source).unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

impl QtestApi {
    /// Applies a write, journals and persists it, and renders the written entity.
    pub(crate) fn write(&self, req: &Request, seg: &[&str]) -> Outcome {
        let refused = self
            .refuse_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if refused.is_ok() {
            return err(503, "Service Unavailable").into();
        }
        // An upload's body is the file: what is journaled describes it.
        let upload = matches!(seg, [_, _, "blob-handles"]);
        let body = match upload {
            true => super::attachments::descriptor(req),
            false => persist::body_json(&req.body).map_err(|m| err(400, m)),
        };
        let body = match body {
            Ok(b) => b,
            Err(resp) => return resp.into(),
        };
        let at = now();
        let w = Write {
            method: &req.method,
            seg,
            query: &req.query,
            body: &body,
            at,
        };
        let mut store = self.store.lock();
        let applied = match write::apply(&mut store.state, &self.cfg, &w) {
            None => return err(404, "Not found").into(),
            Some(Err((status, msg))) => return err(status, msg).into(),
            Some(Ok(a)) => a,
        };
        let seq = store.state.journal.len() as u64 + 1;
        let entry = JournalEntry {
            seq,
            at,
            method: req.method.clone(),
            target: req.target.clone(),
            body,
            status: applied.status,
            kind: applied.kind.to_string(),
            id: applied.id,
        };
        if let Some(file) = store.file.as_mut()
            && let Err(e) = persist::append(file, &entry)
        {
            log::error!("mock qtest: cannot persist journal entry {seq}: {e}");
        }
        store.state.journal.push(entry);
        if upload {
            super::attachments::keep_bytes(&mut store.state, applied.id, req);
        }
        if CREATES.contains(&applied.kind) {
            self.lag.lock().created(applied.id, seq);
        }
        let r = self.render(&store.state);
        let value = match applied.kind {
            "module" => store.state.module(applied.id).map(|m| r.module(m, false)),
            "test-case" => store
                .state
                .test_case(applied.id)
                .map(|c| r.case(c, true, true)),
            // Like a read without `expand=teststep`: approving says nothing about steps.
            "approve" => store
                .state
                .test_case(applied.id)
                .map(|c| r.case(c, true, false)),
            "test-cycle" => store
                .state
                .test_cycle(applied.id)
                .map(|c| r.cycle(c, false)),
            "test-run" => store.state.test_run(applied.id).map(|x| r.run(x)),
            "test-log" => store.state.test_logs.last().map(|l| r.log(l)),
            "attachment" => store
                .state
                .attachments
                .last()
                .map(|f| super::attachments::render(f, &r.base)),
            _ => None,
        };
        let response = match value {
            Some(v) => Response::json(applied.status, &v),
            None => Response::new(applied.status),
        };
        Outcome {
            response,
            write_applied: true,
        }
    }

    fn render<'a>(&'a self, st: &'a QtestState) -> Render<'a> {
        let origin = self.origin.get().map_or("", String::as_str);
        let base = format!("{origin}/api/v3/projects/{}", self.cfg.project_id);
        Render {
            base,
            origin,
            cfg: &self.cfg,
            st,
        }
    }

    fn read(&self, req: &Request, seg: &[&str]) -> Response {
        let store = self.store.lock();
        let r = self.render(&store.state);
        if let Some(resp) = super::attachments::read(&store.state, seg, &r.base) {
            return resp;
        }
        let hidden = match seg {
            ["search"] => self.lag.lock().hidden(store.state.journal.len() as u64),
            _ => HashSet::new(),
        };
        let ctx = Ctx { req, r, hidden };
        match ctx.route(seg) {
            Ok(v) => Response::json(200, &v),
            Err(resp) => resp,
        }
    }
}

/// Kinds of write that create a record (the search index lags behind them).
const CREATES: [&str; 5] = ["module", "test-case", "test-cycle", "test-run", "test-log"];

struct Ctx<'a> {
    req: &'a Request,
    r: Render<'a>,
    /// Records the search doesn't show yet ([`Lagging`]).
    hidden: HashSet<u64>,
}

impl Ctx<'_> {
    /// A boolean query parameter, `default` when absent.
    fn flag_or(&self, name: &str, default: bool) -> bool {
        self.req
            .query_param(name)
            .map_or(default, |v| v.eq_ignore_ascii_case("true"))
    }

    fn flag(&self, name: &str) -> bool {
        self.flag_or(name, false)
    }

    fn id_param(&self, name: &str) -> Result<Option<u64>, Response> {
        let v = self.req.query_param(name).filter(|v| !v.is_empty());
        v.map(|v| {
            v.parse()
                .map_err(|_| err(400, format!("{name} must be an id")))
        })
        .transpose()
    }

    fn route(&self, seg: &[&str]) -> Answer {
        let (st, r) = (self.r.st, &self.r);
        let expand = self.req.query_param("expand") == Some("descendants");
        match (self.req.method.as_str(), seg) {
            ("GET", []) => Ok(json!([r.project()])),
            ("GET", [p]) if *p == r.cfg.project_id.to_string() => Ok(r.project()),
            ("GET", ["modules"]) => self.modules(expand),
            ("GET", ["modules", id]) => {
                found(st.module(path_id(id)?), "Module", id).map(|m| r.module(m, expand))
            }
            ("GET", ["test-cases"]) => self.cases(),
            // Steps only with `expand=teststep`; the list's expandProps/expandSteps mean nothing here.
            ("GET", ["test-cases", id]) => {
                let steps = self.req.query_param("expand") == Some("teststep");
                let case = st.test_case(case_id(st, id)?);
                found(case, "Test case", id).map(|c| r.case(c, true, steps))
            }
            ("GET", ["settings", "test-cases", "fields"]) => Ok(self.fields(&r.cfg.case_fields)),
            ("GET", ["settings", "test-runs", "fields"]) => Ok(self.fields(&r.cfg.run_fields)),
            ("GET", ["test-runs", "execution-statuses"]) => Ok(self.statuses()),
            ("GET", ["test-cycles"]) => self.cycles(expand),
            ("GET", ["test-cycles", id]) => {
                found(st.test_cycle(path_id(id)?), "Test cycle", id).map(|c| r.cycle(c, expand))
            }
            ("GET", ["test-runs"]) => self.runs(),
            ("GET", ["test-runs", id]) => {
                found(st.test_run(path_id(id)?), "Test run", id).map(|x| r.run(x))
            }
            ("GET", ["test-runs", id, "test-logs"]) => self.logs(id),
            ("GET", ["user-profiles", "current"]) => Ok(r.profile()),
            ("POST", ["search"]) => self.search(),
            _ => Err(err(404, "Not found")),
        }
    }

    fn modules(&self, expand: bool) -> Answer {
        let parent = self.id_param("parentId")?.filter(|&p| p != 0);
        if let Some(p) = parent {
            found(self.r.st.module(p), "Module", &p.to_string())?;
        }
        let search = self.req.query_param("search").map(str::to_lowercase);
        let items = self.r.st.modules.iter().filter(|m| {
            m.parent_id == parent
                && search
                    .as_ref()
                    .is_none_or(|s| m.name.to_lowercase().contains(s))
        });
        Ok(Value::Array(
            items.map(|m| self.r.module(m, expand)).collect(),
        ))
    }

    fn cases(&self) -> Answer {
        let parent = self.id_param("parentId")?;
        if let Some(p) = parent {
            found(self.r.st.module(p), "Module", &p.to_string())?;
        }
        let all: Vec<_> = self
            .r
            .st
            .test_cases
            .iter()
            .filter(|c| parent.is_none_or(|p| c.parent_id == p))
            .collect();
        let page = qtest_bare(self.req, &all).map_err(|m| err(400, m))?;
        // The spec's defaults: properties unless expandProps=false, steps only with expandSteps=true.
        let (props, steps) = (self.flag_or("expandProps", true), self.flag("expandSteps"));
        Ok(Value::Array(
            page.into_iter()
                .map(|c| self.r.case(c, props, steps))
                .collect(),
        ))
    }

    fn fields(&self, fields: &[super::config::Field]) -> Value {
        let inactive = self.flag("includeInactive");
        Value::Array(
            fields
                .iter()
                .filter(|f| f.active || inactive)
                .map(|f| self.r.field(f))
                .collect(),
        )
    }

    fn statuses(&self) -> Value {
        let items = self.r.cfg.statuses.iter().map(|s| {
            json!({ "id": s.id, "name": s.name, "color": s.color, "active": true, "is_default": s.is_default })
        });
        Value::Array(items.collect())
    }

    /// A bare array, paged as the spec says: `page` from 1, `pageSize` 100 by default, a
    /// negative `pageSize` without a `page` for all of them.
    fn cycles(&self, expand: bool) -> Answer {
        let parent = self.id_param("parentId")?.unwrap_or(0);
        let parent_type = self.req.query_param("parentType").unwrap_or("root");
        let st = self.r.st;
        let items: Vec<&super::state::Cycle> = match parent_type {
            "root" => st
                .test_cycles
                .iter()
                .filter(|c| c.parent_type == "root")
                .collect(),
            "test-cycle" => {
                found(st.test_cycle(parent), "Test cycle", &parent.to_string())?;
                st.test_cycles
                    .iter()
                    .filter(|c| is_child(c, parent))
                    .collect()
            }
            "release" => return Err(err(404, format!("Release {parent} not found"))),
            _ => {
                return Err(err(
                    400,
                    "parentType must be one of root, release, test-cycle",
                ));
            }
        };
        let page = page_or_all(self.req, &items).map_err(|m| err(400, m))?;
        Ok(Value::Array(
            page.into_iter().map(|c| self.r.cycle(c, expand)).collect(),
        ))
    }

    fn runs(&self) -> Answer {
        let parent = self.id_param("parentId")?;
        if let Some(p) = parent {
            if self
                .req
                .query_param("parentType")
                .is_some_and(|t| t != "test-cycle")
            {
                return Err(err(400, "parentType must be test-cycle"));
            }
            found(self.r.st.test_cycle(p), "Test cycle", &p.to_string())?;
        }
        let items = self
            .r
            .st
            .test_runs
            .iter()
            .filter(|x| parent.is_none_or(|p| x.parent_id == p));
        qtest_envelope(self.req, items.collect(), |x| self.r.run(x)).map_err(|m| err(400, m))
    }

    fn logs(&self, run: &str) -> Answer {
        let run = found(self.r.st.test_run(path_id(run)?), "Test run", run)?;
        let items = self.r.st.logs_of(run.id).collect();
        qtest_envelope(self.req, items, |l| self.r.log(l)).map_err(|m| err(400, m))
    }

    fn search(&self) -> Answer {
        let body = serde_json::from_slice::<Value>(&self.req.body)
            .map_err(|e| err(400, format!("Malformed JSON body: {e}")))?;
        let object_type = body
            .get("object_type")
            .and_then(Value::as_str)
            .ok_or_else(|| err(400, "object_type is required"))?;
        let query = body
            .get("query")
            .and_then(Value::as_str)
            .ok_or_else(|| err(400, "query is required"))?;
        let conds = search::parse(query).map_err(|m| err(400, m))?;
        let (cfg, st) = (self.r.cfg, self.r.st);
        // Test cases come without their steps unless appendTestSteps=true.
        let steps = self.flag("appendTestSteps");
        let page =
            match object_type {
                "test-cases" => {
                    search::check_fields(&conds, &cfg.case_fields).map_err(|m| err(400, m))?;
                    let hits = st.test_cases.iter().filter(|c| {
                        !self.hidden.contains(&c.id) && search::case_matches(&conds, cfg, c)
                    });
                    qtest_envelope(self.req, hits.collect(), |c| self.r.case(c, true, steps))
                }
                "test-runs" => {
                    search::check_fields(&conds, &cfg.run_fields).map_err(|m| err(400, m))?;
                    let hits = st.test_runs.iter().filter(|x| {
                        !self.hidden.contains(&x.id) && search::run_matches(&conds, cfg, x)
                    });
                    qtest_envelope(self.req, hits.collect(), |x| self.r.run(x))
                }
                "test-cycles" => {
                    search::check_fields(&conds, &[]).map_err(|m| err(400, m))?;
                    let hits = st.test_cycles.iter().filter(|c| {
                        !self.hidden.contains(&c.id) && search::cycle_matches(&conds, c)
                    });
                    qtest_envelope(self.req, hits.collect(), |c| self.r.cycle(c, false))
                }
                "requirements" | "defects" | "test-suites" | "test-logs" | "releases"
                | "builds" => qtest_envelope(self.req, Vec::<Value>::new(), |v| v),
                other => return Err(err(400, format!("object_type '{other}' is not searchable"))),
            };
        page.map_err(|m| err(400, m))
    }
}

/// `GET test-cases/{id}` takes an id or a PID (`TC-12`). An id is taken as
/// one without a search: a PID is never all digits, and scanning every case
/// per read made a big migration's read-backs quadratic.
fn case_id(st: &super::state::QtestState, s: &str) -> Result<u64, Response> {
    if let Ok(id) = s.parse() {
        return Ok(id);
    }
    match st.test_cases.iter().find(|c| c.pid.eq_ignore_ascii_case(s)) {
        Some(c) => Ok(c.id),
        None => path_id(s),
    }
}

/// One page of a bare array: `page` (from 1, default 1) and `pageSize` (default 100); a
/// negative `pageSize` without a `page` returns everything.
fn page_or_all<'a, T>(req: &Request, items: &[&'a T]) -> Result<Vec<&'a T>, String> {
    let int = |name: &str, default: i64| match req.query_param(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{name} must be an integer")),
    };
    let size = int("pageSize", 100)?;
    if size < 0 && req.query_param("page").is_none() {
        return Ok(items.to_vec());
    }
    let page = int("page", 1)?;
    if page < 1 || size < 1 {
        return Err("page must be at least 1, and pageSize at least 1 when a page is given".into());
    }
    let (page, size) = (page as usize, size as usize);
    let start = (page - 1).saturating_mul(size);
    Ok(items.iter().skip(start).take(size).copied().collect())
}

fn path_id(s: &str) -> Result<u64, Response> {
    s.parse()
        .map_err(|_| err(404, format!("'{s}' is not an id")))
}

fn found<'a, T>(item: Option<&'a T>, what: &str, id: &str) -> Result<&'a T, Response> {
    item.ok_or_else(|| err(404, format!("{what} {id} not found")))
}
