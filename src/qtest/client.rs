//! The qTest Manager v3 client: typed reads and creates under one project.

use serde::de::DeserializeOwned;

use super::envelope::is_last_bare_page;
use super::models::{
    CycleParent, ExecutionStatus, Field, Module, NewModule, NewTestCase, NewTestCycle, NewTestLog,
    NewTestRun, Paged, SearchRequest, TestCase, TestCycle, TestLog, TestRun, UserProfile,
};
use crate::error::Result;
use crate::http::{ApiClient, ApiRequest};

/// Page size asked of every paged list (`test-cycles`, `test-cases`, `test-runs`,
/// `test-logs`, search): the spec's default for all but `test-cases` (20), and within every
/// documented maximum (999).
pub const PAGE_SIZE: u64 = 100;

/// Reads and writes one qTest project through an [`ApiClient`] whose base URL is
/// the API root (`https://SITE.qtestnet.com/api/v3`).
#[derive(Clone, Debug)]
pub struct QtestClient {
    api: ApiClient,
    project: u64,
}

impl QtestClient {
    /// A client for project `project_id`.
    pub fn new(api: ApiClient, project_id: u64) -> Self {
        QtestClient {
            api,
            project: project_id,
        }
    }

    /// The HTTP client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The project id.
    pub fn project_id(&self) -> u64 {
        self.project
    }

    fn path(&self, rest: &str) -> String {
        format!("/projects/{}/{rest}", self.project)
    }

