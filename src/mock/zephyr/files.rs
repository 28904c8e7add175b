//! The storage host behind the Zephyr mock's downloads, with
//! [`MockOptions::attachments_redirect`](crate::mock::MockOptions::attachments_redirect):
//! a second origin that serves the files at pre-signed URLs, as a file API
//! that hands its bytes to S3 or a CDN does. Zephyr answers a download with
//! a 302 to `http://127.0.0.1:PORT/files/{id}/{size}?response-content-type=…&X-Amz-Algorithm=…&X-Amz-Credential=…&X-Amz-Expires=300&X-Amz-Signature=…`;
//! the host serves the bytes to a request whose signature matches, and no
//! other state (the size and type travel signed in the link).
//!
//! Like S3, it refuses a request that carries an `Authorization` header
//! besides the signature (400), and a wrong signature (403); its error
//! bodies quote the signature sent (as S3's `SignatureDoesNotMatch` does),
//! so a client that prints them leaks it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use super::attachments::{MockFile, file_vec};
use crate::mock::server::{Answer, ConnContext, Handler, Request, Response};
use crate::redact::encode_component;

/// How long a link claims to be valid, in seconds (never checked: the
/// mock's clock is the test's).
const EXPIRES: u32 = 300;

/// The storage host: its signing key, origin and counters.
pub(crate) struct FileHost {
    key: ring::hmac::Key,
    /// The access key id a link names (`X-Amz-Credential`).
    credential: String,
    /// `http://127.0.0.1:PORT`, known once the server is bound.
    pub origin: OnceLock<String>,
    /// Requests served, whatever the answer.
    pub requests: AtomicU64,
    /// Requests that came with an `Authorization` header (refused).
    pub with_authorization: AtomicU64,
    /// How many of the next requests are refused as expired links.
    pub expire: AtomicU64,
}

impl FileHost {
    /// A host whose signing key and access key come from `seed`.
    pub(crate) fn new(seed: u64) -> FileHost {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x51e7);
        let secret: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
        FileHost {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            credential: format!(
                "AKIAMOCK{:012X}/us-east-1/s3/aws4_request",
                rng.u64(..) >> 16
            ),
            origin: OnceLock::new(),
            requests: AtomicU64::new(0),
            with_authorization: AtomicU64::new(0),
            expire: AtomicU64::new(0),
        }
    }

    /// The pre-signed URL of `file`.
    pub(crate) fn link(&self, file: &MockFile) -> String {
        let origin = self.origin.get().map_or("", String::as_str);
        let path = format!("/files/{}/{}", file.id, file.size);
        format!(
            "{origin}{path}?response-content-type={}&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential={}&X-Amz-Expires={EXPIRES}&X-Amz-SignedHeaders=host\
             &X-Amz-Signature={}",
            encode_component(&file.content_type),
            encode_component(&self.credential),
            self.sign(&path, &file.content_type),
        )
    }

    /// The signature of a link to `path` served as `content_type`.
    fn sign(&self, path: &str, content_type: &str) -> String {
        let tag = ring::hmac::sign(&self.key, format!("{path}\n{content_type}").as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn answer(&self, req: &Request) -> Response {
        let s3_error = |status: u16, code: &str, message: &str| {
            let provided = req.query_param("X-Amz-Signature").unwrap_or("");
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
                 <Message>{message}</Message><SignatureProvided>{provided}</SignatureProvided>\
                 <Resource>{}</Resource></Error>",
                req.target
            );
            Response::bytes(status, "application/xml", body.into_bytes())
        };
        if req.method != "GET" && req.method != "HEAD" {
            return s3_error(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed",
            );
        }
        if req.header("authorization").is_some() {
            self.with_authorization.fetch_add(1, SeqCst);
            return s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                 Signature query string parameter or the Authorization header should be specified",
            );
        }
        let content_type = req.query_param("response-content-type").unwrap_or("");
        let signed =
            req.query_param("X-Amz-Signature") == Some(&self.sign(&req.path, content_type));
        let file = match req.path.split('/').collect::<Vec<_>>().as_slice() {
            ["", "files", id, size] => id.parse::<u64>().ok().zip(size.parse::<u64>().ok()),
            _ => None,
        };
        let (Some((id, size)), true) = (file, signed) else {
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            );
        };
        if self
            .expire
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return s3_error(403, "AccessDenied", "Request has expired");
        }
        Response::bytes(200, content_type, file_vec(id, size))
    }
}

impl Handler for FileHost {
    fn handle(&self, req: Request, _: &ConnContext) -> Answer {
        self.requests.fetch_add(1, SeqCst);
        self.answer(&req).into()
    }
}
