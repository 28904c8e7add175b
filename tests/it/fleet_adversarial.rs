//! The fleet under attack (adversarial review of issue 16 part B), each
//! against a real `redis-server`: a dead worker's project behind many
//! running ones, a stale worker finishing a project another one finished,
//! journal moves that name nothing.

use std::time::{Duration, Instant};

use redis::Commands;

use crate::cli::run;
use crate::ops_util::{signal, spawn};
use crate::support::fleet::{
    RedisServer, big_sizes, enqueue, etlpool, journal_move, journal_records, project_mocks, sizes,
    write_list,
};
use crate::support::{Scratch, check};
use etlpool::fleet::Project;
use etlpool::fleet::redis::{
    Finish, Heartbeat, ProjectInfo, ProjectQueue, ProjectState, Redis, Settled, Taken,
};
use etlpool::migrate::{FileJournal, JournalStore, LockWait, RecordKind, Target};

fn queue_on(server: &RedisServer) -> (Redis, ProjectQueue) {
    let redis = Redis::open(&server.url(), None, "etlpool").unwrap();
    let queue = ProjectQueue::connect(&redis).unwrap();
    (redis, queue)
}

/// A new entry taken and started by `worker`, as a worker does before it
/// runs the project.
fn claim(queue: &mut ProjectQueue, worker: &str, lease: Duration) -> (Taken, ProjectInfo) {
    let taken = queue
        .take(worker, lease, Duration::from_millis(10))
        .unwrap()
        .expect("an entry waiting");
    let started = queue.start(&taken, worker, lease).unwrap();
    (taken, started)
}

fn state_of(server: &RedisServer, key: &str) -> Option<String> {
    server.conn().hget("etlpool:status", key).unwrap()
}

/// `XAUTOCLAIM ... COUNT 1` looks at no more than ten pending entries per
/// call: a worker that always starts from `0-0` never sees a dead worker's
/// entry behind ten running ones, which stays stranded for as long as they
/// run.
#[test]
fn a_dead_workers_project_behind_ten_running_ones_is_reclaimed_after_its_lease() {
    let server = RedisServer::start();
    let (redis, mut queue) = queue_on(&server);
    let projects: Vec<Project> = (0..12)
        .map(|i| Project::new(format!("P{i}"), i + 1))
        .collect();
    queue.enqueue(&projects).unwrap();
    let lease = Duration::from_millis(600);
    let mut beating = Vec::new();
    for i in 0..12 {
        let name = format!("w{i}");
        let (taken, _) = claim(&mut queue, &name, lease);
        // The last one's worker dies: no heartbeat.
        if i < 11 {
            beating.push(Heartbeat::start(&redis, &taken, &name, lease));
        }
    }
    // A bound, not a timing: the lease is 600 ms.
    let deadline = Instant::now() + lease * 20;
    let reclaimed = loop {
        if let Some(taken) = queue.take("heir", lease, lease / 3).unwrap() {
            break Some(taken);
        }
        if Instant::now() > deadline {
            break None;
        }
    };
    let reclaimed = reclaimed.expect("the dead worker's project was never reclaimed");
    assert_eq!(reclaimed.project.zephyr_project, "P11");
    assert!(reclaimed.reclaimed);
    drop(beating);
}

/// A worker that stalled past its lease (its project reclaimed and finished
/// by another) must not overwrite that project's state when it wakes up and
/// settles its own, fenced-off attempt.
#[test]
fn a_stale_worker_cannot_undo_a_project_another_one_finished() {
    let server = RedisServer::start();
    let (_redis, mut queue) = queue_on(&server);
    queue.enqueue([&Project::new("P0", 1)]).unwrap();
    let lease = Duration::from_millis(300);
    let (stale, stale_start) = claim(&mut queue, "stale", lease);
    // "stale" stops heartbeating (SIGSTOP, a long pause): "heir" reclaims.
    let deadline = Instant::now() + lease * 20;
    let heir = loop {
        if let Some(t) = queue.take("heir", lease, lease / 3).unwrap() {
            break t;
        }
        assert!(Instant::now() < deadline, "never reclaimed");
    };
    assert!(heir.reclaimed);
    let heir_start = queue.start(&heir, "heir", lease).unwrap();
    assert_eq!(
        queue.finish(&heir, &heir_start, Finish::Done).unwrap(),
        Settled::Recorded
    );
    assert_eq!(state_of(&server, "P0").as_deref(), Some("done"));

    // "stale" wakes: its journal writes were fenced off (exit 3), and it
    // settles its attempt as failed for good, or as one to retry.
    for how in [
        Finish::Failed(3, Some("fenced off".into())),
        Finish::Retry(3, Some("fenced off".into())),
        Finish::Release,
    ] {
        assert_eq!(
            queue.finish(&stale, &stale_start, how.clone()).unwrap(),
            Settled::Superseded,
            "{how:?}"
        );
        assert_eq!(state_of(&server, "P0").as_deref(), Some("done"), "{how:?}");
    }
    assert!(
        queue
            .take("next", lease, Duration::from_millis(10))
            .unwrap()
            .is_none(),
        "the done project was queued again"
    );
    let projects = queue.projects().unwrap().projects;
    assert_eq!(projects[0].state, ProjectState::Done);
    assert_eq!(projects[0].info.worker.as_deref(), Some("heir"));
    assert_eq!(projects[0].info.exit_code, Some(0));
}

