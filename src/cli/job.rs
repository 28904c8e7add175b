//! The job as a scheduler and a monitoring system see it: the summary file
//! written on every exit, and the job's own Prometheus metrics next to the
//! pool's.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

use super::ExitCode;
use crate::metrics::Snapshot;
use crate::migrate::{RunProgress, RunSummary};

/// The `--summary-json` document: how the run ended, when, and what it did.
/// Written on every exit, a failed start included, so last night's success
/// can't outlive tonight's failure. Its shape is pinned by
/// `tests/it/snapshots/summary-shape.json`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct JobSummary {
    /// etlpool's version.
    pub version: &'static str,
    /// `migrate`, `demo`.
    pub command: String,
    /// `ok`, `partial`, `usage`, `fatal`, `locked`, `interrupted`.
    pub status: &'static str,
    /// The process's exit code.
    pub exit_code: i32,
    /// What stopped the run, with its causes, when something did.
    pub error: Option<String>,
    /// When the command started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// When a run of this job last exited 0: this one, or as the previous
    /// summary (or metrics) file said.
    pub last_success_at: Option<String>,
    /// The run's counts and the pool's metrics (zero when it never started).
    #[serde(flatten)]
    pub run: RunSummary,
}

/// What the previous run left in its output files.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Previous {
    pub(super) last_success: Option<SystemTime>,
    pub(super) exit_code: Option<i32>,
}

impl Previous {
    /// Reads the previous summary file, else the previous metrics file;
    /// anything unreadable counts as nothing.
    pub(super) fn read(summary: Option<&Path>, metrics: Option<&Path>) -> Previous {
        summary
            .and_then(from_summary)
            .or_else(|| metrics.and_then(from_metrics))
            .unwrap_or_default()
    }
}

fn from_summary(path: &Path) -> Option<Previous> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let last_success = v["last_success_at"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    Some(Previous {
        last_success,
        exit_code: v["exit_code"].as_i64().and_then(|c| i32::try_from(c).ok()),
    })
}

fn from_metrics(path: &Path) -> Option<Previous> {
    let text = std::fs::read_to_string(path).ok()?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some(Previous {
        last_success: value("etlpool_job_last_success_timestamp_seconds")
            .map(|s| UNIX_EPOCH + Duration::from_secs_f64(s.max(0.0))),
        exit_code: value("etlpool_job_exit_code").map(|c| c as i32),
    })
}

/// A command as `/metrics` and `--metrics` describe it.
pub(super) struct Job {
    command: &'static str,
    /// The project label, so jobs of two projects can share a textfile
    /// collector directory.
    project: String,
    /// The worker label of a process that runs project after project.
    worker: Option<String>,
    started: SystemTime,
    progress: Option<RunProgress>,
    previous: Previous,
    /// Guards how the job ended, once it has.
    end: Mutex<Option<(ExitCode, SystemTime)>>,
}

impl Job {
    pub(super) fn new(
        command: &'static str,
        project: &str,
        progress: Option<RunProgress>,
        previous: Previous,
    ) -> Job {
        Job {
            command,
            project: project.to_string(),
            worker: None,
            started: SystemTime::now(),
            progress,
            previous,
            end: Mutex::new(None),
        }
    }

    /// Labels every sample with `worker`, too.
    pub(super) fn with_worker(mut self, worker: Option<String>) -> Job {
        self.worker = worker;
        self
    }

    /// Records how the job ended.
    pub(super) fn end(&self, code: ExitCode) {
        *self.end.lock() = Some((code, SystemTime::now()));
    }

    /// When a run last succeeded: this one if it did, else the previous one's.
    pub(super) fn last_success(&self) -> Option<SystemTime> {
        match *self.end.lock() {
            Some((ExitCode::Ok, at)) => Some(at),
            _ => self.previous.last_success,
        }
    }

    /// The summary document for `run` ending with `code`.
    pub(super) fn summary(
        &self,
        code: ExitCode,
        error: Option<String>,
        run: RunSummary,
    ) -> JobSummary {
        let finished = self.end.lock().map_or_else(SystemTime::now, |(_, at)| at);
        JobSummary {
            version: env!("CARGO_PKG_VERSION"),
            command: self.command.to_string(),
            status: code.status(),
            exit_code: code.code(),
            error,
            started_at: rfc3339(self.started),
            finished_at: rfc3339(finished),
            last_success_at: self.last_success().map(rfc3339),
            run,
        }
    }

    /// The pool's metrics and the job's, every sample labelled with the
    /// command and project.
    pub(super) fn prometheus(&self, pool: &Snapshot) -> String {
        let mut out = pool.to_prometheus();
        self.render(&mut out);
        let mut labels = format!("command=\"{}\"", self.command);
        if !self.project.is_empty() {
            labels.push_str(&format!(",project=\"{}\"", escape(&self.project)));
        }
        if let Some(worker) = &self.worker {
            labels.push_str(&format!(",worker=\"{}\"", escape(worker)));
        }
        labelled(&out, &labels)
    }

