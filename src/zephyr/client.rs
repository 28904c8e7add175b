//! The Zephyr Scale Cloud v2 client: typed reads with paging done right.

use serde::de::DeserializeOwned;

use super::models::{
    ExecutionStep, Folder, FolderType, Page, PageRequest, Priority, Project, Status, TestCase,
    TestCycle, TestExecution, TestScript, TestStep,
};
use crate::error::{Error, Result};
use crate::http::{ApiClient, ApiRequest};

/// Page size asked for; the server may return fewer per page (contract: it
/// may lower `maxResults`, and `/teststeps` holds 100 items per page).
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// Reads one Zephyr project through an [`ApiClient`].
///
/// ```no_run
/// # fn main() -> etlpool::Result<()> {
/// use etlpool::http::{ApiClient, Auth};
/// use etlpool::zephyr::ZephyrClient;
/// let pool = etlpool::Pool::global()?;
/// let api = ApiClient::new(&pool, "https://api.zephyrscale.smartbear.com/v2", Auth::Bearer("...".into()))?;
/// let zephyr = ZephyrClient::new(api, "PROJ");
/// zephyr.test_cases(|page| {
///     for case in page { println!("{} {}", case.key, case.name); }
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

impl ZephyrClient {
    /// A client for project `project_key`.
    pub fn new(api: ApiClient, project_key: &str) -> Self {
        ZephyrClient {
            api,
            project: project_key.to_string(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Asks for `size` items per page (the server may return fewer).
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

    /// Calls `visit` with each page's items of a paged list, in order, holding
    /// one page at a time. `visit` also gets the list's `total` when the server
    /// sends it.
    pub fn each_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut visit: impl FnMut(Vec<T>, Option<u64>) -> Result<()>,
    ) -> Result<()> {
        let mut next = Some(PageRequest::first(self.page_size));
        while let Some(request) = next {
            let paging = request.query();
            let call = ApiRequest::get(path)
                .queries(query)
                .queries(&[(paging[0].0, &paging[0].1), (paging[1].0, &paging[1].1)]);
            let page: Page<T> = self.api.json(&call)?;
            next = page.next_request();
            visit(page.values, page.total)?;
        }
        Ok(())
    }

    /// Every item of a paged list. For short lists (folders, statuses).
    pub fn all<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>> {
        let mut all = Vec::new();
        self.each_page(path, query, |items, _| {
            all.extend(items);
            Ok(())
        })?;
        Ok(all)
    }

    fn project_query(&self) -> [(&str, &str); 1] {
        [("projectKey", self.project.as_str())]
    }

    /// The project, or `None` if no project has this key (or the token can't see it).
    pub fn project(&self) -> Result<Option<Project>> {
        let mut found = None;
        self.each_page("/projects", &[], |projects: Vec<Project>, _| {
            if found.is_none() {
                found = projects.into_iter().find(|p| p.key == self.project);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Folders of one type.
    pub fn folders(&self, kind: FolderType) -> Result<Vec<Folder>> {
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
    pub fn statuses(&self, status_type: &str) -> Result<Vec<Status>> {
        self.all(
            "/statuses",
            &[("projectKey", &self.project), ("statusType", status_type)],
        )
    }

    /// Priorities.
    pub fn priorities(&self) -> Result<Vec<Priority>> {
        self.all("/priorities", &self.project_query())
    }

    /// Every test case, a page at a time.
    pub fn test_cases(&self, mut visit: impl FnMut(Vec<TestCase>) -> Result<()>) -> Result<()> {
        self.each_page("/testcases", &self.project_query(), |page, _| visit(page))
    }

    /// The number of test cases, from the first page's `total` (when sent).
    pub fn count(&self, path: &str, extra: &[(&str, &str)]) -> Result<Option<u64>> {
        let mut query = vec![("projectKey", self.project.as_str()), ("maxResults", "1")];
        query.extend_from_slice(extra);
        let page: Page<serde_json::Value> = self.api.get_json(path, &query)?;
        Ok(page.total)
    }

    /// The step-by-step script of a case.
    pub fn test_steps(&self, key: &str) -> Result<Vec<TestStep>> {
        self.all(&format!("/testcases/{}/teststeps", path_part(key)?), &[])
    }

    /// The plain or BDD script of a case, or `None` if it has none.
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

    /// Every test cycle, a page at a time.
    pub fn test_cycles(&self, mut visit: impl FnMut(Vec<TestCycle>) -> Result<()>) -> Result<()> {
        self.each_page("/testcycles", &self.project_query(), |page, _| visit(page))
    }

    /// Every execution (all of them, not only the last per case), optionally
    /// of one cycle (by key), a page at a time.
    pub fn executions(
        &self,
        cycle_key: Option<&str>,
        mut visit: impl FnMut(Vec<TestExecution>) -> Result<()>,
    ) -> Result<()> {
        let mut query = vec![
            ("projectKey", self.project.as_str()),
            ("onlyLastExecutions", "false"),
        ];
        if let Some(cycle) = cycle_key {
            query.push(("testCycle", cycle));
        }
        self.each_page("/testexecutions", &query, |page, _| visit(page))
    }

    /// The step results of an execution.
    pub fn execution_steps(&self, id_or_key: &str) -> Result<Vec<ExecutionStep>> {
        self.all(
            &format!("/testexecutions/{}/teststeps", path_part(id_or_key)?),
            &[],
        )
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