/// `journal import` of a file that isn't there (a typo, the wrong
/// directory) imported nothing and said it went well (exit 0); `journal
/// export` of a project Redis has no journal of wrote an empty journal, and
/// with --force replaced a real one with it.
#[test]
fn journal_moves_that_name_nothing_are_errors() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = Scratch::new("fleet-adv-journal");
    let (code, out) = journal_move(&dir.0, "import", "PROJ", "nothere.csv", &url, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("nothere.csv"), "{out}");
    assert!(!dir.0.join("nothere.csv").exists());

    let kept = "kind,source_key,target_id,version_id\nmodule,F-1,11,\n";
    let file = dir.file("PROJ.journal.csv", kept.as_bytes());
    let (code, out) = journal_move(
        &dir.0,
        "export",
        "PRJO",
        "PROJ.journal.csv",
        &url,
        &["--force"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("PRJO"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), kept);
}

/// Kills a child when dropped, so a stopped worker never outlives a failed
/// test.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A worker stopped (SIGSTOP: a VM paused, a long GC) past its lease while
/// another takes its project over and finishes it: when it wakes, its
/// journal writes are refused, its run stops at its next record, and the
/// project stays done by the heir (before the fix its end queued the
/// project again, and it ran it once more as its own).
#[test]
fn a_worker_stalled_past_its_lease_is_fenced_off_when_it_wakes() {
    let server = RedisServer::start();
    let url = server.url();
    let big = big_sizes();
    let mocks = project_mocks(0, 990, big);
    let dir = Scratch::new("fleet-adv-stall");
    let list = write_list(&dir.0, "projects.csv", &[&mocks]);
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");
    let lease = ["--lease", "1s", "--drain"];
    let mut stalled = etlpool(
        &dir.0.join("a"),
        &["worker", "--redis", &url, "--worker-name", "stalled"],
    );
    stalled.args(lease);
    let (child, mut stalled_lines) = spawn(&mut stalled);
    let mut stalled = Reaper(child);
    let mut conn = server.conn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while conn.hlen::<_, usize>("etlpool:journal:P0").unwrap() < 30 {
        assert!(
            Instant::now() < deadline,
            "the first worker never got going"
        );
        assert!(
            stalled.0.try_wait().unwrap().is_none(),
            "the first worker ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(stalled.0.id(), "-STOP");

    let mut heir = etlpool(
        &dir.0.join("b"),
        &["worker", "--redis", &url, "--worker-name", "heir"],
    );
    heir.args(lease);
    let (code, out) = run(&mut heir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("taking it over"), "{out}");
    check::assert_migrated(&mocks);
    let journal: std::collections::HashMap<String, String> =
        conn.hgetall("etlpool:journal:P0").unwrap();
    let writes = mocks.journal().len();

    signal(stalled.0.id(), "-CONT");
    let status = stalled.0.wait().unwrap();
    let said = stalled_lines.rest();
    assert!(said.contains("is no longer this run's"), "{said}");
    assert_eq!(status.code(), Some(0), "{said}");
    // Nothing of the stale run landed: not in the journal, not on qTest.
    let after: std::collections::HashMap<String, String> =
        conn.hgetall("etlpool:journal:P0").unwrap();
    assert_eq!(after, journal);
    // What it had in hand when it stopped may still reach qTest as it
    // wakes (no fence reaches a request already on its way: the limit the
    // README states), but the run stops at its next record: at most one
    // record per worker thread (ETLPOOL_WORKERS=2), not a second migration.
    // A case's approval is part of its creation, not a record of its own.
    let stale: Vec<String> = mocks.journal()[writes..]
        .iter()
        .filter(|e| !e.target.ends_with("/approve"))
        .map(|e| format!("{} {}", e.method, e.target))
        .collect();
    assert!(stale.len() <= 2, "{stale:?} after it woke: {said}");
    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url, "--json"]));
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(doc["projects"][0]["state"], "done", "{doc}");
    assert_eq!(doc["projects"][0]["worker"], "heir", "{doc}");
}

