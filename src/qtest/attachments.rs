//! Files on qTest objects: list an object's attachments, upload one from a
//! reader (`POST …/blob-handles`, `File-Name` and `Content-Type` headers, the
//! raw bytes as body), and count the bytes of one (to compare sizes, since the
//! listing carries none).

use std::io::Read;

use serde::Deserialize;

use super::QtestClient;
use crate::error::{Error, Result};
use crate::http::{ApiRequest, Streamed};

/// The qTest objects that take attachments and that a migration fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentTarget {
    /// A test case (`test-cases/{id}`).
    TestCase(u64),
    /// A test log (`test-logs/{id}`).
    TestLog(u64),
    /// A test step (`test-steps/{id}`).
    TestStep(u64),
    /// A test step log (`test-step-logs/{id}`), a step's result in a test log.
    TestStepLog(u64),
}

impl AttachmentTarget {
    fn segment(self) -> String {
        match self {
            AttachmentTarget::TestCase(id) => format!("test-cases/{id}"),
            AttachmentTarget::TestLog(id) => format!("test-logs/{id}"),
            AttachmentTarget::TestStep(id) => format!("test-steps/{id}"),
            AttachmentTarget::TestStepLog(id) => format!("test-step-logs/{id}"),
        }
    }
}

/// An attachment as qTest lists or creates it (`AttachmentResource`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct QtestAttachment {
    /// Its id.
    pub id: u64,
    /// Its file name.
    #[serde(default)]
    pub name: String,
    /// Its content type.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl QtestClient {
    /// The attachments of `target`.
    pub fn attachments(&self, target: AttachmentTarget) -> Result<Vec<QtestAttachment>> {
        let path = format!(
            "/projects/{}/{}/attachments",
            self.project_id(),
            target.segment()
        );
        self.api().get_json(&path, &[])
    }

    /// The size of attachment `id` of `target` (the listing has none), as
    /// far as telling it from `up_to` goes: the length the download
    /// announces (its body left unread), else its bytes counted as they
    /// arrive, never held, up to one past `up_to` (a bigger file is not the
    /// one looked for, and isn't read whole to say so).
    pub fn attachment_size(&self, target: AttachmentTarget, id: u64, up_to: u64) -> Result<u64> {
        let path = format!(
            "/projects/{}/{}/attachments/{id}",
            self.project_id(),
            target.segment()
        );
        let request = ApiRequest::get(&path).header("Accept", "*/*");
        let past = up_to.saturating_add(1);
        let mut body: Streamed = self.api().open_stream(&request, Some(past))?;
        if let Some(n) = body.content_length() {
            return Ok(n);
        }
        std::io::copy(&mut (&mut body).take(past), &mut std::io::sink())
            .map_err(|e| body.read_error(e))
    }

    /// Uploads `len` bytes (when known) of `body` to `target` as `name`. One
    /// attempt, never repeated (see [`ApiClient::send_stream`](crate::http::ApiClient::send_stream)):
    /// resolve an unknown outcome by looking the file up.
    pub fn upload(
        &self,
        target: AttachmentTarget,
        name: &str,
        content_type: &str,
        body: &mut dyn Read,
        len: Option<u64>,
    ) -> Result<QtestAttachment> {
        let path = format!(
            "/projects/{}/{}/blob-handles",
            self.project_id(),
            target.segment()
        );
        let request = ApiRequest::post(&path)
            .header("File-Name", &header_safe(name))
            .header("Content-Type", content_type);
        let reply = self.api().send_stream(&request, body, len)?;
        serde_json::from_slice(reply.body()).map_err(|e| {
            Error::io(
                format!("decoding the answer to an upload of {name}"),
                std::io::Error::other(e),
            )
        })
    }
}

/// A file name as a header value: control characters and non-ASCII
/// percent-encoded (header values are ASCII), and spaces at either end
/// (a header value loses them on the way), the rest as is.
pub(crate) fn header_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let start = name.len() - name.trim_start_matches(' ').len();
    let end = name.trim_end_matches(' ').len();
    for (at, c) in name.char_indices() {
        let edge = c == ' ' && (at < start || at >= end);
        if c.is_ascii() && !c.is_ascii_control() && c != '%' && !edge {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_become_ascii_header_values() {
        assert_eq!(header_safe("report 1.png"), "report 1.png");
        assert_eq!(header_safe("Prüfung.pdf"), "Pr%C3%BCfung.pdf");
        assert_eq!(header_safe("a\nb%"), "a%0Ab%25");
        assert_eq!(header_safe(" a b.txt  "), "%20a b.txt%20%20");
        assert_eq!(header_safe("  "), "%20%20");
    }
}
