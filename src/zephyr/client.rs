//! The Zephyr Scale Cloud v2 client: typed reads with paging done right, and
//! listings decoded record by record.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::models::{
    CursorPage, ExecutionStep, Folder, FolderType, Page, PageRequest, Priority, Project, Status,
    TestCase, TestCycle, TestExecution, TestScript, TestStep, next_cursor,
};
use super::record::{Lenient, Record};
use crate::error::{Error, Result};
use crate::http::{ApiClient, ApiRequest};

/// Page size asked for; the server may return fewer per page (the spec: it
/// may lower `maxResults` and `limit`, and `/teststeps` holds 100 items per
/// page).
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// The largest NextGen `limit` the spec allows; larger asks are refused.
pub const MAX_CURSOR_LIMIT: u64 = 1000;

/// Reads one Zephyr project through an [`ApiClient`].
///
/// Listings come a page at a time as [`Record`]s: a record that can't be
/// read is an `Err` of its own, and the rest of the page and of the listing
/// still arrive. Test cases, cycles and executions are read through the
/// NextGen endpoints (cursor paging, no `startAt` ceiling); the short lists
/// (folders, statuses, priorities, steps) through offset paging.
///
/// ```no_run
/// # fn main() -> etlpool::Result<()> {
/// use etlpool::http::{ApiClient, Auth};
/// use etlpool::zephyr::ZephyrClient;
/// let pool = etlpool::Pool::global()?;
/// let api = ApiClient::new(&pool, "https://api.zephyrscale.smartbear.com/v2", Auth::Bearer("...".into()))?;
/// let zephyr = ZephyrClient::new(api, "PROJ");
/// zephyr.test_cases(|page| {
///     for record in page {
///         match record {
///             Ok(case) => println!("{} {}", case.key, case.name),
///             Err(bad) => eprintln!("{bad}"),
///         }
///     }
///     Ok(())
/// })?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ZephyrClient {
    api: ApiClient,
    project: String,
    page_size: u64,
}

/// Which executions [`ZephyrClient::executions_where`] reads; the filters of
/// `GET /testexecutions/nextgen`. Defaults to every execution of the project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutionFilter {
    /// Only this cycle's (by key).
    pub test_cycle: Option<String>,
    /// Only this case's (by key).
    pub test_case: Option<String>,
    /// Only those that ended after this time (`yyyy-MM-dd'T'HH:mm:ss'Z'`).
    pub actual_end_date_after: Option<String>,
    /// Only those that ended before this time.
    pub actual_end_date_before: Option<String>,
    /// Only those created or changed after this time (NextGen's
    /// `updatedAfter`), whatever their `actualEndDate` says.
    pub updated_after: Option<String>,
    /// Only the last execution of each cycle item, and every ad-hoc one.
    pub only_last_executions: bool,
}

impl ExecutionFilter {
    /// Every execution of one cycle.
    pub fn cycle(key: &str) -> Self {
        ExecutionFilter {
            test_cycle: Some(key.to_owned()),
            ..ExecutionFilter::default()
        }
    }

    fn query(&self) -> Vec<(&'static str, &str)> {
        let mut query = vec![(
            "onlyLastExecutions",
            if self.only_last_executions {
                "true"
            } else {
                "false"
            },
        )];
        let optional = [
            ("testCycle", &self.test_cycle),
            ("testCase", &self.test_case),
            ("actualEndDateAfter", &self.actual_end_date_after),
            ("actualEndDateBefore", &self.actual_end_date_before),
            ("updatedAfter", &self.updated_after),
        ];
        query.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value.as_deref()?))),
        );
        query
    }
}