/// Redis out of reach under a running worker, then back without
/// persistence, has forgotten the queue, the states and the journal: the worker's run stops
/// at its next record, the end of its attempt waits for Redis, and then the
/// worker says what was lost and exits non-zero instead of reporting a
/// drained queue (exit 0).
#[test]
fn a_worker_whose_redis_forgot_its_project_says_so_and_fails() {
    let server = RedisServer::start();
    let url = server.url();
    let big = big_sizes();
    let p0 = project_mocks(0, 995, big);
    let dir = Scratch::new("fleet-adv-restart");
    let list = write_list(&dir.0, "projects.csv", &[&p0]);
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");
    let mut worker = etlpool(
        &dir.0.join("w"),
        &["worker", "--redis", &url, "--drain", "--lease", "1s"],
    );
    let (child, mut lines) = spawn(&mut worker);
    let mut worker = Reaper(child);
    let mut conn = server.conn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while conn.hlen::<_, usize>("etlpool:journal:P0").unwrap() < 20 {
        assert!(Instant::now() < deadline, "the worker never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Redis "restarts" empty and stays out of reach for a while: every
    // connection dropped, new ones refused (a password they don't have),
    // everything forgotten. (Done in place: a port given up could be taken
    // by another test while the worker still dials it.)
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "not-yet"])
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    let _: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query(&mut conn)
        .unwrap();
    lines
        .until("trying again")
        .expect("the worker retries what Redis didn't take");
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", ""])
        .query(&mut conn)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let said = lines.rest();
    assert!(!said.contains("panicked"), "{said}");
    assert!(
        said.contains("project P0: redis://") && said.contains("queue the list again"),
        "{said}"
    );
    assert_eq!(status.code(), Some(4), "{said}");
}

/// Keys a journal may hold (no control characters): commas, quotes,
/// Unicode, spaces, leading `#` and `=`.
const ODD_KEYS: [&str; 7] = [
    "PROJ-T1",
    "a,b",
    "quote\"d",
    "ünïcødé-🚀",
    " padded ",
    "#not-a-comment",
    "=SUM(A1)",
];

/// Writes a file journal of `records` at `path`.
fn write_journal(path: &std::path::Path, records: &[(RecordKind, &str, Target)]) {
    let store = FileJournal::new(path);
    let journal = store.open(store.lock(LockWait::No, None).unwrap()).unwrap();
    for (kind, key, target) in records {
        journal.record(*kind, key, *target).unwrap();
    }
    journal.close().unwrap();
}

