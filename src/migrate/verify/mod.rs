//! `etlpool verify`: compares a Zephyr project with what qTest holds, through
//! both services' APIs only (no journal, no test hooks), so it checks any
//! migration, including one made by another tool or a run whose journal is
//! gone, and works against the real services.
//!
//! What it expects is computed by the same transform functions a migration
//! uses ([`case_plan`](super::transform::case_plan),
//! [`cycle_plan`](super::transform::cycle_plan),
//! [`log_plan`](super::transform::log_plan)) with the same [`MappingConfig`],
//! so verify and migrate can't disagree about the mapping. How it finds each
//! record on qTest, in order:
//!
//! 1. **Modules and parent cycles** (`TEST_CASE` and `TEST_CYCLE` folders): by
//!    name under the matched parent, repeated sibling names by order (qTest
//!    `order`, then id), as a migration's lookup does. The default module and
//!    cycle (for records in no folder or cycle) by their configured names at
//!    the root.
//! 2. **Cases**: one paged `POST /search` for `'Zephyr Key' ~ 'PROJ-T'`, with
//!    their steps (`appendTestSteps=true`); each
//!    qTest case is kept as a small digest (ids and hashes), then Zephyr's
//!    cases are streamed page by page and compared: name, description,
//!    precondition, module, every property the transform sets (priority,
//!    status, the key, mapped fields) and the steps. A case whose digest
//!    differs is read again in full to say what differs (so a service whose
//!    search results lack steps costs one read per case, not a false report).
//! 3. **Cycles**: by the `Key:` line that `cycle_plan` writes into every
//!    cycle's description, which stays unique when names repeat; then name,
//!    description and parent are compared.
//! 4. **Runs and logs**: Zephyr's executions are streamed once and kept as
//!    (execution id, qTest status, end time) per (cycle, case) pair; each
//!    cycle's runs are listed and matched to cases by `test_case.id`, and each
//!    run's logs are compared to its expected logs as a multiset of (status,
//!    end time). Not Executed gets no log, so one found for it is extra.
//!
//! 5. **Attachments**, given the migration's journal
//!    ([`VerifyOptions::journal`]): each journaled file on the qTest object
//!    it was uploaded to, by id (or name), with the Zephyr file's name and
//!    size (see `attachments.rs`).
//!
//! What counts as a difference (see [`DiffKind`]): a record expected and not
//! found; one found twice (the same Zephyr key, cycle key or (cycle, case)
//! pair); a field that differs; a case, cycle or run on qTest marked as this
//! project's (its `Zephyr Key`, its description's key, a run of a migrated
//! case) that Zephyr doesn't have; a Zephyr record the transform refuses.
//! Records under a missing parent are counted as not checked instead: the
//! parent's difference says it all. Left alone: records qTest holds that no
//! key marks as migrated (other modules, runs of other cases), step logs and
//! notes, run names and case versions (a case approved later in qTest gets a
//! new version legitimately).
//!
//! Memory holds the lookup lists, the folder trees, one digest per qTest case,
//! the keys of Zephyr's cases and cycles, three numbers per execution, and one
//! page of Zephyr records at a time.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etlpool::http::{ApiClient, Auth};
//! use etlpool::migrate::{MappingConfig, VerifyOptions, verify};
//! use etlpool::qtest::QtestClient;
//! use etlpool::zephyr::ZephyrClient;
//!
//! let pool = etlpool::Pool::global()?;
//! let zephyr = ApiClient::new(&pool, "https://api.zephyrscale.smartbear.com/v2", Auth::Bearer("...".into()))?;
//! let qtest = ApiClient::new(&pool, "https://acme.qtestnet.com/api/v3", Auth::Bearer("...".into()))?;
//! let (zephyr, qtest) = (ZephyrClient::new(zephyr, "PROJ"), QtestClient::new(qtest, 12345));
//! let report = verify(&zephyr, &qtest, &MappingConfig::default(), &VerifyOptions::default())?;
//! println!("{report}");
//! std::process::exit(if report.is_clean() { 0 } else { 1 });
//! # }
//! ```

mod attachments;
mod case_view;
pub(crate) use case_view::{held_fingerprint, sent_fingerprint};
mod cases;
mod cycles;
mod folders;
mod logs;
mod names;
use super::parallel;
mod report;
mod runs;
mod text;

use std::collections::{HashMap, HashSet};

pub use report::{Counts, DEFAULT_LISTED, DiffKind, Difference, Summary, Verdict, VerifyReport};

use self::names::Names;
use super::error::{MigrateError, TransformError};
use super::mapping::MappingConfig;
use super::record::{Lookup, RecordKind, Target};
use super::source::{check_projects, load_lookups};
use super::transform::{Catalog, Context};
use crate::qtest::QtestClient;
use crate::zephyr::ZephyrClient;

/// The id given to a record that should exist on qTest and doesn't, so the
/// transform still computes everything else about its children (qTest ids
/// start at 1). Comparisons skip a [`MISSING`] parent or called case: the
/// missing record is reported on its own.
const MISSING: u64 = 0;

