//! A migrated qTest project for tests, made by a plain sequential loop over
//! the transform functions and the clients (no runner, no journal, no
//! queue): what a correct migration must produce, with optional tampering
//! so tests can plant the differences `verify` must catch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use etlpool::Pool;
use etlpool::http::{ApiClient, Auth};
use etlpool::migrate::transform::{
    CaseSteps, Catalog, Context, DEFAULT_KEY, LogPlan, ScriptShape, StepRef, case_plan,
    cycle_folder_plan, cycle_plan, executed_case, folder_order, log_plan, module_plan, run_plan,
    sort_for_logs, step_layout,
};
use etlpool::migrate::{MappingConfig, RecordKind, Target, VerifyOptions, VerifyReport, run_key};
use etlpool::migrate::{load_lookups, read_script};
use etlpool::mock::{MockOptions, MockServers};
use etlpool::qtest::{CycleParent, NewModule, NewTestCase, NewTestLog, QtestClient};
use etlpool::zephyr::{FolderType, Record, TestExecution, ZephyrClient};

/// What each Zephyr record became, the [`Lookup`](etlpool::migrate::Lookup) of the transforms.
pub type Targets = HashMap<(RecordKind, String), Target>;

/// An edit of a case's create body.
pub type CaseEdit = fn(&mut NewTestCase);

/// Deliberate departures from a faithful migration.
#[derive(Default)]
pub struct Tamper {
    /// Changes one case's body (by Zephyr key) before it is created.
    pub case: Option<(String, CaseEdit)>,
    /// Creates this execution's log with this qTest status id instead.
    pub log_status: Option<(u64, u64)>,
    /// Leaves out this run (by run key) and its logs.
    pub skip_run: Option<String>,
    /// Renames this cycle (by Zephyr id).
    pub rename_cycle: Option<(u64, String)>,
    /// Leaves out this cycle (by Zephyr id), its runs and their logs.
    pub skip_cycle: Option<u64>,
}

/// The mocks, clients on them, and a migration of the mock's project.
pub struct Migrated {
    pub mocks: MockServers,
    pub zephyr: ZephyrClient,
    pub qtest: QtestClient,
    pub catalog: Catalog,
    pub targets: Targets,
}

impl Migrated {
    /// Starts the mocks and migrates their project, tampered as asked.
    pub fn new(options: MockOptions, tamper: &Tamper) -> Migrated {
        let mocks = MockServers::start(options).expect("start the mocks");
        let (zephyr, qtest) = clients(&mocks);
        let lookups = load_lookups(&zephyr, &qtest).expect("lookups");
        let catalog = Catalog::new(MappingConfig::default(), &lookups).expect("catalog");
        let mut m = Migrated {
            mocks,
            zephyr,
            qtest,
            catalog,
            targets: Targets::new(),
        };
        let case_steps = m.migrate(tamper);
        m.runs_and_logs(&case_steps, tamper);
        m
    }

    /// Verifies with the default mapping and options.
    pub fn verify(&self) -> VerifyReport {
        verify_defaults(&self.zephyr, &self.qtest)
    }

    /// The qTest id of a migrated record.
    pub fn id(&self, kind: RecordKind, key: &str) -> u64 {
        self.targets[&(kind, key.to_owned())].id
    }

    fn record(&mut self, kind: RecordKind, key: impl ToString, target: Target) {
        self.targets.insert((kind, key.to_string()), target);
    }

    /// Folders, cases and cycles; returns each case's steps on both sides,
    /// which step logs point at.
    fn migrate(&mut self, tamper: &Tamper) -> HashMap<String, Arc<CaseSteps>> {
        let (z, q) = (self.zephyr.clone(), self.qtest.clone());
        let default = NewModule {
            name: self.catalog.mapping().default_module.clone(),
            description: String::new(),
            parent_id: None,
        };
        let root = q.create_module(None, &default).unwrap();
        self.record(RecordKind::Module, DEFAULT_KEY, Target::id(root.id));
        let modules = readable(z.folders(FolderType::TestCase).unwrap());
        for folder in folder_order(&modules, RecordKind::Module).0 {
            let plan = module_plan(folder, &self.ctx()).unwrap();
            let created = q.create_module(plan.parent_id, &plan.body).unwrap();
            self.record(RecordKind::Module, folder.id, Target::id(created.id));
        }
        let cycle_folders = readable(z.folders(FolderType::TestCycle).unwrap());
        for folder in folder_order(&cycle_folders, RecordKind::CycleFolder).0 {
            let plan = cycle_folder_plan(folder, &self.ctx()).unwrap();
            let created = q.create_cycle(plan.parent, &plan.body).unwrap();
            self.record(RecordKind::CycleFolder, folder.id, Target::id(created.id));
        }
        let mut steps = HashMap::new();
        for case in all(|visit| z.test_cases(visit)) {
            let script = read_script(&z, &case).unwrap();
            let mut body = case_plan(&case, script.as_case_script(), &self.ctx())
                .unwrap()
                .body;
            if let Some((_, edit)) = tamper.case.as_ref().filter(|(k, _)| *k == case.key) {
                edit(&mut body);
            }
            let created = q.create_case(&body).unwrap();
            let target = Target {
                id: created.id,
                version_id: created.test_case_version_id,
            };
            self.record(RecordKind::Case, &case.key, target);
            let both = CaseSteps {
                case_id: created.id,
                qtest: StepRef::list(&created.test_steps),
                zephyr: Some(ScriptShape::of(script.as_case_script())),
            };
            steps.insert(case.key, Arc::new(both));
        }
        for cycle in all(|visit| z.test_cycles(visit)) {
            if tamper.skip_cycle == Some(cycle.id) {
                continue;
            }
            let mut plan = cycle_plan(&cycle, &self.ctx()).unwrap();
            if let Some((_, name)) = tamper
                .rename_cycle
                .as_ref()
                .filter(|(id, _)| *id == cycle.id)
            {
                plan.body.name.clone_from(name);
            }
            let created = q.create_cycle(plan.parent, &plan.body).unwrap();
            self.record(RecordKind::Cycle, cycle.id, Target::id(created.id));
        }
        steps
    }

