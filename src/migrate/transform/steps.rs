//! Where each step result of an execution goes on qTest, found by structure:
//! which case each step belongs to, not its position alone.
//!
//! A Zephyr script is a list of inline steps and calls to other cases. An
//! execution's step results come flattened (only inline results exist): a call
//! is replaced by the called case's steps, recursively. The migration makes one
//! qTest step per Zephyr step, so a case's own steps pair up by position within
//! that case, and a call becomes a qTest step carrying `called_test_case_id`.
//! qTest logs a called step against the called case's own step, with
//! `called_test_case_id` (that case) and `parent_test_step_id` (the calling
//! step). Where a call is not linked on qTest (the called case was not migrated
//! when the caller was created), its results have no qTest step and go into
//! the log's note, and the results after it still find their steps.
//!
//! Nested calls (a called case that calls another) are logged against the
//! innermost case, their parent being the step of the case that calls it: the
//! spec does not say, and that is the step qTest holds the link on.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::case::CaseScript;
use crate::migrate::packed::packed;
use crate::qtest;
use crate::zephyr::TestStep;

/// How deep calls are followed; deeper (or looping) calls leave the results of
/// the executed case unmatched by structure.
const MAX_DEPTH: usize = 8;

/// A qTest step as the step mapping needs it: its id, and the case it calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRef {
    /// qTest step id.
    pub id: u64,
    /// The called case, for a calling step.
    pub called_test_case_id: Option<u64>,
}

impl StepRef {
    /// The steps of a qTest case in their `order`, those without an id left out, and those
    /// listed as steps of a case it calls (with a `parent_test_step_id`) too: they are that
    /// case's, found through it.
    pub fn list(steps: &[qtest::TestStep]) -> Vec<StepRef> {
        qtest::own_steps(steps)
            .into_iter()
            .filter_map(|s| {
                Some(StepRef {
                    id: s.id?,
                    called_test_case_id: s.called_test_case_id,
                })
            })
            .collect()
    }
}

/// Serialized as its id, or `[id, called case id]` for a calling step: one is
/// kept per step of every case a run migrates.
impl Serialize for StepRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.called_test_case_id {
            None => serializer.serialize_u64(self.id),
            Some(called) => (self.id, called).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for StepRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Packed {
            Inline(u64),
            Call(u64, u64),
        }
        Ok(match Packed::deserialize(deserializer)? {
            Packed::Inline(id) => StepRef {
                id,
                called_test_case_id: None,
            },
            Packed::Call(id, called) => StepRef {
                id,
                called_test_case_id: Some(called),
            },
        })
    }
}

/// The shape of a Zephyr script: how many qTest steps the migration makes of
/// it, and which of them are calls (by position) to which case (by key). Kept
/// small, since one is remembered per case; serialized as `[len, calls]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptShape {
    len: u32,
    /// Sorted by position.
    calls: Box<[(u32, Box<str>)]>,
}

packed!(ScriptShape {
    len: u32,
    calls: Box<[(u32, Box<str>)]>,
});

impl ScriptShape {
    /// The shape of a script as the case transform maps it: one step per
    /// Zephyr step, one for a non-empty plain script, none for BDD.
    pub fn of(script: CaseScript<'_>) -> ScriptShape {
        let steps = match script {
            CaseScript::Steps(steps) => steps,
            other => {
                let len = super::case::script_step_count(other);
                return ScriptShape {
                    len,
                    calls: Box::new([]),
                };
            }
        };
        let calls = steps
            .iter()
            .zip(0u32..)
            .filter_map(|(step, i)| match step {
                TestStep::Call(call) => Some((i, call.test_case_key.as_str().into())),
                TestStep::Inline(_) => None,
            })
            .collect();
        ScriptShape {
            len: u32::try_from(steps.len()).unwrap_or(u32::MAX),
            calls,
        }
    }

    /// Steps in the script.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the script has no steps.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The case called at position `index` (from 0); `None` for an inline step.
    pub fn call_at(&self, index: usize) -> Option<&str> {
        let index = u32::try_from(index).ok()?;
        self.calls
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|i| &*self.calls[i].1)
    }
}

