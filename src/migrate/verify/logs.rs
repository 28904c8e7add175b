//! A run's logs against the logs its executions should have made, as
//! multisets of (status, end time): qTest numbers logs by creation, and
//! nothing else ties one to its Zephyr execution.

use super::text::instant;
use crate::qtest::TestLog;

/// What one execution should have logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExpectedLog {
    /// The Zephyr execution id (the log's record key).
    pub(super) execution: u64,
    /// The qTest execution status id.
    pub(super) status: u64,
    /// `exe_end_date`, in seconds since the epoch.
    pub(super) end: i64,
}

/// A difference between a run's expected and actual logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogDiff<'a> {
    /// No log at that time.
    Missing(&'a ExpectedLog),
    /// A log at that time with another status.
    WrongStatus(&'a ExpectedLog, &'a TestLog),
    /// A log no execution accounts for.
    Extra(&'a TestLog),
}

/// Pairs exact matches first, then logs at the same time (a wrong status);
/// what is left over is missing or extra.
pub(super) fn compare<'a>(expected: &'a [ExpectedLog], actual: &'a [TestLog]) -> Vec<LogDiff<'a>> {
    let ends: Vec<Option<i64>> = actual
        .iter()
        .map(|l| l.exe_end_date.as_deref().and_then(instant))
        .collect();
    let mut used = vec![false; actual.len()];
    let mut take = |e: &ExpectedLog, same_status: bool| {
        let i = (0..actual.len()).find(|&i| {
            !used[i] && ends[i] == Some(e.end) && (!same_status || actual[i].status.id == e.status)
        })?;
        used[i] = true;
        Some(&actual[i])
    };
    let unmatched: Vec<&ExpectedLog> = expected
        .iter()
        .filter(|e| take(e, true).is_none())
        .collect();
    let mut out: Vec<LogDiff<'a>> = unmatched
        .into_iter()
        .map(|e| match take(e, false) {
            Some(log) => LogDiff::WrongStatus(e, log),
            None => LogDiff::Missing(e),
        })
        .collect();
    out.extend(
        actual
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|(log, _)| LogDiff::Extra(log)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qtest::StatusRef;

    const T: i64 = 1_526_822_113; // 2018-05-20T13:15:13Z

    fn log(id: u64, status: u64, end: &str) -> TestLog {
        TestLog {
            id,
            status: StatusRef {
                id: status,
                name: None,
            },
            exe_start_date: None,
            exe_end_date: Some(end.to_owned()),
            note: None,
            test_case_version_id: None,
            result_number: None,
            test_step_logs: Vec::new(),
            links: Vec::new(),
        }
    }

    fn expected(execution: u64, status: u64, end: i64) -> ExpectedLog {
        ExpectedLog {
            execution,
            status,
            end,
        }
    }

    #[test]
    fn equal_multisets_match_whatever_the_order_and_spelling() {
        let e = [
            expected(1, 601, T),
            expected(2, 602, T),
            expected(3, 601, T + 60),
        ];
        let a = [
            log(9, 601, "2018-05-20T13:16:13Z"),
            log(8, 602, "2018-05-20T13:15:13.000+0000"),
            log(7, 601, "2018-05-20T15:15:13+02:00"),
        ];
        assert_eq!(compare(&e, &a), []);
    }

    #[test]
    fn wrong_status_missing_and_extra() {
        let e = [
            expected(1, 601, T),
            expected(2, 601, T + 60),
            expected(3, 602, T + 120),
        ];
        let a = [
            log(7, 602, "2018-05-20T13:15:13Z"),
            log(8, 601, "2018-05-20T13:17:13Z"),
            log(9, 601, "bad"),
        ];
        let diffs = compare(&e, &a);
        assert_eq!(
            diffs,
            [
                LogDiff::WrongStatus(&e[0], &a[0]),
                LogDiff::Missing(&e[1]),
                LogDiff::WrongStatus(&e[2], &a[1]),
                LogDiff::Extra(&a[2]),
            ]
        );
    }
}
