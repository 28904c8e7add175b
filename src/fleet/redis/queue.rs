//! The project queue: a Redis Stream (`PREFIX:projects`) with one consumer
//! group (`workers`), and each project's state beside it.
//!
//! - **Enqueue** ([`ProjectQueue::enqueue`]): one script per project adds an
//!   entry and marks the project `waiting`, unless it is already waiting,
//!   running or done (a list enqueued twice queues nothing twice; a failed
//!   project is queued again, its attempts reset).
//! - **Take** ([`ProjectQueue::take`]): first `XAUTOCLAIM` an entry whose
//!   worker has not heartbeaten for a lease (it died, or stalled), then
//!   `XREADGROUP` a new one.
//! - **Heartbeat** ([`Heartbeat`]): every third of the lease, `XCLAIM ...
//!   JUSTID` resets the entry's idle time (so nobody reclaims it) and the
//!   heartbeat time is written for `etlpool status`.
//! - **Finish** ([`ProjectQueue::finish`]): in one script, `XACK` and
//!   `XDEL` the entry and set the project `done` or `failed`, or queue it
//!   again (a new entry) for another attempt; unless the project is no
//!   longer the finishing attempt's (a worker that stalled past its lease
//!   while another took its project over changes nothing).
//!
//! No project runs twice at once: the stream gives each entry to one
//! consumer at a time, and the project's lock ([`super::lock`]) guards
//! against a worker that stalled past its lease while another reclaimed it.

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{RecvTimeoutError, Sender};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamClaimOptions, StreamId, StreamReadOptions,
    StreamReadReply,
};
use redis::{Commands, Connection};
use serde::{Deserialize, Serialize};

use super::Redis;
use super::lock::millis;
use crate::error::Error;
use crate::fleet::Project;

/// The consumer group of the workers.
pub const GROUP: &str = "workers";

/// Adds an entry for a project unless it is waiting, running or done.
const ENQUEUE: &str = "local state = redis.call('HGET', KEYS[1], ARGV[1]) \
     if state and state ~= 'failed' then return state end \
     redis.call('XADD', KEYS[3], '*', 'project', ARGV[2]) \
     redis.call('HSET', KEYS[1], ARGV[1], 'waiting') \
     redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) \
     redis.call('HDEL', KEYS[4], ARGV[1]) \
     return 'queued'";

/// Ends an attempt if the project is still that attempt's (its info names
/// the same worker, attempt and start): acknowledges and deletes the entry,
/// sets the state and info, and queues a new entry for another attempt.
/// 1 if it did (or had: an attempt already finished, so a repeat after a
/// lost reply changes nothing), 0 if the attempt is stale, -1 if Redis has
/// no such project.
const FINISH: &str = "local info = redis.call('HGET', KEYS[3], ARGV[1]) \
     if not info then return -1 end \
     local ok, now = pcall(cjson.decode, info) \
     if not ok or now.worker ~= ARGV[3] or now.attempts ~= tonumber(ARGV[4]) \
        or now.started_at_ms ~= tonumber(ARGV[5]) then return 0 end \
     if now.finished_at_ms ~= cjson.null then return 1 end \
     redis.call('XACK', KEYS[1], ARGV[9], ARGV[2]) \
     redis.call('XDEL', KEYS[1], ARGV[2]) \
     redis.call('HSET', KEYS[2], ARGV[1], ARGV[6]) \
     redis.call('HSET', KEYS[3], ARGV[1], ARGV[7]) \
     redis.call('HDEL', KEYS[4], ARGV[1]) \
     if ARGV[8] ~= '' then redis.call('XADD', KEYS[1], '*', 'project', ARGV[8]) end \
     return 1";

/// Where a project stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectState {
    /// Queued, not taken yet (or queued again for another attempt).
    Waiting,
    /// A worker has it.
    Running,
    /// Migrated: its run exited 0.
    Done,
    /// Its last attempt failed and no attempts are left.
    Failed,
}

