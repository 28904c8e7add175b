//! TLS for pooled connections, modelled on ureq's `src/tls/rustls.rs` with two
//! differences that matter to a pool:
//!
//! * one `Arc<ClientConfig>` per pool, shared by every agent, so a reconnect on a
//!   new agent resumes the TLS session another agent started (ureq builds a config
//!   per agent, so sessions never cross agents);
//! * bad certificates or keys are errors when the pool is built, never panics
//!   (ureq `expect`s a valid client key).
//!
//! Sessions live in the pool's own [`SessionStore`] rather than rustls's
//! default cache, which keeps at most 8 TLS 1.3 tickets per server: at 16
//! connections per host, only 8 of 16 reconnects after an idle eviction could
//! resume. The store keeps as many tickets per server as the per-host cap (at
//! least 8), and keys them by port as well as name, so a ticket of one server
//! is never spent on another server of the same host.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::NamedGroup;
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore,
    SignatureScheme, StreamOwned,
};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use super::config::TlsOptions;
use crate::error::{Error, Result};

/// Builds the pool's one rustls client configuration.
pub(crate) fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("no usable TLS protocol versions", Some(e.into())))?;

    let builder = if opts.danger_accept_invalid_certs {
        log::warn!(
            target: "etlpool::security",
            "TLS certificate verification is DISABLED (danger_accept_invalid_certs): \
             anyone on the network path can read and change this traffic, tokens included"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else if opts.platform_verifier {
        platform_verifier(builder, provider)?
    } else {
        builder.with_root_certificates(root_store(opts)?)
    };

    let mut config = match (&opts.client_cert, &opts.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let chain = read_certs_file(cert_path, "client certificate")?;
            let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
                Error::tls(format!("client key {}", key_path.display()), Some(e.into()))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::tls(
                    format!(
                        "client certificate {} and key {} don't form a usable pair",
                        cert_path.display(),
                        key_path.display()
                    ),
                    Some(e.into()),
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.enable_sni = true;
    Ok(Arc::new(config))
}

/// The configuration an origin's agents share: the pool's, with the origin's
/// view of the pool's session store, so every agent of the origin resumes the
/// sessions of the others.
pub(crate) fn for_origin(
    base: &ClientConfig,
    store: &Arc<SessionStore>,
    port: u16,
) -> Arc<ClientConfig> {
    let mut config = base.clone();
    config.resumption = Resumption::store(Arc::new(OriginSessions {
        store: store.clone(),
        port,
    }));
    Arc::new(config)
}

/// TLS sessions of every server a pool talks to, keyed by server name and port.
pub(crate) struct SessionStore {
    /// TLS 1.3 tickets kept per server: a burst of this many reconnects can
    /// all resume.
    per_server: usize,
    /// Servers remembered; the oldest is forgotten first.
    max_servers: usize,
    /// Guards the map and its insertion order; held for a map operation only.
    servers: Mutex<Servers>,
}

type ServerKey = (ServerName<'static>, u16);

#[derive(Default)]
struct Servers {
    data: HashMap<ServerKey, ServerData>,
    order: VecDeque<ServerKey>,
}

#[derive(Default)]
struct ServerData {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// Oldest first; the newest is handed out first.
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl SessionStore {
    pub(crate) fn new(per_server: usize, max_servers: usize) -> Self {
        SessionStore {
            per_server: per_server.max(1),
            max_servers: max_servers.max(1),
            servers: Mutex::new(Servers::default()),
        }
    }

    fn edit(&self, key: ServerKey, f: impl FnOnce(&mut ServerData)) {
        let mut servers = self.servers.lock();
        if !servers.data.contains_key(&key) {
            if servers.order.len() >= self.max_servers
                && let Some(oldest) = servers.order.pop_front()
            {
                servers.data.remove(&oldest);
            }
            servers.order.push_back(key.clone());
        }
        f(servers.data.entry(key).or_default());
    }

    fn read<T>(&self, key: &ServerKey, f: impl FnOnce(&mut ServerData) -> Option<T>) -> Option<T> {
        self.servers.lock().data.get_mut(key).and_then(f)
    }
}

/// One origin's view of the pool's [`SessionStore`].
struct OriginSessions {
    store: Arc<SessionStore>,
    port: u16,
}

impl OriginSessions {
    fn key(&self, name: &ServerName<'_>) -> ServerKey {
        (name.to_owned(), self.port)
    }
}

impl fmt::Debug for OriginSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginSessions")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ClientSessionStore for OriginSessions {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.store
            .edit((name, self.port), |d| d.kx_hint = Some(group));
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.store.read(&self.key(name), |d| d.kx_hint)
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.store
            .edit((name, self.port), |d| d.tls12 = Some(value));
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.store.read(&self.key(name), |d| d.tls12.clone())
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.store.read(&self.key(name), |d| d.tls12.take());
    }

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        let per_server = self.store.per_server;
        self.store.edit((name, self.port), |d| {
            while d.tls13.len() >= per_server {
                d.tls13.pop_front();
            }
            d.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.store.read(&self.key(name), |d| d.tls13.pop_back())
    }
}

fn root_store(opts: &TlsOptions) -> Result<RootCertStore> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut extra = Vec::new();
    if let Some(path) = &opts.ca_file {
        extra.extend(read_certs_file(path, "CA file")?);
    }
    if let Some(pem) = &opts.ca_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::tls("CA PEM", Some(e.into())))?;
        if certs.is_empty() {
            return Err(Error::tls("CA PEM holds no certificates", None));
        }
        extra.extend(certs);
    }
    for cert in extra {
        roots
            .add(cert)
            .map_err(|e| Error::tls("invalid CA certificate", Some(e.into())))?;
    }
    Ok(roots)
}

fn read_certs_file(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let context = || format!("{what} {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::tls(context(), Some(e.into())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::tls(context(), Some(e.into())))?;
    if certs.is_empty() {
        return Err(Error::tls(
            format!("{} holds no PEM certificates", context()),
            None,
        ));
    }
    Ok(certs)
}

#[cfg(feature = "platform-verifier")]
fn platform_verifier(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>> {
    let verifier = rustls_platform_verifier::Verifier::new(provider)
        .map_err(|e| Error::tls("platform verifier", Some(e.into())))?;
    // Not dangerous: the platform verifier does full verification.
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier)))
}

