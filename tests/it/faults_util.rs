//! Helpers of the issue-12 fault tests: the report's rows, the mock's
//! dataset sizes, and runs of the migration with options.

use etlpool::migrate::{MappingConfig, MigrateOptions, Phases};
use etlpool::mock::DataSizes;

use crate::support::Migration;

/// A small project: enough runs with several logs each to see order.
pub fn sizes() -> DataSizes {
    DataSizes {
        folders: 6,
        folder_depth: 3,
        cycle_folders: 2,
        cases: 30,
        steps_per_case: 3,
        cycles: 4,
        executions: 90,
    }
}

/// One row of a report: `kind,source_key,target_id,action,error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: String,
    pub key: String,
    pub target: String,
    pub action: String,
    pub error: String,
}

/// Every row of the migration's report.
pub fn rows(m: &Migration) -> Vec<Row> {
    let path = m.dir.0.join("report.csv");
    let mut reader = csv::Reader::from_path(&path).expect("the report");
    reader
        .records()
        .map(|r| {
            let r = r.expect("a report row");
            Row {
                kind: r[0].to_string(),
                key: r[1].to_string(),
                target: r[2].to_string(),
                action: r[3].to_string(),
                error: r[4].to_string(),
            }
        })
        .collect()
}

/// The row of `kind`/`key`; panics unless there is exactly one.
pub fn row<'a>(rows: &'a [Row], kind: &str, key: &str) -> &'a Row {
    let found: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == kind && r.key == key)
        .collect();
    assert_eq!(found.len(), 1, "rows of {kind} {key}: {found:?}");
    found[0]
}

/// The migration's options with `only` and `mapping`.
pub fn options(m: &Migration, only: &str, mapping: MappingConfig) -> MigrateOptions {
    MigrateOptions {
        only: only.parse::<Phases>().expect("phases"),
        mapping,
        ..m.options()
    }
}

/// The default mapping without approvals (each approval is one more write).
pub fn no_approvals() -> MappingConfig {
    MappingConfig {
        approve_approved: false,
        approve_executed: false,
        ..MappingConfig::default()
    }
}
