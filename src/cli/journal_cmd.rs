//! `etlpool journal export|import`: moves a project's journal between a
//! file and Redis, e.g. to continue on a fleet a project begun on one
//! machine (`import`), or to keep a copy of a finished one (`export`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::redis_args::RedisArgs;
use super::{CliError, ExitCode};

/// Options of `etlpool journal`.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: JournalAction,
}

/// `export` or `import`.
#[derive(Debug, Subcommand)]
pub enum JournalAction {
    /// Write a project's Redis journal to a journal file (replaced
    /// atomically; an existing file only with --force).
    Export(JournalMove),
    /// Copy a journal file into a project's Redis journal, holding both
    /// locks; a record the two disagree on stops it before any write.
    Import(JournalMove),
}

/// The project, the file and the Redis of a move.
#[derive(Debug, Args)]
pub struct JournalMove {
    /// The Zephyr project key whose journal it is.
    #[arg(long, env = "ZEPHYR_PROJECT")]
    pub project: String,
    /// The journal file. Defaults to `<project>.journal.csv`.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Export: replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Where the Redis journal is.
    #[command(flatten)]
    pub redis: RedisArgs,
}

impl JournalMove {
    #[cfg(feature = "redis")]
    fn file(&self) -> PathBuf {
        self.journal.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "{}.journal.csv",
                super::migrate::file_stem(&self.project)
            ))
        })
    }
}

#[cfg(not(feature = "redis"))]
pub(super) fn run(args: &JournalArgs) -> Result<ExitCode, CliError> {
    let (JournalAction::Export(m) | JournalAction::Import(m)) = &args.action;
    m.redis.refuse(Some("journal"))?;
    Err(super::redis_args::without_redis())
}

#[cfg(feature = "redis")]
pub(super) fn run(args: &JournalArgs) -> Result<ExitCode, CliError> {
    use crate::fleet::redis::{export_journal, import_journal};

    let (JournalAction::Export(m) | JournalAction::Import(m)) = &args.action;
    let redis = m
        .redis
        .open(Some("etlpool journal"))?
        .ok_or_else(|| CliError::Usage("etlpool journal needs --redis".into()))?;
    let file = m.file();
    let key = crate::fleet::redis::journal::journal_key(&redis, &m.project);
    match &args.action {
        JournalAction::Export(_) => {
            let n = export_journal(&redis, &m.project, &file, m.force)?;
            println!(
                "exported {n} records of {} from {} {key} to {}",
                m.project,
                redis.shown(),
                file.display()
            );
        }
        JournalAction::Import(_) => {
            let n = import_journal(&redis, &m.project, &file, m.redis.lease()?)?;
            println!(
                "imported {n} new records of {} from {} to {} {key}",
                m.project,
                file.display(),
                redis.shown()
            );
        }
    }
    Ok(ExitCode::Ok)
}
