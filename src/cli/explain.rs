//! Errors in words that lead to the fix: TLS failures described instead of
//! rustls's debug names, and the variable to check when a service rejects
//! the credentials.

use rustls::{CertificateError, Error as TlsError};

use super::error::CliError;
use crate::error::Error;
use crate::migrate::{Endpoints, QtestAuth};

/// The error and its causes on one line, TLS failures in words.
pub(super) fn chain(e: &CliError) -> String {
    let mut text = crate::error::error_chain(e);
    if let Some(tls) = find_tls(e) {
        let (words, _) = describe(tls);
        text = text.replace(&tls.to_string(), &words);
    }
    text
}

/// What to do about a TLS failure anywhere in `e`'s causes.
pub(super) fn tls_hint(e: &CliError) -> Option<String> {
    find_tls(e).map(|tls| describe(tls).1.to_string())
}

/// Which setting holds the credentials a service rejected (401 or 403).
pub(super) fn auth_hint(e: &CliError, endpoints: &Endpoints) -> Option<String> {
    let Some(Error::Status(status)) = e.etl() else {
        return None;
    };
    if !matches!(status.status, 401 | 403) {
        return None;
    }
    let origin_of = |url: &str| crate::pool::Origin::parse(url).ok().map(|o| o.to_string());
    let at = Some(status.at.origin.clone());
    let what = if status.status == 401 {
        "rejected the credentials"
    } else {
        "refused access (403): the credentials work but may not see the project"
    };
    if at == origin_of(&endpoints.zephyr_url) {
        return Some(format!(
            "Zephyr Scale {what}; check ZEPHYR_TOKEN (or `token` in [zephyr] of the config file): \
             an API access token from Zephyr Scale's \"API Access Tokens\" page"
        ));
    }
    if at == origin_of(&endpoints.qtest_url) {
        let variable = match endpoints.qtest_auth {
            QtestAuth::Token(_) => {
                "QTEST_TOKEN (or `token` in [qtest] of the config file): a bearer token \
                 from qTest's \"API & SDK\" page"
            }
            QtestAuth::Login { .. } => {
                "QTEST_USERNAME and QTEST_PASSWORD (or `username`/`password` in [qtest] of \
                 the config file)"
            }
        };
        return Some(format!("qTest {what}; check {variable}"));
    }
    None
}

/// The first rustls error among `e`'s causes, looking inside ureq's and
/// std's wrappers (which don't expose it through `source()`).
fn find_tls(e: &CliError) -> Option<&TlsError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = match e.etl() {
        Some(etl) => Some(etl),
        None => Some(e),
    };
    while let Some(err) = cur {
        if let Some(found) = tls_in(err) {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

fn tls_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a TlsError> {
    if let Some(tls) = err.downcast_ref::<TlsError>() {
        return Some(tls);
    }
    let inner: &(dyn std::error::Error + 'static) = match err.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Other(boxed)) => boxed.as_ref(),
        Some(ureq::Error::Io(io)) => io.get_ref()?,
        _ => match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref()?,
            None => return None,
        },
    };
    let mut cur = Some(inner);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        cur = e.source();
    }
    None
}

/// A TLS failure in words, and what to do about it.
fn describe(e: &TlsError) -> (String, &'static str) {
    const TRUST_CA: &str = "if the server uses a private CA, trust it with --ca-file PEM \
         (ETLPOOL_CA_FILE, or ca_file in [pool.tls])";
    let cert = |what: &str| format!("the server's certificate {what}");
    match e {
        TlsError::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => (
                cert("is signed by a certificate authority this machine does not trust"),
                TRUST_CA,
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                cert("has expired"),
                "renew the server's certificate, or check this machine's clock",
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                (cert("is not valid yet"), "check this machine's clock")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    cert("is for another host name"),
                    "use the host name the certificate names in the URL (not an IP address or alias)",
                )
            }
            CertificateError::Revoked => {
                (cert("was revoked"), "the server needs a new certificate")
            }
            CertificateError::BadSignature => (
                cert("has a signature that does not verify"),
                "the certificate chain is broken or tampered with; check the server's configuration",
            ),
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => (
                cert(
                    "is a CA certificate (CA:TRUE), used as the server's own, as a self-signed \
                      certificate made with CA:TRUE is",
                ),
                "give the server a certificate signed by that CA (CA:FALSE), and trust the CA \
                 with --ca-file PEM",
            ),
            other => (cert(&format!("was rejected ({other:?})")), TRUST_CA),
        },
        TlsError::AlertReceived(alert) => (
            format!("the server ended the TLS handshake ({alert:?})"),
            "if the server requires a client certificate, give one with --client-cert and \
             --client-key",
        ),
        TlsError::NoCertificatesPresented => (
            "the server presented no certificate".to_string(),
            "check the server's TLS configuration",
        ),
        TlsError::PeerIncompatible(why) => (
            format!("the server's TLS is incompatible ({why:?})"),
            "the server needs TLS 1.2 or 1.3 with a modern cipher suite",
        ),
        other => (
            format!("TLS failed: {other}"),
            "check the URL's scheme and port (https on a plain-HTTP port fails like this)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_read_as_words_with_a_hint() {
        let (words, hint) = describe(&TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert!(words.contains("does not trust"), "{words}");
        assert!(hint.contains("--ca-file"), "{hint}");
    }
}
