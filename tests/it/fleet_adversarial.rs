//! The fleet under attack (adversarial review of issue 16 part B), each
//! against a real `redis-server`: a dead worker's project behind many
//! running ones, a stale worker finishing a project another one finished,
//! journal moves that name nothing.

use std::time::{Duration, Instant};

use redis::Commands;

use crate::cli::run;
use crate::support::Scratch;
use crate::support::fleet::{RedisServer, etlpool};
use etlpool::fleet::Project;
use etlpool::fleet::redis::{Finish, Heartbeat, ProjectQueue, ProjectState, Redis};

fn queue_on(server: &RedisServer) -> (Redis, ProjectQueue) {
    let redis = Redis::open(&server.url(), None, "etlpool").unwrap();
    let queue = ProjectQueue::connect(&redis).unwrap();
    (redis, queue)
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
        let taken = queue
            .take(&name, lease, Duration::from_millis(10))
            .unwrap()
            .expect("an entry per project");
        queue.start(&taken, &name, lease).unwrap();
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
    let stale = queue
        .take("stale", lease, Duration::from_millis(10))
        .unwrap()
        .unwrap();
    let stale_start = queue.start(&stale, "stale", lease).unwrap();
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
    assert!(queue.finish(&heir, &heir_start, Finish::Done).unwrap());
    assert_eq!(state_of(&server, "P0").as_deref(), Some("done"));

    // "stale" wakes: its journal writes were fenced off (exit 3), and it
    // settles its attempt as failed for good, or as one to retry.
    for how in [
        Finish::Failed(3, Some("fenced off".into())),
        Finish::Retry(3, Some("fenced off".into())),
        Finish::Release,
    ] {
        assert!(
            !queue.finish(&stale, &stale_start, how.clone()).unwrap(),
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
    let projects = queue.projects().unwrap();
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
    let (code, out) = run(&mut etlpool(
        &dir.0,
        &[
            "journal",
            "import",
            "--project",
            "PROJ",
            "--journal",
            "nothere.csv",
            "--redis",
            &url,
        ],
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("nothere.csv"), "{out}");
    assert!(!dir.0.join("nothere.csv").exists());

    let kept = "kind,source_key,target_id,version_id\nmodule,F-1,11,\n";
    let file = dir.file("PROJ.journal.csv", kept.as_bytes());
    let (code, out) = run(&mut etlpool(
        &dir.0,
        &[
            "journal",
            "export",
            "--project",
            "PRJO",
            "--journal",
            "PROJ.journal.csv",
            "--force",
            "--redis",
            &url,
        ],
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("PRJO"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), kept);
}
