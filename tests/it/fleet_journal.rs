//! A journal any machine can resume: `etlpool journal import` moves a file
//! journal into Redis, `migrate --redis` resumes from it without writing
//! anything again, and `journal export` writes it back to a file with the
//! same records. Before the fleet work there was no `journal` command and no
//! `--redis` (exit 2).

use crate::cli::{migrate, run};
use crate::support::fleet::{
    QTEST_TOKEN, RedisServer, ZEPHYR_TOKEN, journal_move, journal_records,
};
use crate::support::{Scratch, check};
use etlpool::mock::{MockOptions, MockServers};

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
    let before = journal_records(&file);
    assert!(before.len() > 50, "{}", before.len());

    let file_arg = file.to_str().unwrap();
    let (code, out) = journal_move(&dir.0, "import", "PROJ", file_arg, &url, &[]);
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
    let out_arg = out_file.to_str().unwrap();
    let export = |force: bool| {
        let extra: &[&str] = if force { &["--force"] } else { &[] };
        journal_move(&dir.0, "export", "PROJ", out_arg, &url, extra)
    };
    let (code, out) = export(false);
    assert_eq!(code, 0, "{out}");
    assert_eq!(journal_records(&out_file), before);
    // A journal file is never replaced by accident.
    let (code, out) = export(false);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--force"), "{out}");
    assert_eq!(export(true).0, 0);
    assert_eq!(journal_records(&out_file), before);
}
