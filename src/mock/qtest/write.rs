//! The writes of the qTest mock: validate, then change the state. Pure (no I/O), so a
//! journal replay gives the same ids.

use serde_json::Value;

use super::body::{self, Obj};
use super::config::QtestConfig;
use super::state::QtestState;
use super::{design::*, execution::*};

/// What a write did.
pub(crate) struct Applied {
    pub status: u16,
    pub kind: &'static str,
    pub id: u64,
}

/// A refused write: status and message. Unknown ids in the path or query are 404; anything
/// wrong inside the body, unknown referenced ids included, is 400.
pub(crate) type Refusal = (u16, String);

/// Name of the module that takes test cases created without `parent_id`.
pub(crate) const CREATED_VIA_API: &str = "Created via API";

/// One write request, its project segment already checked.
pub(crate) struct Write<'a> {
    pub method: &'a str,
    /// Path segments after `/api/v3/projects/{p}/`.
    pub seg: &'a [&'a str],
    pub query: &'a [(String, String)],
    pub body: &'a Value,
    pub at: i64,
}

impl Write<'_> {
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn query_id(&self, name: &str) -> Result<Option<u64>, Refusal> {
        self.query(name)
            .map(|v| v.parse().map_err(|_| bad(format!("{name} must be an id"))))
            .transpose()
    }

    pub(crate) fn obj(&self) -> Result<&Obj, Refusal> {
        body::object(self.body).map_err(bad)
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> Refusal {
    (400, msg.into())
}

pub(crate) fn missing(what: &str, id: u64) -> Refusal {
    (404, format!("{what} {id} not found"))
}

pub(crate) fn path_id(s: &str) -> Result<u64, Refusal> {
    s.parse().map_err(|_| (404, format!("'{s}' is not an id")))
}

/// Applies `w` if it is a write route; `None` when it is not one.
pub(crate) fn apply(
    st: &mut QtestState,
    cfg: &QtestConfig,
    w: &Write,
) -> Option<Result<Applied, Refusal>> {
    let result = match (w.method, w.seg) {
        ("POST", ["modules"]) => create_module(st, w),
        ("POST", ["test-cases"]) => create_case(st, cfg, w),
        ("PUT", ["test-cases", id, "approve"]) => approve(st, cfg, id),
        ("PUT", ["test-cases", id]) => update_case(st, cfg, w, id),
        ("DELETE", ["test-cases", id]) => delete_case(st, id),
        ("DELETE", ["test-runs", id]) => delete_run(st, id),
        ("DELETE", ["modules", id]) => super::delete::module(st, w, id),
        ("DELETE", ["test-cycles", id]) => super::delete::cycle(st, w, id),
        ("DELETE", ["test-runs", run, "test-logs", id]) => super::delete::log(st, run, id),
        ("DELETE", [object_type, object, "blob-handles", id]) => {
            super::delete::attachment(st, object_type, object, id)
        }
        ("POST", ["test-cycles"]) => create_cycle(st, w),
        ("POST", ["test-runs"]) => create_run(st, w),
        ("POST", ["test-runs", id, "test-logs"]) => create_log(st, cfg, w, id),
        ("POST", [object_type, id, "blob-handles"]) => {
            super::attachments::upload(st, w, object_type, id)
        }
        _ => return None,
    };
    Some(result)
}