/// `journal import` then `journal export` gives back every record, odd keys
/// and all; importing again adds nothing; a journal that disagrees with
/// Redis's is refused whole.
#[test]
fn a_journal_with_odd_keys_round_trips_through_redis() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = Scratch::new("fleet-adv-odd");
    let target = |id, version_id| Target { id, version_id };
    let mut records = Vec::new();
    for (i, key) in ODD_KEYS.iter().enumerate() {
        let i = i as u64;
        records.push((RecordKind::Case, *key, target(100 + i, Some(200 + i))));
        records.push((RecordKind::Module, *key, target(300 + i, None)));
        records.push((RecordKind::Log, *key, target(u64::MAX - i, None)));
    }
    let file = dir.0.join("PROJ.journal.csv");
    write_journal(&file, &records);
    let written = journal_records(&file);
    assert_eq!(written.len(), records.len());
    let journal = |action: &str, file: &str, extra: &[&str]| {
        journal_move(&dir.0, action, "PROJ", file, &url, extra)
    };
    let (code, out) = journal("import", "PROJ.journal.csv", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("imported {} new", records.len())),
        "{out}"
    );
    let (code, out) = journal("import", "PROJ.journal.csv", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("imported 0 new"), "{out}");
    let (code, out) = journal("export", "back.csv", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(journal_records(&dir.0.join("back.csv")), written);

    // One record that disagrees, one new: nothing is imported.
    let other = dir.0.join("other.csv");
    write_journal(
        &other,
        &[
            (RecordKind::Case, "a,b", target(999, Some(1))),
            (RecordKind::Case, "NEW-1", target(5, Some(6))),
        ],
    );
    let (code, out) = journal("import", "other.csv", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("disagree"), "{out}");
    let (code, out) = journal("export", "back.csv", &["--force"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(journal_records(&dir.0.join("back.csv")), written);
}

/// A password never goes on the command line (shell history, `ps`): in the
/// URL's user-info, nor in the `pass` parameter of a `redis+unix://` URL;
/// and no message repeats it.
#[test]
fn a_redis_password_on_the_command_line_is_refused_in_every_form() {
    let dir = Scratch::new("fleet-adv-pass");
    for url in [
        "redis://:hunter2@127.0.0.1:9/0",
        "redis+unix:///tmp/etlpool-no-such.sock?db=1&pass=hunter2",
    ] {
        let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", url]));
        assert_eq!(code, 2, "{url}: {out}");
        assert!(out.contains("ETLPOOL_REDIS_PASSWORD"), "{url}: {out}");
        assert!(!out.contains("hunter2"), "{url}: {out}");
    }
}

/// Whether `line` is a Prometheus sample: `name{label="value",...} number`,
/// label values escaped (`\\`, `\"`, `\n`).
fn is_sample(line: &str) -> bool {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return false;
    }
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        let mut chars = labels.char_indices().peekable();
        loop {
            // A label name, `=`, a quoted value.
            let mut saw_name = false;
            loop {
                match chars.next() {
                    Some((_, '=')) if saw_name => break,
                    Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => saw_name = true,
                    _ => return false,
                }
            }
            if !matches!(chars.next(), Some((_, '"'))) {
                return false;
            }
            loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        if !matches!(chars.next(), Some((_, '\\' | '"' | 'n'))) {
                            return false;
                        }
                    }
                    Some((_, '"')) => break,
                    Some((_, '\n')) | None => return false,
                    Some(_) => {}
                }
            }
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    rest = &labels[i + 1..];
                    break;
                }
                _ => return false,
            }
        }
    }
    rest.strip_prefix(' ')
        .is_some_and(|v| v.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&v))
}

/// A worker name with quotes, backslashes, braces and spaces (names come
/// from pods, hosts, or whatever `--worker-name` says) keeps every sample of
/// `/metrics` well-formed, the name intact in its `worker` label.
#[test]
fn an_odd_worker_name_keeps_metrics_well_formed() {
    let server = RedisServer::start();
    let url = server.url();
    let mocks = project_mocks(0, 996, sizes());
    let dir = Scratch::new("fleet-adv-metrics");
    let list = write_list(&dir.0, "projects.csv", &[&mocks]);
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");
    let name = "pod \"a\\b\"} 1\n{x=\"y";
    let mut worker = etlpool(
        &dir.0.join("w"),
        &[
            "worker",
            "--redis",
            &url,
            "--worker-name",
            name,
            "--metrics-addr",
            "127.0.0.1:0",
            "-v",
        ],
    );
    let (child, mut lines) = spawn(&mut worker);
    let _worker = Reaper(child);
    let serving = lines.until("serving /metrics").expect("it serves /metrics");
    let addr = serving.rsplit("http://").next().unwrap().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while state_of(&server, "P0").as_deref() != Some("done") {
        assert!(Instant::now() < deadline, "P0 never got done");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, metrics) = crate::ops_util::get(&addr, "/metrics");
    assert_eq!(status, 200);
    let escaped = r#"worker="pod \"a\\b\"} 1\n{x=\"y""#;
    let mut samples = 0;
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(is_sample(line), "not a sample: {line}");
        assert!(line.contains(escaped), "{line}");
        samples += 1;
    }
    assert!(
        metrics.contains("etlpool_worker_projects_total{outcome=\"done\""),
        "{metrics}"
    );
    assert!(samples > 10, "{metrics}");
}

