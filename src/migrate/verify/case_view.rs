//! A test case as compared: the fields a migration writes, normalised, in a
//! shape both sides share. With `String` texts it describes a difference; with
//! `u64` hashes it is the small digest kept for every qTest case, so a whole
//! project's cases are compared without holding them.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::MISSING;
use super::names::Names;
use super::text::{excerpts, norm};
use crate::qtest::{NewTestCase, TestCase};

/// One step: its texts and the called case, if it is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StepView<T> {
    description: T,
    expected: T,
    called: Option<u64>,
}

/// The compared fields of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CaseView<T> {
    name: T,
    description: T,
    precondition: T,
    parent: Option<u64>,
    /// By field id, sorted.
    properties: Vec<(u64, T)>,
    steps: Vec<StepView<T>>,
}

/// A field that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mismatch {
    Name,
    Description,
    Precondition,
    Parent,
    Property(u64),
    StepCount,
    StepDescription(usize),
    StepExpected(usize),
    StepCall(usize),
}

impl CaseView<String> {
    /// What the transform would send for the case.
    pub(super) fn expected(body: &NewTestCase) -> Self {
        let steps = body.test_steps.iter().map(|s| StepView {
            description: norm(&s.description),
            expected: norm(&s.expected),
            called: s.called_test_case_id,
        });
        Self::build(
            &body.name,
            &body.description,
            &body.precondition,
            body.parent_id,
            body.properties
                .iter()
                .map(|p| (p.field_id, p.field_value.as_str())),
            steps.collect(),
        )
    }

    /// What qTest holds; steps in their `order`.
    pub(super) fn actual(case: &TestCase) -> Self {
        let steps = case.own_steps().into_iter().map(|s| StepView {
            description: norm(&s.description),
            expected: norm(&s.expected),
            called: s.called_test_case_id,
        });
        Self::build(
            &case.name,
            case.description.as_deref().unwrap_or(""),
            case.precondition.as_deref().unwrap_or(""),
            case.parent_id,
            case.properties
                .iter()
                .filter_map(|p| Some((p.field_id, p.field_value.as_deref()?))),
            steps.collect(),
        )
    }

    fn build<'a>(
        name: &str,
        description: &str,
        precondition: &str,
        parent: Option<u64>,
        properties: impl Iterator<Item = (u64, &'a str)>,
        steps: Vec<StepView<String>>,
    ) -> Self {
        let mut properties: Vec<(u64, String)> =
            properties.map(|(id, value)| (id, norm(value))).collect();
        properties.sort();
        CaseView {
            name: norm(name),
            description: norm(description),
            precondition: norm(precondition),
            parent,
            properties,
            steps,
        }
    }

    /// The same view with every text replaced by its hash.
    pub(super) fn digest(&self) -> CaseView<u64> {
        let hash = |text: &String| {
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        CaseView {
            name: hash(&self.name),
            description: hash(&self.description),
            precondition: hash(&self.precondition),
            parent: self.parent,
            properties: self
                .properties
                .iter()
                .map(|(id, v)| (*id, hash(v)))
                .collect(),
            steps: self
                .steps
                .iter()
                .map(|s| StepView {
                    description: hash(&s.description),
                    expected: hash(&s.expected),
                    called: s.called,
                })
                .collect(),
        }
    }
}

/// A fingerprint of what `body` sends for a case, kept in the journal so a
/// sync can tell a case changed in Zephyr (a new body's fingerprint differs)
/// from one changed on qTest by people ([`held_fingerprint`] differs).
/// FNV-1a over the normalised view: stable across builds and toolchains,
/// unlike `DefaultHasher`, since it outlives the process.
pub(crate) fn sent_fingerprint(body: &NewTestCase) -> u64 {
    CaseView::expected(body).fingerprint(|_| true)
}

/// The fingerprint of a case as qTest holds it, over the fields `body` sets
/// (qTest fills other properties with its defaults); equal to
/// [`sent_fingerprint`] of the body it was last written with, unless
/// someone changed it since.
pub(crate) fn held_fingerprint(case: &TestCase, body: &NewTestCase) -> u64 {
    let set: Vec<u64> = body.properties.iter().map(|p| p.field_id).collect();
    CaseView::actual(case).fingerprint(|id| set.contains(&id))
}

impl CaseView<String> {
    fn fingerprint(&self, keep: impl Fn(u64) -> bool) -> u64 {
        let mut h = Fnv::default();
        for text in [&self.name, &self.description, &self.precondition] {
            h.text(text);
        }
        h.number(self.parent);
        for (id, value) in self.properties.iter().filter(|(id, _)| keep(*id)) {
            h.number(Some(*id));
            h.text(value);
        }
        // Not the called case's id: a call is described as "Call to KEY"
        // either way, and whether it is linked depends on which case the
        // first run happened to make first, not on a change in Zephyr.
        for step in &self.steps {
            h.text(&step.description);
            h.text(&step.expected);
        }
        h.0
    }
}

/// 64-bit FNV-1a; each item ends with a byte text never holds, so moving
/// text between fields changes the fingerprint.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
        self.bytes(&[0xff]);
    }

    fn number(&mut self, n: Option<u64>) {
        match n {
            Some(n) => self.bytes(&n.to_le_bytes()),
            None => self.bytes(b"-"),
        }
        self.bytes(&[0xfe]);
    }
}

