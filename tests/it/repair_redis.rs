//! Adversarial review of repair with the journal in Redis: two workers
//! repairing one project at once make each missing record once, and the
//! journal exported after it holds the new ids and no repair under way.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::repair::{called, options, writes_since};
use crate::support::fleet::RedisServer;
use etlpool::fleet::redis::{Redis, RedisJournal, export_journal};
use etlpool::migrate::{Journal, RecordKind, RunHooks, SyncOptions};

#[test]
fn two_workers_repairing_one_redis_journal_make_each_missing_record_once() {
    let server = RedisServer::start();
    let redis = Redis::open(&server.url(), None, "etlpool").unwrap();
    let mut small = options(52, None);
    small.sizes.cases = 10;
    small.sizes.executions = 12;
    let m = crate::support::Migration::with_options(small);
    let scratch = m.dir.0.join("journal.csv");
    let hooks = |sync: SyncOptions| {
        let store = RedisJournal::new(&redis, "PROJ", scratch.clone(), Duration::from_secs(30));
        RunHooks::default()
            .sync(sync)
            .journal_store(Arc::new(store))
            .max_outage(m.max_outage)
    };
    let run = |sync: SyncOptions| {
        let cancel = etlpool::CancelToken::new();
        etlpool::migrate::migrate_with(&m.pool, &m.options(), &cancel, &hooks(sync))
    };
    let first = run(SyncOptions::default()).expect("first run");
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    let exported = m.dir.0.join("exported.csv");
    export_journal(&redis, "PROJ", &exported, false).unwrap();
    let j = Journal::read_only(&exported).unwrap();
    let called = called(&m.mocks);
    let (key, target) = j
        .entries_of(RecordKind::Case)
        .into_iter()
        .find(|(k, t)| {
            let state = m.mocks.qtest_state();
            !called.contains(k) && state.test_runs.iter().any(|r| r.test_case_id == t.id)
        })
        .expect("a case with runs that no case calls");
    drop(j);
    let runs = m.mocks.delete_case_with_runs(target.id).unwrap().len();

    let before = m.mocks.journal().len();
    let start = Barrier::new(2);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    run(SyncOptions::default().repair(true))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for outcome in &outcomes {
        match outcome {
            Ok(summary) => assert!(summary.is_complete(), "{summary}\n{}", m.failures()),
            Err(e) => assert!(e.is_locked(), "{e}"),
        }
    }
    assert!(outcomes.iter().any(Result::is_ok), "{outcomes:?}");
    let writes = writes_since(&m, before);
    assert_eq!(writes.get("POST test-case"), Some(&1), "{writes:?}");
    assert_eq!(writes.get("POST test-run"), Some(&runs), "{writes:?}");
    assert!(m.verify().is_clean(), "{}", m.verify());

    std::fs::remove_file(&exported).unwrap();
    export_journal(&redis, "PROJ", &exported, false).unwrap();
    let j = Journal::read_only(&exported).unwrap();
    let now = j
        .get(RecordKind::Case, &key)
        .expect("the case journaled")
        .id;
    assert_ne!(now, target.id);
    assert_eq!(j.mark("repair"), None, "the repair finished");
}
