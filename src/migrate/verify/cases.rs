//! Pass 2: test cases. qTest's cases marked with this project's Zephyr keys
//! are read by one paged search into small digests; Zephyr's cases are then
//! streamed a page at a time, each mapped by `case_plan` and compared.

use std::collections::HashMap;

use super::case_view::{CaseView, describe, mismatches};
use super::names::Names;
use super::text::quote;
use super::{DiffKind, Difference, MISSING, Verifier, duplicate, parallel, unmappable};
use crate::migrate::error::MigrateError;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::case_plan;
use crate::qtest::{QtestClient, SearchRequest, TestCase};
use crate::zephyr::models::is_case_key;

/// A qTest case, as kept for the comparison.
#[derive(Debug)]
struct Digest {
    id: u64,
    version_id: Option<u64>,
    view: CaseView<u64>,
}

/// The qTest cases marked with one project's Zephyr keys.
#[derive(Debug, Default)]
pub(super) struct CaseIndex {
    /// By Zephyr key, lowest id first.
    by_key: HashMap<String, Vec<Digest>>,
    /// Zephyr key by qTest id, to name the case of a run.
    keys: HashMap<u64, String>,
}

impl CaseIndex {
    /// Searches `'<label>' ~ '<project>-T'` and keeps the cases whose key
    /// field holds a case key of `project` exactly (the search's `~` is a
    /// case-insensitive "contains").
    fn load(
        qtest: &QtestClient,
        label: &str,
        field_id: u64,
        project: &str,
    ) -> Result<CaseIndex, MigrateError> {
        let prefix = format!("{project}-T");
        if label.contains('\'') || prefix.contains('\'') {
            return Err(MigrateError::config(
                "mapping.key_field",
                "a qTest search can't name a field or project containing a single quote",
            ));
        }
        let request = SearchRequest {
            object_type: "test-cases".to_owned(),
            fields: vec!["*".to_owned()],
            query: format!("'{label}' ~ '{prefix}'"),
        };
        let mut index = CaseIndex::default();
        // With their steps, so an unchanged case needs no second read.
        qtest.search_with_steps(&request, |items: Vec<TestCase>| {
            for case in items {
                let key = case.property_value(field_id).map(str::trim);
                if let Some(key) = key.filter(|k| k.starts_with(&prefix) && is_case_key(k)) {
                    index.add(key.to_owned(), &case);
                }
            }
            Ok(())
        })?;
        for digests in index.by_key.values_mut() {
            digests.sort_by_key(|d| d.id);
        }
        Ok(index)
    }

    fn add(&mut self, key: String, case: &TestCase) {
        // Pages that shift during the search can repeat a case.
        if self.keys.insert(case.id, key.clone()).is_some() {
            return;
        }
        self.by_key.entry(key).or_default().push(Digest {
            id: case.id,
            version_id: case.test_case_version_id,
            view: CaseView::actual(case).digest(),
        });
    }

    /// The Zephyr key of a qTest case.
    pub(super) fn key_of(&self, id: u64) -> Option<&str> {
        self.keys.get(&id).map(String::as_str)
    }

    /// Whether a case with this Zephyr key is on qTest.
    pub(super) fn has(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }
}

