//! Behaviour of `etlpool::queue::WorkQueue`. Interleavings are forced with
//! gates (zero-capacity channels), never sleeps; result order is never
//! assumed, counts are exact.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use etlpool::CancelToken;
use etlpool::queue::{
    BuildError, Builder, JobError, JobResult, QueueStats, Results, SubmitError, Submitter,
    TrySubmitError, WorkQueue,
};

/// Holds jobs inside the handler: a gated call says it started, then waits
/// until the test releases it (or drops the gate's release side).
struct Gate {
    started_tx: Sender<()>,
    started_rx: Receiver<()>,
    release_tx: Sender<()>,
    release_rx: Receiver<()>,
}

impl Gate {
    fn new() -> Arc<Self> {
        let (started_tx, started_rx) = crossbeam_channel::unbounded();
        let (release_tx, release_rx) = bounded(0);
        Arc::new(Self {
            started_tx,
            started_rx,
            release_tx,
            release_rx,
        })
    }

    /// Called by the handler.
    fn pass(&self) {
        self.started_tx.send(()).unwrap();
        self.release_rx.recv().unwrap();
    }

    fn wait_started(&self, calls: usize) {
        for _ in 0..calls {
            self.started_rx.recv().unwrap();
        }
    }

    /// Returns once `calls` gated handlers have taken their release.
    fn release(&self, calls: usize) {
        for _ in 0..calls {
            self.release_tx.send(()).unwrap();
        }
    }
}

/// A queue whose handler holds every job at the returned gate, then
/// returns it. The handler owns a clone of the gate, so the gate's strong
/// count says whether the handler is still alive.
fn gated<J: Send + 'static>(
    builder: Builder<J, J, Infallible>,
) -> (Arc<Gate>, WorkQueue<J>, Results<J, J, Infallible>) {
    let gate = Gate::new();
    let handler_gate = Arc::clone(&gate);
    let (queue, results) = builder
        .build(move |job| {
            handler_gate.pass();
            ok(job)
        })
        .unwrap();
    (gate, queue, results)
}

/// Asserts that nothing arrives while the test holds the queue's workers.
/// Not a timing assertion: nothing can arrive however long we wait; the
/// 100 ms only bound how long the test looks.
fn assert_still_blocked<T: std::fmt::Debug>(rx: &Receiver<T>) {
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(100)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
}

fn ok<T>(value: T) -> Result<T, Infallible> {
    Ok(value)
}

