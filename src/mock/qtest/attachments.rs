//! Attachments on the qTest mock: `POST …/{objectType}/{id}/blob-handles`
//! (raw body, `File-Name` and `Content-Type` headers) and the lists and
//! downloads under `…/attachments`. The mock keeps each file's name, type,
//! size and SHA-256 (so tests compare contents without it holding big files),
//! and the bytes of files up to [`KEPT_BYTES`]; a bigger one downloads as
//! zeros of its size.
//!
//! An upload goes through the write journal like any write, its body
//! recorded as `{name, content_type, size, sha256}`, so a persisted state
//! replays it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body;
use super::state::{QtestState, by_id};
use super::write::{Applied, Refusal, Write, bad, missing, path_id};
use crate::mock::server::{Request, Response};

/// Uploads up to this size are kept whole, to be downloaded again.
pub const KEPT_BYTES: usize = 1024 * 1024;

/// One uploaded file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Attachment id.
    pub id: u64,
    /// `test-cases`, `test-logs`, `test-steps` or `test-step-logs`.
    pub object_type: String,
    /// The object's id.
    pub object_id: u64,
    /// `File-Name` as sent.
    pub name: String,
    /// `Content-Type` as sent.
    pub content_type: String,
    /// Bytes received.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// The bytes, for files up to [`KEPT_BYTES`].
    #[serde(skip)]
    pub bytes: Option<Vec<u8>>,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    // Reading a slice can't fail.
    sha256_of(bytes).unwrap_or_default()
}

/// Lower-case hex SHA-256 of what `reader` yields, read in small pieces.
pub fn sha256_of(mut reader: impl std::io::Read) -> std::io::Result<String> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The journal body of an upload: what is kept of it.
pub(crate) fn descriptor(req: &Request) -> Result<Value, Response> {
    let refuse = |m: &str| Err(super::api::error(400, m));
    let Some(name) = req.header("File-Name").filter(|n| !n.is_empty()) else {
        return refuse("File-Name header is required");
    };
    let Some(content_type) = req.header("Content-Type").filter(|n| !n.is_empty()) else {
        return refuse("Content-Type header is required");
    };
    Ok(json!({
        "name": name,
        "content_type": content_type,
        "size": req.body.len(),
        "sha256": sha256_hex(&req.body),
    }))
}

/// Whether `object_type`/`id` names an object of `st` that takes attachments.
fn object_exists(st: &QtestState, object_type: &str, id: u64) -> bool {
    match object_type {
        "test-cases" => st.test_case(id).is_some(),
        "test-logs" => by_id(&st.test_logs, id).is_some(),
        "test-steps" => st
            .test_cases
            .iter()
            .any(|c| c.test_steps.iter().any(|s| s.id == id)),
        "test-step-logs" => {
            id != 0
                && st
                    .test_logs
                    .iter()
                    .any(|l| l.test_step_logs.iter().any(|s| s.id == id))
        }
        _ => false,
    }
}

/// Records an upload described by `w.body` (see [`descriptor`]).
pub(crate) fn upload(
    st: &mut QtestState,
    w: &Write,
    object_type: &str,
    object: &str,
) -> Result<Applied, Refusal> {
    let object_id = path_id(object)?;
    if !object_exists(st, object_type, object_id) {
        return Err(missing("Object", object_id));
    }
    let o = w.obj()?;
    let name = body::required_str(o, "name").map_err(bad)?;
    let content_type = body::required_str(o, "content_type").map_err(bad)?;
    let size = o.get("size").and_then(Value::as_u64).unwrap_or(0);
    let sha256 = body::opt_str(o, "sha256").map_err(bad)?;
    let (id, _) = st.next_ids("AT");
    st.attachments.push(StoredFile {
        id,
        object_type: object_type.to_string(),
        object_id,
        name,
        content_type,
        size,
        sha256,
        bytes: None,
    });
    Ok(Applied {
        status: 201,
        kind: "attachment",
        id,
    })
}

/// The `AttachmentResource` of `f`.
pub(crate) fn render(f: &StoredFile, base: &str) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "content_type": f.content_type,
        "web_url": format!("{base}/{}/{}/attachments/{}", f.object_type, f.object_id, f.id),
        "artifact_id": f.object_id,
        "links": [],
    })
}

/// `GET …/{objectType}/{id}/attachments[/{attachmentId}]`; `None` for other paths.
pub(crate) fn read(st: &QtestState, seg: &[&str], base: &str) -> Option<Response> {
    let (object_type, object, rest) = match seg {
        [t, id, "attachments", rest @ ..] => (*t, *id, rest),
        _ => return None,
    };
    let Ok(object_id) = object.parse::<u64>() else {
        return Some(super::api::error(404, format!("'{object}' is not an id")));
    };
    if !object_exists(st, object_type, object_id) {
        return Some(super::api::error(
            404,
            format!("Object {object_id} not found"),
        ));
    }
    let mut files = st
        .attachments
        .iter()
        .filter(|f| f.object_type == object_type && f.object_id == object_id);
    Some(match rest {
        [] => Response::json(200, &Value::Array(files.map(|f| render(f, base)).collect())),
        [id] => match files.find(|f| f.id.to_string() == *id) {
            Some(f) => {
                let len = usize::try_from(f.size).unwrap_or(0);
                let bytes = f.bytes.clone().unwrap_or_else(|| vec![0; len]);
                Response::bytes(200, &f.content_type, bytes)
            }
            None => super::api::error(404, format!("Attachment {id} not found")),
        },
        _ => super::api::error(404, "Not found"),
    })
}

/// Keeps the bytes of the upload just applied, when small enough.
pub(crate) fn keep_bytes(st: &mut QtestState, id: u64, req: &Request) {
    if req.body.len() <= KEPT_BYTES
        && let Some(f) = st.attachments.iter_mut().find(|f| f.id == id)
    {
        f.bytes = Some(req.body.clone());
    }
}
