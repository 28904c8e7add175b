//! What the mocks serve and how they misbehave at start.

use std::path::PathBuf;
use std::time::Duration;

use super::faults::FaultConfig;
use super::qtest::quota::QtestQuota;

/// Sizes of the seeded Zephyr dataset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataSizes {
    /// `TEST_CASE` folders. Defaults to 12.
    pub folders: usize,
    /// Deepest folder nesting (1 = only root folders). Defaults to 3.
    pub folder_depth: usize,
    /// `TEST_CYCLE` folders. Defaults to 3.
    pub cycle_folders: usize,
    /// Test cases. Defaults to 50.
    pub cases: usize,
    /// Steps of each step-by-step test case. Defaults to 4.
    pub steps_per_case: usize,
    /// Test cycles. Defaults to 5.
    pub cycles: usize,
    /// Test executions, spread over cycle and case pairs. Defaults to 120.
    pub executions: usize,
}

impl Default for DataSizes {
    fn default() -> Self {
        DataSizes {
            folders: 12,
            folder_depth: 3,
            cycle_folders: 3,
            cases: 50,
            steps_per_case: 4,
            cycles: 5,
            executions: 120,
        }
    }
}

/// Options of [`MockServers::start`](super::MockServers::start).
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Seed of the data, the configured ids, the tokens and the fault dice. Defaults to a
    /// random seed, so ids differ from run to run; [`MockServers::seed`](super::MockServers::seed)
    /// tells which was used.
    pub seed: Option<u64>,
    /// The Zephyr project key. Defaults to `PROJ`.
    pub project_key: String,
    /// The qTest project id. Defaults to one derived from the seed.
    pub qtest_project_id: Option<u64>,
    /// Zephyr's Bearer token. Defaults to one derived from the seed.
    pub zephyr_token: Option<String>,
    /// qTest's static Bearer token (the "API & SDK" token). Defaults to one derived from the seed.
    pub qtest_token: Option<String>,
    /// Login accepted by qTest's `POST /oauth/token`. Defaults to `etlpool` / `etlpool`.
    pub qtest_login: (String, String),
    /// Lifetime of tokens issued by `/oauth/token`. Defaults to 3599 s.
    pub oauth_expiry: Duration,
    /// qTest's site name: `/oauth/token` refuses a login whose `Authorization` header is not
    /// `Basic base64("<site>:")`. Defaults to `etlpool`.
    pub qtest_site: String,
    /// Whether qTest's API user may approve test cases. Without it `PUT .../approve` and logs
    /// of unapproved case versions answer 403. Defaults to true.
    pub qtest_can_approve: bool,
    /// qTest's request quota (`x-ratelimit-remaining-minute` and `-month`, 429 without
    /// `Retry-After` over it). Defaults to [`QtestQuota::default`].
    pub qtest_quota: QtestQuota,
    /// Sizes of the Zephyr dataset. Defaults to [`DataSizes::default`].
    pub sizes: DataSizes,
    /// Zephyr's server-side cap on `maxResults` and NextGen's `limit` (`/teststeps` also
    /// caps at 100). Defaults to 1000, the spec's maximum.
    pub zephyr_max_results: usize,
    /// Serve a few Zephyr records per dataset in shapes the spec allows and a naive
    /// client rejects: owners with a `null` account id, executions whose `testCase` has
    /// no `id`, ad-hoc executions outside any cycle (`testCycle` `null` or absent).
    /// Chosen by the seed. Defaults to true.
    pub odd_records: bool,
    /// Serve this many cases, cycles and executions each that break the spec (a required
    /// field missing or `null`; the executions also lack `id` and `key`), so tests can
    /// check that one unreadable record fails alone. Chosen by the seed. Defaults to 0.
    pub unreadable_records: usize,
    /// Zephyr port on 127.0.0.1; 0 picks a free one. Defaults to 0.
    pub port_zephyr: u16,
    /// qTest port on 127.0.0.1; 0 picks a free one. Defaults to 0.
    pub port_qtest: u16,
    /// Append every qTest write to this file (JSON lines) and replay it at start and restart,
    /// so the created state survives a crash. Defaults to none (state lives in memory).
    pub state_file: Option<PathBuf>,
    /// Zephyr's faults at start. Defaults to none.
    pub zephyr_faults: FaultConfig,
    /// qTest's faults at start. Defaults to none.
    pub qtest_faults: FaultConfig,
    /// Files the Zephyr mock serves as attachments. Defaults to none.
    pub attachments: super::zephyr::attachments::MockAttachments,
    /// Answer Zephyr's file downloads with a 302 to a pre-signed URL on a
    /// second server (another origin), which serves the bytes, refuses a
    /// request that also carries `Authorization` (400, as S3 does) and
    /// quotes the signature in its error bodies: the path of a file API
    /// whose bytes live on a storage host. Defaults to false (Zephyr serves
    /// the bytes itself).
    pub attachments_redirect: bool,
    /// qTest's largest request body (an upload above it gets 413); 0 means
    /// the server's default, [`DEFAULT_MAX_BODY`](super::server::DEFAULT_MAX_BODY)
    /// (16 MiB), or room for [`MockAttachments::big_bytes`](super::zephyr::attachments::MockAttachments::big_bytes)
    /// when that is set. Defaults to 0.
    pub qtest_max_body_bytes: usize,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            seed: None,
            project_key: "PROJ".to_string(),
            qtest_project_id: None,
            zephyr_token: None,
            qtest_token: None,
            qtest_login: ("etlpool".to_string(), "etlpool".to_string()),
            oauth_expiry: Duration::from_secs(3599),
            qtest_site: "etlpool".to_string(),
            qtest_can_approve: true,
            qtest_quota: QtestQuota::default(),
            sizes: DataSizes::default(),
            zephyr_max_results: 1000,
            odd_records: true,
            unreadable_records: 0,
            port_zephyr: 0,
            port_qtest: 0,
            state_file: None,
            zephyr_faults: FaultConfig::default(),
            qtest_faults: FaultConfig::default(),
            attachments: Default::default(),
            attachments_redirect: false,
            qtest_max_body_bytes: 0,
        }
    }
}

impl MockOptions {
    /// Options with this seed and the other defaults.
    pub fn seeded(seed: u64) -> Self {
        MockOptions {
            seed: Some(seed),
            ..MockOptions::default()
        }
    }

    /// Checks values that would make the mocks meaningless; the error names the option.
    pub fn validate(&self) -> Result<(), String> {
        let key_ok = !self.project_key.is_empty()
            && self
                .project_key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(format!(
                "project_key must be upper-case letters and digits, got {:?}",
                self.project_key
            ));
        }
        if self.zephyr_max_results == 0 {
            return Err("zephyr_max_results must be at least 1".to_string());
        }
        if self.sizes.folder_depth == 0 && self.sizes.folders > 0 {
            return Err("sizes.folder_depth must be at least 1 when there are folders".to_string());
        }
        if self.sizes.executions > 0 && (self.sizes.cases == 0 || self.sizes.cycles == 0) {
            return Err("sizes.executions needs at least one case and one cycle".to_string());
        }
        if self.qtest_site.trim().is_empty() || self.qtest_site.contains([':', '.', '/']) {
            return Err(format!(
                "qtest_site must be a site name (the first label of SITE.qtestnet.com), got {:?}",
                self.qtest_site
            ));
        }
        self.qtest_quota.validate()?;
        self.zephyr_faults
            .validate()
            .map_err(|e| format!("zephyr faults: {e}"))?;
        self.qtest_faults
            .validate()
            .map_err(|e| format!("qtest faults: {e}"))
    }
}