    fn render(&self, out: &mut String) {
        let end = *self.end.lock();
        let now = end.map_or_else(SystemTime::now, |(_, at)| at);
        let duration = now.duration_since(self.started).unwrap_or_default();
        let gauge = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP etlpool_job_{name} {help}\n# TYPE etlpool_job_{name} gauge\netlpool_job_{name} {value}"
            );
        };
        let _ = writeln!(
            out,
            "# HELP etlpool_job_info The running etlpool.\n# TYPE etlpool_job_info gauge\n\
             etlpool_job_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        gauge(
            out,
            "start_time_seconds",
            "When the job started (Unix time).",
            secs(self.started),
        );
        gauge(
            out,
            "duration_seconds",
            "How long the job ran (so far).",
            format!("{:.3}", duration.as_secs_f64()),
        );
        gauge(
            out,
            "running",
            "1 while the job runs.",
            u8::from(end.is_none()).to_string(),
        );
        let last_code = end.map(|(c, _)| c.code()).or(self.previous.exit_code);
        if let Some(code) = last_code {
            gauge(
                out,
                "exit_code",
                "Exit code of the last finished run.",
                code.to_string(),
            );
        }
        if let Some(at) = self.last_success() {
            gauge(
                out,
                "last_success_timestamp_seconds",
                "When a run last exited 0 (Unix time).",
                secs(at),
            );
        }
        if let Some(progress) = &self.progress {
            self.render_progress(out, progress);
        }
    }

    fn render_progress(&self, out: &mut String, progress: &RunProgress) {
        let p = progress.snapshot();
        if let Some(phase) = &p.phase {
            let _ = writeln!(
                out,
                "# HELP etlpool_job_phase The phase running now.\n# TYPE etlpool_job_phase gauge\n\
                 etlpool_job_phase{{phase=\"{}\"}} 1",
                escape(phase)
            );
        }
        let _ = writeln!(
            out,
            "# HELP etlpool_job_phase_done Records done in the phase.\n\
             # TYPE etlpool_job_phase_done gauge\netlpool_job_phase_done {}",
            p.done
        );
        if let Some(total) = p.total {
            let _ = writeln!(
                out,
                "# HELP etlpool_job_phase_total Records in the phase.\n\
                 # TYPE etlpool_job_phase_total gauge\netlpool_job_phase_total {total}"
            );
        }
        if let Some(ratio) = p.ratio() {
            let _ = writeln!(
                out,
                "# HELP etlpool_job_phase_progress_ratio Share of the phase done.\n\
                 # TYPE etlpool_job_phase_progress_ratio gauge\netlpool_job_phase_progress_ratio {ratio:.4}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP etlpool_job_records_total Records by kind and what happened to them.\n\
             # TYPE etlpool_job_records_total counter"
        );
        for (kind, c) in &p.records {
            for (action, n) in [
                ("created", c.created),
                ("found", c.found),
                ("skipped", c.skipped),
                ("failed", c.failed),
                ("planned", c.planned),
                ("waiting", c.waiting),
            ] {
                let _ = writeln!(
                    out,
                    "etlpool_job_records_total{{kind=\"{kind}\",action=\"{action}\"}} {n}"
                );
            }
        }
    }
}

/// RFC 3339, UTC, to the second.
pub(super) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn secs(t: SystemTime) -> String {
    let s = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    format!("{s:.3}")
}

pub(super) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Adds `labels` to every sample of a Prometheus text (Prometheus clients'
/// "constant labels").
pub(super) fn labelled(text: &str, labels: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.lines().count() * labels.len());
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
        } else if let Some(i) = line.rfind("} ") {
            out.push_str(&line[..i]);
            out.push(',');
            out.push_str(labels);
            out.push_str(&line[i..]);
        } else if let Some((name, value)) = line.split_once(' ') {
            let _ = write!(out, "{name}{{{labels}}} {value}");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_gets_the_job_labels() {
        let text = "# HELP a x\n# TYPE a gauge\na 1\nb{origin=\"o\"} 2\n";
        assert_eq!(
            labelled(text, "project=\"P\""),
            "# HELP a x\n# TYPE a gauge\na{project=\"P\"} 1\nb{origin=\"o\",project=\"P\"} 2\n"
        );
    }

    #[test]
    fn the_last_success_survives_a_failed_run() {
        let dir = std::env::temp_dir().join(format!("etlpool-job-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Job::new("migrate", "P", None, Previous::default());
        ok.end(ExitCode::Ok);
        let metrics = dir.join("m.prom");
        std::fs::write(&metrics, ok.prometheus(&Snapshot::default())).unwrap();
        let previous = Previous::read(None, Some(&metrics));
        assert_eq!(previous.exit_code, Some(0));
        let at = previous.last_success.unwrap();
        let failed = Job::new("migrate", "P", None, previous);
        failed.end(ExitCode::Fatal);
        assert_eq!(failed.last_success(), Some(at));
        let text = failed.prometheus(&Snapshot::default());
        assert!(
            text.contains("etlpool_job_exit_code{command=\"migrate\",project=\"P\"} 4"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