/// A migrated case's steps on both sides. Serialized compactly, as an array
/// of its fields (the run keeps one per migrated case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseSteps {
    /// The qTest case id.
    pub case_id: u64,
    /// Its qTest steps, in order.
    pub qtest: Vec<StepRef>,
    /// The shape of its Zephyr script; `None` when it could not be read.
    pub zephyr: Option<ScriptShape>,
}

packed!(CaseSteps {
    case_id: u64,
    qtest: Vec<StepRef>,
    zephyr: Option<ScriptShape>,
});

/// Where [`step_layout`] finds the steps of a case by its Zephyr key.
pub trait StepSource {
    /// The steps of the migrated case with this key; `None` when it is not
    /// migrated.
    fn steps_of(&self, case_key: &str) -> crate::Result<Option<Arc<CaseSteps>>>;
}

impl<S: std::hash::BuildHasher> StepSource for HashMap<String, Arc<CaseSteps>, S> {
    fn steps_of(&self, case_key: &str) -> crate::Result<Option<Arc<CaseSteps>>> {
        Ok(self.get(case_key).cloned())
    }
}

/// One place a step result can be logged on qTest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSlot {
    /// The qTest step.
    pub test_step_id: u64,
    /// For a step of a called case: that case.
    pub called_test_case_id: Option<u64>,
    /// For a step of a called case: the step calling it.
    pub parent_test_step_id: Option<u64>,
}

/// Where an executed case's step results go, computed once per case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepLayout {
    /// One entry per result of the flattened script (calls replaced by the
    /// called steps): its slot, or `None` where qTest has no step for it.
    /// `None` as a whole when a called script can't be read or calls loop.
    pub flat: Option<Vec<Option<StepSlot>>>,
    /// One entry per step of the case's own script: its slot, `None` for a
    /// call (for a service that gives a call one result of its own).
    pub top: Vec<Option<StepSlot>>,
    /// When `flat` is `None`: the slots still known at the start of the
    /// flattened results (up to the call that can't be followed) and at their
    /// end (the case's own steps after its last call). The results between
    /// belong to steps whose count is unknown, so none of them is placed.
    pub ends: (Vec<Option<StepSlot>>, Vec<Option<StepSlot>>),
}

impl StepLayout {
    /// A layout of a case's own qTest steps, taken as inline steps in order
    /// (for a case known to call nothing).
    pub fn inline(steps: &[StepRef]) -> StepLayout {
        let slots: Vec<Option<StepSlot>> = steps.iter().map(|s| own(s, None)).collect();
        StepLayout {
            flat: Some(slots.clone()),
            top: slots,
            ends: Default::default(),
        }
    }

    /// Whether the case has no step to place a result on (no step results
    /// need be read).
    pub fn is_empty(&self) -> bool {
        self.top.is_empty() && self.flat.as_ref().is_none_or(Vec::is_empty)
    }

    /// The slots for `results` step results: the flattened layout when its
    /// length matches, else the case's own steps when theirs does, else the
    /// flattened layout position by position. Without a flattened layout (a
    /// called case not migrated, calls that loop or nest too deep) only the
    /// [`ends`](Self::ends) are placed: a result after a call of unknown
    /// length would otherwise land on a step it doesn't belong to.
    pub fn slots_for(&self, results: usize) -> Cow<'_, [Option<StepSlot>]> {
        match &self.flat {
            Some(flat) if flat.len() == results => Cow::Borrowed(flat),
            _ if self.top.len() == results => Cow::Borrowed(&self.top),
            Some(flat) => Cow::Borrowed(flat),
            None => {
                let (head, tail) = &self.ends;
                let mut slots = vec![None; results];
                let head = &head[..head.len().min(results)];
                slots[..head.len()].copy_from_slice(head);
                if head.len() + tail.len() <= results {
                    slots[results - tail.len()..].copy_from_slice(tail);
                }
                Cow::Owned(slots)
            }
        }
    }
}

