//! Builds a [`Dataset`] from a seed and sizes: the same inputs always give the same data.

use fastrand::Rng;
use serde_json::json;

use super::data::*;
use crate::mock::options::DataSizes;
use crate::mock::time;

const FOLDER_WORDS: &[&str] = &[
    "Login", "Checkout", "Search", "Reports", "Admin", "API", "Mobile", "Billing",
];
const VERBS: &[&str] = &[
    "Check", "Verify", "Validate", "Open", "Submit", "Cancel", "Export", "Import",
];
const NOUNS: &[&str] = &[
    "pump",
    "invoice",
    "user profile",
    "cart",
    "password reset",
    "dashboard",
    "order",
    "report",
];
const LABELS: &[&str] = &["Regression", "Smoke", "UI", "Backend", "Flaky"];
const CATEGORIES: &[&str] = &["Perf", "Security", "Usability"];
/// 2024-01-01T00:00:00Z: every generated date falls in the following year.
const EPOCH_2024: i64 = 1_704_067_200;

/// How many records of each list get each spec-allowed quirk when odd records are on.
const ODD_PER_DATASET: usize = 2;

/// Generates the dataset of project `key`. `odd` and `unreadable` choose
/// the records served with a [`Quirk`] (see [`MockOptions`](crate::mock::MockOptions));
/// they are drawn from their own stream, so the rest of the data is the same
/// with or without them.
pub(crate) fn generate(
    seed: u64,
    key: &str,
    sizes: &DataSizes,
    odd: bool,
    unreadable: usize,
) -> Dataset {
    let mut g = Gen {
        rng: Rng::with_seed(seed),
        key: key.to_string(),
    };
    let project = Project {
        id: 10_000 + g.rng.u64(1..9000),
        jira_project_id: 10_000 + g.rng.u64(1..9000),
        key: key.to_string(),
    };
    let statuses = g.statuses();
    let priorities = g.priorities();
    let mut folders = g.folders(sizes.folders, sizes.folder_depth, "TEST_CASE", 100_000);
    let cycle_folders = g.folders(sizes.cycle_folders, 2, "TEST_CYCLE", 200_000);
    let case_folder_ids: Vec<u64> = folders.iter().map(|f| f.id).collect();
    let cycle_folder_ids: Vec<u64> = cycle_folders.iter().map(|f| f.id).collect();
    folders.extend(cycle_folders);
    let pick_status = |t: &str| -> Vec<u64> {
        statuses
            .iter()
            .filter(|s| s.status_type == t)
            .map(|s| s.id)
            .collect()
    };
    let (case_statuses, cycle_statuses) = (pick_status("TEST_CASE"), pick_status("TEST_CYCLE"));
    let priority_ids: Vec<u64> = priorities.iter().map(|p| p.id).collect();
    let cases = (1..=sizes.cases)
        .map(|n| {
            g.case(
                n,
                sizes.steps_per_case,
                &case_folder_ids,
                &priority_ids,
                &case_statuses,
            )
        })
        .collect::<Vec<_>>();
    let cycles = (1..=sizes.cycles)
        .map(|n| g.cycle(n, &cycle_folder_ids, &cycle_statuses))
        .collect::<Vec<_>>();
    let exec_statuses: Vec<&Status> = statuses
        .iter()
        .filter(|s| s.status_type == "TEST_EXECUTION")
        .collect();
    let executions = (1..=sizes.executions)
        .map(|n| g.execution(n, &cases, &cycles, &exec_statuses))
        .collect();
    let mut data = Dataset {
        project,
        statuses,
        priorities,
        folders,
        cases,
        cycles,
        executions,
        attachments: Vec::new(),
        links: Vec::new(),
        test_plans: Vec::new(),
    };
    let mut rng = Rng::with_seed(seed ^ 0x0dd_5eed);
    if odd {
        add_odd_records(&mut rng, &mut data);
    }
    add_unreadable_records(&mut rng, &mut data, unreadable);
    data
}

