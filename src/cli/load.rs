//! `etlpool load`.

use std::path::PathBuf;

use clap::Args;

use std::sync::Arc;

use super::budget::Budget;
use super::job::{Job, Previous};
use super::monitor::{Monitor, OpsArgs, Watch};
use super::redis_args::RedisArgs;
use super::{CliError, ExitCode, GlobalArgs};
use crate::load::{LoadMode, LoadOptions, run_on};
use crate::policy::RateLimit;
use crate::pool::{Pool, PoolConfig};

/// Options of `etlpool load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// URL to GET; without it, an in-process keep-alive server on 127.0.0.1 is started.
    pub url: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// Requests in total.
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
    /// A new agent, so a new connection, per request (the baseline a pool beats).
    #[arg(long)]
    pub no_pool: bool,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Send `Authorization: Bearer <token>` with the token read from this
    /// environment variable (e.g. to load a mock: `--token-env ZEPHYR_TOKEN`).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Print the report, metrics included, as JSON.
    #[arg(long)]
    pub json: bool,
    /// Stop after this long (e.g. 30s), even if requests are left.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Requests per second at most, through an API client that also keeps
    /// to the server's 429s and rate-limit headers; with --redis, the rate
    /// all processes using that Redis share.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Requests that may go at once after a quiet spell (with --rate).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "rate")]
    pub burst: u32,
    /// Redis, for a rate shared with other processes (--redis).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Metrics and health while it runs.
    #[command(flatten)]
    pub ops: OpsArgs,
}

pub(super) fn run(args: &LoadArgs, global: &GlobalArgs) -> Result<ExitCode, CliError> {
    args.ops.metrics_output()?;
    let mut pool = PoolConfig::from_env()?;
    if let Some(ca) = &args.ca {
        pool.tls.ca_file = Some(ca.clone());
    }
    let bearer = match &args.token_env {
        Some(var) => Some(super::config::process_env(var).ok_or_else(|| {
            crate::Error::config(
                var.clone(),
                "is not set (--token-env names the variable holding the token)",
            )
        })?),
        None => None,
    };
    let rate_limit = args.rate.map(|per_second| RateLimit {
        per_second: Some(per_second),
        burst: args.burst,
        ..RateLimit::default()
    });
    if let Some(limit) = rate_limit {
        limit.validate()?;
    }
    let budget = Budget::join(&args.redis)?;
    let mode = if args.no_pool {
        if rate_limit.is_some() || args.redis.given() {
            return Err(CliError::Usage(
                "--no-pool sends raw requests: no --rate or --redis with it".into(),
            ));
        }
        LoadMode::Unpooled
    } else if rate_limit.is_some() || args.redis.given() {
        LoadMode::Client
    } else {
        LoadMode::Pooled
    };
    let duration = match &args.duration {
        Some(d) => Some(super::config::positive_duration("--duration", d)?),
        None => None,
    };
    let options = LoadOptions {
        url: args.url.clone(),
        threads: args.threads,
        requests: args.requests,
        mode,
        pool,
        bearer,
        duration,
        rate_limit,
    };
    let pool = Pool::new(crate::load::pool_config(&options))?;
    if let Some(url) = &options.url {
        budget.install(&pool, &[(url, rate_limit.unwrap_or_default())])?;
    }
    let job = Job::new(
        "load",
        "",
        None,
        Previous::read(None, args.ops.metrics.as_deref()),
    );
    let monitor = Monitor::start(
        &args.ops,
        Watch {
            pool: pool.clone(),
            job: Arc::new(job),
            progress: None,
            interval: args.ops.interval(None)?,
            thresholds: Default::default(),
            show_progress: !global.quiet,
        },
    )?;
    let report = run_on(&pool, &options).map_err(CliError::from);
    let code = match &report {
        Ok(r) if r.errors == 0 => ExitCode::Ok,
        Ok(_) => ExitCode::Partial,
        Err(e) => e.exit_code(),
    };
    let finished = monitor.finish(code);
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            let _logged = super::output::settle(code, [finished]);
            return Err(e);
        }
    };
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::io("encoding the report", e.into()))?;
        println!("{json}");
    } else {
        println!("{}", report.summary());
    }
    super::output::settle(code, [finished])
}
