//! Journaled attachment records (see [`attachment_key`](super::record::attachment_key))
//! read back: whose file each is, and the qTest object it was uploaded to.
//! Repair and `verify` check files through this one table, so an owner kind
//! added here is checked by both.

use super::record::{Lookup, RecordKind};
use crate::qtest::AttachmentTarget;
use crate::zephyr::AttachmentOwner;

/// One journaled attachment key, split: `case/PROJ-T1/7001` is the file
/// 7001 of owner `case/PROJ-T1` (kind `case`, key `PROJ-T1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attached<'a> {
    /// The owner's journal prefix, `case/PROJ-T1`.
    pub(crate) owner: &'a str,
    /// `case`, `log`, `step`...
    pub(crate) kind: &'a str,
    /// The owner's key: `PROJ-T1`, `10100`, `PROJ-T1/2` for a step.
    pub(crate) key: &'a str,
    /// The Zephyr attachment id; `None` for the marker that all of the
    /// owner's files are done.
    pub(crate) file: Option<u64>,
}

impl<'a> Attached<'a> {
    /// Splits a journaled key; `None` for one that names no file nor marker.
    pub(crate) fn parse(key: &'a str) -> Option<Attached<'a>> {
        let (owner, last) = key.rsplit_once('/')?;
        let (kind, owner_key) = owner.split_once('/')?;
        let file = match last {
            "all" => None,
            id => Some(id.parse().ok()?),
        };
        Some(Attached {
            owner,
            kind,
            key: owner_key,
            file,
        })
    }

    /// The marker key of this file's owner.
    pub(crate) fn marker(&self) -> String {
        super::record::attachment_key(self.owner, None)
    }

    /// The journaled record the owner's qTest object belongs to: its own
    /// record, for a step its case's, for a step result (`steplog/<execution
    /// id>/<step id>`, and the execution's marker `steplog/<execution id>`)
    /// its execution's log. Gone with it, the file is gone.
    pub(crate) fn owner_record(&self) -> Option<(RecordKind, &'a str)> {
        let first = || self.key.split('/').next();
        match self.kind {
            "case" => Some((RecordKind::Case, self.key)),
            "log" => Some((RecordKind::Log, self.key)),
            "step" => Some((RecordKind::Case, first()?)),
            "steplog" => Some((RecordKind::Log, first()?)),
            _ => None,
        }
    }

    /// The Zephyr record whose files these are, where Zephyr lists files
    /// by owner (`None` for owner kinds it lists under another record).
    pub(crate) fn zephyr_owner(&self) -> Option<AttachmentOwner> {
        match self.kind {
            "case" => Some(AttachmentOwner::Case(self.key.to_owned())),
            "log" => Some(AttachmentOwner::Execution(self.key.to_owned())),
            _ => None,
        }
    }

    /// Where the file was uploaded, from the owner's journaled target.
    pub(crate) fn object(&self, journal: &dyn Lookup) -> Object {
        let to: fn(u64) -> AttachmentTarget = match self.kind {
            "case" => AttachmentTarget::TestCase,
            "log" => AttachmentTarget::TestLog,
            // A step's qTest id changes with each case version and is not
            // journaled.
            _ => return Object::Unknown,
        };
        match self
            .owner_record()
            .and_then(|(k, key)| journal.target(k, key))
        {
            Some(target) => Object::On(to(target.id)),
            None => Object::OwnerNotJournaled,
        }
    }
}

/// The qTest object a journaled file went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Object {
    /// This object.
    On(AttachmentTarget),
    /// The owner has no journaled target (forgotten, or never recorded).
    OwnerNotJournaled,
    /// An owner kind whose qTest object this build can't tell.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::record::Target;
    use std::collections::HashMap;

    #[test]
    fn keys_split_into_owner_and_file() {
        let a = Attached::parse("case/PROJ-T1/7001").unwrap();
        assert_eq!(
            (a.owner, a.kind, a.key, a.file),
            ("case/PROJ-T1", "case", "PROJ-T1", Some(7001))
        );
        assert_eq!(a.marker(), "case/PROJ-T1/all");
        let s = Attached::parse("step/PROJ-T1/2/9").unwrap();
        assert_eq!(s.owner_record(), Some((RecordKind::Case, "PROJ-T1")));
        assert_eq!(Attached::parse("log/10100/all").unwrap().file, None);
        for key in ["steplog/30003/30003001/7012", "steplog/30003/all"] {
            let s = Attached::parse(key).unwrap();
            assert_eq!(s.owner_record(), Some((RecordKind::Log, "30003")), "{key}");
        }
        assert_eq!(Attached::parse("case/PROJ-T1/inline-1"), None);
        assert_eq!(Attached::parse("nothing"), None);
    }

    #[test]
    fn objects_come_from_the_owners_targets() {
        let mut journal = HashMap::new();
        journal.insert((RecordKind::Log, "10100".to_string()), Target::id(55));
        let on = |key: &str| Attached::parse(key).unwrap().object(&journal);
        assert_eq!(on("log/10100/1"), Object::On(AttachmentTarget::TestLog(55)));
        assert_eq!(on("case/PROJ-T1/1"), Object::OwnerNotJournaled);
        assert_eq!(on("step/PROJ-T1/1/1"), Object::Unknown);
    }
}