#[cfg(not(feature = "platform-verifier"))]
fn platform_verifier(
    _: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
    _: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>> {
    Err(Error::config(
        "tls.platform_verifier",
        "this build lacks the platform-verifier feature",
    ))
}

/// A handshake that failed for a TLS reason (certificate, protocol), as opposed to
/// the connection dropping. Travels inside `ureq::Error::Other` so the resilience
/// layer can tell "don't retry" from "nothing was sent, retry".
#[derive(Debug)]
pub struct TlsHandshakeError {
    host: String,
    source: rustls::Error,
}

impl fmt::Display for TlsHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tls handshake with {} failed: {}",
            self.host, self.source
        )
    }
}

impl std::error::Error for TlsHandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A TLS stream over a chained transport.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

/// Runs the handshake over `inner`; returns the transport and whether the session
/// was resumed.
pub(crate) fn handshake(
    config: &Arc<ClientConfig>,
    inner: Box<dyn Transport>,
    details: &ConnectionDetails,
) -> std::result::Result<(TlsTransport, bool), ureq::Error> {
    let host = details
        .uri
        .authority()
        .map(|a| a.host().trim_start_matches('[').trim_end_matches(']'))
        .ok_or_else(|| ureq::Error::BadUri("no host for tls".into()))?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| ureq::Error::BadUri(format!("{host:?} is not a valid TLS server name")))?;
    let mut conn = ClientConnection::new(config.clone(), name).map_err(|source| {
        ureq::Error::Other(Box::new(TlsHandshakeError {
            host: host.to_string(),
            source,
        }))
    })?;
    let mut sock = TransportAdapter::new(inner, details.current_time.clone());
    sock.set_timeout(remaining(details));
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(handshake_error(host, e));
        }
    }
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    let buffers = LazyBuffers::new(
        details.config.input_buffer_size(),
        details.config.output_buffer_size(),
    );
    Ok((
        TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        },
        resumed,
    ))
}

/// The connect budget left after the TCP connect, so the handshake can't take a
/// second full `connect_timeout`.
fn remaining(details: &ConnectionDetails) -> NextTimeout {
    use ureq::unversioned::transport::time::{Duration, Instant};
    let mut t = details.timeout;
    if let (Duration::Exact(budget), Instant::Exact(start)) = (t.after, details.now) {
        t.after = Duration::Exact(budget.saturating_sub(start.elapsed()));
    }
    t
}

fn handshake_error(host: &str, e: std::io::Error) -> ureq::Error {
    let is_tls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    if is_tls {
        // The check above makes this downcast succeed; fall back to Io if it doesn't.
        match e.into_inner().map(|b| b.downcast::<rustls::Error>()) {
            Some(Ok(source)) => ureq::Error::Other(Box::new(TlsHandshakeError {
                host: host.to_string(),
                source: *source,
            })),
            Some(Err(other)) => ureq::Error::Io(std::io::Error::other(other)),
            None => ureq::Error::ConnectionFailed,
        }
    } else {
        ureq::Error::from(e)
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

/// The explicit opt-out of verification. Signatures are still checked, so a
/// broken handshake fails; only the chain of trust and the name are not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
