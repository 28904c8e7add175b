//! What runs and logs need of each migrated case, kept for the whole run in
//! a few bytes per case.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::case_info::CaseInfo;

/// The [`CaseInfo`] of each case a run created or read, kept compactly: a
/// project of 200,000 cases would hold a map entry, a key, two `Arc`s and
/// four allocations per case otherwise. Each info is stored as packed JSON
/// (an array of its fields) in 1 MiB chunks, found by the case's number when
/// its key is `<project>-T<n>` (any other key by the key itself). An info
/// stored again (a case approved since) replaces the old one: in its place
/// when it fits there, else appended (the old bytes then stay unused; each
/// case is approved at most once per run).
pub(crate) struct CaseCache {
    /// `<project>-T`, the prefix of the keys stored by number.
    prefix: String,
    /// Guards the index and the chunks together; held for a copy, never for I/O.
    inner: RwLock<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    by_number: HashMap<u64, Slot>,
    by_key: HashMap<Box<str>, Slot>,
    chunks: Vec<Vec<u8>>,
}

/// Where an info is: chunk, offset, length.
#[derive(Clone, Copy)]
struct Slot(u32, u32, u32);

/// Bytes per chunk; a larger info gets a chunk of its own.
const CHUNK: usize = 1 << 20;

impl CaseCache {
    /// A cache for the cases of project `project_key`.
    pub(crate) fn new(project_key: &str) -> CaseCache {
        CaseCache {
            prefix: format!("{project_key}-T"),
            inner: RwLock::default(),
        }
    }

    /// The number of `key` when it is `<project>-T<n>` written the usual way.
    fn number(&self, key: &str) -> Option<u64> {
        let digits = key.strip_prefix(&self.prefix)?;
        let n: u64 = digits.parse().ok()?;
        (n.to_string() == digits).then_some(n)
    }

    /// Remembers what the case `key` became; an info that can't be encoded is
    /// left out (its runs read the case back from qTest instead).
    pub(crate) fn insert(&self, key: &str, info: &CaseInfo) {
        let Ok(bytes) = serde_json::to_vec(info) else {
            log::debug!("case {key}: its info can't be cached");
            return;
        };
        let number = self.number(key);
        let mut inner = self.inner.write();
        let old = inner.slot(number, key);
        let Some(slot) = old
            .and_then(|old| inner.overwrite(old, &bytes))
            .or_else(|| inner.store(&bytes))
        else {
            return;
        };
        match number {
            Some(n) => inner.by_number.insert(n, slot),
            None => inner.by_key.insert(key.into(), slot),
        };
    }

    /// What the case `key` became, if this run created or read it: a copy,
    /// decoded from the cache.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<CaseInfo>> {
        let inner = self.inner.read();
        let Slot(chunk, offset, len) = inner.slot(self.number(key), key)?;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let bytes = inner
            .chunks
            .get(usize::try_from(chunk).ok()?)?
            .get(start..end)?;
        serde_json::from_slice(bytes).ok().map(Arc::new)
    }
}

impl CacheInner {
    /// Where the info of `key` (whose number is `number`) is.
    fn slot(&self, number: Option<u64>, key: &str) -> Option<Slot> {
        match number {
            Some(n) => self.by_number.get(&n),
            None => self.by_key.get(key),
        }
        .copied()
    }

    /// Writes `bytes` over the info at `old` when they fit there: a case
    /// stored again once approved differs only in its version (and maybe its
    /// step ids), so it rarely grows, and its old bytes are not left unused.
    fn overwrite(&mut self, old: Slot, bytes: &[u8]) -> Option<Slot> {
        let Slot(chunk, offset, len) = old;
        let len = u32::try_from(bytes.len()).ok().filter(|&n| n <= len)?;
        let start = usize::try_from(offset).ok()?;
        self.chunks
            .get_mut(usize::try_from(chunk).ok()?)?
            .get_mut(start..start.checked_add(bytes.len())?)?
            .copy_from_slice(bytes);
        Some(Slot(chunk, offset, len))
    }