    /// One run per (cycle, case) pair, its logs in `actualEndDate` order.
    fn runs_and_logs(&mut self, case_steps: &HashMap<String, Arc<CaseSteps>>, tamper: &Tamper) {
        let (z, q) = (self.zephyr.clone(), self.qtest.clone());
        let mut pairs: BTreeMap<String, Vec<TestExecution>> = BTreeMap::new();
        for exec in all(|visit| z.executions(None, visit)) {
            let case = executed_case(&exec).unwrap().key;
            let key = run_key(exec.test_cycle.as_ref().map(|c| c.id), &case);
            pairs.entry(key).or_default().push(exec);
        }
        // Ad-hoc executions (outside any cycle) go to the default cycle.
        if pairs.values().any(|e| e[0].test_cycle.is_none()) {
            let body = etlpool::qtest::NewTestCycle {
                name: self.catalog.mapping().default_cycle.clone(),
                description: String::new(),
            };
            let created = q.create_cycle(CycleParent::Root, &body).unwrap();
            self.record(RecordKind::Cycle, DEFAULT_KEY, Target::id(created.id));
        }
        for (key, mut execs) in pairs {
            let cycle = execs[0].test_cycle.as_ref().map(|c| c.id);
            if tamper.skip_run.as_ref() == Some(&key)
                || (cycle.is_some() && cycle == tamper.skip_cycle)
            {
                continue;
            }
            sort_for_logs(&mut execs);
            let case = executed_case(&execs[0]).unwrap().key;
            let plan = run_plan(&execs[0], None, &self.ctx()).unwrap();
            let CycleParent::TestCycle(cycle) = plan.parent else {
                panic!("runs live in test cycles: {:?}", plan.parent)
            };
            let run = q.create_run(cycle, &plan.body).unwrap();
            self.record(RecordKind::Run, &key, Target::id(run.id));
            let layout = step_layout(&case, case_steps).unwrap();
            for exec in &execs {
                let results = z.execution_steps(&exec.id.to_string()).unwrap();
                let LogPlan::Create(mut body) =
                    log_plan(exec, &results, &layout, &self.ctx()).unwrap()
                else {
                    continue;
                };
                retouch(&mut body, exec.id, tamper);
                let log = q.create_log(run.id, &body).unwrap();
                self.record(RecordKind::Log, exec.id, Target::id(log.id));
            }
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            catalog: &self.catalog,
            lookup: &self.targets,
        }
    }
}

fn retouch(body: &mut NewTestLog, execution: u64, tamper: &Tamper) {
    if let Some((_, status)) = tamper.log_status.filter(|(e, _)| *e == execution) {
        body.status.id = status;
    }
}

/// Zephyr and qTest clients on the mocks, each with its own pool.
pub fn clients(mocks: &MockServers) -> (ZephyrClient, QtestClient) {
    let pool = Pool::builder().build().expect("pool");
    let zephyr = ApiClient::new(
        &pool,
        &mocks.zephyr_url(),
        Auth::Bearer(mocks.zephyr_token().into()),
    )
    .expect("zephyr api");
    let qtest = ApiClient::new(
        &pool,
        &mocks.qtest_url(),
        Auth::Bearer(mocks.qtest_token().into()),
    )
    .expect("qtest api");
    (
        ZephyrClient::new(zephyr, mocks.project_key()),
        QtestClient::new(qtest, mocks.qtest_project_id()),
    )
}

/// `verify` with the default mapping and options, run to its end.
pub fn verify_defaults(zephyr: &ZephyrClient, qtest: &QtestClient) -> VerifyReport {
    let options = VerifyOptions::default();
    etlpool::migrate::verify(zephyr, qtest, &MappingConfig::default(), &options)
        .expect("verify runs to the end")
}

/// The project's required case fields, each with its default value: what every
/// create body must carry besides its own properties.
pub fn required_properties(qtest: &QtestClient) -> Vec<etlpool::qtest::PropertyValue> {
    let fields = qtest.case_fields().expect("case fields");
    fields
        .iter()
        .filter(|f| f.required && !f.system_field)
        .map(|f| etlpool::qtest::PropertyValue {
            field_id: f.id,
            field_value: f.default_value.clone().expect("a default"),
        })
        .collect()
}

/// Every record of a paged Zephyr listing, each of them readable.
pub fn all<T>(
    read: impl FnOnce(&mut dyn FnMut(Vec<Record<T>>) -> etlpool::Result<()>) -> etlpool::Result<()>,
) -> Vec<T> {
    let mut items = Vec::new();
    read(&mut |page| {
        items.extend(readable(page));
        Ok(())
    })
    .expect("paged read");
    items
}

/// The records of a listing, each of them readable.
pub fn readable<T>(records: Vec<Record<T>>) -> Vec<T> {
    records
        .into_iter()
        .map(|r| r.unwrap_or_else(|bad| panic!("{bad}")))
        .collect()
}