impl ProjectState {
    /// `waiting`, `running`, `done`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Waiting => "waiting",
            ProjectState::Running => "running",
            ProjectState::Done => "done",
            ProjectState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<ProjectState> {
        [
            ProjectState::Waiting,
            ProjectState::Running,
            ProjectState::Done,
            ProjectState::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What is known of a queued project (`PREFIX:info`); times are Unix
/// milliseconds of the machine that wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProjectInfo {
    /// The project, as listed.
    pub project: Project,
    /// The worker that has it, or had it last.
    pub worker: Option<String>,
    /// When it was queued.
    pub queued_at_ms: u64,
    /// When its last attempt started.
    pub started_at_ms: Option<u64>,
    /// When its last attempt ended.
    pub finished_at_ms: Option<u64>,
    /// The lease its worker runs it under.
    pub lease_ms: Option<u64>,
    /// Attempts started (a run stopped by a signal gives its attempt back).
    pub attempts: u32,
    /// The exit code of its last attempt.
    pub exit_code: Option<i32>,
    /// What went wrong in its last attempt.
    pub error: Option<String>,
}

impl ProjectInfo {
    fn queued(project: Project) -> ProjectInfo {
        ProjectInfo {
            project,
            worker: None,
            queued_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            lease_ms: None,
            attempts: 0,
            exit_code: None,
            error: None,
        }
    }
}

/// A project as `etlpool status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueuedProject {
    /// Its state.
    pub state: ProjectState,
    /// What is known of it.
    #[serde(flatten)]
    pub info: ProjectInfo,
    /// Its worker's last heartbeat, while it runs.
    pub heartbeat_at_ms: Option<u64>,
}

/// An entry a worker took.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The stream entry's id.
    pub id: String,
    /// The project.
    pub project: Project,
    /// Whether it was reclaimed from a worker whose lease ran out.
    pub reclaimed: bool,
}

/// How an attempt ended, for [`ProjectQueue::finish`].
#[derive(Debug, Clone)]
pub enum Finish {
    /// Migrated (exit 0).
    Done,
    /// Failed with this exit code and error; no attempts left.
    Failed(i32, Option<String>),
    /// Failed with this exit code and error; queue it again.
    Retry(i32, Option<String>),
    /// Stopped by a signal: queue it again at once, the attempt given back.
    Release,
}

/// What [`ProjectQueue::finish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The attempt's end is recorded.
    Recorded,
    /// Nothing changed: another worker took the project over (this one
    /// stalled past its lease), and its state is that worker's.
    Superseded,
    /// Nothing changed: Redis has no such project (it restarted without
    /// persistence, or its keys were deleted); the list must be queued again.
    Lost,
}

/// What [`ProjectQueue::enqueue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Enqueued {
    /// Projects queued now.
    pub queued: Vec<String>,
    /// Projects left as they were, with their state.
    pub kept: Vec<(String, ProjectState)>,
}

/// The queue, on one connection of its own.
pub struct ProjectQueue {
    redis: Redis,
    conn: Connection,
}

impl std::fmt::Debug for ProjectQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectQueue")
            .field("redis", &self.redis)
            .finish()
    }
}

/// The keys of a queue: stream, status, info, heartbeat.
struct Keys {
    stream: String,
    status: String,
    info: String,
    heartbeat: String,
}

fn keys(redis: &Redis) -> Keys {
    Keys {
        stream: redis.key(&["projects"]),
        status: redis.key(&["status"]),
        info: redis.key(&["info"]),
        heartbeat: redis.key(&["heartbeat"]),
    }
}

impl ProjectQueue {
    /// Connects, and makes the stream and its group if they are missing.
    pub fn connect(redis: &Redis) -> Result<ProjectQueue, Error> {
        let mut conn = redis.connect()?;
        let made: redis::RedisResult<()> =
            conn.xgroup_create_mkstream(keys(redis).stream, GROUP, "0");
        match made {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(redis.error("making the project queue on", e)),
        }
        Ok(ProjectQueue {
            redis: redis.clone(),
            conn,
        })
    }

