//! Zephyr Scale Cloud v2, the migration's source: serde models of what a
//! migration reads, and [`ZephyrClient`], which reads them with paging done
//! right.

mod client;

#[cfg(test)]
pub(crate) mod examples;
pub mod models;
mod page;

pub use client::{DEFAULT_PAGE_SIZE, ZephyrClient};
pub use models::{
    CallToTest, CaseVersion, CustomFields, ErrorBody, ExecutionStep, ExecutionStepInline, Folder,
    FolderType, InlineStep, Page, PageRequest, Priority, Project, Ref, ScriptLocation, ScriptType,
    SelfLink, Status, StepParameter, TestCase, TestCycle, TestExecution, TestScript, TestStep,
    UserRef,
};
