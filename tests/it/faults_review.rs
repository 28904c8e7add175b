//! Adversarial review of issue 12 part B: outages, waiting and exit codes
//! under schedules the first tests did not try.

use std::time::Duration;

use etlpool::mock::FailPoint;

use crate::faults_outage::patient_migration_with;
use crate::support::check;

/// A probe the call's own deadline cuts short (qTest back, but slower than
/// `total_timeout` for a moment) leaves the breaker half-open with no probe
/// out; the outage's prober must still probe again once qTest answers in
/// time, not wait out the whole `--max-outage` and stop the run.
#[test]
fn a_probe_cut_short_by_its_deadline_does_not_stall_the_outage_until_max_outage() {
    let (mut m, _) = patient_migration_with(131, 4, |pool| {
        pool.request_timeout(Duration::from_millis(800))
            .total_timeout(Some(Duration::from_millis(800)))
    });
    m.max_outage = Duration::from_secs(20);
    let opts = m.options();
    let qtest = &m.mocks.faults().qtest;
    let summary = std::thread::scope(|scope| {
        let running = scope.spawn(|| m.run_with(&opts));
        crate::faults_outage::wait_for_writes(&m.mocks, 30);
        // Down: the breaker opens (2 failures in a row) and probes fail.
        qtest.set_fail_rate(1.0, FailPoint::Before);
        std::thread::sleep(Duration::from_secs(2));
        // Back, but slow: the next probe is cut short by its deadline.
        qtest.set_latency(Duration::from_millis(2500), Duration::ZERO);
        qtest.set_fail_rate(0.0, FailPoint::Before);
        std::thread::sleep(Duration::from_secs(3));
        qtest.set_latency(Duration::ZERO, Duration::ZERO);
        running.join().unwrap()
    });
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    check::assert_migrated(&m.mocks);
}
