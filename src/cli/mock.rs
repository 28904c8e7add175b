//! `etlpool mock`: run both mock servers in the foreground until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::{CliError, ExitCode};
use crate::mock::{DataSizes, FailPoint, FaultConfig, MockOptions, MockServers};

/// Which servers the fault options apply to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultTarget {
    /// Both servers.
    #[default]
    Both,
    /// Only Zephyr.
    Zephyr,
    /// Only qTest.
    Qtest,
}

/// Options of `etlpool mock`.
#[derive(Clone, Debug, clap::Args)]
pub struct MockArgs {
    /// Seed of the data, configured ids, tokens and fault dice [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Zephyr project key.
    #[arg(long, default_value = "PROJ")]
    pub project_key: String,
    /// qTest project id [default: derived from the seed].
    #[arg(long)]
    pub qtest_project_id: Option<u64>,
    /// Zephyr Bearer token [default: derived from the seed].
    #[arg(long)]
    pub zephyr_token: Option<String>,
    /// qTest Bearer token [default: derived from the seed].
    #[arg(long)]
    pub qtest_token: Option<String>,
    /// Test cases.
    #[arg(long, default_value_t = DataSizes::default().cases)]
    pub cases: usize,
    /// Test-case folders.
    #[arg(long, default_value_t = DataSizes::default().folders)]
    pub folders: usize,
    /// Deepest folder nesting.
    #[arg(long, default_value_t = DataSizes::default().folder_depth)]
    pub folder_depth: usize,
    /// Test-cycle folders.
    #[arg(long, default_value_t = DataSizes::default().cycle_folders)]
    pub cycle_folders: usize,
    /// Steps per step-by-step test case.
    #[arg(long, default_value_t = DataSizes::default().steps_per_case)]
    pub steps: usize,
    /// Test cycles.
    #[arg(long, default_value_t = DataSizes::default().cycles)]
    pub cycles: usize,
    /// Test executions.
    #[arg(long, default_value_t = DataSizes::default().executions)]
    pub executions: usize,
    /// Zephyr's server-side cap on maxResults and NextGen's limit.
    #[arg(long, default_value_t = 1000)]
    pub max_results: usize,
    /// Serve no Zephyr records in the odd shapes the spec allows (null account ids,
    /// links without ids, ad-hoc executions).
    #[arg(long)]
    pub no_odd_records: bool,
    /// Serve this many Zephyr cases, cycles and executions each that break the spec.
    #[arg(long, default_value_t = 0)]
    pub unreadable_records: usize,
    /// Serve the sample attachments, links and test plans (a few small files
    /// and one of 300 KB on cases, a cycle and executions).
    #[arg(long)]
    pub attachments: bool,
    /// Also serve one file of this many bytes on the first case (qTest then
    /// takes bodies that big).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub big_attachment_bytes: u64,
    /// Answer Zephyr's file downloads with a 302 to a pre-signed URL on a
    /// second server (another origin) that serves the bytes.
    #[arg(long)]
    pub attachments_redirect: bool,
    /// Lifetime of tokens from qTest's /oauth/token, in seconds.
    #[arg(long, default_value_t = 3599)]
    pub oauth_expiry_secs: u64,
    /// Persist qTest writes to this file and replay it at start.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Zephyr port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port_zephyr: u16,
    /// qTest port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port_qtest: u16,
    /// Which servers the fault options below apply to.
    #[arg(long, value_enum, default_value_t = FaultTarget::Both)]
    pub faults_on: FaultTarget,
    /// Fixed latency added to every answer, in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Up to this much more latency, drawn per request, in ms.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share of requests answered with --fail-status (0..=1).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Status of injected failures.
    #[arg(long, default_value_t = 503)]
    pub fail_status: u16,
    /// Apply a failing write before answering it with the 5xx (outcome unknown to the client).
    #[arg(long)]
    pub fail_after_write: bool,
    /// Answer 429 with Retry-After above this many requests per second.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Close keep-alive connections idle longer than this, in ms.
    #[arg(long)]
    pub idle_close_ms: Option<u64>,
    /// Share of responses sent with Connection: close.
    #[arg(long, default_value_t = 0.0)]
    pub close_rate: f64,
    /// Share of responses reset in the middle of the body.
    #[arg(long, default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Share of applied writes answered by a reset.
    #[arg(long, default_value_t = 0.0)]
    pub reset_after_write_rate: f64,
    /// Share of responses with a truncated JSON body.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Crash qTest after this many writes (restart with the same --seed and --state-file).
    #[arg(long)]
    pub crash_after_writes: Option<u64>,
    /// Print the connection details as JSON.
    #[arg(long)]
    pub json: bool,
}

