//! Files attached to Zephyr records: the list of an owner's attachments
//! (`{"attachments":[{"id","name"}]}`, both fields optional in the spec) and
//! each file's bytes, streamed. Cases, cycles, executions and the steps of
//! cases and executions have them.

use serde::Deserialize;

use super::ZephyrClient;
use crate::error::Result;
use crate::http::{ApiRequest, Streamed};

/// What a Zephyr attachment hangs on: its path under the API root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentOwner {
    /// A test case, by key.
    Case(String),
    /// A test cycle, by id or key.
    Cycle(String),
    /// A test execution, by id or key.
    Execution(String),
    /// A step of a test case: the case's key and the step's id.
    CaseStep(String, u64),
    /// A step result of a test execution: the execution's id or key and
    /// the step result's id.
    ExecutionStep(String, u64),
}

impl AttachmentOwner {
    fn path(&self) -> String {
        match self {
            AttachmentOwner::Case(key) => format!("/testcases/{key}/attachments"),
            AttachmentOwner::Cycle(key) => format!("/testcycles/{key}/attachments"),
            AttachmentOwner::Execution(key) => format!("/testexecutions/{key}/attachments"),
            // Derived like the others from the spec's parameters (the spec
            // names the operations, "Get test case step attachments" and
            // "Get step attachment", but not their paths).
            AttachmentOwner::CaseStep(key, step) => {
                format!("/testcases/{key}/teststeps/{step}/attachments")
            }
            AttachmentOwner::ExecutionStep(key, step) => {
                format!("/testexecutions/{key}/teststeps/{step}/attachments")
            }
        }
    }
}

impl AttachmentOwner {
    /// Whether Zephyr's 404 `e` to the listing of this owner's files means
    /// it has none. For a step the spec gives two 404s: "no attachment
    /// metadata" (none), and "the step does not exist" for an id the
    /// migration read from Zephyr itself, which means the listing wants
    /// another id than it got (the spec names the execution step's id in one
    /// place and the case step's in another): taking that as "none" would
    /// lose every step's files without a word, so only a 404 that speaks of
    /// attachments is taken as none, and any other is a failure, reported
    /// and retried. A case, cycle or execution was just listed, so its 404
    /// is "none".
    fn none_on_404(&self, e: &crate::error::Error) -> bool {
        match (self, e) {
            (
                AttachmentOwner::CaseStep(..) | AttachmentOwner::ExecutionStep(..),
                crate::error::Error::Status(status),
            ) => status.body.to_ascii_lowercase().contains("attachment"),
            (AttachmentOwner::CaseStep(..) | AttachmentOwner::ExecutionStep(..), _) => false,
            _ => true,
        }
    }
}

/// One attachment as listed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Attachment {
    /// Its id (the spec makes it optional; one without can't be downloaded).
    #[serde(default)]
    pub id: Option<u64>,
    /// Its file name.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct AttachmentList {
    #[serde(default)]
    attachments: Option<Vec<Attachment>>,
}

impl ZephyrClient {
    /// The attachments of `owner`; none when it has none (404 included: the
    /// spec answers 404 for "exists but has no attachment metadata"; for a
    /// step, only a 404 whose message speaks of attachments: the other 404
    /// says Zephyr doesn't know the step id, which is a failure).
    pub fn attachments(&self, owner: &AttachmentOwner) -> Result<Vec<Attachment>> {
        match self
            .api()
            .json::<AttachmentList>(&ApiRequest::get(&owner.path()))
        {
            Ok(list) => Ok(list.attachments.unwrap_or_default()),
            Err(e) if e.status() == Some(404) && owner.none_on_404(&e) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The bytes of attachment `id` of `owner`, as they arrive. `up_to`:
    /// the most bytes the caller reads, which gives the transfer its time
    /// (see [`ApiClient::open_stream`](crate::http::ApiClient::open_stream)):
    /// the length is only announced once the request is out, and a big file
    /// must not be cut off by the limit of a JSON call. A redirect to where
    /// the bytes live (a storage host, a pre-signed URL) is followed up to
    /// the client's `max_redirects`, the Zephyr token sent only to hops on
    /// Zephyr's own origin (see [`ApiClient::open_stream`](crate::http::ApiClient::open_stream)).
    pub fn download(
        &self,
        owner: &AttachmentOwner,
        id: u64,
        up_to: Option<u64>,
    ) -> Result<Streamed> {
        let request = ApiRequest::get(&format!("{}/{id}", owner.path())).header("Accept", "*/*");
        self.api().open_stream(&request, up_to)
    }
}
