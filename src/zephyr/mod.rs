//! Zephyr Scale Cloud v2, the migration's source: serde models of what a
//! migration reads (the HTTP client joins them later).

pub(crate) mod de;
#[cfg(test)]
pub(crate) mod examples;
pub mod models;
mod page;

pub use models::{
    CallToTest, CaseVersion, CustomFields, ErrorBody, ExecutionStep, ExecutionStepInline, Folder,
    FolderType, InlineStep, Page, PageRequest, Priority, Project, Ref, ScriptLocation, ScriptType,
    SelfLink, Status, StepParameter, TestCase, TestCycle, TestExecution, TestScript, TestStep,
    UserRef,
};