impl MockArgs {
    /// The options these arguments describe.
    pub fn to_options(&self) -> MockOptions {
        let faults = FaultConfig {
            latency: Duration::from_millis(self.latency_ms),
            latency_jitter: Duration::from_millis(self.jitter_ms),
            fail_rate: self.fail_rate,
            fail_status: self.fail_status,
            fail_point: if self.fail_after_write {
                FailPoint::After
            } else {
                FailPoint::Before
            },
            rate_limit: self.rate_limit,
            idle_close: self.idle_close_ms.map(Duration::from_millis),
            close_rate: self.close_rate,
            reset_rate: self.reset_rate,
            reset_after_write_rate: self.reset_after_write_rate,
            malformed_rate: self.malformed_rate,
            crash_after_writes: None,
        };
        let pick = |on: bool| {
            if on {
                faults.clone()
            } else {
                FaultConfig::default()
            }
        };
        let mut qtest_faults = pick(self.faults_on != FaultTarget::Zephyr);
        qtest_faults.crash_after_writes = self.crash_after_writes;
        MockOptions {
            seed: self.seed,
            project_key: self.project_key.clone(),
            qtest_project_id: self.qtest_project_id,
            zephyr_token: self.zephyr_token.clone(),
            qtest_token: self.qtest_token.clone(),
            oauth_expiry: Duration::from_secs(self.oauth_expiry_secs),
            sizes: DataSizes {
                folders: self.folders,
                folder_depth: self.folder_depth,
                cycle_folders: self.cycle_folders,
                cases: self.cases,
                steps_per_case: self.steps,
                cycles: self.cycles,
                executions: self.executions,
            },
            zephyr_max_results: self.max_results,
            odd_records: !self.no_odd_records,
            unreadable_records: self.unreadable_records,
            port_zephyr: self.port_zephyr,
            port_qtest: self.port_qtest,
            state_file: self.state_file.clone(),
            zephyr_faults: pick(self.faults_on != FaultTarget::Qtest),
            qtest_faults,
            attachments: crate::mock::zephyr::attachments::MockAttachments {
                sample: self.attachments,
                big_bytes: self.big_attachment_bytes,
            },
            attachments_redirect: self.attachments_redirect,
            ..MockOptions::default()
        }
    }
}

/// What `etlpool mock` prints: everything a client needs to connect.
pub fn describe(servers: &MockServers) -> serde_json::Value {
    let (user, password) = servers.qtest_login();
    json!({
        "seed": servers.seed(),
        "zephyr": { "url": servers.zephyr_url(), "token": servers.zephyr_token(), "project_key": servers.project_key() },
        "qtest": { "url": servers.qtest_url(), "site_url": servers.qtest_site_url(), "token": servers.qtest_token(),
                   "project_id": servers.qtest_project_id(), "username": user, "password": password,
                   "site": servers.qtest_site() },
    })
}

/// The environment a migration reads, as shell lines.
fn env_lines(servers: &MockServers) -> String {
    format!(
        "export ZEPHYR_URL={}\nexport ZEPHYR_TOKEN={}\nexport ZEPHYR_PROJECT={}\n\
         export QTEST_URL={}\nexport QTEST_TOKEN={}\nexport QTEST_PROJECT_ID={}",
        servers.zephyr_url(),
        servers.zephyr_token(),
        servers.project_key(),
        servers.qtest_url(),
        servers.qtest_token(),
        servers.qtest_project_id()
    )
}

/// Starts the mocks, prints how to reach them, and serves until SIGINT or SIGTERM.
pub(super) fn run(args: &MockArgs) -> Result<ExitCode, CliError> {
    let opts = args.to_options();
    opts.validate().map_err(CliError::MockOptions)?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| CliError::io("installing the SIGINT/SIGTERM handlers", e))?;
    let servers =
        MockServers::start(opts).map_err(|e| CliError::io("starting the mock servers", e))?;
    if args.json {
        println!("{}", describe(&servers));
    } else {
        println!("# etlpool mock (seed {}); Ctrl-C to stop", servers.seed());
        println!("{}", env_lines(&servers));
        let (user, password) = servers.qtest_login();
        println!(
            "# qTest /oauth/token at {} accepts {user} / {password} with QTEST_SITE={}",
            servers.qtest_site_url(),
            servers.qtest_site()
        );
    }
    // Blocks until a signal arrives; no polling.
    let signal = signals.forever().next();
    log::info!("mock: stopping on signal {signal:?}");
    servers.shutdown();
    Ok(ExitCode::Ok)
}
