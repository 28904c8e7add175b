//! Zephyr Scale Cloud v2, the migration's source: serde models of what a
//! migration reads, and [`ZephyrClient`], which reads them with paging done
//! right and record by record ([`Record`], [`BadRecord`]).

mod attachments;
mod client;
mod links;

#[cfg(test)]
pub(crate) mod examples;
pub mod models;
mod page;
mod record;

pub use attachments::{Attachment, AttachmentOwner};
pub use client::{DEFAULT_PAGE_SIZE, ExecutionFilter, MAX_CURSOR_LIMIT, ZephyrClient};
pub use links::{CycleLink, Environment, IssueLink, Links, TestPlan, WebLink};
pub use models::{
    CallToTest, CaseVersion, CursorPage, CustomFields, ErrorBody, ExecutionStep,
    ExecutionStepInline, Folder, FolderType, InlineStep, LinkRef, Page, PageRequest, Priority,
    Project, Ref, ScriptLocation, ScriptType, SelfLink, Status, StepParameter, TestCase, TestCycle,
    TestExecution, TestScript, TestStep, UserRef,
};
pub use record::{BadRecord, Record, split};
