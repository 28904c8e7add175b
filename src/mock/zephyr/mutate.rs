//! Test hooks that change the Zephyr data between two runs, as a team still
//! testing in Zephyr would: new executions in existing cycles, new cases,
//! changed cases. Used through [`MockServers::mutate_zephyr`](crate::mock::MockServers::mutate_zephyr).

use super::data::{Dataset, Script, Step};
use crate::mock::time;

impl Dataset {
    /// Adds `n` executions, each a copy of an existing plain execution of a
    /// different (cycle, case) pair, ending after every execution so far
    /// (an hour apart); returns their ids.
    pub fn add_executions(&mut self, n: usize) -> Vec<u64> {
        let latest = self
            .executions
            .iter()
            .filter_map(|e| e.actual_end_date.as_deref().and_then(time::parse))
            .max()
            .unwrap_or(0);
        let mut pairs = std::collections::HashSet::new();
        let models: Vec<_> = self
            .executions
            .iter()
            .filter(|e| e.quirk.is_none() && e.cycle_id.is_some() && e.actual_end_date.is_some())
            .filter(|e| pairs.insert((e.cycle_id, e.test_case_key.clone())))
            .take(n)
            .cloned()
            .collect();
        let mut ids = Vec::with_capacity(models.len());
        for (i, mut exec) in models.into_iter().enumerate() {
            exec.id = self.executions.iter().map(|e| e.id).max().unwrap_or(0) + 1;
            exec.key = format!("{}-E{}", self.project.key, self.executions.len() + 1);
            let hours = i64::try_from(i + 1).unwrap_or(i64::MAX);
            exec.actual_end_date = Some(time::format(latest + hours * 3600));
            exec.comment = Some(format!("run again ({})", exec.key));
            exec.updated_on = Some(time::format(time::now()));
            ids.push(exec.id);
            self.executions.push(exec);
        }
        ids
    }

    /// Adds `n` cases, copies of existing plain step-by-step cases under new
    /// keys and names; returns their keys.
    pub fn add_cases(&mut self, n: usize) -> Vec<String> {
        let models: Vec<_> = self.step_cases().take(n).cloned().collect();
        let mut keys = Vec::with_capacity(models.len());
        for mut case in models {
            case.id = self.cases.iter().map(|c| c.id).max().unwrap_or(0) + 1;
            // `Dataset::case` finds a case by its key's number.
            case.key = format!("{}-T{}", self.project.key, self.cases.len() + 1);
            case.name = format!("{} (new {})", case.name, case.key);
            case.created_on = time::format(time::now());
            case.updated_on = None;
            keys.push(case.key.clone());
            self.cases.push(case);
        }
        keys
    }

    /// Changes `n` existing step-by-step cases: a new name and a new first
    /// step; returns their keys.
    pub fn change_cases(&mut self, n: usize) -> Vec<String> {
        let keys: Vec<String> = self.step_cases().take(n).map(|c| c.key.clone()).collect();
        for case in self.cases.iter_mut().filter(|c| keys.contains(&c.key)) {
            case.updated_on = Some(time::format(time::now()));
            case.name.push_str(" (changed)");
            if let Script::Steps(steps) = &mut case.script
                && let Some(Step::Inline { description, .. }) = steps.first_mut()
            {
                description.push_str(" (changed in Zephyr)");
            }
        }
        keys
    }

    /// Changes the first step of case `key` only (its record listed as
    /// updated now), as an edit of the steps in Zephyr's UI would.
    pub fn change_steps(&mut self, key: &str) -> bool {
        let Some(case) = self.cases.iter_mut().find(|c| c.key == key) else {
            return false;
        };
        let Script::Steps(steps) = &mut case.script else {
            return false;
        };
        let Some(Step::Inline {
            expected_result, ..
        }) = steps.first_mut()
        else {
            return false;
        };
        *expected_result = Some("changed in Zephyr".into());
        case.updated_on = Some(time::format(time::now()));
        true
    }

    /// Plain cases whose script starts with a written step.
    fn step_cases(&self) -> impl Iterator<Item = &super::data::TestCase> {
        self.cases.iter().filter(|c| {
            c.quirk.is_none()
                && matches!(&c.script, Script::Steps(s) if matches!(s.first(), Some(Step::Inline { .. })))
        })
    }
}