impl ZephyrClient {
    /// A client for project `project_key`.
    pub fn new(api: ApiClient, project_key: &str) -> Self {
        ZephyrClient {
            api,
            project: project_key.to_string(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Asks for `size` items per page (the server may return fewer; NextGen
    /// pages ask for at most [`MAX_CURSOR_LIMIT`]).
    pub fn with_page_size(mut self, size: u64) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The HTTP client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The project key.
    pub fn project_key(&self) -> &str {
        &self.project
    }

    /// Calls `visit` with each page of an offset-paged list (`startAt`,
    /// `maxResults`), in order, holding one page at a time, each item decoded
    /// on its own. `visit` also gets the list's `total` when the server sends
    /// it. Paging follows the returned `maxResults` and `isLast`
    /// ([`Page::next_request`]).
    pub fn each_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut visit: impl FnMut(Vec<Record<T>>, Option<u64>) -> Result<()>,
    ) -> Result<()> {
        self.offset_pages(path, query, |page: Page<Lenient<T>>| {
            let start = page.start_at;
            let records = (start..).zip(page.values).map(|(at, r)| r.at(at));
            visit(records.collect(), page.total)
        })
    }

    /// Every item of an offset-paged list, each decoded on its own. For short
    /// lists (folders, statuses).
    pub fn all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Record<T>>> {
        let mut all = Vec::new();
        self.each_page(path, query, |items, _| {
            all.extend(items);
            Ok(())
        })?;
        Ok(all)
    }

    /// Every item of an offset-paged list that is read whole or not at all (a
    /// case's steps: migrating the rest of a script would lose a step
    /// silently). One unreadable item is a [`Error::Decode`] of its page.
    fn all_or_nothing<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let mut all = Vec::new();
        self.offset_pages(path, &[], |page: Page<T>| {
            all.extend(page.values);
            Ok(())
        })?;
        Ok(all)
    }

    fn offset_pages<P: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut visit: impl FnMut(Page<P>) -> Result<()>,
    ) -> Result<()> {
        let mut next = Some(PageRequest::first(self.page_size));
        while let Some(request) = next {
            let paging = request.query();
            let call = ApiRequest::get(path)
                .queries(query)
                .queries(&[(paging[0].0, &paging[0].1), (paging[1].0, &paging[1].1)]);
            let page: Page<P> = self.api.json(&call)?;
            next = page.next_request();
            visit(page)?;
        }
        Ok(())
    }

    /// Calls `visit` with each page of a NextGen list (`startAtId`, `limit`,
    /// response `nextStartAtId`), in order, each item decoded on its own.
    /// Cursor paging has no `startAt` ceiling (offset paging stops at
    /// 1,000,000) and neither skips nor repeats items added while it reads.
    /// An item repeated at a page boundary (same `id` as on the page before)
    /// is dropped; a cursor that fails to move forward can't loop
    /// ([`next_cursor`]), and neither can a server that moves its cursor on
    /// but answers the same items again (the listing ends, with a warning).
    pub fn each_cursor_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut visit: impl FnMut(Vec<Record<T>>) -> Result<()>,
    ) -> Result<()> {
        let limit = self.page_size.clamp(1, MAX_CURSOR_LIMIT).to_string();
        let (mut cursor, mut position) = (Some(0u64), 0u64);
        let mut previous_ids: HashSet<u64> = HashSet::new();
        // Pages in a row that brought nothing new (every id on the page before).
        let mut stale = 0;
        while let Some(start) = cursor {
            let start_text = start.to_string();
            let call = ApiRequest::get(path)
                .queries(query)
                .queries(&[("startAtId", start_text.as_str()), ("limit", &limit)]);
            let page: CursorPage<Lenient<T>> = self.api.json(&call)?;
            let ids: HashSet<u64> = page.values.iter().filter_map(|item| item.id).collect();
            cursor = next_cursor(start, page.next_start_at_id, ids.iter().max().copied());
            stale = match !ids.is_empty() && ids.is_subset(&previous_ids) {
                true => stale + 1,
                false => 0,
            };
            if stale > 1 {
                // A server that moves its cursor on but answers the same items (it ignores
                // `startAtId`) would be read for ever; a cursor read "from" rather than
                // "after" an id repeats a page of one item at most once.
                log::warn!(
                    "{path}: the server answered the same items twice in a row for a moving \
                     cursor (startAtId={start}); the listing ends here"
                );
                break;
            }
            let mut records = Vec::with_capacity(page.values.len());
            for item in page.values {
                let id = item.id;
                if id.is_some_and(|id| previous_ids.contains(&id)) {
                    log::debug!("{path}: item {id:?} repeated at a page boundary; skipped");
                    continue;
                }
                records.push(item.at(position));
                position += 1;
            }
            previous_ids = ids;
            visit(records)?;
        }
        Ok(())
    }

    fn project_query(&self) -> [(&str, &str); 1] {
        [("projectKey", self.project.as_str())]
    }