/// A project whose state this etlpool can't read (a state a newer version
/// wrote, its info deleted by hand) was left out of `status`, which then
/// counted the rest as all there is (exit 0 when they were done), while
/// `worker --drain` waited for it forever: it is shown as unreadable, and
/// `status` doesn't say "all done".
#[test]
fn status_shows_projects_it_cannot_read_instead_of_hiding_them() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = Scratch::new("fleet-adv-odd-status");
    let (_redis, mut queue) = queue_on(&server);
    let projects: Vec<Project> = ["A", "B", "C"]
        .iter()
        .zip(1..)
        .map(|(k, id)| Project::new(*k, id))
        .collect();
    queue.enqueue(&projects).unwrap();
    let lease = Duration::from_secs(60);
    let (a, started) = claim(&mut queue, "w", lease);
    assert_eq!(
        queue.finish(&a, &started, Finish::Done).unwrap(),
        Settled::Recorded
    );
    let mut conn = server.conn();
    let _: () = conn.hset("etlpool:status", "B", "paused").unwrap();
    let _: () = conn.hdel("etlpool:info", "C").unwrap();

    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url]));
    assert_eq!(code, 6, "{out}");
    for key in ["A ", "B ", "C "] {
        assert!(
            out.lines().any(|l| l.starts_with(key)),
            "no row for {key}: {out}"
        );
    }
    assert!(out.contains("\"paused\""), "{out}");
    assert!(out.contains("3 projects"), "{out}");
    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url, "--json"]));
    assert_eq!(code, 6, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(doc["counts"]["done"], 1, "{doc}");
    assert_eq!(doc["unreadable"].as_array().map(Vec::len), Some(2), "{doc}");
}

/// Workers killed at the stages between the stream and the run: one after
/// claiming its entry, before the lock (P1); one after migrating its
/// project, before acknowledging it (P0: journal complete, lock still
/// held). A worker started later reclaims both after the lease: P0 is done
/// without a single write to qTest, P1 migrated exactly once.
#[test]
fn projects_of_workers_killed_before_the_lock_and_before_the_ack_are_finished_once() {
    let server = RedisServer::start();
    let url = server.url();
    let p0 = project_mocks(0, 997, sizes());
    let p1 = project_mocks(1, 997, sizes());
    let dir = Scratch::new("fleet-adv-stages");
    // P0's run, through its end: its journal is in Redis.
    let mut first = crate::cli::migrate(&p0, &dir.0);
    first.arg("--redis").arg(&url);
    let (code, out) = run(&mut first);
    assert_eq!(code, 0, "{out}");
    let writes = p0.journal().len();
    let list = write_list(&dir.0, "projects.csv", &[&p0, &p1]);
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");
    let lease = Duration::from_secs(1);
    let (_redis, mut queue) = queue_on(&server);
    for (key, dead) in [("P0", "dead-after-run"), ("P1", "dead-after-claim")] {
        let taken = queue
            .take(dead, lease, Duration::from_millis(10))
            .unwrap()
            .unwrap();
        assert_eq!(taken.project.zephyr_project, key);
        if key == "P0" {
            queue.start(&taken, dead, lease).unwrap();
            // Its lock, as a killed holder leaves it: expiring a lease later.
            let _: () = redis::cmd("SET")
                .arg("etlpool:lock:P0")
                .arg("pid=1 host=gone token=0")
                .arg("PX")
                .arg(1000)
                .query(&mut server.conn())
                .unwrap();
        }
    }
    let (code, out) = run(&mut etlpool(
        &dir.0.join("w"),
        &["worker", "--redis", &url, "--drain", "--lease", "1s"],
    ));
    assert_eq!(code, 0, "{out}");
    assert_eq!(p0.journal().len(), writes, "P0 was written again: {out}");
    check::assert_migrated(&p0);
    check::assert_migrated(&p1);
    let projects = queue.projects().unwrap().projects;
    assert!(
        projects.iter().all(|p| p.state == ProjectState::Done),
        "{projects:?}"
    );
}

/// A project's step may take many leases: the heartbeat keeps its entry
/// from being reclaimed and the refresher keeps its lock, however long the
/// run holds them.
#[test]
fn heartbeats_and_refreshes_hold_a_project_through_many_leases() {
    let server = RedisServer::start();
    let (redis, mut queue) = queue_on(&server);
    queue.enqueue([&Project::new("P0", 1)]).unwrap();
    let lease = Duration::from_millis(300);
    let (taken, _) = claim(&mut queue, "slow", lease);
    let _beat = Heartbeat::start(&redis, &taken, "slow", lease);
    let lock = etlpool::fleet::redis::RedisLock::acquire(
        &redis,
        "etlpool:lock:P0".into(),
        lease,
        LockWait::No,
        None,
    )
    .unwrap();
    let until = Instant::now() + lease * 10;
    while Instant::now() < until {
        assert!(
            queue.take("other", lease, lease / 3).unwrap().is_none(),
            "reclaimed while its worker heartbeats"
        );
        let again = etlpool::fleet::redis::RedisLock::acquire(
            &redis,
            "etlpool:lock:P0".into(),
            lease,
            LockWait::No,
            None,
        );
        assert!(again.is_err(), "the lock lapsed while held");
    }
    drop(lock);
}