/// Up to `count` distinct indices below `len` not yet taken, in order.
fn pick_free(rng: &mut Rng, len: usize, count: usize, taken: impl Fn(usize) -> bool) -> Vec<usize> {
    let free: Vec<usize> = (0..len).filter(|&i| !taken(i)).collect();
    let mut chosen: Vec<usize> = Vec::with_capacity(count.min(free.len()));
    let mut pool = free;
    while chosen.len() < count && !pool.is_empty() {
        chosen.push(pool.swap_remove(rng.usize(..pool.len())));
    }
    chosen.sort_unstable();
    chosen
}

/// A few records in shapes the spec allows: owners without an account id,
/// executions without `testCase.id`, ad-hoc executions (`testCycle` absent or `null`).
fn add_odd_records(rng: &mut Rng, data: &mut Dataset) {
    for i in pick_free(rng, data.cases.len(), ODD_PER_DATASET, |_| false) {
        data.cases[i].owner = None;
        data.cases[i].quirk = Some(Quirk::OwnerWithoutAccount);
    }
    for i in pick_free(rng, data.cycles.len(), 1, |_| false) {
        data.cycles[i].owner = None;
        data.cycles[i].quirk = Some(Quirk::OwnerWithoutAccount);
    }
    let execs = &mut data.executions;
    for i in pick_free(rng, execs.len(), ODD_PER_DATASET, |_| false) {
        execs[i].quirk = Some(Quirk::NoCaseId);
    }
    let ad_hoc = pick_free(rng, execs.len(), ODD_PER_DATASET, |i| {
        execs[i].quirk.is_some()
    });
    for (n, i) in ad_hoc.into_iter().enumerate() {
        execs[i].cycle_id = None;
        // One `testCycle: null`, one without the key.
        execs[i].quirk = (n % 2 == 1).then_some(Quirk::NoCycleKey);
    }
}

/// `count` cases, cycles and executions each that break the spec.
fn add_unreadable_records(rng: &mut Rng, data: &mut Dataset, count: usize) {
    if count == 0 {
        return;
    }
    let cases = &mut data.cases;
    for i in pick_free(rng, cases.len(), count, |i| cases[i].quirk.is_some()) {
        cases[i].quirk = Some(Quirk::Unreadable);
    }
    let cycles = &mut data.cycles;
    for i in pick_free(rng, cycles.len(), count, |i| cycles[i].quirk.is_some()) {
        cycles[i].quirk = Some(Quirk::Unreadable);
    }
    let execs = &mut data.executions;
    for i in pick_free(rng, execs.len(), count, |i| execs[i].quirk.is_some()) {
        execs[i].quirk = Some(Quirk::Unreadable);
    }
}

struct Gen {
    rng: Rng,
    key: String,
}