impl Verifier<'_> {
    /// Compares every Zephyr case with the qTest case of its key; returns
    /// the index, which names the cases of runs.
    pub(super) fn cases(&mut self) -> Result<CaseIndex, MigrateError> {
        let label = self.catalog.mapping().key_field.clone();
        let field = self.catalog.key_field_id();
        let index = CaseIndex::load(self.qtest, &label, field, self.zephyr.project_key())?;
        for (key, digests) in &index.by_key {
            let target = Target {
                id: digests[0].id,
                version_id: digests[0].version_id,
            };
            self.found.insert(RecordKind::Case, key.clone(), target);
        }
        let zephyr = self.zephyr;
        zephyr.test_cases(|page| self.case_page(page, &index))?;
        let mut extras: Vec<(&String, &Vec<Digest>)> = index
            .by_key
            .iter()
            .filter(|(key, _)| !self.zephyr_cases.contains(*key))
            .collect();
        extras.sort_by_key(|(key, _)| *key);
        let extras: Vec<Difference> = extras
            .into_iter()
            .flat_map(|(key, digests)| digests.iter().map(move |d| (key, d.id)))
            .map(|(key, id)| {
                let actual = format!("case {id}");
                Difference::new(
                    RecordKind::Case,
                    DiffKind::Extra,
                    key,
                    "no such Zephyr case",
                    actual,
                )
            })
            .collect();
        for d in extras {
            self.differ(d);
        }
        Ok(index)
    }

    fn case_page(
        &mut self,
        records: Vec<crate::zephyr::Record<crate::zephyr::TestCase>>,
        index: &CaseIndex,
    ) -> crate::Result<()> {
        let (page, unreadable) = crate::zephyr::split(records);
        for record in &unreadable {
            self.unreadable(RecordKind::Case, record);
        }
        let page: Vec<_> = page
            .into_iter()
            .filter(|c| self.zephyr_cases.insert(c.key.clone()))
            .collect();
        if page.iter().any(|c| c.folder.is_none()) {
            self.missing_default(RecordKind::Module);
        }
        let this = &*self;
        let found = parallel::try_map(&page, self.options.workers, |case| {
            this.check_case(case, index)
        })?;
        self.check(RecordKind::Case, page.len() as u64);
        for d in found.into_iter().flatten() {
            self.differ(d);
        }
        Ok(())
    }

    /// One case's differences. Its digest is compared first; only a case
    /// that differs is read again in full, to say how.
    fn check_case(
        &self,
        case: &crate::zephyr::TestCase,
        index: &CaseIndex,
    ) -> crate::Result<Vec<Difference>> {
        let script = crate::migrate::source::read_script(self.zephyr, case)?;
        let plan = match case_plan(case, script.as_case_script(), &self.context()) {
            Ok(plan) => plan,
            Err(e) => return Ok(vec![unmappable(&e)]),
        };
        let expected = CaseView::expected(&plan.body);
        let key = case.key.as_str();
        let missing = |actual: &str| {
            let module = match plan.body.parent_id {
                Some(MISSING) | None => "its module".to_owned(),
                Some(id) => format!("module {id}"),
            };
            let expected = format!("{} in {module}", quote(&plan.body.name));
            Difference::new(RecordKind::Case, DiffKind::Missing, key, expected, actual)
        };
        let Some(digests) = index.by_key.get(key) else {
            return Ok(vec![missing("not found")]);
        };
        let mut out = Vec::new();
        if digests.len() > 1 {
            out.push(duplicate(
                RecordKind::Case,
                key,
                digests.iter().map(|d| d.id),
            ));
        }
        let first = &digests[0];
        if mismatches(&expected.digest(), &first.view).is_empty() {
            return Ok(out);
        }
        match self.qtest.test_case(first.id)? {
            None => out.push(missing(&format!("case {} deleted during verify", first.id))),
            Some(actual) => {
                let actual = CaseView::actual(&actual);
                out.extend(case_differences(key, &expected, &actual, &self.names));
            }
        }
        Ok(out)
    }
}

/// Differences of a case read in full: one per field, and one for its steps
/// however many of them differ.
fn case_differences(
    key: &str,
    expected: &CaseView<String>,
    actual: &CaseView<String>,
    names: &Names,
) -> Vec<Difference> {
    let found = mismatches(expected, actual);
    let steps = found.iter().filter(|m| m.is_step()).count();
    let mut shown_step = false;
    let mut out = Vec::new();
    for what in found {
        if what.is_step() {
            if shown_step {
                continue;
            }
            shown_step = true;
        }
        let (field, e, mut a) = describe(what, expected, actual, names);
        if what.is_step() && steps > 1 {
            a.push_str(&format!(" (and {} more steps differ)", steps - 1));
        }
        out.push(Difference::mismatch(RecordKind::Case, key, field, e, a));
    }
    out
}
