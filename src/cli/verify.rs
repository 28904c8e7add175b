//! `etlpool verify`.

use std::path::PathBuf;

use clap::Args;

use super::config::{ConnectionArgs, Settings, process_env};
use super::{CliError, ExitCode};
use crate::cancel::CancelToken;
use crate::migrate::{MigrateError, VerifyOptions, VerifyReport, connect, verify};
use crate::pool::Pool;

/// Options of `etlpool verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Where the services are.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Differences to list (all are counted).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Also write the whole report as JSON.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
}

pub(super) fn run(args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let settings = args.connection.resolve(&process_env)?;
    let report = check(&settings)?;
    println!("{}", report.summary(args.show));
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::io("encoding the report", e.into()))?;
        std::fs::write(path, json)
            .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(if report.is_clean() {
        ExitCode::Ok
    } else {
        ExitCode::Differences
    })
}

/// Reads both sides and compares them.
pub(super) fn check(settings: &Settings) -> Result<VerifyReport, MigrateError> {
    let pool = Pool::new(settings.pool.clone())?;
    let (zephyr, qtest) = connect(
        &pool,
        &settings.endpoints,
        &CancelToken::new(),
        settings.page_size,
    )?;
    let options = VerifyOptions {
        workers: settings.workers,
        ..VerifyOptions::default()
    };
    verify(&zephyr, &qtest, &settings.mapping, &options)
}
