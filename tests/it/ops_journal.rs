//! A journal that can't be written stops the run: exit 3, the OS error in the
//! message, no record created that the journal couldn't take (beyond the
//! ones in flight), and a re-run finishes without duplicates.

use std::path::Path;
use std::process::Command;

use crate::cli::{migrate, run, sizes};
use crate::ops_util::{unshare, with_arg, wrap};
use crate::support::{Scratch, check};

/// Runs `etlpool` with its journal on a full disk: a 64 KiB tmpfs filled
/// but for two pages (the lock file's and 4 KiB of journal), in a mount namespace of its own; where that is not permitted, a
/// file-size limit (the journal pre-filled up to it, so it fills first).
/// Returns the exit code, the output and the journal as it was left.
fn on_a_full_disk(cmd: &Command, dir: &Path) -> (i32, String, String) {
    let mount = dir.join("disk");
    std::fs::create_dir_all(&mount).unwrap();
    let journal = mount.join("journal.csv");
    let kept = dir.join("journal.csv");
    let inner = with_arg(cmd, "--journal", &journal);
    let copy_back = format!(
        "\"$@\"; rc=$?; cp '{}' '{}'; exit $rc",
        journal.display(),
        kept.display()
    );
    let (mut outer, script) = match unshare(&["-m"]) {
        Some(mut outer) => {
            outer.arg("sh");
            let m = mount.display();
            let fill = format!(
                "mount -t tmpfs -o size=64k tmpfs '{m}' && \
                 dd if=/dev/zero of='{m}/filler' bs=1024 count=56 2>/dev/null || exit 99; "
            );
            (outer, fill + &copy_back)
        }
        None => {
            // 64 KiB of journal lines for records no run has, then a limit
            // of 65 KiB per file: the journal hits it within a few dozen lines.
            let mut filler = String::from("kind,source_key,target_id,version_id\n");
            let mut n = 0;
            while filler.len() < 64 * 1024 {
                n += 1;
                filler.push_str(&format!("module,filler-{n},{n},\n"));
            }
            std::fs::write(&journal, filler).unwrap();
            let limit = "trap '' XFSZ; ulimit -f 130; ".to_string();
            (Command::new("sh"), limit + &copy_back)
        }
    };
    outer.arg("-c").arg(script).arg("sh");
    let (code, out) = run(&mut wrap(outer, &inner));
    let left = std::fs::read_to_string(&kept).unwrap_or_default();
    (code, out, left)
}

#[test]
fn a_full_disk_stops_the_run_with_the_os_error_and_a_rerun_finishes() {
    // Enough records for a journal well over 4 KiB.
    let mut options = etlpool::mock::MockOptions::seeded(71);
    options.sizes = etlpool::mock::DataSizes {
        cases: 120,
        executions: 300,
        ..sizes()
    };
    let mocks = etlpool::mock::MockServers::start(options).unwrap();
    let dir = Scratch::new("ops-journal-full");
    let (code, out, journal) = on_a_full_disk(&migrate(&mocks, &dir.0), &dir.0);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("No space left on device") || out.contains("File too large"),
        "the OS error is not in the message: {out}"
    );
    // Records, not lines: an approved case is journaled again with its new version.
    let journaled = journal
        .lines()
        .skip(1)
        .filter(|l| !l.contains("filler-"))
        .filter_map(|l| l.rsplitn(3, ',').nth(2))
        .collect::<std::collections::HashSet<_>>()
        .len();
    // Creates, not approvals (a PUT on a case already made and journaled).
    let created = mocks
        .qtest_state()
        .journal
        .iter()
        .filter(|w| w.method == "POST")
        .count();
    // Workers (4) may each have had one create in flight.
    assert!(
        created <= journaled + 4,
        "{created} records created, {journaled} journaled: the run went on\n{out}"
    );

    // A re-run with the journal on a disk with room: no duplicate.
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    check::assert_migrated(&mocks);
}

#[test]
fn outputs_on_the_same_full_disk_do_not_hide_the_runs_exit_code() {
    // cron's recipe: journal, summary and metrics file in one directory.
    let mut options = etlpool::mock::MockOptions::seeded(72);
    options.sizes = etlpool::mock::DataSizes {
        cases: 120,
        executions: 300,
        ..sizes()
    };
    let mocks = etlpool::mock::MockServers::start(options).unwrap();
    let dir = Scratch::new("ops-journal-full-outputs");
    let disk = dir.0.join("disk");
    let mut cmd = migrate(&mocks, &dir.0);
    cmd.arg("--summary-json")
        .arg(disk.join("last.json"))
        .arg("--metrics")
        .arg(disk.join("etlpool.prom"));
    let (code, out, _) = on_a_full_disk(&cmd, &dir.0);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("No space left on device") || out.contains("File too large"),
        "{out}"
    );
    // Each error says what the OS said, not only what was being done.
    for line in out.lines().filter(|l| l.contains(" ERROR ")) {
        assert!(line.contains("(os error "), "{line}");
    }
}
