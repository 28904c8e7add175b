//! A journal any machine can resume: `etlpool journal import` moves a file
//! journal into Redis, `migrate --redis` resumes from it without writing
//! anything again, and `journal export` writes it back to a file with the
//! same records. Before the fleet work there was no `journal` command and no
//! `--redis` (exit 2).

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::{migrate, run};
use crate::support::fleet::{QTEST_TOKEN, RedisServer, ZEPHYR_TOKEN, etlpool};
use crate::support::{Scratch, check};
use etlpool::migrate::{Journal, RecordKind, Target};
use etlpool::mock::{MockOptions, MockServers};

/// Every record of a journal file, by kind and key.
fn records(path: &Path) -> BTreeMap<(String, String), Target> {
    let journal = Journal::read_only(path).unwrap();
    RecordKind::ALL
        .into_iter()
        .flat_map(|kind| {
            journal
                .entries_of(kind)
                .into_iter()
                .map(move |(key, t)| ((kind.to_string(), key), t))
        })
        .collect()
}

#[test]
fn a_journal_moves_to_redis_and_back_and_a_run_resumes_from_it() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut options = MockOptions::seeded(970);
    options.sizes = crate::support::fleet::sizes();
    options.zephyr_token = Some(ZEPHYR_TOKEN.into());
    options.qtest_token = Some(QTEST_TOKEN.into());
    let mocks = MockServers::start(options).unwrap();
    let dir = Scratch::new("fleet-journal");
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    let file = dir.0.join("journal.csv");
    let before = records(&file);
    assert!(before.len() > 50, "{}", before.len());

    let (code, out) = run(&mut etlpool(
        &dir.0,
        &[
            "journal",
            "import",
            "--project",
            "PROJ",
            "--journal",
            file.to_str().unwrap(),
            "--redis",
            &url,
        ],
    ));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("imported {} new records", before.len())),
        "{out}"
    );

    // On "another machine": no journal file, the journal in Redis.
    let writes = mocks.journal().len();
    let elsewhere = dir.0.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut resumed = migrate(&mocks, &elsewhere);
    resumed.arg("--redis").arg(&url);
    let (code, out) = run(&mut resumed);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        mocks.journal().len(),
        writes,
        "the resumed run wrote again: {out}"
    );
    assert!(
        !elsewhere.join("journal.csv").exists(),
        "a file journal was made"
    );
    assert!(out.contains("journal redis://127.0.0.1:"), "{out}");
    check::assert_migrated(&mocks);

    let out_file = dir.0.join("exported.csv");
    let export = |force: bool| {
        let mut args = vec!["journal", "export", "--project", "PROJ", "--journal"];
        args.push(out_file.to_str().unwrap());
        args.extend(["--redis", &url]);
        if force {
            args.push("--force");
        }
        run(&mut etlpool(&dir.0, &args))
    };
    let (code, out) = export(false);
    assert_eq!(code, 0, "{out}");
    assert_eq!(records(&out_file), before);
    // A journal file is never replaced by accident.
    let (code, out) = export(false);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--force"), "{out}");
    assert_eq!(export(true).0, 0);
    assert_eq!(records(&out_file), before);
}
