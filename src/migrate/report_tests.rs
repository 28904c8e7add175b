use super::*;
use crate::migrate::error::Reason;
use crate::migrate::test_util::TempDir;
use std::sync::Barrier;

fn rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn report_rows_are_csv_with_quoting_and_counts() {
    let dir = TempDir::new("report");
    let path = dir.join("report.csv");
    let report = Report::create(&path).unwrap();
    report
        .row(
            RecordKind::Case,
            "PROJ-T1",
            Some(55001),
            Action::Created,
            "",
        )
        .unwrap();
    report
        .row(RecordKind::Module, "100006", Some(2), Action::Found, "")
        .unwrap();
    report
        .row(
            RecordKind::Log,
            "10100",
            None,
            Action::Skipped,
            "Not Executed: no log",
        )
        .unwrap();
    let error = TransformError::new(
        RecordKind::Case,
        "PROJ-T2",
        Reason::NoAllowedValue {
            field: "Priority".into(),
            value: "Urgent, \"now\"\nplease".into(),
        },
    );
    report.failed(&error).unwrap();
    report
        .waiting(RecordKind::Run, "10010/PROJ-T2", "case PROJ-T2")
        .unwrap();
    let counts = report.finish().unwrap();
    assert_eq!(
        counts,
        ActionCounts {
            created: 1,
            found: 1,
            skipped: 1,
            failed: 1,
            planned: 0,
            waiting: 1,
            updated: 0,
            conflict: 0
        }
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("kind,source_key,target_id,action,error\ncase,PROJ-T1,55001,created,\n")
    );
    let rows = rows(&path);
    assert_eq!(rows.len(), 5);
    assert_eq!(
        rows[2],
        ["log", "10100", "", "skipped", "Not Executed: no log"]
    );
    assert_eq!(
        rows[4],
        [
            "run",
            "10010/PROJ-T2",
            "",
            "waiting",
            "waiting for case PROJ-T2"
        ]
    );
    assert_eq!(
        rows[3],
        [
            "case",
            "PROJ-T2",
            "",
            "failed",
            "qTest field `Priority` has no value `Urgent, \"now\"\nplease`"
        ]
    );
}

#[test]
fn concurrent_report_rows_never_interleave() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 250;
    let dir = TempDir::new("report-concurrent");
    let path = dir.join("report.csv");
    let report = Report::create(&path).unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (report, barrier) = (&report, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let key = format!("P-T{t}{i}");
                    let long = "x".repeat(i * 7);
                    report
                        .row(RecordKind::Case, &key, None, Action::Failed, &long)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(report.counts().failed, (THREADS * PER_THREAD) as u64);
    report.finish().unwrap();
    let rows = rows(&path);
    assert_eq!(rows.len(), THREADS * PER_THREAD);
    assert!(
        rows.iter()
            .all(|r| r.len() == 5 && r[4].bytes().all(|b| b == b'x'))
    );
}

#[test]
fn plan_rows_carry_the_body_that_would_be_sent() {
    let dir = TempDir::new("plan");
    let path = dir.join("plan.csv");
    let plan = Plan::create(&path).unwrap();
    let body = crate::qtest::NewModule {
        name: "Login".into(),
        description: String::new(),
        parent_id: None,
    };
    plan.planned(RecordKind::Module, "100006", "root", "Login", &body)
        .unwrap();
    plan.skipped(RecordKind::Log, "10101", "Not Executed: no log")
        .unwrap();
    let error = TransformError::new(
        RecordKind::Case,
        "PROJ-T9",
        Reason::Missing { field: "name" },
    );
    plan.failed(&error).unwrap();
    let counts = plan.finish().unwrap();
    assert_eq!((counts.planned, counts.skipped, counts.failed), (1, 1, 1));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&format!("{PLAN_HEADER}\n")));
    let rows = rows(&path);
    assert_eq!(
        rows[0],
        [
            "module",
            "100006",
            "planned",
            "root",
            "Login",
            r#"{"name":"Login","description":""}"#,
            ""
        ]
    );
    assert_eq!(rows[1][2], "skipped");
    assert_eq!(rows[2][6], "`name` is missing");
}

#[test]
fn an_unwritable_path_is_an_io_error_naming_it() {
    let dir = TempDir::new("report-missing");
    let path = dir.join("no/such/dir/report.csv");
    let err = Report::create(&path).unwrap_err();
    assert!(matches!(err, MigrateError::Io { .. }));
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn writers_are_send_and_sync() {
    fn ensure<T: Send + Sync>() {}
    ensure::<Report>();
    ensure::<Plan>();
}

#[test]
fn each_run_gets_its_own_report_name() {
    let dir = crate::migrate::test_util::TempDir::new("report-per-run");
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_735_697_700);
    let first = per_run_path(&dir.join("PROJ.report.csv"), at);
    assert_eq!(first, dir.join("PROJ.report.20250101T021500Z.csv"));
    std::fs::write(&first, "x").unwrap();
    let second = per_run_path(&dir.join("PROJ.report.csv"), at);
    assert_eq!(second, dir.join("PROJ.report.20250101T021500Z-2.csv"));
    assert_eq!(
        per_run_path(std::path::Path::new("plan"), at),
        std::path::Path::new("plan.20250101T021500Z")
    );
}