/// A stats check with every field named, so a new counter can't be missed.
fn assert_counts(
    stats: &QueueStats,
    [submitted, succeeded, failed, retried, panicked, not_run]: [u64; 6],
) {
    assert_eq!(
        [
            stats.submitted,
            stats.succeeded,
            stats.failed,
            stats.retried,
            stats.panicked,
            stats.not_run
        ],
        [submitted, succeeded, failed, retried, panicked, not_run],
        "[submitted, succeeded, failed, retried, panicked, not_run] in {stats}"
    );
    assert_eq!(
        stats.finished(),
        stats.submitted,
        "every accepted job has one result"
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<WorkQueue<String>>();
    send_sync::<Submitter<String>>();
    send_sync::<CancelToken>();
    send_sync::<JobResult<String, u32, std::io::Error>>();
    send_sync::<SubmitError<String>>();
    send_sync::<BuildError>();
    send_sync::<etlpool::signals::SignalGuard>();
}

#[test]
fn invalid_settings_are_errors() {
    let build = |builder: Builder<u32, u32, Infallible>| builder.build(ok).unwrap_err();
    assert!(matches!(
        build(WorkQueue::builder().workers(0)),
        BuildError::ZeroWorkers
    ));
    assert!(matches!(
        build(WorkQueue::builder().thread_name("a\0b")),
        BuildError::ThreadName
    ));
    let err = build(WorkQueue::builder().backoff(Duration::from_secs(2), Duration::from_secs(1)));
    assert!(matches!(err, BuildError::BackoffBaseAboveCap { .. }));
    assert_eq!(
        err.to_string(),
        "invalid queue setting `backoff`: base 2s is above cap 1s"
    );
}

#[test]
fn every_job_gets_one_result_with_its_id() {
    let (queue, results) = WorkQueue::builder()
        .workers(3)
        .build(|n: u32| ok(n * 10))
        .unwrap();
    let mut expected = HashSet::new();
    for n in 0..50 {
        expected.insert((queue.submit(n).unwrap(), n * 10));
    }
    assert_counts(&queue.close(), [50, 50, 0, 0, 0, 0]);
    let got: HashSet<_> = results
        .iter()
        .map(|r| {
            assert_eq!(r.attempts, 1);
            (r.id, r.outcome.unwrap())
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn workers_are_named() {
    let (queue, results) = WorkQueue::builder()
        .workers(2)
        .thread_name("copy")
        .build(|()| ok(thread::current().name().map(str::to_owned)))
        .unwrap();
    queue.submit(()).unwrap();
    assert_eq!(queue.workers(), 2);
    queue.close();
    let name = results.recv().unwrap().outcome.unwrap().unwrap();
    assert!(name == "copy-0" || name == "copy-1", "{name}");
}

#[test]
fn submit_blocks_while_the_queue_is_full_until_a_worker_takes_a_job() {
    let (gate, queue, results) = gated(WorkQueue::builder().workers(1).capacity(1));
    queue.submit(0).unwrap();
    gate.wait_started(1); // The worker holds job 0 ...
    queue.submit(1).unwrap(); // ... and job 1 fills the queue.
    let (submitted_tx, submitted_rx) = bounded(1);
    thread::scope(|s| {
        s.spawn(|| {
            queue.submit(2).unwrap();
            submitted_tx.send(()).unwrap();
        });
        assert_still_blocked(&submitted_rx);
        gate.release(1); // Job 0 ends, the worker takes job 1, room for job 2.
        submitted_rx.recv().unwrap();
        gate.release(2);
    });
    assert_counts(&queue.close(), [3, 3, 0, 0, 0, 0]);
    assert_eq!(results.iter().count(), 3);
}

#[test]
fn try_submit_hands_the_job_back_when_full_and_after_close() {
    let (gate, queue, _results) = gated(WorkQueue::builder().workers(1).capacity(1));
    queue.try_submit("running".to_owned()).unwrap();
    gate.wait_started(1);
    queue.try_submit("queued".to_owned()).unwrap();
    match queue.try_submit("refused".to_owned()) {
        Err(TrySubmitError::Full(job)) => assert_eq!(job, "refused"),
        other => panic!("expected Full, got {other:?}"),
    }
    let submitter = queue.submitter();
    gate.release(2);
    assert_counts(&queue.close(), [2, 2, 0, 0, 0, 0]);
    assert_eq!(
        submitter
            .try_submit("late".to_owned())
            .unwrap_err()
            .into_inner(),
        "late"
    );
    assert_eq!(
        submitter.submit("later".to_owned()),
        Err(SubmitError::Closed("later".to_owned()))
    );
}

#[test]
fn a_panicking_job_is_reported_with_its_message_and_the_worker_goes_on() {
    let (queue, results) = WorkQueue::builder()
        .workers(1)
        .build(|n: u32| match n {
            3 => panic!("boom {n}"),
            5 => panic!("static boom"),
            7 => std::panic::panic_any(7_u8),
            _ => ok(n),
        })
        .unwrap();
    for n in 0..10 {
        queue.submit(n).unwrap();
    }
    assert_counts(&queue.close(), [10, 7, 0, 0, 3, 0]);
    let mut messages: Vec<String> = results
        .iter()
        .filter_map(|r| match r.outcome {
            Err(JobError::Panicked(message)) => Some(message),
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => None,
        })
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        ["boom 3", "panic with a non-string payload", "static boom"]
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    Transient,
    Permanent,
}

#[test]
fn retries_only_retryable_errors_with_exact_attempt_counts() {
    // Job n fails transiently n times, then succeeds; job 99 fails for good.
    let calls: Arc<Vec<AtomicU32>> = Arc::new((0..100).map(|_| AtomicU32::new(0)).collect());
    let handler_calls = Arc::clone(&calls);
    let (queue, results) = WorkQueue::builder()
        .workers(3)
        .retry_if(3, |e: &Failure| *e == Failure::Transient)
        .backoff(Duration::ZERO, Duration::from_millis(1))
        .build(move |n: usize| {
            let call = handler_calls[n].fetch_add(1, Ordering::SeqCst) as usize + 1;
            match n {
                99 => Err(Failure::Permanent),
                _ if call <= n => Err(Failure::Transient),
                _ => Ok(n),
            }
        })
        .unwrap();
    let ids: Vec<_> = [0, 1, 2, 3, 4, 99]
        .map(|n| (queue.submit(n).unwrap(), n))
        .into();
    // Retries: 0 + 1 + 2 + 3 + 3 (job 4 gives up after 3) + 0.
    assert_counts(&queue.close(), [6, 4, 2, 9, 0, 0]);
    let mut got: Vec<_> = results
        .iter()
        .map(|r| {
            let n = ids.iter().find(|(id, _)| *id == r.id).unwrap().1;
            assert_eq!(calls[n].load(Ordering::SeqCst), r.attempts, "job {n}");
            (
                n,
                r.attempts,
                r.outcome.map_err(|e| *e.handler_error().unwrap()),
            )
        })
        .collect();
    got.sort_by_key(|(n, ..)| *n);
    assert_eq!(
        got,
        [
            (0, 1, Ok(0)),
            (1, 2, Ok(1)),
            (2, 3, Ok(2)),
            (3, 4, Ok(3)),
            (4, 4, Err(Failure::Transient)),
            (99, 1, Err(Failure::Permanent)),
        ]
    );
}

#[test]
fn retries_are_off_by_default() {
    let calls = Arc::new(AtomicU32::new(0));
    let handler_calls = Arc::clone(&calls);
    let (queue, results) = WorkQueue::builder()
        .workers(2)
        .build(move |_: u32| {
            handler_calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::Transient)
        })
        .unwrap();
    for n in 0..5 {
        queue.submit(n).unwrap();
    }
    assert_counts(&queue.close(), [5, 0, 5, 0, 0, 0]);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert!(results.iter().all(|r| r.attempts == 1));
}

#[test]
fn cancel_lets_running_jobs_finish_and_hands_back_queued_ones() {
    let (gate, queue, results) = gated(WorkQueue::builder().workers(2).capacity(8));
    for n in 0..7 {
        queue.submit(n).unwrap();
    }
    gate.wait_started(2); // Two jobs running, five queued.
    queue.cancel();
    assert!(queue.is_cancelled());
    assert_eq!(queue.submit(70), Err(SubmitError::Cancelled(70)));
    assert!(queue.try_submit(71).unwrap_err().is_cancelled());
    gate.release(2);
    assert_counts(&queue.close(), [7, 2, 0, 0, 0, 5]);

    let (mut ran, mut handed_back) = (Vec::new(), Vec::new());
    for result in results.iter() {
        match result.outcome {
            Ok(n) => ran.push(n),
            Err(e) => {
                assert_eq!(result.attempts, 0);
                handed_back.push(e.into_job().unwrap());
            }
        }
    }
    ran.extend(&handed_back);
    ran.sort();
    assert_eq!(ran, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(handed_back.len(), 5);
}

#[test]
fn a_builder_token_wakes_a_blocked_submit_and_is_never_cancelled_by_the_queue() {
    let token = CancelToken::new();
    let builder = WorkQueue::builder().workers(1).capacity(1);
    let (gate, queue, results) = gated(builder.cancel_token(token.clone()));
    queue.submit(0).unwrap();
    gate.wait_started(1);
    queue.submit(1).unwrap();
    let (refused_tx, refused_rx) = bounded(1);
    thread::scope(|s| {
        s.spawn(|| refused_tx.send(queue.submit(2)).unwrap());
        assert_still_blocked(&refused_rx);
        token.cancel();
        assert_eq!(refused_rx.recv().unwrap(), Err(SubmitError::Cancelled(2)));
    });
    gate.release(1);
    assert_counts(&queue.close(), [2, 1, 0, 0, 0, 1]);
    assert_eq!(results.iter().count(), 2);

    let untouched = CancelToken::new();
    let (queue, _) = WorkQueue::builder()
        .cancel_token(untouched.clone())
        .build(ok::<u32>)
        .unwrap();
    drop(queue);
    assert!(!untouched.is_cancelled());
}

#[test]
fn a_cancel_cuts_a_retry_backoff_short() {
    let (called_tx, called_rx) = crossbeam_channel::unbounded();
    // Waits of up to centuries: only a cancel can end one.
    let forever = Duration::from_secs(1 << 40);
    let (queue, results) = WorkQueue::builder()
        .workers(1)
        .retry_if(5, |_: &Failure| true)
        .backoff(forever, forever)
        .build(move |_: u32| {
            called_tx.send(()).unwrap();
            Err::<(), _>(Failure::Transient)
        })
        .unwrap();
    queue.submit(0).unwrap();
    called_rx.recv().unwrap();
    queue.cancel();
    assert_counts(&queue.close(), [1, 0, 1, 0, 0, 0]);
    let result = results.recv().unwrap();
    assert_eq!(result.attempts, 1);
    assert!(matches!(
        result.outcome,
        Err(JobError::Failed(Failure::Transient))
    ));
    assert_eq!(called_rx.try_iter().count(), 0);
}

#[test]
fn close_on_an_empty_queue() {
    let (queue, results) = WorkQueue::builder().build(ok::<u32>).unwrap();
    let stats = queue.close();
    assert_counts(&stats, [0, 0, 0, 0, 0, 0]);
    assert_eq!((stats.mean, stats.p95), (Duration::ZERO, Duration::ZERO));
    assert!(
        results.recv().is_err(),
        "the results channel is disconnected"
    );
}

#[test]
fn dropping_without_close_lets_the_running_job_finish_and_joins_the_workers() {
    let (gate, queue, results) = gated(WorkQueue::builder().workers(1));
    for n in 0..3 {
        queue.submit(n).unwrap();
    }
    gate.wait_started(1);
    let (dropped_tx, dropped_rx) = bounded(1);
    thread::scope(|s| {
        s.spawn(|| {
            drop(queue);
            dropped_tx.send(()).unwrap();
        });
        assert_still_blocked(&dropped_rx);
        gate.release(1);
        dropped_rx.recv().unwrap();
    });
    assert_eq!(
        Arc::strong_count(&gate),
        1,
        "workers joined, handler dropped"
    );
    let outcomes: Vec<_> = results
        .iter()
        .map(|r| r.outcome.map_err(|e| e.is_not_run()))
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes.iter().filter(|o| **o == Ok(0)).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == Err(true)).count(), 2);
}

#[test]
fn many_small_jobs_from_several_producers_each_run_exactly_once() {
    const JOBS: usize = 20_000;
    const PRODUCERS: usize = 4;
    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..JOBS).map(|_| AtomicU32::new(0)).collect());
    let handler_runs = Arc::clone(&runs);
    let (queue, results) = WorkQueue::builder()
        .workers(8)
        .capacity(16)
        .build(move |n: usize| {
            handler_runs[n].fetch_add(1, Ordering::Relaxed);
            ok(n)
        })
        .unwrap();
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let submitter = queue.submitter();
            s.spawn(move || {
                for n in (p..JOBS).step_by(PRODUCERS) {
                    submitter.submit(n).unwrap();
                }
            });
        }
    });
    assert_counts(&queue.close(), [JOBS as u64, JOBS as u64, 0, 0, 0, 0]);
    assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
    let (mut ids, mut values) = (HashSet::new(), vec![false; JOBS]);
    for result in results.iter() {
        assert!(ids.insert(result.id), "duplicate id {}", result.id);
        let n = result.outcome.unwrap();
        assert!(
            !std::mem::replace(&mut values[n], true),
            "job {n} reported twice"
        );
    }
    assert_eq!(ids.len(), JOBS);
    assert!(values.iter().all(|&v| v));
}

