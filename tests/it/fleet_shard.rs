//! `migrate --projects` without Redis: a list run here one project after
//! another, and split among processes by `--shard I/N` with no overlap and
//! no gap (Kubernetes Indexed Jobs). Before the fleet work there was no
//! `--projects` (exit 2).

use crate::cli::run;
use crate::support::fleet::{etlpool, project_mocks, reports_of, sizes, write_list};
use crate::support::{Scratch, check};

#[test]
fn shards_split_a_list_with_no_overlap_and_no_gap() {
    let mocks: Vec<_> = (0..5).map(|i| project_mocks(i, 810, sizes())).collect();
    let dir = Scratch::new("fleet-shard");
    let list = write_list(&dir.0, "projects.csv", &mocks.iter().collect::<Vec<_>>());
    let list = list.to_str().unwrap();
    // Two shards, as two pods of an Indexed Job would run them.
    let shards: Vec<_> = (0..2)
        .map(|i| {
            let shard = format!("{i}/2");
            let mut cmd = etlpool(
                &dir.0.join(format!("shard{i}")),
                &["migrate", "--projects", list, "--shard", &shard],
            );
            std::thread::spawn(move || run(&mut cmd))
        })
        .collect();
    let outs: Vec<(i32, String)> = shards.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, (code, out)) in outs.iter().enumerate() {
        assert_eq!(*code, 0, "shard {i}: {out}");
        let wanted = match i {
            0 => "P0 0, P2 0, P4 0",
            _ => "P1 0, P3 0",
        };
        assert!(
            out.contains(&format!("(exit codes: {wanted})")),
            "shard {i}: {out}"
        );
    }
    for (i, m) in mocks.iter().enumerate() {
        check::assert_migrated(m);
        let here = reports_of(&dir.0.join(format!("shard{}", i % 2)), m.project_key());
        let there = reports_of(
            &dir.0.join(format!("shard{}", (i + 1) % 2)),
            m.project_key(),
        );
        assert_eq!(
            (here, there),
            (1, 0),
            "project {} ran in the wrong shard",
            m.project_key()
        );
    }
}

#[test]
fn a_list_exits_with_its_worst_project_and_runs_them_all() {
    let good = project_mocks(0, 820, sizes());
    let bad = project_mocks(1, 820, sizes());
    let dir = Scratch::new("fleet-list");
    let list = write_list(&dir.0, "projects.csv", &[&good, &bad]);
    // P1's qTest project does not exist: fatal before any work (4).
    let text = std::fs::read_to_string(&list).unwrap().replace(
        &format!("P1,{}", bad.qtest_project_id()),
        &format!("P1,{}", bad.qtest_project_id() + 1),
    );
    std::fs::write(&list, text).unwrap();
    let (code, out) = run(&mut etlpool(
        &dir.0,
        &["migrate", "--projects", list.to_str().unwrap()],
    ));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("(exit codes: P0 0, P1 4)"), "{out}");
    check::assert_migrated(&good);
    assert!(
        bad.journal().is_empty(),
        "nothing written for the bad project"
    );

    // A mistake in the list is a usage error before any work.
    let broken = dir.file("broken.csv", b"zephyr_project,qtest_project_id\nP0,zero\n");
    let (code, out) = run(&mut etlpool(
        &dir.0,
        &["migrate", "--projects", broken.to_str().unwrap()],
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("broken.csv line 2"), "{out}");
}

/// `--journal` and `--report` are refused with `--projects` (each project
/// has its own files), but `[run] journal` and `report` in the command's
/// `--config` were used by every project of the list without a config of
/// its own: one journal (and one report name) for all of them.
#[test]
fn a_journal_in_the_shared_config_is_refused_with_a_list() {
    let mocks = project_mocks(0, 830, sizes());
    let dir = Scratch::new("fleet-shared-journal");
    let config = dir.file(
        "etlpool.toml",
        format!(
            "[zephyr]\nurl = \"{}\"\n\n[qtest]\nurl = \"{}\"\n\n[run]\njournal = \"all.journal.csv\"\n",
            mocks.zephyr_url(),
            mocks.qtest_url()
        )
        .as_bytes(),
    );
    let list = dir.file(
        "projects.csv",
        format!(
            "zephyr_project,qtest_project_id\nP0,{}\n",
            mocks.qtest_project_id()
        )
        .as_bytes(),
    );
    let (code, out) = run(&mut etlpool(
        &dir.0,
        &[
            "migrate",
            "--projects",
            list.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("[run] journal"), "{out}");
    assert!(!dir.0.join("all.journal.csv").exists(), "{out}");
    assert!(mocks.journal().is_empty(), "{out}");
}

/// A list saved in another encoding (Latin-1, UTF-16) is a mistake in the
/// list like any other: exit 2 naming the file and line, not 4 (the exit of
/// a service that can't be reached) with no line.
#[test]
fn a_list_that_is_not_utf8_names_its_line() {
    let dir = Scratch::new("fleet-latin1");
    let list = dir.file(
        "projects.csv",
        b"zephyr_project,qtest_project_id\nP0,1\n# caf\xe9\nP1,2\n",
    );
    let (code, out) = run(&mut etlpool(
        &dir.0,
        &["migrate", "--projects", list.to_str().unwrap()],
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("projects.csv line 3"), "{out}");
    assert!(out.contains("UTF-8"), "{out}");
}
