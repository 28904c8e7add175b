//! `etlpool status --redis URL`: the projects of the queue, waiting,
//! running (on which worker, since when, its last heartbeat), done and
//! failed (with the exit code and error of the last attempt).
//!
//! Exit code: 0 when every project is done (or none is queued), 3 when
//! some failed and none is left to run (a re-run of `migrate --projects`
//! queues the failed ones again), 6 while some wait or run (or can't be
//! read: shown as `unknown`, never left out), so a script can
//! wait with `until etlpool status -q ...; [ $? -ne 6 ]; do sleep 30; done`.

use clap::Args;

use super::redis_args::RedisArgs;
use super::{CliError, ExitCode};

/// Options of `etlpool status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Where the queue is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Print one JSON document (`projects`, `counts`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(feature = "redis"))]
pub(super) fn run(args: &StatusArgs) -> Result<ExitCode, CliError> {
    args.redis.refuse(Some("status"))?;
    Err(super::redis_args::without_redis())
}

#[cfg(feature = "redis")]
pub(super) fn run(args: &StatusArgs) -> Result<ExitCode, CliError> {
    use crate::fleet::redis::{ProjectQueue, ProjectState};

    let redis = args
        .redis
        .open(Some("etlpool status"))?
        .ok_or_else(|| CliError::Usage("etlpool status needs --redis".into()))?;
    let listing = ProjectQueue::connect(&redis)?.projects()?;
    let (projects, unreadable) = (&listing.projects, &listing.unreadable);
    let count = |state| projects.iter().filter(|p| p.state == state).count();
    let counts = [
        ProjectState::Waiting,
        ProjectState::Running,
        ProjectState::Done,
        ProjectState::Failed,
    ]
    .map(|s| (s.as_str(), count(s)));
    let now = crate::fleet::redis::queue::now_ms();
    if args.json {
        let doc = serde_json::json!({
            "redis": redis.shown(),
            "projects": projects,
            "unreadable": unreadable,
            "counts": counts.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{doc}");
    } else {
        print!("{}", table(&listing, now));
        let mut summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        if !unreadable.is_empty() {
            summary.push(format!("{} unreadable", unreadable.len()));
        }
        let total = projects.len() + unreadable.len();
        println!(
            "{total} project{} on {}: {}",
            if total == 1 { "" } else { "s" },
            redis.shown(),
            summary.join(", ")
        );
    }
    // An unreadable project is not known to be finished (a worker with
    // --drain waits for it too).
    Ok(
        if count(ProjectState::Waiting) + count(ProjectState::Running) + unreadable.len() > 0 {
            ExitCode::Pending
        } else if count(ProjectState::Failed) > 0 {
            ExitCode::Partial
        } else {
            ExitCode::Ok
        },
    )
}

/// One line per project: key, qTest id, state, worker, and what the state
/// says (since when, heartbeat, attempts, exit code and error).
#[cfg(feature = "redis")]
fn table(listing: &crate::fleet::redis::Projects, now: u64) -> String {
    use crate::fleet::redis::ProjectState;

    let at =
        |ms: u64| super::job::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    let ago = |ms: u64| {
        let secs = now.saturating_sub(ms) / 1000;
        humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
    };
    let mut rows = vec![[
        "PROJECT".to_string(),
        "QTEST".into(),
        "STATE".into(),
        "WORKER".into(),
        "DETAIL".into(),
    ]];
    for p in &listing.projects {
        let i = &p.info;
        let detail = match p.state {
            ProjectState::Waiting => match (&i.exit_code, i.attempts) {
                (Some(code), n) if n > 0 => {
                    format!("queued again after attempt {n} exited {code}")
                }
                _ => format!("queued {}", at(i.queued_at_ms)),
            },
            ProjectState::Running => {
                let mut d = format!("since {}", i.started_at_ms.map(at).unwrap_or_default());
                if let Some(beat) = p.heartbeat_at_ms {
                    d.push_str(&format!(", heartbeat {} ago", ago(beat)));
                    if i.lease_ms
                        .is_some_and(|lease| now.saturating_sub(beat) > lease)
                    {
                        d.push_str(" (lease over: the next worker takes it over)");
                    }
                }
                d.push_str(&format!(", attempt {}", i.attempts));
                d
            }
            ProjectState::Done => format!(
                "finished {}, attempt {}",
                i.finished_at_ms.map(at).unwrap_or_default(),
                i.attempts
            ),
            ProjectState::Failed => format!(
                "exit {} after {} attempt{}{}",
                i.exit_code.unwrap_or_default(),
                i.attempts,
                if i.attempts == 1 { "" } else { "s" },
                i.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        };
        rows.push([
            i.project.zephyr_project.clone(),
            i.project.qtest_project_id.to_string(),
            p.state.as_str().to_string(),
            i.worker.clone().unwrap_or_else(|| "-".into()),
            detail,
        ]);
    }
    for u in &listing.unreadable {
        rows.push([
            u.project.clone(),
            "-".into(),
            "unknown".into(),
            "-".into(),
            u.problem.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, width) in widths.iter().enumerate() {
            out.push_str(&format!("{:<width$}  ", row[c]));
        }
        out.push_str(&row[4]);
        out.push('\n');
    }
    out
}
