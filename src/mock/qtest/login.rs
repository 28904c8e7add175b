//! The client authentication of qTest's `POST /oauth/token`: `Authorization: Basic` with the
//! base64 of `<site name>:` for a password login (`qtest-api:` for a refresh).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::mock::server::{Request, Response};

/// `Ok` when the request carries `Basic base64("<site>:")`; else the 401 qTest answers.
pub(crate) fn check_site(req: &Request, site: &str) -> Result<(), Response> {
    let Some(value) = req.header("authorization") else {
        return Err(refuse(
            "unauthorized",
            "Full authentication is required to access this resource",
        ));
    };
    let decoded = value
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|d| d.strip_suffix(':')) {
        Some(name) if name.eq_ignore_ascii_case(site) => Ok(()),
        _ => Err(refuse("invalid_client", "Bad client credentials")),
    }
}

fn refuse(error: &str, description: &str) -> Response {
    Response::json(
        401,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}
