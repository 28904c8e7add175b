//! Errors of the migration layer.
//!
//! [`MigrateError`] is what setting up and recording a migration can fail at
//! (configuration, lookups, journal, report); [`TransformError`] is one record
//! that can't be mapped, which becomes a `failed` row of the report while the
//! run goes on.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::record::RecordKind;

/// What setting up or recording a migration can fail at.
#[derive(Debug)]
#[non_exhaustive]
pub enum MigrateError {
    /// A `[mapping]` setting is invalid; `key` names it as written in the
    /// config file, e.g. `mapping.priority."High"`.
    Config {
        /// The setting.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The lookup lists can't support a migration, e.g. qTest has no
    /// `Zephyr Key` field.
    Catalog {
        /// What is missing or wrong.
        message: String,
    },
    /// Another run holds the journal's lock (the binary exits with 5).
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as the lock file says.
        holder: super::lock::LockHolder,
        /// How long this run waited for it (`--wait`), if it did.
        waited: Option<std::time::Duration>,
    },
    /// A journal line other than the last can't be read.
    CorruptJournal {
        /// The journal.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record key can't be written to the journal (it contains a line break).
    InvalidKey {
        /// The key.
        key: String,
    },
    /// Local I/O failed.
    Io {
        /// What was being done, with the path.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// A record can't be mapped.
    Transform(TransformError),
    /// An API call failed.
    Http(crate::Error),
    /// The run stopped before any work: a service was down for longer than
    /// the outage budget (`--max-outage`) while the set-up waited for it. A
    /// re-run once it is back helps (the binary exits 3).
    Stopped {
        /// Which service, and how long it was down.
        message: String,
    },
    /// The project doesn't exist on a service (or the token can't see it).
    UnknownProject {
        /// `Zephyr Scale` or `qTest`.
        service: &'static str,
        /// The key or id asked for.
        project: String,
    },
}

impl MigrateError {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        MigrateError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        MigrateError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether another run holds the journal's lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, MigrateError::Locked { .. })
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Config { key, message } => write!(f, "invalid `{key}`: {message}"),
            MigrateError::Catalog { message } => write!(f, "cannot migrate: {message}"),
            MigrateError::Locked {
                path,
                holder,
                waited,
            } => super::lock::explain(f, path, holder, *waited),
            MigrateError::CorruptJournal { path, line, reason } => {
                write!(f, "journal {} line {line}: {reason}", path.display())
            }
            MigrateError::InvalidKey { key } => {
                write!(f, "record key {key:?} contains a line break")
            }
            MigrateError::Io { context, .. } => f.write_str(context),
            MigrateError::Transform(e) => e.fmt(f),
            MigrateError::Http(e) => e.fmt(f),
            MigrateError::Stopped { message } => write!(f, "migration stopped: {message}"),
            MigrateError::UnknownProject { service, project } => write!(
                f,
                "{service} has no project {project:?}, or the token can't see it"
            ),
        }
    }
}

impl std::error::Error for MigrateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MigrateError::Io { source, .. } => Some(source),
            MigrateError::Transform(e) => Some(e),
            MigrateError::Http(e) => e.source(),
            _ => None,
        }
    }
}

impl From<crate::Error> for MigrateError {
    fn from(e: crate::Error) -> Self {
        MigrateError::Http(e)
    }
}

impl From<TransformError> for MigrateError {
    fn from(e: TransformError) -> Self {
        MigrateError::Transform(e)
    }
}

/// One record that can't be mapped: which record, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransformError {
    /// The record's kind.
    pub kind: RecordKind,
    /// The record's source key (see [`RecordKind`]).
    pub key: String,
    /// Why it can't be mapped.
    pub reason: Reason,
}

impl TransformError {
    pub(crate) fn new(kind: RecordKind, key: impl Into<String>, reason: Reason) -> Self {
        Self {
            kind,
            key: key.into(),
            reason,
        }
    }

    /// A listed record that can't be read, named as its kind's records are
    /// (cases by key, the rest by id), by `#position` when it has no name.
    pub(crate) fn unreadable(kind: RecordKind, record: &crate::zephyr::BadRecord) -> Self {
        let key = match kind {
            RecordKind::Case => record.name_by_key(),
            _ => record.name_by_id(),
        };
        let record = Box::new(record.clone());
        Self::new(kind, key, Reason::Unreadable { record })
    }
}