/// The layout of the case `case_key`; a case that is not migrated, or whose
/// script is unknown, has an empty one (its results go into the note).
pub fn step_layout(case_key: &str, source: &dyn StepSource) -> crate::Result<StepLayout> {
    let Some(case) = source.steps_of(case_key)? else {
        return Ok(StepLayout::default());
    };
    let Some(shape) = &case.zephyr else {
        // Without the Zephyr script only the case's own steps can be paired,
        // those around its calls as qTest knows them.
        let top: Vec<Option<StepSlot>> = case.qtest.iter().map(|s| own(s, None)).collect();
        let calls: Vec<bool> = case
            .qtest
            .iter()
            .map(|s| s.called_test_case_id.is_some())
            .collect();
        let head = calls.iter().position(|&c| c).unwrap_or(top.len());
        return Ok(StepLayout {
            ends: (top[..head].to_vec(), own_tail(&top, &calls)),
            flat: None,
            top,
        });
    };
    let top: Vec<Option<StepSlot>> = (0..shape.len())
        .map(|i| match shape.call_at(i) {
            Some(_) => None,
            None => case.qtest.get(i).and_then(|s| own(s, None)),
        })
        .collect();
    let mut flat = Vec::new();
    let mut stack = vec![case_key.to_owned()];
    if flatten(&case, shape, None, source, &mut stack, &mut flat)? {
        return Ok(StepLayout {
            flat: Some(flat),
            top,
            ends: Default::default(),
        });
    }
    // `flat` holds the results known before the call that can't be followed.
    let calls: Vec<bool> = (0..shape.len())
        .map(|i| shape.call_at(i).is_some())
        .collect();
    let tail = match shape.len() == case.qtest.len() {
        true => own_tail(&top, &calls),
        false => Vec::new(),
    };
    Ok(StepLayout {
        flat: None,
        top,
        ends: (flat, tail),
    })
}

/// The slots of the case's own steps after its last call; none when it has no
/// call (then the head holds them all).
fn own_tail(top: &[Option<StepSlot>], calls: &[bool]) -> Vec<Option<StepSlot>> {
    match calls.iter().rposition(|&c| c) {
        Some(last) => top[last + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Appends the slots of one case's script; `parent` is (called case id,
/// calling step id) when the case is reached through a linked call. Returns
/// false when the flattened length can't be known.
fn flatten(
    case: &CaseSteps,
    shape: &ScriptShape,
    parent: Option<(u64, u64)>,
    source: &dyn StepSource,
    stack: &mut Vec<String>,
    out: &mut Vec<Option<StepSlot>>,
) -> crate::Result<bool> {
    let steps = (shape.len() == case.qtest.len()).then_some(&case.qtest);
    for i in 0..shape.len() {
        let step = steps.and_then(|s| s.get(i));
        let Some(callee) = shape.call_at(i) else {
            out.push(step.and_then(|s| own(s, parent)));
            continue;
        };
        if stack.len() > MAX_DEPTH || stack.iter().any(|k| k == callee) {
            return Ok(false);
        }
        let Some(called) = source.steps_of(callee)? else {
            return Ok(false);
        };
        let Some(called_shape) = &called.zephyr else {
            return Ok(false);
        };
        let link = step
            .and_then(|s| Some((s.called_test_case_id?, s.id)))
            .filter(|(id, _)| *id == called.case_id);
        let start = out.len();
        stack.push(callee.to_owned());
        let known = flatten(&called, called_shape, link, source, stack, out)?;
        stack.pop();
        if link.is_none() {
            // qTest doesn't know the call: none of its steps can be logged.
            out[start..].iter_mut().for_each(|slot| *slot = None);
        }
        if !known {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The slot of an inline step; a calling step has none of its own.
fn own(step: &StepRef, parent: Option<(u64, u64)>) -> Option<StepSlot> {
    if step.called_test_case_id.is_some() {
        return None;
    }
    Some(StepSlot {
        test_step_id: step.id,
        called_test_case_id: parent.map(|(case, _)| case),
        parent_test_step_id: parent.map(|(_, step)| step),
    })
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
