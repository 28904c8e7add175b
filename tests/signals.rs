//! `etlpool::signals`, in a test binary of its own: raising a signal here
//! cannot disturb other tests. A second signal exits the process, so that
//! path runs in a child process (this binary re-run on an ignored test).

use std::process::Command;
use std::time::Duration;

use etlpool::CancelToken;
use etlpool::queue::WorkQueue;
use etlpool::signals::{self, EXIT_INTERRUPTED};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;

/// Set in the child's environment by `a_second_signal_exits_at_once_with_130`.
const CHILD: &str = "ETLPOOL_SIGNALS_CHILD";

/// The only test that raises a signal in this process: after a first signal
/// the next one would exit it.
#[test]
fn sigterm_cancels_the_token_and_a_queue_watching_it() {
    let token = CancelToken::new();
    let guard = signals::install(token.clone()).unwrap();
    assert!(!guard.received());
    let (queue, _results) = WorkQueue::builder()
        .workers(2)
        .cancel_token(token.clone())
        .build(|n: u32| Ok::<_, std::convert::Infallible>(n))
        .unwrap();
    queue.submit(1).unwrap();

    raise(SIGTERM).unwrap();
    assert!(guard.received(), "the handler runs before raise returns");
    // A bound for a broken build, not a timing assertion.
    assert!(token.wait_timeout(Duration::from_secs(30)));
    assert!(queue.is_cancelled());
    assert!(queue.submit(2).unwrap_err().is_cancelled());
    assert_eq!(queue.close().submitted, 1);
}

#[test]
#[ignore = "run in a child process by a_second_signal_exits_at_once_with_130"]
fn child_raises_sigint_twice() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let token = CancelToken::new();
    let _guard = signals::install(token.clone()).unwrap();
    raise(SIGINT).unwrap();
    assert!(token.wait_timeout(Duration::from_secs(30)));
    raise(SIGINT).unwrap();
    // Only reached if the second signal did not exit.
    std::process::exit(1);
}

#[test]
fn a_second_signal_exits_at_once_with_130() {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_raises_sigint_twice",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED), "{status}");
}

#[test]
fn dropping_the_guard_restores_the_default_reaction() {
    // In a child too: the default reaction to SIGTERM ends the process.
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_drops_the_guard_then_raises",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(SIGTERM), "{status}");
}

#[test]
#[ignore = "run in a child process by dropping_the_guard_restores_the_default_reaction"]
fn child_drops_the_guard_then_raises() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    drop(signals::install(CancelToken::new()).unwrap());
    // Installing again after a drop still works: the restored default does
    // not fire while a guard is alive.
    let token = CancelToken::new();
    let guard = signals::install(token.clone()).unwrap();
    raise(SIGINT).unwrap();
    assert!(token.wait_timeout(Duration::from_secs(30)));
    drop(guard);
    raise(SIGTERM).unwrap();
    std::process::exit(1);
}