#[derive(Clone, Debug)]
enum Job {
    Succeed,
    Fail,
    Panic,
    Flaky,
    Hold,
}

#[test]
fn stats_add_up_over_every_kind_of_outcome() {
    let gate = Gate::new();
    let handler_gate = Arc::clone(&gate);
    let (queue, results) = WorkQueue::builder()
        .workers(1)
        .capacity(16)
        .retry_if(2, |e: &Failure| *e == Failure::Transient)
        .backoff(Duration::ZERO, Duration::ZERO)
        .build(move |job: Job| match job {
            Job::Succeed => Ok(()),
            Job::Fail => Err(Failure::Permanent),
            Job::Panic => panic!("planned"),
            Job::Flaky => Err(Failure::Transient),
            Job::Hold => {
                handler_gate.pass();
                Ok(())
            }
        })
        .unwrap();
    for job in [Job::Succeed, Job::Fail, Job::Panic, Job::Flaky, Job::Hold] {
        queue.submit(job).unwrap();
    }
    gate.wait_started(1); // One worker, in order: the first four are done.
    for _ in 0..3 {
        queue.submit(Job::Succeed).unwrap();
    }
    queue.cancel();
    gate.release(1);
    let stats = queue.close();
    // Flaky: 3 attempts, 2 of them retries.
    assert_counts(&stats, [8, 2, 2, 2, 1, 3]);
    assert!(stats.mean > Duration::ZERO && stats.p95 > Duration::ZERO);
    let results: Vec<_> = results.iter().collect();
    assert_eq!(results.len(), 8);
    assert_eq!(
        results.iter().map(|r| u64::from(r.attempts)).sum::<u64>(),
        1 + 1 + 1 + 3 + 1
    );
}

#[test]
fn job_errors_keep_their_cause() {
    use std::error::Error;
    let failed: JobError<(), std::io::Error> = JobError::Failed(std::io::Error::other("disk full"));
    assert_eq!(failed.to_string(), "job failed");
    assert_eq!(failed.source().unwrap().to_string(), "disk full");
    let not_run: JobError<u32, std::io::Error> = JobError::NotRun(4);
    assert!(not_run.is_not_run() && not_run.source().is_none());
    assert_eq!(not_run.into_job(), Some(4));
}