    /// Copies `bytes` into the last chunk, or a new one; `None` past 4 GiB.
    fn store(&mut self, bytes: &[u8]) -> Option<Slot> {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= bytes.len());
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK.max(bytes.len())));
        }
        let chunk = self.chunks.len() - 1;
        let last = self.chunks.last_mut()?;
        let offset = last.len();
        last.extend_from_slice(bytes);
        Some(Slot(
            u32::try_from(chunk).ok()?,
            u32::try_from(offset).ok()?,
            u32::try_from(bytes.len()).ok()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::migrate::transform::{CaseSteps, ScriptShape, StepRef};

    /// A case whose steps are `steps` (id, called case id) and whose Zephyr
    /// script has the packed shape `shape`.
    fn info(name: &str, steps: &[(u64, Option<u64>)], shape: Option<&str>) -> CaseInfo {
        CaseInfo {
            name: name.into(),
            approved: shape.is_some(),
            version_id: Some(70 + steps.len() as u64),
            steps: Arc::new(CaseSteps {
                case_id: 7,
                qtest: steps
                    .iter()
                    .map(|&(id, called_test_case_id)| StepRef {
                        id,
                        called_test_case_id,
                    })
                    .collect(),
                zephyr: shape.map(|s| serde_json::from_str::<ScriptShape>(s).unwrap()),
            }),
        }
    }

    #[test]
    fn the_case_cache_gives_back_what_it_was_given_by_number_or_by_key() {
        let cache = CaseCache::new("PROJ");
        let big = info(&"x".repeat(CHUNK + 10), &[(1, None)], None);
        let calls = r#"[3,[[1,"PROJ-T3"]]]"#;
        let cases = [
            (
                "PROJ-T1",
                info("Check pump", &[(990, None), (991, None)], None),
            ),
            ("PROJ-T01", info("a key written oddly", &[], Some("[0,[]]"))),
            ("OTHER-T1", info("another project's", &[(5, None)], None)),
            ("PROJ-T2", big.clone()),
            (
                "PROJ-T3",
                info("calls", &[(7, None), (8, Some(3)), (9, None)], Some(calls)),
            ),
        ];
        for (key, case) in &cases {
            cache.insert(key, case);
        }
        for (key, case) in &cases {
            assert_eq!(cache.get(key).as_deref(), Some(case), "{key}");
        }
        assert_eq!(cache.get("PROJ-T4"), None);
        assert_eq!(cache.inner.read().by_key.len(), 2);
    }

    #[test]
    fn a_case_stored_again_takes_the_old_place_when_it_fits_there() {
        let cache = CaseCache::new("PROJ");
        let used = || -> usize { cache.inner.read().chunks.iter().map(Vec::len).sum() };
        let (first, next) = (
            info("Check pump", &[(990, None)], Some("[1,[]]")),
            info("Next", &[], None),
        );
        cache.insert("PROJ-T1", &first);
        cache.insert("OTHER-T1", &next);
        let before = used();
        // Approved, with a new version: no longer, so written over the old info.
        let approved = CaseInfo {
            approved: true,
            version_id: Some(80),
            ..first.clone()
        };
        cache.insert("PROJ-T1", &approved);
        assert_eq!(used(), before);
        assert_eq!(cache.get("PROJ-T1").as_deref(), Some(&approved));
        // Longer: appended, its neighbour untouched.
        let longer = info("Check pump", &[(990, None), (991, Some(3))], Some("[2,[]]"));
        cache.insert("PROJ-T1", &longer);
        assert!(used() > before);
        assert_eq!(cache.get("PROJ-T1").as_deref(), Some(&longer));
        assert_eq!(cache.get("OTHER-T1").as_deref(), Some(&next));
        // Shorter than its place: the rest of it is not read.
        cache.insert("OTHER-T1", &info("N", &[], None));
        assert_eq!(
            cache.get("OTHER-T1").as_deref(),
            Some(&info("N", &[], None))
        );
    }

    #[test]
    fn a_case_info_is_packed_as_arrays_without_field_names() {
        let case = info(
            "Pump",
            &[(990, None), (991, Some(3))],
            Some(r#"[2,[[1,"P-T3"]]]"#),
        );
        let packed = serde_json::to_string(&case).unwrap();
        assert_eq!(
            packed,
            r#"["Pump",true,72,[7,[990,[991,3]],[2,[[1,"P-T3"]]]]]"#
        );
        assert_eq!(serde_json::from_str::<CaseInfo>(&packed).unwrap(), case);
        let unknown_script = info("Pump", &[], None);
        let packed = serde_json::to_string(&unknown_script).unwrap();
        assert_eq!(packed, r#"["Pump",false,70,[7,[],null]]"#);
        assert_eq!(
            serde_json::from_str::<CaseInfo>(&packed).unwrap(),
            unknown_script
        );
    }
}
