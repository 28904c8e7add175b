//! qTest Manager v3, the migration's target: serde models of what a migration
//! reads and the bodies it sends, [`QtestClient`] and the password login.

mod attachments;
mod client;
mod envelope;
mod login;
pub mod models;

pub(crate) use attachments::header_safe;
pub use attachments::{AttachmentTarget, QtestAttachment};
pub use client::{PAGE_SIZE, QtestClient};
pub use login::QtestLogin;
pub use models::{
    AllowedValue, CasePermissions, CycleParent, ErrorBody, ExecutionStatus, Field, IdRef, Link,
    Module, NewModule, NewTestCase, NewTestCycle, NewTestLog, NewTestRun, NewTestStep,
    NewTestStepLog, OAuthToken, Paged, Property, PropertyValue, SearchRequest, SearchResponse,
    StatusRef, TestCase, TestCycle, TestLog, TestRun, TestStep, TestStepLog, TestSuite,
    UserProfile, own_steps,
};