    /// Queues `projects` (see the module docs).
    pub fn enqueue<'p>(
        &mut self,
        projects: impl IntoIterator<Item = &'p Project>,
    ) -> Result<Enqueued, Error> {
        let k = keys(&self.redis);
        let script = redis::Script::new(ENQUEUE);
        let mut done = Enqueued::default();
        for project in projects {
            let entry = json(project)?;
            let info = json(&ProjectInfo::queued(project.clone()))?;
            let answer: String = script
                .key(&k.status)
                .key(&k.info)
                .key(&k.stream)
                .key(&k.heartbeat)
                .arg(&project.zephyr_project)
                .arg(entry)
                .arg(info)
                .invoke(&mut self.conn)
                .map_err(|e| self.redis.error("queueing a project on", e))?;
            let key = project.zephyr_project.clone();
            match ProjectState::parse(&answer) {
                Some(state) => done.kept.push((key, state)),
                None => done.queued.push(key),
            }
        }
        Ok(done)
    }

    /// An entry for `worker`: one whose worker has not heartbeaten for
    /// `lease`, else a new one, waiting up to `block` for it. `None` when
    /// there is none. Entries of projects already done are acknowledged
    /// and skipped.
    pub fn take(
        &mut self,
        worker: &str,
        lease: Duration,
        block: Duration,
    ) -> Result<Option<Taken>, Error> {
        let k = keys(&self.redis);
        loop {
            let (entry, reclaimed) = match self.reclaim(worker, lease)? {
                Some(entry) => (entry, true),
                None => {
                    let options = StreamReadOptions::default()
                        .group(GROUP, worker)
                        .count(1)
                        .block(usize::try_from(millis(block)).unwrap_or(usize::MAX));
                    let read: Option<StreamReadReply> = self
                        .conn
                        .xread_options(&[&k.stream], &[">"], &options)
                        .map_err(|e| self.redis.error("taking a project from", e))?;
                    let entry = read
                        .and_then(|r| r.keys.into_iter().next())
                        .and_then(|key| key.ids.into_iter().next());
                    match entry {
                        Some(entry) => (entry, false),
                        None => return Ok(None),
                    }
                }
            };
            if let Some(taken) = self.check(entry, reclaimed)? {
                return Ok(Some(taken));
            }
        }
    }

    /// One entry whose worker has not heartbeaten for `lease`, claimed for
    /// `worker`. `XAUTOCLAIM` looks at no more than ten pending entries per
    /// call (for a count of one), so the scan follows its cursor through the
    /// whole pending list: a dead worker's entry behind ten running ones is
    /// found too.
    fn reclaim(&mut self, worker: &str, lease: Duration) -> Result<Option<StreamId>, Error> {
        let k = keys(&self.redis);
        let mut cursor = "0-0".to_string();
        loop {
            let claimed: StreamAutoClaimReply = self
                .conn
                .xautoclaim_options(
                    &k.stream,
                    GROUP,
                    worker,
                    millis(lease),
                    &cursor,
                    StreamAutoClaimOptions::default().count(1),
                )
                .map_err(|e| self.redis.error("reclaiming a project on", e))?;
            if let Some(entry) = claimed.claimed.into_iter().next() {
                return Ok(Some(entry));
            }
            if claimed.next_stream_id == "0-0" {
                return Ok(None);
            }
            cursor = claimed.next_stream_id;
        }
    }

    /// The entry as a [`Taken`], or `None` (acknowledged) when it can't be
    /// read or its project is already done.
    fn check(&mut self, entry: StreamId, reclaimed: bool) -> Result<Option<Taken>, Error> {
        let project = entry
            .get::<String>("project")
            .and_then(|text| serde_json::from_str::<Project>(&text).ok());
        let state = match &project {
            Some(p) => self.state(&p.zephyr_project)?,
            None => None,
        };
        match (project, state) {
            (Some(project), Some(ProjectState::Waiting | ProjectState::Running)) => {
                Ok(Some(Taken {
                    id: entry.id,
                    project,
                    reclaimed,
                }))
            }
            (project, state) => {
                let what = project.map_or_else(
                    || "an entry that names no project".to_string(),
                    |p| {
                        format!(
                            "{} ({})",
                            p.zephyr_project,
                            state.map_or("unknown", |s| s.as_str())
                        )
                    },
                );
                log::warn!("dropping queue entry {}: {what}", entry.id);
                self.drop_entry(&entry.id)?;
                Ok(None)
            }
        }
    }

    fn state(&mut self, project: &str) -> Result<Option<ProjectState>, Error> {
        let state: Option<String> = self
            .conn
            .hget(keys(&self.redis).status, project)
            .map_err(|e| self.redis.error("reading a project's state on", e))?;
        Ok(state.as_deref().and_then(ProjectState::parse))
    }

    fn info(&mut self, project: &Project) -> Result<ProjectInfo, Error> {
        let text: Option<String> = self
            .conn
            .hget(keys(&self.redis).info, &project.zephyr_project)
            .map_err(|e| self.redis.error("reading a project's state on", e))?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| ProjectInfo::queued(project.clone())))
    }

    fn drop_entry(&mut self, id: &str) -> Result<(), Error> {
        let k = keys(&self.redis);
        redis::pipe()
            .atomic()
            .xack(&k.stream, GROUP, &[id])
            .xdel(&k.stream, &[id])
            .query::<()>(&mut self.conn)
            .map_err(|e| self.redis.error("acknowledging a project on", e))
    }

    /// Marks `taken` running on `worker` under `lease`, one more attempt;
    /// returns its info (the attempts so far included).
    pub fn start(
        &mut self,
        taken: &Taken,
        worker: &str,
        lease: Duration,
    ) -> Result<ProjectInfo, Error> {
        let k = keys(&self.redis);
        let mut info = self.info(&taken.project)?;
        info.worker = Some(worker.to_string());
        info.started_at_ms = Some(now_ms());
        info.finished_at_ms = None;
        info.lease_ms = Some(millis(lease));
        info.attempts += 1;
        let key = &taken.project.zephyr_project;
        redis::pipe()
            .atomic()
            .hset(&k.status, key, ProjectState::Running.as_str())
            .hset(&k.info, key, json(&info)?)
            .hset(&k.heartbeat, key, now_ms())
            .query::<()>(&mut self.conn)
            .map_err(|e| self.redis.error("marking a project running on", e))?;
        Ok(info)
    }

    /// Ends the attempt that [`ProjectQueue::start`] began as `started`
    /// (see [`Finish`]), unless the project is no longer that attempt's
    /// (see [`Settled`]). A connection that broke is made again once: a
    /// repeated end changes nothing.
    pub fn finish(
        &mut self,
        taken: &Taken,
        started: &ProjectInfo,
        how: Finish,
    ) -> Result<Settled, Error> {
        let k = keys(&self.redis);
        let mut info = started.clone();
        info.finished_at_ms = Some(now_ms());
        let (state, code, error, again) = match how {
            Finish::Done => (ProjectState::Done, Some(0), None, false),
            Finish::Failed(code, error) => (ProjectState::Failed, Some(code), error, false),
            Finish::Retry(code, error) => (ProjectState::Waiting, Some(code), error, true),
            Finish::Release => {
                info.attempts = info.attempts.saturating_sub(1);
                (
                    ProjectState::Waiting,
                    info.exit_code,
                    info.error.take(),
                    true,
                )
            }
        };
        info.exit_code = code;
        info.error = error;
        let requeue = if again {
            json(&taken.project)?
        } else {
            String::new()
        };
        let script = redis::Script::new(FINISH);
        let mut call = script.prepare_invoke();
        call.key(&k.stream)
            .key(&k.status)
            .key(&k.info)
            .key(&k.heartbeat)
            .arg(&taken.project.zephyr_project)
            .arg(&taken.id)
            .arg(started.worker.as_deref().unwrap_or(""))
            .arg(started.attempts)
            .arg(started.started_at_ms.unwrap_or(0))
            .arg(state.as_str())
            .arg(json(&info)?)
            .arg(requeue)
            .arg(GROUP);
        let fail = |e| self.redis.error("finishing a project on", e);
        let settled: i64 = match call.invoke(&mut self.conn) {
            Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                self.conn = self.redis.connect()?;
                call.invoke(&mut self.conn).map_err(fail)?
            }
            other => other.map_err(fail)?,
        };
        Ok(match settled {
            1 => Settled::Recorded,
            0 => Settled::Superseded,
            _ => Settled::Lost,
        })
    }

    /// Whether nothing is left: no entry waiting and none taken.
    pub fn is_drained(&mut self) -> Result<bool, Error> {
        let k = keys(&self.redis);
        let states: HashMap<String, String> = self
            .conn
            .hgetall(&k.status)
            .map_err(|e| self.redis.error("reading the project states on", e))?;
        Ok(states
            .values()
            .all(|s| s == ProjectState::Done.as_str() || s == ProjectState::Failed.as_str()))
    }

    /// Every project of the queue, in the order they were queued, and
    /// those whose state or info this etlpool can't read.
    pub fn projects(&mut self) -> Result<Projects, Error> {
        let k = keys(&self.redis);
        let read = |conn: &mut Connection,
                    key: &str|
         -> redis::RedisResult<HashMap<String, String>> { conn.hgetall(key) };
        let fail = |e| self.redis.error("reading the project states on", e);
        let states = read(&mut self.conn, &k.status).map_err(fail)?;
        let infos = read(&mut self.conn, &k.info).map_err(fail)?;
        let beats = read(&mut self.conn, &k.heartbeat).map_err(fail)?;
        let mut out = Projects::default();
        for (key, state) in states {
            let info = infos.get(&key).map(|text| serde_json::from_str(text));
            match (ProjectState::parse(&state), info) {
                (Some(state), Some(Ok(info))) => out.projects.push(QueuedProject {
                    state,
                    info,
                    heartbeat_at_ms: beats.get(&key).and_then(|b| b.parse().ok()),
                }),
                (None, _) => out.unreadable.push(Unreadable {
                    project: key,
                    problem: format!("its state {state:?} is not one this etlpool knows"),
                }),
                (Some(_), None) => out.unreadable.push(Unreadable {
                    project: key,
                    problem: format!("{state}, but {} has no entry for it", k.info),
                }),
                (Some(_), Some(Err(e))) => out.unreadable.push(Unreadable {
                    project: key,
                    problem: format!("{state}, but its entry in {} can't be read: {e}", k.info),
                }),
            }
        }
        out.projects.sort_by(|a, b| {
            (a.info.queued_at_ms, &a.info.project.zephyr_project)
                .cmp(&(b.info.queued_at_ms, &b.info.project.zephyr_project))
        });
        out.unreadable.sort_by(|a, b| a.project.cmp(&b.project));
        Ok(out)
    }
}