/// The fields of `actual` that differ from `expected`. Only the properties
/// the transform sets are compared (qTest fills others with its defaults); a
/// parent or called case that is itself missing on qTest ([`MISSING`]) is
/// reported on its own, not here; a call step may be unlinked, since the
/// called case may have been migrated after the caller.
pub(super) fn mismatches<T: PartialEq>(
    expected: &CaseView<T>,
    actual: &CaseView<T>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (differs, what) in [
        (expected.name != actual.name, Mismatch::Name),
        (
            expected.description != actual.description,
            Mismatch::Description,
        ),
        (
            expected.precondition != actual.precondition,
            Mismatch::Precondition,
        ),
        (
            expected.parent != Some(MISSING) && expected.parent != actual.parent,
            Mismatch::Parent,
        ),
    ] {
        if differs {
            out.push(what);
        }
    }
    for (field, value) in &expected.properties {
        if actual.property(*field) != Some(value) {
            out.push(Mismatch::Property(*field));
        }
    }
    if expected.steps.len() != actual.steps.len() {
        out.push(Mismatch::StepCount);
        return out;
    }
    for (i, (e, a)) in expected.steps.iter().zip(&actual.steps).enumerate() {
        if e.description != a.description {
            out.push(Mismatch::StepDescription(i));
        } else if e.expected != a.expected {
            out.push(Mismatch::StepExpected(i));
        } else if !call_matches(e.called, a.called) {
            out.push(Mismatch::StepCall(i));
        }
    }
    out
}

fn call_matches(expected: Option<u64>, actual: Option<u64>) -> bool {
    match (expected, actual) {
        (_, None) => true,
        (Some(e), Some(a)) => e == MISSING || e == a,
        (None, Some(_)) => false,
    }
}

impl<T> CaseView<T> {
    fn property(&self, field: u64) -> Option<&T> {
        self.properties
            .binary_search_by_key(&field, |(id, _)| *id)
            .ok()
            .map(|i| &self.properties[i].1)
    }
}

/// A mismatch as (field, expected, actual) texts.
pub(super) fn describe(
    what: Mismatch,
    expected: &CaseView<String>,
    actual: &CaseView<String>,
    names: &Names,
) -> (String, String, String) {
    let texts = |field: &str, e: &str, a: &str| {
        let (e, a) = excerpts(e, a);
        (field.to_owned(), e, a)
    };
    let parent = |p: Option<u64>| p.map_or_else(|| "none".to_owned(), |id| format!("module {id}"));
    let call =
        |c: Option<u64>| c.map_or_else(|| "not linked".to_owned(), |id| format!("case {id}"));
    let (e, a) = (expected, actual);
    match what {
        Mismatch::Name => texts("name", &e.name, &a.name),
        Mismatch::Description => texts("description", &e.description, &a.description),
        Mismatch::Precondition => texts("precondition", &e.precondition, &a.precondition),
        Mismatch::Parent => ("parent".into(), parent(e.parent), parent(a.parent)),
        Mismatch::Property(id) => (
            names.field(id),
            names.value(id, e.property(id).map(String::as_str)),
            names.value(id, a.property(id).map(String::as_str)),
        ),
        Mismatch::StepCount => (
            "steps".into(),
            format!("{} steps", e.steps.len()),
            format!("{} steps", a.steps.len()),
        ),
        Mismatch::StepDescription(i) => texts(
            &format!("step {} description", i + 1),
            &e.steps[i].description,
            &a.steps[i].description,
        ),
        Mismatch::StepExpected(i) => texts(
            &format!("step {} expected", i + 1),
            &e.steps[i].expected,
            &a.steps[i].expected,
        ),
        Mismatch::StepCall(i) => (
            format!("step {} called case", i + 1),
            call(e.steps[i].called),
            call(a.steps[i].called),
        ),
    }
}

impl Mismatch {
    /// Whether it is about one step (several are shown as one difference).
    pub(super) fn is_step(self) -> bool {
        matches!(
            self,
            Mismatch::StepDescription(_) | Mismatch::StepExpected(_) | Mismatch::StepCall(_)
        )
    }
}

#[cfg(test)]
#[path = "case_view_tests.rs"]
mod tests;
