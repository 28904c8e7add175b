//! The binary's logger: text or JSON lines on stderr, filtered by `-v`/`-q`
//! or `RUST_LOG`, with two rules no filter can undo: security warnings are
//! always shown (`-q` included), and ureq's wire dump (TRACE under its
//! `ureq*` targets: raw request and response bytes, tokens included) never is.

use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::GlobalArgs;
use super::error::CliError;
use crate::migrate::{PROGRESS_TARGET, RunSummary};

/// The log target of warnings that must reach the operator whatever the
/// verbosity: verification turned off, a readable file holding a secret.
pub const SECURITY_TARGET: &str = "etlpool::security";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message key=value`.
    #[default]
    Text,
    /// One JSON object per line: `time`, `level`, `target`, `message`, `fields`.
    Json,
}

/// The progress bar being drawn, if any: log lines are printed around it.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// The format chosen, for messages printed outside the logger.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

struct Logger {
    filter: env_filter::Filter,
    format: LogFormat,
}

/// Installs the logger (once per process; later calls keep the first).
pub(super) fn init(global: &GlobalArgs) {
    let mut builder = env_filter::Builder::new();
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => builder.parse(&spec),
        _ => builder.parse(default_filter(global.verbose, global.quiet)),
    };
    let filter = builder.build();
    // Security warnings pass even when the filter says errors only.
    let max = filter.filter().max(LevelFilter::Warn);
    let logger = Logger {
        filter,
        format: global.log_format,
    };
    let _ = FORMAT.set(global.log_format);
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

/// The filter for `-q` / `-v…`: by default warnings, plus the progress lines
/// (shown only where no progress bar is drawn).
fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,etlpool::progress=info",
        (false, 1) => "warn,etlpool=info",
        (false, 2) => "warn,etlpool=debug",
        (false, _) => "debug,etlpool=trace",
    }
}

/// ureq and ureq-proto log every byte on the wire at TRACE.
fn is_wire_dump(m: &Metadata<'_>) -> bool {
    m.level() == Level::Trace && m.target().starts_with("ureq")
}

fn is_security(m: &Metadata<'_>) -> bool {
    m.target() == SECURITY_TARGET && m.level() <= Level::Warn
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        is_security(m) || (self.filter.enabled(m) && !is_wire_dump(m))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = match self.format {
            LogFormat::Text => text_line(record),
            LogFormat::Json => json_line(
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
                fields(record),
            ),
        };
        print_line(&line);
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn text_line(record: &Record<'_>) -> String {
    let mut line = format!(
        "[{} {:<5} {}] {}",
        now(),
        record.level(),
        record.target(),
        record.args()
    );
    // Progress lines say it all in words already.
    if record.target() != PROGRESS_TARGET {
        for (k, v) in fields(record) {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            line.push_str(&format!(" {k}={v}"));
        }
    }
    line
}

fn json_line(level: &str, target: &str, message: &str, fields: Map<String, Value>) -> String {
    json!({
        "time": now(),
        "level": level,
        "target": target,
        "message": message,
        "fields": fields,
    })
    .to_string()
}

/// Writes one line to stderr, around the progress bar if one is drawn.
fn print_line(line: &str) {
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    };
    let bar = BAR.lock().clone();
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The record's key-value pairs, numbers kept as numbers.
fn fields(record: &Record<'_>) -> Map<String, Value> {
    struct Collect(Map<String, Value>);
    impl<'kvs> log::kv::VisitSource<'kvs> for Collect {
        fn visit_pair(
            &mut self,
            key: log::kv::Key<'kvs>,
            value: log::kv::Value<'kvs>,
        ) -> Result<(), log::kv::Error> {
            let v = if let Some(n) = value.to_u64() {
                json!(n)
            } else if let Some(n) = value.to_i64() {
                json!(n)
            } else if let Some(x) = value.to_f64() {
                json!(x)
            } else if let Some(b) = value.to_bool() {
                json!(b)
            } else {
                Value::String(value.to_string())
            };
            self.0.insert(key.to_string(), v);
            Ok(())
        }
    }
    let mut collect = Collect(Map::new());
    let _ = record.key_values().visit(&mut collect);
    collect.0
}

/// Shows `bar` while it is `Some`, and prints log lines around it.
pub(super) fn set_bar(bar: Option<indicatif::ProgressBar>) {
    *BAR.lock() = bar;
}

/// Prints the error that ends a command: `error: …` with its causes and a
/// hint, or one JSON line.
pub(super) fn fatal(format: LogFormat, command: &str, e: &CliError) {
    let message = super::explain::chain(e);
    let hint = e.hint();
    match format {
        LogFormat::Text => {
            let mut text = format!("error: {message}");
            if let Some(hint) = &hint {
                text.push_str(&format!("\nhint: {hint}"));
            }
            print_line(&text);
        }
        LogFormat::Json => {
            let mut fields = Map::new();
            fields.insert("exit_code".into(), json!(e.exit_code().code()));
            fields.insert("command".into(), json!(command));
            if let Some(hint) = hint {
                fields.insert("hint".into(), json!(hint));
            }
            print_line(&json_line("ERROR", "etlpool", &message, fields));
        }
    }
}

/// The human summary of a run as one JSON line (target `etlpool::summary`),
/// for `--log-format json`, where the text would break a log shipper's
/// one-object-per-line stream (systemd and Kubernetes mix stdout into it).
/// Its fields are the run's counts, without the pool's metrics.
pub(super) fn summary(run: &RunSummary, code: super::ExitCode) {
    let mut fields = match serde_json::to_value(run) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    fields.remove("metrics");
    fields.insert("exit_code".into(), json!(code.code()));
    fields.insert("status".into(), json!(code.status()));
    let text = run.to_string();
    let headline = text.lines().next().unwrap_or_default();
    print_line(&json_line("INFO", "etlpool::summary", headline, fields));
}

/// Whether `args` ask for JSON logs, read without the parser (for its own
/// errors): `--log-format json` or `--log-format=json`.
pub(super) fn json_asked(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut previous = std::ffi::OsString::new();
    args.into_iter().any(|arg| {
        let asked = arg == "--log-format=json" || (previous == "--log-format" && arg == "json");
        previous = arg;
        asked
    })
}

/// A command line the parser refused, as one JSON error line.
pub(super) fn usage_error(e: &clap::Error) {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    let mut fields = Map::new();
    fields.insert("exit_code".into(), json!(e.exit_code()));
    print_line(&json_line("ERROR", "etlpool", message, fields));
}

/// Whether log lines are JSON (then nothing else may go to stderr as text).
pub(super) fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_dumps_are_dropped_and_security_warnings_kept() {
        let mut b = env_filter::Builder::new();
        b.parse("trace");
        let logger = Logger {
            filter: b.build(),
            format: LogFormat::Json,
        };
        let meta = |level, target| Metadata::builder().level(level).target(target).build();
        assert!(!logger.enabled(&meta(Level::Trace, "ureq_proto::util")));
        assert!(logger.enabled(&meta(Level::Debug, "ureq::run")));
        let mut b = env_filter::Builder::new();
        b.parse("off");
        let quiet = Logger {
            filter: b.build(),
            format: LogFormat::Text,
        };
        assert!(quiet.enabled(&meta(Level::Warn, SECURITY_TARGET)));
        assert!(!quiet.enabled(&meta(Level::Warn, "etlpool::http")));
    }

    #[test]
    fn json_lines_carry_fields_as_numbers() {
        let line = json_line("INFO", "t", "m", {
            let mut m = Map::new();
            m.insert("done".into(), json!(3));
            m
        });
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["fields"]["done"], 3);
        assert_eq!(v["level"], "INFO");
    }
}
