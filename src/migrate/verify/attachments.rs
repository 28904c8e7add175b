//! Pass 5 (with a journal): every journaled file is on the qTest object it
//! was uploaded to. The journal is what ties a Zephyr file to its qTest
//! attachment (qTest keeps no trace of the source), so this pass runs only
//! when one is given ([`VerifyOptions::journal`](super::VerifyOptions::journal)).
//!
//! A file is looked for by its journaled id on its object's listing, then
//! by name, as a migration's lookup does; found, its name must be the
//! Zephyr file's, and its size too where both sides can tell it: qTest's
//! listing carries no size, so its bytes are counted as they arrive (never
//! held), and compared with the length Zephyr announces for the download,
//! the rule the migration's idempotency uses. Owners are resolved through
//! one table ([`Attached`]), so a new owner kind is checked once it is
//! there; files of an owner this build can't place (a step's) and of an
//! owner missing on qTest (reported by its own pass) are not checked.

use std::collections::{BTreeMap, HashMap};

use super::{DiffKind, Difference, Verifier};
use crate::migrate::attached::{Attached, Object};
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::{Journal, MigrateError};
use crate::qtest::{AttachmentTarget, QtestAttachment};

/// Fails unless every case `journal` names (journaled, or owning files) is
/// one of project `project`'s (`PROJ-T1`): a journal given for the wrong
/// project would otherwise have all its files "not checked" (their objects
/// are not on this qTest project) and the report say clean.
pub(super) fn of_project(journal: &Journal, project: &str) -> Result<(), MigrateError> {
    let prefix = format!("{project}-");
    let cases = journal
        .entries_of(RecordKind::Case)
        .into_iter()
        .map(|(k, _)| k);
    let owners = journal
        .entries_of(RecordKind::Attachment)
        .into_iter()
        .filter_map(|(key, _)| {
            let file = Attached::parse(&key)?;
            let (kind, case) = file.owner_record()?;
            (kind == RecordKind::Case).then(|| case.to_owned())
        });
    // Jira keys are upper case; a project given in lower case still names them.
    let ours = |case: &String| {
        case.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(&prefix))
    };
    match cases.chain(owners).find(|case| !ours(case)) {
        None => Ok(()),
        Some(case) => Err(MigrateError::config(
            "verify",
            format!(
                "journal {} is not project {project}'s: it holds case {case}; \
                 pass the journal of {project}'s migration (--journal)",
                journal.path().display()
            ),
        )),
    }
}

impl Verifier<'_> {
    /// Checks every journaled file of `journal`.
    pub(super) fn attachments(&mut self, journal: &Journal) -> crate::Result<()> {
        let entries = journal.entries_of(RecordKind::Attachment);
        let mut owners: BTreeMap<&str, Vec<(Attached<'_>, Target)>> = BTreeMap::new();
        for (key, target) in &entries {
            if let Some(file) = Attached::parse(key).filter(|f| f.file.is_some()) {
                owners.entry(file.owner).or_default().push((file, *target));
            }
        }
        for files in owners.values() {
            self.owner_files(journal, files)?;
        }
        Ok(())
    }

    /// The files of one owner.
    fn owner_files(
        &mut self,
        journal: &Journal,
        files: &[(Attached<'_>, Target)],
    ) -> crate::Result<()> {
        let n = files.len() as u64;
        let Some((first, _)) = files.first() else {
            return Ok(());
        };
        let object = match first.object(journal) {
            Object::On(object) => object,
            Object::Unknown => {
                self.report.not_comparable.add(RecordKind::Attachment, n);
                return Ok(());
            }
            Object::OwnerNotJournaled => {
                self.skip(RecordKind::Attachment, n);
                return Ok(());
            }
        };
        let listed = match self.qtest.attachments(object) {
            Ok(listed) => listed,
            // The object is gone: its own pass reports it.
            Err(e) if e.status() == Some(404) => {
                self.skip(RecordKind::Attachment, n);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let zephyr_owner = first.zephyr_owner();
        let names: HashMap<u64, String> = match &zephyr_owner {
            Some(owner) => self
                .zephyr
                .attachments(owner)?
                .into_iter()
                .filter_map(|a| {
                    let id = a.id?;
                    let name = a.name.filter(|n| !n.is_empty());
                    // Named as the migration names a nameless file.
                    Some((id, name.unwrap_or_else(|| format!("attachment-{id}"))))
                })
                .collect(),
            None => HashMap::new(),
        };
        let key = |file: &Attached<'_>| match file.file {
            Some(id) => format!("{}/{id}", file.owner),
            None => file.marker(),
        };
        let claimed: std::collections::HashSet<u64> = files.iter().map(|(_, t)| t.id).collect();
        for (file, target) in files {
            self.check(RecordKind::Attachment, 1);
            let id = file.file.unwrap_or_default();
            let name = names.get(&id).map(String::as_str);
            // By name only among files no other journaled file claims: two
            // files of one owner may share a name.
            let found = listed.iter().find(|a| a.id == target.id).or_else(|| {
                let n = name?;
                listed
                    .iter()
                    .find(|a| a.name == n && !claimed.contains(&a.id))
            });
            let Some(found) = found else {
                let expected = format!("{} on {object:?}", name.unwrap_or("a file"));
                let actual = format!("attachment {} not listed", target.id);
                self.differ(Difference::new(
                    RecordKind::Attachment,
                    DiffKind::Missing,
                    key(file),
                    expected,
                    actual,
                ));
                continue;
            };
            if let Some(name) = name.filter(|n| *n != found.name) {
                let d = Difference::mismatch(
                    RecordKind::Attachment,
                    key(file),
                    "name",
                    name,
                    &found.name,
                );
                self.differ(d);
                continue;
            }
            if let Some(owner) = &zephyr_owner {
                self.compare_size(owner, id, object, found, &key(file))?;
            }
        }
        Ok(())
    }

    /// Zephyr's announced length of file `id` against the bytes qTest holds.
    fn compare_size(
        &mut self,
        owner: &crate::zephyr::AttachmentOwner,
        id: u64,
        object: AttachmentTarget,
        found: &QtestAttachment,
        key: &str,
    ) -> crate::Result<()> {
        let expected = match self.zephyr.download(owner, id, None) {
            // Only the header is wanted: the body is dropped unread.
            Ok(download) => download.content_length(),
            // Gone from Zephyr since: nothing to compare with.
            Err(e) if e.status() == Some(404) => None,
            Err(e) => return Err(e),
        };
        let Some(expected) = expected else {
            return Ok(());
        };
        // Counting one byte past the expected size tells a different file
        // without reading a bigger one whole.
        let actual = self.qtest.attachment_size(object, found.id, expected)?;
        if actual != expected {
            let d = Difference::mismatch(
                RecordKind::Attachment,
                key,
                "size",
                format!("{expected} bytes"),
                format!("{actual} bytes"),
            );
            self.differ(d);
        }
        Ok(())
    }
}
