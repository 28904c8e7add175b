//! Issue 12, item 7 (second half): failures after work has started exit 3,
//! never 4; 4 stays for what a person must fix before any work (a rejected
//! token, an unknown project, a service that can't be reached).

use crate::cli::{migrate, mocks, run};
use crate::ops_util::{unshare, wrap};
use crate::support::{Scratch, check};

#[test]
fn a_summary_that_cannot_be_written_after_the_work_exits_3_not_4() {
    let Some(mut outer) = unshare(&["-m"]) else {
        return;
    };
    let mocks = mocks(128);
    let dir = Scratch::new("faults-exit-full");
    let disk = dir.0.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    // A full file system under the summary only: the path checks pass (an
    // empty file fits), the journal and the report are elsewhere, and the
    // summary written at the end does not fit.
    outer.args([
        "sh",
        "-c",
        "mount -t tmpfs -o size=16k tmpfs \"$0\" && \
         dd if=/dev/zero of=\"$0/filler\" bs=1024 count=16 2>/dev/null; exec \"$@\"",
    ]);
    outer.arg(&disk);
    let mut inner = migrate(&mocks, &dir.0);
    inner.arg("--summary-json").arg(disk.join("summary.json"));
    let (code, out) = run(&mut wrap(outer, &inner));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    // The work itself was done.
    check::assert_migrated(&mocks);
}

#[test]
fn a_service_that_answers_5xx_at_the_start_exits_3_for_a_rerun() {
    let mocks = mocks(129);
    mocks
        .faults()
        .qtest
        .set_fail_rate(1.0, etlpool::mock::FailPoint::Before);
    let dir = Scratch::new("faults-exit-503");
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("503"), "{out}");
    mocks.faults().qtest.clear();
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
}
