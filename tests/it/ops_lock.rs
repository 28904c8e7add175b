//! The journal's lock: a kernel lock that can't outlive its holder, even as
//! PID 1 in a container, and `--wait` to queue behind a running job.

use std::time::Duration;

use crate::cli::{migrate, mocks, run, wait_for_journal};
use crate::ops_util::{spawn, unshare, wrap};
use crate::support::{Scratch, check};

/// The pid of `parent`'s only child (unshare's forked PID 1).
fn child_of(parent: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_run_killed_as_pid_1_of_its_namespace_does_not_jam_the_next() {
    let flags = ["-p", "-f", "--mount-proc", "--kill-child"];
    let Some(probe) = unshare(&flags) else {
        return;
    };
    drop(probe);
    let mocks = mocks(51);
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.set_latency(Duration::from_millis(8), Duration::ZERO);
    }
    let dir = Scratch::new("ops-lock-pid1");
    let as_pid_1 = || wrap(unshare(&flags).unwrap(), &migrate(&mocks, &dir.0));
    let mut first = as_pid_1().spawn().unwrap();
    assert!(
        wait_for_journal(&mut first, &dir.0, 10),
        "the first run made no progress"
    );
    // What a container runtime's kill -9 does: PID 1 of the namespace dies
    // at once, holding the lock.
    let pid_1 = child_of(first.id()).expect("unshare's child");
    crate::ops_util::signal(pid_1, "-KILL");
    first.wait().unwrap();
    let lock = std::fs::read_to_string(dir.0.join("journal.csv.lock")).unwrap_or_default();
    // It names PID 1, as the next run will be.
    assert!(
        lock.trim() == "1" || lock.contains("pid=1 "),
        "the dead run's lock file: {lock:?}"
    );
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.clear();
    }
    // The next run is PID 1 again, as the dead one was.
    let (code, out) = run(&mut as_pid_1());
    assert_eq!(code, 0, "{out}");
    check::assert_migrated(&mocks);
}

#[test]
fn wait_queues_behind_the_run_that_holds_the_lock() {
    let mocks = mocks(52);
    let dir = Scratch::new("ops-lock-wait");
    let held = etlpool::migrate::Journal::open(dir.0.join("journal.csv")).unwrap();

    let (code, out) = run(migrate(&mocks, &dir.0).arg("--wait=200ms"));
    assert_eq!(code, 5, "{out}");
    for says in [
        "still, after waiting",
        "--wait",
        &format!("pid {}", std::process::id()),
    ] {
        assert!(out.contains(says), "expected {says:?} in {out}");
    }

    let (mut child, mut lines) = spawn(migrate(&mocks, &dir.0).args(["-v", "--wait"]));
    assert!(
        lines.until("waiting (--wait)").is_some(),
        "no waiting line: {}",
        lines.rest()
    );
    drop(held);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", lines.rest());
    check::assert_migrated(&mocks);
}
