//! `etlpool demo`: the whole job on a fresh machine, against the embedded mocks.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::config::Settings;
use super::migrate::Runner;
use super::monitor::OpsArgs;
use super::{CliError, ExitCode, GlobalArgs};
use crate::migrate::{Endpoints, MappingConfig, MigrateOptions, QtestAuth};
use crate::mock::{DataSizes, FailPoint, MockOptions, MockServers};
use crate::pool::PoolConfig;

/// Options of `etlpool demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the mock project (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Test cases in the mock project.
    #[arg(long, default_value_t = 300)]
    pub cases: usize,
    /// Executions in the mock project.
    #[arg(long, default_value_t = 900)]
    pub executions: usize,
    /// Concurrent jobs.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Mock latency per request, in milliseconds.
    #[arg(long, default_value_t = 1)]
    pub latency_ms: u64,
    /// Turn the injected faults off.
    #[arg(long)]
    pub no_faults: bool,
    /// Where to write the journal and report (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub(super) fn run(args: &DemoArgs, global: &GlobalArgs) -> Result<ExitCode, CliError> {
    let mocks = MockServers::start(mock_options(args))
        .map_err(|e| CliError::io("starting the mock servers", e))?;
    let latency = Duration::from_millis(args.latency_ms);
    for faults in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        faults.set_latency(latency, latency);
    }
    if !args.no_faults {
        inject_faults(&mocks);
    }
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            std::env::temp_dir().join(format!("etlpool-demo-{}-{}", std::process::id(), args.seed))
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    println!(
        "demo: migrating {} cases and {} executions from the Zephyr mock at {} to the qTest mock at {}{}",
        args.cases,
        args.executions,
        mocks.zephyr_url(),
        mocks.qtest_url(),
        if args.no_faults {
            ""
        } else {
            " (with injected 5xx, resets and closed connections)"
        }
    );
    let settings = Settings {
        endpoints: mock_endpoints(&mocks),
        pool: PoolConfig {
            max_connections_per_host: args.workers,
            ..PoolConfig::from_env()?
        },
        mapping: MappingConfig::default(),
        workers: args.workers,
        journal: None,
        report: None,
        page_size: 100,
        status_interval: None,
        max_outage: None,
        alerts: Default::default(),
        attachments: Default::default(),
    };
    let options = MigrateOptions {
        endpoints: settings.endpoints.clone(),
        mapping: settings.mapping.clone(),
        workers: args.workers,
        journal: dir.join("demo.journal.csv"),
        report: dir.join("demo.report.csv"),
        dry_run: false,
        only: Default::default(),
        page_size: settings.page_size,
        progress: false,
    };
    let metrics = dir.join("demo.metrics.prom");
    let ops = OpsArgs {
        metrics: Some(metrics.clone()),
        ..OpsArgs::default()
    };
    let runner = Runner {
        command: "demo",
        project: settings.endpoints.zephyr_project.clone(),
        summary: None,
        ops: &ops,
        quiet: global.quiet,
        lock_wait: Default::default(),
        max_outage: None,
        report_per_run: false,
        journal_store: None,
        worker: None,
        current: None,
        budget: super::budget::Budget::none(),
        sync: Default::default(),
    };
    let code = runner.run(Ok((settings.clone(), options)))?;
    println!("metrics (Prometheus text): {}", metrics.display());
    if code != ExitCode::Ok {
        return Ok(code);
    }
    // Faults off: the check reads both sides through the same APIs as
    // `etlpool verify`, and should see the data, not the weather.
    for faults in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        faults.clear();
    }
    // With the run's journal, the check compares the files too.
    let settings = Settings {
        journal: Some(dir.join("demo.journal.csv")),
        ..settings
    };
    let report = super::verify::check(&settings)?;
    println!("{}", report.summary(10));
    Ok(if report.is_clean() {
        ExitCode::Ok
    } else {
        ExitCode::Differences
    })
}

/// The endpoints of a pair of mocks, with their static tokens (used by the
/// demo, the benches and the tests).
pub fn mock_endpoints(mocks: &MockServers) -> Endpoints {
    Endpoints {
        zephyr_url: mocks.zephyr_url(),
        zephyr_token: mocks.zephyr_token().to_string(),
        zephyr_project: mocks.project_key().to_string(),
        qtest_url: mocks.qtest_url(),
        qtest_auth: QtestAuth::Token(mocks.qtest_token().to_string()),
        qtest_project: mocks.qtest_project_id(),
        zephyr_rate: Default::default(),
        qtest_rate: Default::default(),
    }
}

fn mock_options(args: &DemoArgs) -> MockOptions {
    let mut options = MockOptions::seeded(args.seed);
    options.sizes = DataSizes {
        folders: 20,
        folder_depth: 3,
        cycle_folders: 3,
        cases: args.cases,
        steps_per_case: 4,
        cycles: 12,
        executions: args.executions,
    };
    options.attachments.sample = true;
    options
}

/// The faults a real migration meets, at rates its retries and lookups absorb.
fn inject_faults(mocks: &MockServers) {
    for faults in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        faults.set_close_rate(0.02);
        faults.set_idle_close(Some(Duration::from_millis(500)));
    }
    mocks.faults().zephyr.set_fail_rate(0.03, FailPoint::Before);
    let qtest = &mocks.faults().qtest;
    qtest.set_fail_rate(0.03, FailPoint::After);
    qtest.set_reset_after_write_rate(0.01);
}
