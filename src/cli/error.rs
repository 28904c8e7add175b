//! What stops a command: the library's own error, kind and cause kept, and the
//! exit code it maps to.

use std::fmt;

use super::ExitCode;
use crate::error::Error;
use crate::migrate::MigrateError;

/// Why a command stopped. Wraps the library's errors rather than turning them
/// into strings, so their kind and cause survive up to the exit code and the
/// message.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// The pool, the HTTP layer, or a setting (config, URL, TLS material).
    Etl(Error),
    /// The migration or `verify`, before or instead of a run summary.
    Migrate(MigrateError),
    /// Options of `etlpool mock` that the mocks can't serve.
    MockOptions(String),
    /// An option the command can't use (exit 2), e.g. an output path in a
    /// directory that doesn't exist.
    Usage(String),
    /// Writing an output file or talking to the terminal.
    Io {
        /// What was being done, with the path.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An error after the work was done or begun (e.g. the summary file
    /// could not be written at the end): exit 3, since a re-run, which finds
    /// the work journaled, gets it right.
    AfterWork(Box<CliError>),
    /// Another error, with advice on what to check.
    Hinted {
        /// The error.
        error: Box<CliError>,
        /// What to check, e.g. the variable that holds a rejected token.
        hint: String,
    },
}

impl CliError {
    /// `context` and the I/O error that stopped it.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Etl(e) => etl_exit_code(e),
            CliError::Migrate(e) => migrate_exit_code(e),
            CliError::MockOptions(_) | CliError::Usage(_) => ExitCode::Usage,
            CliError::Io { .. } => ExitCode::Fatal,
            CliError::AfterWork(_) => ExitCode::Partial,
            CliError::Hinted { error, .. } => error.exit_code(),
        }
    }

    /// Advice for the operator: an explicit hint, or one read from the error
    /// (a TLS failure in words).
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Hinted { hint, .. } => Some(hint.clone()),
            other => super::explain::tls_hint(other),
        }
    }

    /// Adds a hint, unless `hint` is `None`.
    pub(super) fn with_hint(self, hint: Option<String>) -> CliError {
        match hint {
            Some(hint) => CliError::Hinted {
                error: Box::new(self),
                hint,
            },
            None => self,
        }
    }

    /// The library error inside, if any.
    pub(super) fn etl(&self) -> Option<&Error> {
        match self {
            CliError::Etl(e) | CliError::Migrate(MigrateError::Http(e)) => Some(e),
            CliError::Hinted { error, .. } | CliError::AfterWork(error) => error.etl(),
            _ => None,
        }
    }
}

/// Settings the user must fix are usage errors (2); a monthly budget kept
/// for others stops the job cleanly, to be run again (3); the rest stop the
/// job before any work (4).
fn etl_exit_code(e: &Error) -> ExitCode {
    match e {
        Error::Config { .. } | Error::InvalidUrl { .. } | Error::Tls { .. } => ExitCode::Usage,
        Error::BudgetExhausted { .. } => ExitCode::Partial,
        Error::Cancelled => ExitCode::Interrupted,
        _ => ExitCode::Fatal,
    }
}

/// Exit codes of migration errors, all before any work (after it, a run
/// ends with a summary instead). 4 is for what a person must fix before a
/// re-run can help: a rejected token, an unknown project or path, a service
/// that can't be reached. A service that answered with a passing failure (a
/// 5xx or 429 after the retries, a body that can't be read, a call that ran
/// out of time waiting) is 3: a re-run retries.
pub(super) fn migrate_exit_code(e: &MigrateError) -> ExitCode {
    match e {
        MigrateError::Locked { .. } => ExitCode::Locked,
        MigrateError::Config { .. } | MigrateError::Io { .. } => ExitCode::Usage,
        MigrateError::Http(e) if answered_in_passing(e) => ExitCode::Partial,
        MigrateError::Http(e) => etl_exit_code(e),
        _ => ExitCode::Fatal,
    }
}

/// Whether the service answered, with a failure a later try may not meet.
fn answered_in_passing(e: &Error) -> bool {
    match e {
        Error::Status(s) => s.status == 429 || s.status >= 500,
        Error::Decode(_) | Error::TotalTimeout { .. } => true,
        _ => false,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Etl(e) => e.fmt(f),
            CliError::Migrate(e) => e.fmt(f),
            CliError::MockOptions(message) => write!(f, "mock options: {message}"),
            CliError::Usage(message) => f.write_str(message),
            CliError::Io { context, .. } => f.write_str(context),
            CliError::Hinted { error, .. } | CliError::AfterWork(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: the wrapped error's own causes follow.
            CliError::Etl(e) => e.source(),
            CliError::Migrate(e) => e.source(),
            CliError::MockOptions(_) | CliError::Usage(_) => None,
            CliError::Io { source, .. } => Some(source),
            CliError::Hinted { error, .. } | CliError::AfterWork(error) => error.source(),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Etl(e)
    }
}

impl From<MigrateError> for CliError {
    fn from(e: MigrateError) -> Self {
        CliError::Migrate(e)
    }
}