/// How verification runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Threads reading case scripts and run logs (one request each). Defaults
    /// to 4; keep it at most the pool's connections per host.
    pub workers: usize,
    /// Differences kept in the report; more are only counted. Defaults to 10,000.
    pub max_differences: usize,
    /// The migration's journal (a file), read-only: with it, every
    /// journaled attachment is checked on the qTest object it was uploaded
    /// to (pass 5). Defaults to none: files are not compared.
    pub journal: Option<std::path::PathBuf>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            workers: 4,
            max_differences: 10_000,
            journal: None,
        }
    }
}

/// Compares the Zephyr project of `zephyr` with the qTest project of `qtest`
/// under `mapping` (the migration's `[mapping]` section).
///
/// Differences go into the report; an error means the comparison could not be
/// finished: a project is unknown, a lookup list can't support the mapping,
/// or a request failed after its retries.
pub fn verify(
    zephyr: &ZephyrClient,
    qtest: &QtestClient,
    mapping: &MappingConfig,
    options: &VerifyOptions,
) -> Result<VerifyReport, MigrateError> {
    check_projects(zephyr, qtest)?;
    let lookups = load_lookups(zephyr, qtest)?;
    // What the migration wrote into descriptions and notes: environment
    // names and test plans.
    let context =
        crate::migrate::run::setup::context_of(zephyr.environments(), zephyr.test_plans());
    let catalog = Catalog::new(mapping.clone(), &lookups)?.with_context(context);
    let mut v = Verifier {
        zephyr,
        qtest,
        names: Names::new(&lookups),
        catalog,
        options: options.clone(),
        found: Found::default(),
        zephyr_cases: HashSet::new(),
        zephyr_cycles: HashSet::new(),
        report: VerifyReport {
            zephyr_project: zephyr.project_key().to_owned(),
            qtest_project: qtest.project_id(),
            ..VerifyReport::default()
        },
    };
    // Read and checked first: another project's journal is an error
    // before any work, not files "not checked" in a clean report.
    let journal = match &options.journal {
        Some(path) => {
            let journal = super::Journal::read_only(path)?;
            attachments::of_project(&journal, zephyr.project_key())?;
            Some(journal)
        }
        None => None,
    };
    let mut cycles = v.folders()?;
    let cases = v.cases()?;
    v.cycles(&mut cycles)?;
    v.executions(&cases)?;
    if let Some(journal) = &journal {
        v.attachments(journal)?;
    }
    Ok(v.report)
}

/// What Zephyr records became on qTest, as found by looking. A record not
/// found is [`MISSING`] to the transform.
#[derive(Debug, Default)]
struct Found(HashMap<(RecordKind, String), Target>);

impl Found {
    fn insert(&mut self, kind: RecordKind, key: impl Into<String>, target: Target) {
        self.0.insert((kind, key.into()), target);
    }

    fn get(&self, kind: RecordKind, key: &str) -> Option<Target> {
        self.0.target(kind, key)
    }
}

impl Lookup for Found {
    fn target(&self, kind: RecordKind, key: &str) -> Option<Target> {
        Some(self.get(kind, key).unwrap_or(Target {
            id: MISSING,
            version_id: Some(MISSING),
        }))
    }
}

/// One verification's state; each pass lives in its own module.
struct Verifier<'a> {
    zephyr: &'a ZephyrClient,
    qtest: &'a QtestClient,
    catalog: Catalog,
    names: Names,
    options: VerifyOptions,
    found: Found,
    /// Keys of the Zephyr cases seen, so extras and repeats are known.
    zephyr_cases: HashSet<String>,
    /// Ids of the Zephyr cycles seen.
    zephyr_cycles: HashSet<u64>,
    report: VerifyReport,
}

impl Verifier<'_> {
    fn context(&self) -> Context<'_> {
        Context {
            catalog: &self.catalog,
            lookup: &self.found,
        }
    }

    fn differ(&mut self, difference: Difference) {
        if self.report.differences.len() < self.options.max_differences {
            self.report.differences.push(difference);
        } else {
            self.report.omitted += 1;
        }
    }

    fn unmappable(&mut self, error: &TransformError) {
        self.differ(unmappable(error));
    }

    /// A listed Zephyr record that can't be read: checked, and unmappable.
    fn unreadable(&mut self, kind: RecordKind, record: &crate::zephyr::BadRecord) {
        self.check(kind, 1);
        self.unmappable(&TransformError::unreadable(kind, record));
    }

    fn check(&mut self, kind: RecordKind, n: u64) {
        self.report.checked.add(kind, n);
    }

    fn skip(&mut self, kind: RecordKind, n: u64) {
        self.report.not_checked.add(kind, n);
    }
}

fn unmappable(error: &TransformError) -> Difference {
    Difference::new(
        error.kind,
        DiffKind::Unmappable,
        error.key.clone(),
        "a record the transform accepts",
        error.reason.to_string(),
    )
}

fn duplicate(record: RecordKind, key: &str, ids: impl Iterator<Item = u64>) -> Difference {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    Difference::new(
        record,
        DiffKind::Duplicate,
        key,
        "1 on qTest",
        format!("{} on qTest (ids {})", ids.len(), ids.join(", ")),
    )
}