    /// Whether the project exists (and the token can see it).
    pub fn project_exists(&self) -> Result<bool> {
        match self
            .api
            .get_json::<serde_json::Value>(&format!("/projects/{}", self.project), &[])
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Test-case fields with their allowed values.
    pub fn case_fields(&self) -> Result<Vec<Field>> {
        self.api
            .get_json(&self.path("settings/test-cases/fields"), &[])
    }

    /// Test-run fields.
    pub fn run_fields(&self) -> Result<Vec<Field>> {
        self.api
            .get_json(&self.path("settings/test-runs/fields"), &[])
    }

    /// Execution statuses.
    pub fn execution_statuses(&self) -> Result<Vec<ExecutionStatus>> {
        self.api
            .get_json(&self.path("test-runs/execution-statuses"), &[])
    }

    /// Modules directly under `parent` (`None`: the root), optionally with their
    /// whole subtrees.
    pub fn modules(&self, parent: Option<u64>, descendants: bool) -> Result<Vec<Module>> {
        let mut req = ApiRequest::get(&self.path("modules"));
        if let Some(p) = parent {
            req = req.query("parentId", p);
        }
        if descendants {
            req = req.query("expand", "descendants");
        }
        self.api.json(&req)
    }

    /// Creates a module under `parent` (`None`: the root).
    pub fn create_module(&self, parent: Option<u64>, body: &NewModule) -> Result<Module> {
        let mut req = ApiRequest::post(&self.path("modules")).json(body)?;
        if let Some(p) = parent {
            req = req.query("parentId", p);
        }
        self.api.json(&req)
    }

    /// Test cycles directly under `parent`, optionally with their subtrees (paged by the
    /// cycles directly under `parent`; each page brings their whole subtrees).
    pub fn cycles(&self, parent: CycleParent, descendants: bool) -> Result<Vec<TestCycle>> {
        let [(k1, v1), (k2, v2)] = parent.query();
        let mut req = ApiRequest::get(&self.path("test-cycles"))
            .query(k1, v1)
            .query(k2, v2);
        if descendants {
            req = req.query("expand", "descendants");
        }
        let mut all = Vec::new();
        self.bare_pages(req, "pageSize", |items| {
            all.extend(items);
            Ok(())
        })?;
        Ok(all)
    }

    /// Creates a test cycle under `parent`.
    pub fn create_cycle(&self, parent: CycleParent, body: &NewTestCycle) -> Result<TestCycle> {
        let [(k1, v1), (k2, v2)] = parent.query();
        let req = ApiRequest::post(&self.path("test-cycles"))
            .query(k1, v1)
            .query(k2, v2)
            .json(body)?;
        self.api.json(&req)
    }

    /// Creates a test case.
    pub fn create_case(&self, body: &NewTestCase) -> Result<TestCase> {
        self.api.post_json(&self.path("test-cases"), &[], body)
    }

    /// Replaces a case's name, texts, properties and steps (`PUT`, spec
    /// `updateTestCase`); the steps sent replace the case's steps. qTest
    /// makes a new version; approve it again where approved cases are wanted.
    pub fn update_case(&self, id: u64, body: &NewTestCase) -> Result<TestCase> {
        self.api
            .put_json(&self.path(&format!("test-cases/{id}")), &[], body)
    }

    /// Deletes a case (`DELETE`, spec `deleteTestCase`).
    pub fn delete_case(&self, id: u64) -> Result<()> {
        self.api.delete(&self.path(&format!("test-cases/{id}")))
    }

    /// A test run, or `None` if it doesn't exist (404).
    pub fn test_run(&self, id: u64) -> Result<Option<TestRun>> {
        match self
            .api
            .get_json(&self.path(&format!("test-runs/{id}")), &[])
        {
            Ok(run) => Ok(Some(run)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Approves a case; returns it with its new version.
    pub fn approve_case(&self, id: u64) -> Result<TestCase> {
        self.api.json(&ApiRequest::put(
            &self.path(&format!("test-cases/{id}/approve")),
        ))
    }

    /// A case with its properties and steps, or `None` if it doesn't exist. Steps come only
    /// with `expand=teststep` (the list's `expandProps`/`expandSteps` mean nothing here).
    pub fn test_case(&self, id: u64) -> Result<Option<TestCase>> {
        let path = self.path(&format!("test-cases/{id}"));
        match self.api.get_json(&path, &[("expand", "teststep")]) {
            Ok(case) => Ok(Some(case)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Visits the cases of a module, with properties and steps, a page at a time.
    pub fn cases_in(
        &self,
        module: u64,
        visit: impl FnMut(Vec<TestCase>) -> Result<()>,
    ) -> Result<()> {
        self.module_cases(module, true, visit)
    }

    /// Visits the cases of a module with their properties but without their
    /// steps, a page at a time: the module's listing, which shows a case as
    /// soon as it is created (the search index may take a while).
    pub fn case_summaries_in(
        &self,
        module: u64,
        visit: impl FnMut(Vec<TestCase>) -> Result<()>,
    ) -> Result<()> {
        self.module_cases(module, false, visit)
    }

    fn module_cases(
        &self,
        module: u64,
        steps: bool,
        visit: impl FnMut(Vec<TestCase>) -> Result<()>,
    ) -> Result<()> {
        let req = ApiRequest::get(&self.path("test-cases")).queries(&[
            ("parentId", module.to_string().as_str()),
            ("expandProps", "true"),
            ("expandSteps", if steps { "true" } else { "false" }),
        ]);
        self.bare_pages(req, "size", visit)
    }

    /// The API user's permissions in the project; `None` where the service has no such
    /// endpoint (404).
    pub fn user_profile(&self) -> Result<Option<UserProfile>> {
        match self.api.get_json(&self.path("user-profiles/current"), &[]) {
            Ok(profile) => Ok(Some(profile)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Visits the items of a `POST /search`, a page at a time. Test cases come without
    /// their steps (see [`QtestClient::search_with_steps`]).
    pub fn search<T: DeserializeOwned>(
        &self,
        request: &SearchRequest,
        visit: impl FnMut(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        self.search_request(request, false, visit)
    }

    /// Like [`QtestClient::search`], with each test case's steps (`appendTestSteps=true`).
    pub fn search_with_steps<T: DeserializeOwned>(
        &self,
        request: &SearchRequest,
        visit: impl FnMut(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        self.search_request(request, true, visit)
    }

    fn search_request<T: DeserializeOwned>(
        &self,
        request: &SearchRequest,
        steps: bool,
        visit: impl FnMut(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        // A search is a read sent as POST: safe to resend.
        let mut req = ApiRequest::post(&self.path("search"))
            .json(request)?
            .idempotent();
        if steps {
            req = req.query("appendTestSteps", "true");
        }
        self.paged(req, visit)
    }

    /// Cases whose field `label` equals `value` (e.g. `'Zephyr Key' = 'PROJ-T1'`).
    /// A value the query syntax can't express matches nothing.
    pub fn cases_where(&self, label: &str, value: &str) -> Result<Vec<TestCase>> {
        let Some(request) = SearchRequest::field_equals("test-cases", label, value) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        self.search(&request, |items: Vec<TestCase>| {
            found.extend(items);
            Ok(())
        })?;
        Ok(found)
    }

    /// The test runs of a test cycle.
    pub fn runs(&self, cycle: u64) -> Result<Vec<TestRun>> {
        let [(k1, v1), (k2, v2)] = CycleParent::TestCycle(cycle).query();
        let req = ApiRequest::get(&self.path("test-runs"))
            .query(k1, v1)
            .query(k2, v2);
        self.collect(req)
    }

    /// Creates a test run under a test cycle.
    pub fn create_run(&self, cycle: u64, body: &NewTestRun) -> Result<TestRun> {
        let [(k1, v1), (k2, v2)] = CycleParent::TestCycle(cycle).query();
        let req = ApiRequest::post(&self.path("test-runs"))
            .query(k1, v1)
            .query(k2, v2)
            .json(body)?;
        self.api.json(&req)
    }

    /// The test logs of a run.
    pub fn logs(&self, run: u64) -> Result<Vec<TestLog>> {
        self.collect(ApiRequest::get(
            &self.path(&format!("test-runs/{run}/test-logs")),
        ))
    }

    /// Submits a test log to a run.
    pub fn create_log(&self, run: u64, body: &NewTestLog) -> Result<TestLog> {
        self.api
            .post_json(&self.path(&format!("test-runs/{run}/test-logs")), &[], body)
    }

    /// Walks an enveloped list (`{"page","page_size","total","items"}`).
    fn paged<T: DeserializeOwned>(
        &self,
        request: ApiRequest,
        mut visit: impl FnMut(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        let mut page = Some(1u64);
        while let Some(n) = page {
            let req = request
                .clone()
                .query("page", n)
                .query("pageSize", PAGE_SIZE);
            let mut got: Paged<T> = self.api.json(&req)?;
            // The spec requires neither `page` nor `page_size` of the envelope: the page
            // answered is the one asked for (a missing `page` read as 1 would ask for page 2
            // for ever), and a missing size is the one asked for.
            got.page = n;
            if got.page_size == 0 {
                got.page_size = PAGE_SIZE;
            }
            page = got.next_page();
            visit(got.items)?;
        }
        Ok(())
    }

    /// Walks a bare-array list (`test-cases`, `test-cycles`): pages from 1 of [`PAGE_SIZE`]
    /// items, asked with `size_param`; a short page is the last.
    fn bare_pages<T: DeserializeOwned>(
        &self,
        request: ApiRequest,
        size_param: &str,
        mut visit: impl FnMut(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        for page in 1u64.. {
            let req = request
                .clone()
                .query("page", page)
                .query(size_param, PAGE_SIZE);
            let items: Vec<T> = self.api.json(&req)?;
            let last = is_last_bare_page(items.len(), PAGE_SIZE);
            visit(items)?;
            if last {
                break;
            }
        }
        Ok(())
    }

    fn collect<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<Vec<T>> {
        let mut all = Vec::new();
        self.paged(request, |items| {
            all.extend(items);
            Ok(())
        })?;
        Ok(all)
    }
}