    /// The project, or `None` if no project has this key (or the token can't
    /// see it): `GET /projects/{key}`, 404 meaning none.
    pub fn project(&self) -> Result<Option<Project>> {
        match self
            .api
            .get_json(&format!("/projects/{}", path_part(&self.project)?), &[])
        {
            Ok(project) => Ok(Some(project)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Folders of one type.
    pub fn folders(&self, kind: FolderType) -> Result<Vec<Record<Folder>>> {
        let kind = match kind {
            FolderType::TestCase => "TEST_CASE",
            FolderType::TestPlan => "TEST_PLAN",
            FolderType::TestCycle => "TEST_CYCLE",
        };
        self.all(
            "/folders",
            &[("projectKey", &self.project), ("folderType", kind)],
        )
    }

    /// Statuses of one `statusType` (`TEST_CASE`, `TEST_CYCLE`, `TEST_EXECUTION`, ...).
    pub fn statuses(&self, status_type: &str) -> Result<Vec<Record<Status>>> {
        self.all(
            "/statuses",
            &[("projectKey", &self.project), ("statusType", status_type)],
        )
    }

    /// Priorities.
    pub fn priorities(&self) -> Result<Vec<Record<Priority>>> {
        self.all("/priorities", &self.project_query())
    }

    /// Every test case, a page at a time (`GET /testcases/nextgen`).
    pub fn test_cases(&self, visit: impl FnMut(Vec<Record<TestCase>>) -> Result<()>) -> Result<()> {
        self.test_cases_updated_after(None, visit)
    }

    /// The test cases updated after `after` (`yyyy-MM-dd'T'HH:mm:ss'Z'`;
    /// `None`: all), a page at a time (`GET /testcases/nextgen?updatedAfter=`).
    pub fn test_cases_updated_after(
        &self,
        after: Option<&str>,
        visit: impl FnMut(Vec<Record<TestCase>>) -> Result<()>,
    ) -> Result<()> {
        let mut query = self.project_query().to_vec();
        if let Some(after) = after {
            query.push(("updatedAfter", after));
        }
        self.each_cursor_page("/testcases/nextgen", &query, visit)
    }

    /// The number of items of an offset-paged list of the project, from the
    /// first page's `total` (when sent); NextGen lists have no total.
    pub fn count(&self, path: &str, extra: &[(&str, &str)]) -> Result<Option<u64>> {
        let mut query = vec![("projectKey", self.project.as_str()), ("maxResults", "1")];
        query.extend_from_slice(extra);
        let page: Page<serde_json::Value> = self.api.get_json(path, &query)?;
        Ok(page.total)
    }

    /// The step-by-step script of a case, every page of it. A step that can't
    /// be read fails the whole read. The server answers 422 when the case has
    /// a plain or BDD script instead.
    pub fn test_steps(&self, key: &str) -> Result<Vec<TestStep>> {
        self.all_or_nothing(&format!("/testcases/{}/teststeps", path_part(key)?))
    }

    /// The plain or BDD script of a case, or `None` if it has none (404).
    /// The server answers 422 when the case has step-by-step steps instead.
    pub fn test_script(&self, key: &str) -> Result<Option<TestScript>> {
        match self
            .api
            .get_json(&format!("/testcases/{}/testscript", path_part(key)?), &[])
        {
            Ok(script) => Ok(Some(script)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every test cycle, a page at a time (`GET /testcycles/nextgen`).
    pub fn test_cycles(
        &self,
        visit: impl FnMut(Vec<Record<TestCycle>>) -> Result<()>,
    ) -> Result<()> {
        self.each_cursor_page("/testcycles/nextgen", &self.project_query(), visit)
    }

    /// Every execution (all of them, not only the last per case), optionally
    /// of one cycle (by key), a page at a time, in one pass through
    /// `GET /testexecutions/nextgen`.
    pub fn executions(
        &self,
        cycle_key: Option<&str>,
        visit: impl FnMut(Vec<Record<TestExecution>>) -> Result<()>,
    ) -> Result<()> {
        let filter = cycle_key.map_or_else(ExecutionFilter::default, ExecutionFilter::cycle);
        self.executions_where(&filter, visit)
    }

    /// The executions `filter` selects, a page at a time, through
    /// `GET /testexecutions/nextgen`.
    pub fn executions_where(
        &self,
        filter: &ExecutionFilter,
        visit: impl FnMut(Vec<Record<TestExecution>>) -> Result<()>,
    ) -> Result<()> {
        let mut query = vec![("projectKey", self.project.as_str())];
        query.extend(filter.query());
        self.each_cursor_page("/testexecutions/nextgen", &query, visit)
    }

    /// The step results of an execution. A result that can't be read fails
    /// the whole read (its log would otherwise lose a step silently).
    pub fn execution_steps(&self, id_or_key: &str) -> Result<Vec<ExecutionStep>> {
        self.all_or_nothing(&format!(
            "/testexecutions/{}/teststeps",
            path_part(id_or_key)?
        ))
    }
}

/// Refuses keys that would change the path (the API's keys never contain these).
fn path_part(key: &str) -> Result<&str> {
    if key.is_empty() || key.contains(['/', '?', '#', '%']) || key.contains("..") {
        return Err(Error::InvalidUrl {
            url: crate::redact::url(key),
            reason: "not a valid Zephyr key or id".to_string(),
        });
    }
    Ok(key)
}