/// Why a record can't be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A Zephyr id that the lookup lists don't know, e.g. a priority id.
    UnknownZephyrId {
        /// What the id names, e.g. `priority`.
        what: &'static str,
        /// The id.
        id: u64,
    },
    /// A qTest choice field has no allowed value with the mapped label.
    NoAllowedValue {
        /// The field's label.
        field: String,
        /// The label looked for.
        value: String,
    },
    /// A required qTest field gets no value: Zephyr has none for it, and the
    /// field has no default.
    RequiredField {
        /// The field's label.
        field: String,
    },
    /// A value can't be written into a qTest field that must have one.
    FieldUnfit {
        /// The field's label and type.
        field: String,
        /// The value, shortened.
        value: String,
        /// Why it doesn't fit.
        why: String,
    },
    /// qTest has no execution status with the mapped name.
    NoExecutionStatus {
        /// The name looked for.
        name: String,
    },
    /// A record this one belongs under was not migrated (yet).
    ParentNotMigrated {
        /// Its kind.
        kind: RecordKind,
        /// Its key.
        key: String,
    },
    /// The record needs a configured default container that is not available.
    NoDefault {
        /// Which default, e.g. `mapping.default_module`.
        setting: &'static str,
    },
    /// A date can't be parsed.
    BadDate {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A required value is missing.
    Missing {
        /// The field.
        field: &'static str,
    },
    /// The executed case can't be read from `testCase.self`.
    BadCaseLink {
        /// The link, if any.
        link: Option<String>,
    },
    /// A folder's parent does not exist.
    OrphanFolder {
        /// The missing parent's id.
        parent_id: u64,
    },
    /// A folder is its own ancestor.
    FolderCycle {
        /// The folder ids around the loop.
        path: Vec<u64>,
    },
    /// An ancestor folder can't be migrated, so this folder can't either.
    AncestorFailed {
        /// The failing ancestor's id.
        ancestor_id: u64,
    },
    /// Two different folders have the same id.
    DuplicateFolder,
    /// The record's JSON can't be read (a field the spec requires is missing,
    /// or a value has the wrong type); the rest of its listing was read.
    Unreadable {
        /// Where it is, why it can't be read, and an excerpt.
        record: Box<crate::zephyr::BadRecord>,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UnknownZephyrId { what, id } => write!(f, "unknown Zephyr {what} id {id}"),
            Reason::NoAllowedValue { field, value } => {
                write!(f, "qTest field `{field}` has no value `{value}`")
            }
            Reason::RequiredField { field } => write!(
                f,
                "qTest field `{field}` is required, Zephyr has no value for it and the field no default"
            ),
            Reason::FieldUnfit { field, value, why } => {
                write!(f, "qTest field `{field}` can't take {value:?}: {why}")
            }
            Reason::NoExecutionStatus { name } => {
                write!(f, "qTest has no execution status `{name}`")
            }
            Reason::ParentNotMigrated { kind, key } => write!(f, "{kind} {key} is not migrated"),
            Reason::NoDefault { setting } => write!(f, "no target for `{setting}`"),
            Reason::BadDate { field, value } => write!(f, "bad date in `{field}`: {value:?}"),
            Reason::Missing { field } => write!(f, "`{field}` is missing"),
            Reason::BadCaseLink { link: Some(link) } => {
                write!(f, "can't read the case key from `{link}`")
            }
            Reason::BadCaseLink { link: None } => f.write_str("the executed case has no link"),
            Reason::OrphanFolder { parent_id } => write!(f, "parent folder {parent_id} is missing"),
            Reason::FolderCycle { path } => {
                let ids: Vec<String> = path.iter().map(u64::to_string).collect();
                write!(f, "folders form a loop: {}", ids.join(" -> "))
            }
            Reason::AncestorFailed { ancestor_id } => {
                write!(f, "ancestor folder {ancestor_id} can't be migrated")
            }
            Reason::DuplicateFolder => f.write_str("two different folders have this id"),
            Reason::Unreadable { record } => write!(f, "{record}"),
        }
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.key, self.reason)
    }
}

impl std::error::Error for TransformError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_the_record_and_keep_causes() {
        let e = TransformError::new(
            RecordKind::Case,
            "PROJ-T1",
            Reason::UnknownZephyrId {
                what: "priority",
                id: 7,
            },
        );
        assert_eq!(e.to_string(), "case PROJ-T1: unknown Zephyr priority id 7");
        let wrapped = MigrateError::from(e.clone());
        assert_eq!(wrapped.to_string(), e.to_string());
        assert!(wrapped.source().is_some());
        let io = MigrateError::io("reading x", io::Error::other("boom"));
        assert_eq!(io.source().map(|s| s.to_string()), Some("boom".into()));
        let locked = MigrateError::Locked {
            path: "j.csv.lock".into(),
            holder: super::super::lock::LockHolder {
                pid: Some(42),
                ..Default::default()
            },
            waited: None,
        };
        assert!(locked.is_locked() && locked.to_string().contains("pid 42"));
        let cycle = Reason::FolderCycle {
            path: vec![1, 2, 1],
        };
        assert_eq!(cycle.to_string(), "folders form a loop: 1 -> 2 -> 1");
    }
}
