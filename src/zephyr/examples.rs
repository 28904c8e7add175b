//! The contract's example JSON (section 1), verbatim, for tests of the models
//! and of the transform that reads them.

/// A test case.
pub(crate) const CASE: &str = r#"{"id":1,"key":"PROJ-T1","name":"Check pump","project":{"id":10005,"self":"…"},"createdOn":"2018-05-15T13:15:13Z",
 "objective":"Ensure pump works","precondition":"Pump available","estimatedTime":138000,"labels":["Regression"],
 "priority":{"id":10002,"self":"…/priorities/10002"},
 "status":{"id":10000,"self":"…/statuses/10000"},"folder":{"id":100006,"self":"…/folders/100006"},
 "owner":{"accountId":"5b10a2844c20165700ede21g","self":"…"},
 "testScript":{"self":"…/testcases/PROJ-T1/teststeps"},"customFields":{"Build Number":20,"Release Date":"2020-01-01","Category":["Perf"]},"links":{"self":"…","issues":[],"webLinks":[]}}"#;

/// A page of test steps: one inline, one call to a test.
pub(crate) const STEPS_PAGE: &str = r#"{"startAt":0,"maxResults":100,"total":2,"isLast":true,"values":[
 {"inline":{"description":"Login","testData":"user=a","expectedResult":"Dashboard shown","customFields":{}}},
 {"testCase":{"testCaseKey":"PROJ-T123","self":"…","parameters":[{"name":"user","type":"DEFAULT_VALUE","value":"admin"}]}}]}"#;

/// A test cycle.
pub(crate) const CYCLE: &str = r#"{"id":10010,"key":"PROJ-R40","name":"Sprint 1","project":{"id":10005,"self":"…"},"status":{"id":10020,"self":"…"},"folder":{"id":100010,"self":"…"},
 "description":"Regression","plannedStartDate":"2018-05-19T13:15:13Z","plannedEndDate":"2018-05-20T13:15:13Z"}"#;

/// A test execution.
pub(crate) const EXECUTION: &str = r#"{"id":10100,"key":"PROJ-E10","project":{"id":10005,"self":"…"},"testCase":{"id":1,"self":"…/testcases/PROJ-T1/versions/1"},
 "environment":{"id":10005,"self":"…"},"testExecutionStatus":{"id":10030,"self":"…/statuses/10030"},"actualEndDate":"2018-05-20T13:15:13Z",
 "executionTime":120000,"executedById":"5b10…","comment":"Login failed","automated":false,"testCycle":{"id":10010,"self":"…/testcycles/10010"},"customFields":{}}"#;