impl Gen {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    fn maybe<T>(&mut self, percent: u8, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.rng.u8(..100) < percent).then(|| f(self))
    }

    fn date(&mut self) -> String {
        time::format(EPOCH_2024 + self.rng.i64(0..365 * 86_400))
    }

    fn account(&mut self) -> String {
        format!("5b10a2844c20165700ede{:03x}", self.rng.u16(..4096))
    }

    fn statuses(&mut self) -> Vec<Status> {
        let kinds: [(&str, &[(&str, &str)]); 3] = [
            (
                "TEST_CASE",
                &[
                    ("Draft", "#cccccc"),
                    ("Approved", "#00ff00"),
                    ("Deprecated", "#999999"),
                ],
            ),
            (
                "TEST_CYCLE",
                &[
                    ("Not Executed", "#cccccc"),
                    ("In Progress", "#ffff00"),
                    ("Done", "#00ff00"),
                ],
            ),
            (
                "TEST_EXECUTION",
                &[
                    ("Not Executed", "#cccccc"),
                    ("In Progress", "#ffff00"),
                    ("Pass", "#00ff00"),
                    ("Fail", "#ff0000"),
                    ("Blocked", "#0000ff"),
                ],
            ),
        ];
        let mut next = 10_000 + self.rng.u64(0..5_000);
        let mut out = Vec::new();
        for (status_type, names) in kinds {
            for (index, (name, color)) in names.iter().enumerate() {
                next += self.rng.u64(1..20);
                let default = index == 0;
                out.push(Status {
                    id: next,
                    status_type: status_type.to_string(),
                    name: name.to_string(),
                    index: index as u32,
                    color: color.to_string(),
                    default,
                });
            }
        }
        out
    }

    fn priorities(&mut self) -> Vec<Priority> {
        let base = 10_000 + self.rng.u64(0..5_000);
        [
            ("High", "#ff0000"),
            ("Normal", "#ffff00"),
            ("Low", "#00ff00"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, color))| Priority {
            id: base + i as u64,
            name: name.to_string(),
            index: i as u32,
            color: color.to_string(),
            default: *name == "Normal",
        })
        .collect()
    }

    /// Parents come before children; names repeat among siblings now and then.
    fn folders(
        &mut self,
        count: usize,
        max_depth: usize,
        folder_type: &str,
        base: u64,
    ) -> Vec<Folder> {
        let mut out: Vec<Folder> = Vec::with_capacity(count);
        let mut depth: Vec<usize> = Vec::with_capacity(count);
        let start = base + self.rng.u64(0..50_000);
        for i in 0..count {
            let nestable: Vec<usize> = (0..out.len()).filter(|&j| depth[j] < max_depth).collect();
            let parent = match nestable.is_empty() || self.rng.u8(..100) < 35 {
                true => None,
                false => Some(*self.pick(&nestable)),
            };
            let index = out
                .iter()
                .filter(|f| f.parent_id == parent.map(|p| out[p].id))
                .count() as u32;
            out.push(Folder {
                id: start + i as u64,
                parent_id: parent.map(|p| out[p].id),
                name: self.pick(FOLDER_WORDS).to_string(),
                index,
                folder_type: folder_type.to_string(),
            });
            depth.push(parent.map_or(1, |p| depth[p] + 1));
        }
        out
    }

    fn case(
        &mut self,
        n: usize,
        steps: usize,
        folders: &[u64],
        priorities: &[u64],
        statuses: &[u64],
    ) -> TestCase {
        let name = format!("{} {}", self.pick(VERBS), self.pick(NOUNS));
        let objective = self.maybe(80, |g| {
            format!("Ensure the {} works<br>for every role", g.pick(NOUNS))
        });
        let folder_id = match folders.is_empty() {
            true => None,
            false => self.maybe(90, |g| *g.pick(folders)),
        };
        let labels = LABELS
            .iter()
            .filter(|_| self.rng.u8(..100) < 25)
            .map(|s| s.to_string())
            .collect();
        let custom_fields = match self.rng.bool() {
            true => {
                json!({"Build Number": self.rng.u32(1..500), "Release Date": &self.date()[..10],
                           "Category": [self.pick(CATEGORIES)]})
            }
            false => json!({}),
        };
        let script = match self.rng.u8(..10) {
            0..=6 => Script::Steps((1..=steps).map(|s| self.step(n, s)).collect()),
            7 | 8 => Script::Plain(format!(
                "Attempt to {} the {}",
                self.pick(VERBS).to_lowercase(),
                self.pick(NOUNS)
            )),
            _ => Script::Bdd(format!(
                "Given a {}\nWhen I {} it\nThen it is saved",
                self.pick(NOUNS),
                self.pick(VERBS)
            )),
        };
        TestCase {
            id: n as u64,
            key: format!("{}-T{n}", self.key),
            name,
            objective,
            precondition: self.maybe(50, |g| format!("{} available", g.pick(NOUNS))),
            estimated_time: self.maybe(60, |g| g.rng.u64(1..600) * 1000),
            labels,
            priority_id: *self.pick(priorities),
            status_id: *self.pick(statuses),
            folder_id,
            owner: self.maybe(70, Self::account),
            custom_fields: custom_fields.as_object().cloned().unwrap_or_default(),
            created_on: self.date(),
            updated_on: None,
            script,
            quirk: None,
        }
    }

    fn step(&mut self, case: usize, n: usize) -> Step {
        if case > 1 && self.rng.u8(..100) < 10 {
            let called = self.rng.usize(1..case);
            let parameters = self.maybe(50, |_| vec![("user".to_string(), "admin".to_string())]);
            return Step::Call {
                test_case_key: format!("{}-T{called}", self.key),
                parameters: parameters.unwrap_or_default(),
            };
        }
        Step::Inline {
            description: format!("Step {n}: {} the {}", self.pick(VERBS), self.pick(NOUNS)),
            test_data: self.maybe(50, |g| format!("user={}", g.rng.alphanumeric())),
            expected_result: self.maybe(90, |g| format!("The {} is shown", g.pick(NOUNS))),
        }
    }

    fn cycle(&mut self, n: usize, folders: &[u64], statuses: &[u64]) -> TestCycle {
        let start = EPOCH_2024 + self.rng.i64(0..300 * 86_400);
        TestCycle {
            id: 20_000 + n as u64,
            key: format!("{}-R{n}", self.key),
            name: format!("Sprint {}", self.rng.u8(1..30)),
            description: self.maybe(70, |g| format!("{} run", g.pick(LABELS))),
            status_id: *self.pick(statuses),
            folder_id: match folders.is_empty() {
                true => None,
                false => self.maybe(70, |g| *g.pick(folders)),
            },
            planned_start_date: Some(time::format(start)),
            planned_end_date: self
                .maybe(80, |g| time::format(start + g.rng.i64(86_400..14 * 86_400))),
            owner: self.maybe(60, Self::account),
            jira_project_version: self.maybe(50, |g| 10_000 + g.rng.u64(0..100)),
            quirk: None,
        }
    }

    fn execution(
        &mut self,
        n: usize,
        cases: &[TestCase],
        cycles: &[TestCycle],
        statuses: &[&Status],
    ) -> Execution {
        let case = self.pick(cases);
        let status = *self.pick(statuses);
        let executed = status.name != "Not Executed";
        let step_results = match &case.script {
            Script::Steps(steps) => steps
                .iter()
                .map(|s| self.step_result(s, statuses))
                .collect(),
            _ => Vec::new(),
        };
        Execution {
            id: 30_000 + n as u64,
            key: format!("{}-E{n}", self.key),
            test_case_key: case.key.clone(),
            test_case_id: case.id,
            cycle_id: Some(self.pick(cycles).id),
            status_id: status.id,
            actual_end_date: executed.then(|| self.date()),
            execution_time: executed.then(|| self.rng.u64(1..600) * 1000),
            executed_by_id: executed.then(|| self.account()),
            comment: self.maybe(50, |g| format!("{} failed once", g.pick(NOUNS))),
            environment_id: self.maybe(30, |g| 10_000 + g.rng.u64(0..10)),
            step_results,
            updated_on: None,
            quirk: None,
        }
    }

    fn step_result(&mut self, step: &Step, statuses: &[&Status]) -> StepResult {
        let (description, test_data, expected_result) = match step {
            Step::Inline {
                description,
                test_data,
                expected_result,
            } => (
                description.clone(),
                test_data.clone(),
                expected_result.clone(),
            ),
            Step::Call { test_case_key, .. } => (format!("Call to {test_case_key}"), None, None),
        };
        StepResult {
            description,
            test_data,
            expected_result,
            actual_result: self.maybe(60, |g| format!("{} shown", g.pick(NOUNS))),
            status_id: self.pick(statuses).id,
        }
    }
}