/// The projects of a queue, as [`ProjectQueue::projects`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Projects {
    /// Every project it could read, in the order they were queued.
    pub projects: Vec<QueuedProject>,
    /// Projects whose state or info it can't read (a newer etlpool wrote
    /// them, or keys were edited by hand): never finished, as far as it
    /// knows.
    pub unreadable: Vec<Unreadable>,
}

/// A project [`ProjectQueue::projects`] can't read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Unreadable {
    /// Its key.
    pub project: String,
    /// What is wrong.
    pub problem: String,
}

/// Keeps a taken entry claimed while its project runs; stops when dropped.
pub struct Heartbeat {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts heartbeating `taken` for `worker` every third of `lease`.
    pub fn start(redis: &Redis, taken: &Taken, worker: &str, lease: Duration) -> Heartbeat {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let (redis, id, key, worker) = (
            redis.clone(),
            taken.id.clone(),
            taken.project.zephyr_project.clone(),
            worker.to_string(),
        );
        let thread = std::thread::Builder::new()
            .name("etlpool-heartbeat".into())
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(lease / 3) {
                    let beat = conn
                        .take()
                        .map_or_else(|| redis.connect(), Ok)
                        .and_then(|mut c| {
                            let r = beat(&mut c, &redis, &id, &key, &worker);
                            conn = Some(c);
                            r
                        });
                    if let Err(e) = beat {
                        conn = None;
                        log::warn!("heartbeat of {key}: {}", crate::error::error_chain(&e));
                    }
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("cannot start the heartbeat thread: {e}");
                None
            }
        };
        Heartbeat {
            stop: Some(stop),
            thread,
        }
    }
}

fn beat(
    conn: &mut Connection,
    redis: &Redis,
    id: &str,
    key: &str,
    worker: &str,
) -> Result<(), Error> {
    let k = keys(redis);
    let claimed: Vec<String> = conn
        .xclaim_options(
            &k.stream,
            GROUP,
            worker,
            0,
            &[id],
            StreamClaimOptions::default().with_justid(),
        )
        .map_err(|e| redis.error("heartbeating on", e))?;
    if claimed.is_empty() {
        log::warn!("queue entry {id} of {key} is no longer pending (finished elsewhere?)");
    }
    conn.hset::<_, _, _, ()>(&k.heartbeat, key, now_ms())
        .map_err(|e| redis.error("heartbeating on", e))
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::io("encoding a queue entry", std::io::Error::other(e)))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
